/**
 * A load client for the restart and failover tests that accounts for every
 * request it sends: each one ends as a 200 (its id kept, to compare with the
 * lines on disk and in Kafka), a retry, or a named failure.
 *
 Groups of senders, each paced at its own rate, closed loop (a stalled
 * server stalls the senders rather than piling up connections):
 * - keep-alive: `connections` long-lived connections, one request at a time
 *   each; "Connection: close" in an answer, or a close while idle, makes the
 *   next request open a new connection. A busy group (a few connections, a
 *   high rate) keeps every connection in use; a sparse one (many connections,
 *   a low rate) leaves them idle between requests, like browsers do, which is
 *   where a server's closing races a client's next request;
 * - fresh: a new connection per request, sent with "Connection: close".
 *
 * Retries behave like a browser's or HAProxy's: a request sent on a reused
 * keep-alive connection that is closed or reset before any byte of its
 * answer arrives is sent once more on a new connection (RFC 9112 §9.3.1: the
 * server may have closed the idle connection as the request crossed it). Such
 * retries are counted apart, by what happened. Anything else — a refused or
 * reset new connection, an answer cut short, a status other than 200, no
 * answer within `timeoutMs` — is a failure.
 *
 * Raw node:net rather than node:http: node:http's Agent hides which socket a
 * request used and retries on its own terms, and it costs more CPU than the
 * server under test. Answers are read by the ResponseReader that
 * `scratchd replay` uses (src/tools/http-client/response-reader.ts).
 */
import * as net from 'node:net';
import { Feed, ResponseReader } from '../../src/tools/http-client/response-reader';

export const LOAD_HOSTS = ['www.skroutz.gr', 'www.alve.com', 'www.scrooge.co.uk'] as const;

export interface LoadOptions {
  port: number;
  /** Goes into every query (`run=`), to tell this run's lines from others. */
  run: string;
  groups: SenderGroup[];
  timeoutMs?: number;
}

export interface SenderGroup {
  /** One letter; request ids are `${name}${connection}-${n}`. */
  name: string;
  /** Requests per second over the whole group. */
  rate: number;
  /** Keep-alive connections, or concurrent senders for `fresh`. */
  connections: number;
  /** A new connection per request ("Connection: close"). */
  fresh?: boolean;
}

export interface LoadReport {
  seconds: number;
  /** Distinct requests (a retry is not a new request). */
  requests: number;
  ok: number;
  /** The id of each request answered 200 (see SenderGroup.name). */
  okIds: string[];
  failed: number;
  failures: Record<string, number>;
  retried: number;
  retries: Record<string, number>;
  /** The first few failures, with when and on which connection. */
  samples: string[];
  latencyMs: { p50: number; p99: number; max: number };
}

interface Answer {
  status: number;
  close: boolean;
}

class RequestError extends Error {
  constructor(
    readonly kind: string,
    /** Some bytes of the answer had arrived. */
    readonly partial: boolean,
  ) {
    super(kind);
  }
}

/** One client connection; at most one request in flight. */
class ClientConnection {
  exchanges = 0;
  closed = false;
  private readonly reader = new ResponseReader();
  /** Bytes of the current answer arrived. */
  private gotBytes = false;
  private pending: { resolve: (a: Answer) => void; reject: (e: RequestError) => void; timer: NodeJS.Timeout } | null = null;
  private closeReason = 'eof';

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      if (this.pending === null) return this.fail(new RequestError('unsolicited-bytes', true));
      this.gotBytes = true;
      switch (this.reader.feed(chunk)) {
        case Feed.more:
          return;
        case Feed.done:
          return this.answered();
        case Feed.doneWithExtra:
          return this.fail(new RequestError('unsolicited-bytes', true));
        case Feed.invalid:
          return this.fail(new RequestError('bad-answer', true));
      }
    });
    // A body without a length runs to the close (only error pages do this).
    socket.on('end', () => {
      if (this.pending !== null && this.reader.closedByPeer()) this.answered();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => (this.closeReason = (err.code ?? err.message).toLowerCase()));
    socket.on('close', () => {
      this.closed = true;
      if (this.pending !== null) this.fail(new RequestError(this.closeReason, this.gotBytes));
    });
  }

  static open(port: number): Promise<ClientConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(new ClientConnection(socket));
      });
      const onError = (err: NodeJS.ErrnoException) => reject(new RequestError(`connect-${(err.code ?? err.message).toLowerCase()}`, false));
      socket.once('error', onError);
    });
  }

  send(request: string, timeoutMs: number): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new RequestError('timeout', this.gotBytes)), timeoutMs);
      this.pending = { resolve, reject, timer };
      this.gotBytes = false;
      this.reader.start(false);
      if (this.closed) return this.fail(new RequestError('closed-before-send', false));
      this.socket.write(request);
    });
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private fail(err: RequestError): void {
    const pending = this.pending;
    this.pending = null;
    this.destroy();
    if (pending !== null) {
      clearTimeout(pending.timer);
      pending.reject(err);
    }
  }

  private answered(): void {
    const pending = this.pending!;
    this.pending = null;
    clearTimeout(pending.timer);
    this.exchanges++;
    pending.resolve({ status: this.reader.status, close: !this.reader.keepAlive });
  }
}

/** Lets `rate` takers through per second, in 5 ms steps; a stalled taker does not earn a burst later. */
class Pacer {
  private tokens = 0;
  private last = performance.now();
  private readonly waiting: (() => void)[] = [];
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly rate: number) {
    this.timer = setInterval(() => this.tick(), 5);
  }

  /** Resolves when the caller may send; at once after stop(). */
  take(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const resolve of this.waiting.splice(0)) resolve();
  }

  private tick(): void {
    const now = performance.now();
    this.tokens = Math.min(this.tokens + ((now - this.last) * this.rate) / 1000, Math.max(1, this.rate / 50));
    this.last = now;
    while (this.tokens >= 1 && this.waiting.length > 0) {
      this.tokens--;
      this.waiting.shift()!();
    }
  }
}

export class Load {
  private readonly okIds: string[] = [];
  private readonly failures: Record<string, number> = {};
  private readonly retries: Record<string, number> = {};
  private readonly samples: string[] = [];
  private readonly latencies: number[] = [];
  private readonly pacers: Pacer[] = [];
  private readonly workers: Promise<void>[] = [];
  private readonly startedAt = performance.now();
  private stopping = false;
  private requests = 0;
  private readonly timeoutMs: number;

  constructor(private readonly options: LoadOptions) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    for (const group of options.groups) {
      const pacer = new Pacer(group.rate);
      this.pacers.push(pacer);
      for (let w = 0; w < group.connections; w++) this.workers.push(this.worker(group.name, w, pacer, group.fresh === true));
    }
  }

  /** Requests answered 200 so far. */
  get ok(): number {
    return this.okIds.length;
  }

  /** Failures so far. */
  get failed(): number {
    return Object.values(this.failures).reduce((a, b) => a + b, 0);
  }

  /** Stops sending, waits for the requests in flight, and reports. */
  async stop(): Promise<LoadReport> {
    this.stopping = true;
    for (const pacer of this.pacers) pacer.stop();
    await Promise.all(this.workers);
    const sorted = Float64Array.from(this.latencies).sort();
    const at = (q: number) => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0) * 10) / 10;
    return {
      seconds: Math.round((performance.now() - this.startedAt) / 100) / 10,
      requests: this.requests,
      ok: this.okIds.length,
      okIds: this.okIds,
      failed: this.failed,
      failures: { ...this.failures },
      retried: Object.values(this.retries).reduce((a, b) => a + b, 0),
      retries: { ...this.retries },
      samples: this.samples,
      latencyMs: { p50: at(0.5), p99: at(0.99), max: at(1) },
    };
  }

  private async worker(kind: string, w: number, pacer: Pacer, fresh: boolean): Promise<void> {
    let connection: ClientConnection | null = null;
    for (let n = 0; ; n++) {
      await pacer.take();
      if (this.stopping) break;
      this.requests++;
      const id = `${kind}${w}-${n}`;
      const host = LOAD_HOSTS[(w + n) % LOAD_HOSTS.length]!;
      const request =
        `GET /track?run=${this.options.run}&id=${id}&page=https%3A%2F%2Fshop%2Fp%2F${n}&items[][id]=${n} HTTP/1.1\r\n` +
        `Host: ${host}\r\nUser-Agent: scratchd-test-load\r\n${fresh ? 'Connection: close\r\n' : ''}\r\n`;
      const started = performance.now();
      for (let attempt = 0; ; attempt++) {
        let reused = false;
        try {
          if (connection === null || connection.closed) connection = await ClientConnection.open(this.options.port);
          reused = connection.exchanges > 0;
          const answer = await connection.send(request, this.timeoutMs);
          if (answer.status === 200) this.okIds.push(id);
          else this.count(this.failures, `status-${answer.status}`, id, fresh, reused);
          if (answer.close || fresh) {
            connection.destroy();
            connection = null;
          }
          break;
        } catch (err) {
          connection?.destroy();
          connection = null;
          const e = err as RequestError;
          if (reused && !e.partial && attempt === 0 && e.kind !== 'timeout') {
            this.count(this.retries, `reused-${e.kind}`, id, fresh, reused);
            continue;
          }
          this.count(this.failures, `${reused ? 'reused' : 'new'}-${e.kind}${e.partial ? '-partial-answer' : ''}`, id, fresh, reused);
          break;
        }
      }
      this.latencies.push(performance.now() - started);
    }
    connection?.destroy();
  }

  private count(into: Record<string, number>, what: string, id: string, fresh: boolean, reused: boolean): void {
    into[what] = (into[what] ?? 0) + 1;
    if (into === this.failures && this.samples.length < 10) {
      this.samples.push(`${what} at ${Math.round(performance.now() - this.startedAt)} ms, request ${id} (${fresh ? 'fresh' : 'keep-alive'}, ${reused ? 'reused' : 'new'} connection)`);
    }
  }
}

/** The `id` of a line written for a Load request (null for lines of other runs). */
export function requestIdOf(line: string, run: string): string | null {
  const values = (JSON.parse(line) as { values: { run?: string; id?: string } }).values;
  return values.run === run && typeof values.id === 'string' ? values.id : null;
}

/** How the ids on disk (or in Kafka) compare with the 200s the client saw. */
export interface Reconciliation {
  lines: number;
  /** 200s whose line is nowhere. */
  missing: number;
  /** Ids found more than once (a retried request the server had already persisted). */
  duplicates: number;
  /** Lines for requests the client did not see answered 200. */
  unanswered: number;
}

export function reconcile(okIds: readonly string[], lines: readonly string[], run: string): Reconciliation {
  const seen = new Map<string, number>();
  for (const line of lines) {
    const id = requestIdOf(line, run);
    if (id !== null) seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  const ok = new Set(okIds);
  let missing = 0;
  for (const id of ok) if (!seen.has(id)) missing++;
  let duplicates = 0;
  let unanswered = 0;
  let count = 0;
  for (const [id, n] of seen) {
    count += n;
    if (n > 1) duplicates += n - 1;
    if (!ok.has(id)) unanswered++;
  }
  return { lines: count, missing, duplicates, unanswered };
}
