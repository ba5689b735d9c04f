/**
 * Latency under a pipelined burst (BENCH_ONLY=burst, or part of `all`):
 * scratchd with the file backend, hundreds of connections each writing all
 * its beacons (~2 KB queries) at once (test/support/pipeline.ts), twice:
 *
 * - "backpressure": file.queueMaxBytes small (256 KiB), so the queue reaches
 *   the high mark and the server stops reading again and again;
 * - "no backpressure": the default 64 MiB, which the burst never fills.
 *
 * Each answer's latency is from the burst's start (every request was sent
 * then) to its arrival. The correctness check: every 200 is a line on disk.
 */
import * as path from 'node:path';
import { burst, percentile } from '../test/support/pipeline';
import type { BenchOptions } from './options';
import { startScratchd, type ScratchdStats } from './servers';
import { fmt, renderTable } from './table';

export interface BurstRow {
  name: string;
  queueMaxBytes: number;
  answers: number;
  ok: number;
  unavailable: number;
  seconds: number;
  p50: number;
  p99: number;
  max: number;
  pauses: number;
  notOpenMs: number;
  lines: number;
  rssPeakMiB: number;
}

export async function runBursts(options: BenchOptions, dir: string, log: (m: string) => void): Promise<BurstRow[]> {
  const connections = options.quick ? 100 : 300;
  const perConnection = options.quick ? 50 : 200;
  const rows: BurstRow[] = [];
  for (const [name, queueMaxBytes] of [['no backpressure', 64 * 1024 * 1024], ['backpressure', 256 * 1024]] as const) {
    const serverDir = path.join(dir, `burst-${rows.length}`);
    const server = await startScratchd({ dir: serverDir, cpu: options.serverCpu, extraConfig: { file: { path: path.join(serverDir, 'logs', '{flavor}', '{date}.log'), queueMaxBytes } } });
    try {
      log(`bench: burst "${name}": ${connections} connections × ${perConnection} pipelined beacons of ~2 KB`);
      const result = await burst({ port: server.port, run: `burst${rows.length}`, connections, perConnection, queryBytes: 2048, timeoutMs: 120_000 });
      const rssPeak = server.memory().peakRssBytes;
      const stats = (await server.stats()) as ScratchdStats & { backpressure: { pauses: number; not_open_ms: number } };
      await server.stop();
      rows.push({
        name,
        queueMaxBytes,
        answers: result.statuses.size,
        ok: result.byStatus['200'] ?? 0,
        unavailable: result.byStatus['503'] ?? 0,
        seconds: result.seconds,
        p50: percentile(result.latenciesMs, 50),
        p99: percentile(result.latenciesMs, 99),
        max: result.latenciesMs[result.latenciesMs.length - 1] ?? 0,
        pauses: stats.backpressure.pauses,
        notOpenMs: stats.backpressure.not_open_ms,
        lines: server.logTotals().lines,
        rssPeakMiB: rssPeak / 2 ** 20,
      });
    } finally {
      await server.stop().catch(() => undefined);
    }
  }
  return rows;
}

export function burstTable(rows: readonly BurstRow[]): string {
  return renderTable(
    'Pipelined burst (bench/burst.ts): latency from the burst start to each answer, file backend',
    ['', 'queueMaxBytes', 'answers', '200', '503', 'answers/s', 'p50 ms', 'p99 ms', 'max ms', 'pauses', 'paused ms', 'lines', 'RSS peak MiB'],
    rows.map((r) => [
      r.name,
      fmt(r.queueMaxBytes),
      fmt(r.answers),
      fmt(r.ok),
      fmt(r.unavailable),
      fmt(r.answers / r.seconds),
      fmt(r.p50, 1),
      fmt(r.p99, 1),
      fmt(r.max, 1),
      fmt(r.pauses),
      fmt(r.notOpenMs),
      fmt(r.lines),
      fmt(r.rssPeakMiB),
    ]),
  );
}
