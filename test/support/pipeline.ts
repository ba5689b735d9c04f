/**
 * A burst of pipelined beacons: `connections` sockets, each writing all its
 * `perConnection` requests at once (one write), then reading the answers in
 * order. Each request carries `run`, its connection `c` and number `n`, and a
 * `pad` of `queryBytes` so that the line is large. Every answer's status is
 * kept, by request id (`c-n`), with the time from the burst's start to the
 * answer (its latency: the requests were all sent at the start).
 *
 * Used by the backpressure tests (test/http/backpressure.test.ts) and the
 * bench (bench/burst.ts).
 */
import * as net from 'node:net';

export interface BurstOptions {
  port: number;
  host?: string;
  /** Host header. */
  vhost?: string;
  run: string;
  connections: number;
  perConnection: number;
  /** Approximate query length, in bytes. */
  queryBytes: number;
  /** A connection that has not received all its answers by then fails the burst. */
  timeoutMs?: number;
}

export interface BurstResult {
  /** Status per request id "c-n". */
  statuses: Map<string, number>;
  /** How many answers had each status. */
  byStatus: Record<string, number>;
  /** Milliseconds from the burst's start to each answer, sorted. */
  latenciesMs: number[];
  seconds: number;
}

const STATUS = /HTTP\/1\.1 (\d{3}) /g;

export function burstRequest(run: string, c: number, n: number, pad: string, vhost: string): string {
  return `GET /track?run=${run}&c=${c}&n=${n}&pad=${pad} HTTP/1.1\r\nHost: ${vhost}\r\n\r\n`;
}

export async function burst(options: BurstOptions): Promise<BurstResult> {
  const { port, host = '127.0.0.1', vhost = 'www.skroutz.gr', run, connections, perConnection, queryBytes, timeoutMs = 60_000 } = options;
  const pad = 'x'.repeat(Math.max(0, queryBytes - 40));
  const statuses = new Map<string, number>();
  const latencies: number[] = [];
  const started = performance.now();
  const one = (c: number) =>
    new Promise<void>((resolve, reject) => {
      const socket = net.connect({ port, host, noDelay: true });
      let text = '';
      let n = 0;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connection ${c}: ${n} of ${perConnection} answers within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.on('connect', () => {
        const requests: string[] = [];
        for (let i = 0; i < perConnection; i++) requests.push(burstRequest(run, c, i, pad, vhost));
        socket.write(requests.join(''));
      });
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        STATUS.lastIndex = 0;
        let match: RegExpExecArray | null;
        let lastEnd = 0;
        const now = performance.now() - started;
        while ((match = STATUS.exec(text)) !== null) {
          statuses.set(`${c}-${n}`, Number(match[1]));
          latencies.push(now);
          lastEnd = STATUS.lastIndex;
          n++;
        }
        // Keep only a tail that may hold a status line cut in two (never one already counted).
        text = text.slice(Math.max(lastEnd, text.length - 20));
        if (n >= perConnection) {
          clearTimeout(timer);
          socket.end();
          resolve();
        }
      });
      socket.on('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`connection ${c} after ${n} answers: ${err.message}`));
      });
      socket.on('close', () => {
        clearTimeout(timer);
        if (n < perConnection) reject(new Error(`connection ${c} closed after ${n} of ${perConnection} answers`));
      });
    });
  await Promise.all(Array.from({ length: connections }, (_, c) => one(c)));
  const byStatus: Record<string, number> = {};
  for (const status of statuses.values()) byStatus[status] = (byStatus[status] ?? 0) + 1;
  latencies.sort((a, b) => a - b);
  return { statuses, byStatus, latenciesMs: latencies, seconds: (performance.now() - started) / 1000 };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}
