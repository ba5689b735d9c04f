/**
 * One replay run: schedules the jobs of the RequestSource on the Client,
 * counts what comes back, and builds the report.
 *
 * Contract
 * --------
 * - Open loop (`rate`): request i has the intended send time start + i/N,
 *   and its latency is measured from that time, not from when it was
 *   written, so a slow target shows up as latency instead of silently
 *   lowering the rate ("coordinated omission", Gil Tene). Requests due while
 *   every connection is busy wait in the client's queue, bounded here: at
 *   MAX_WAITING scheduling pauses (until half of them are sent), and the
 *   late ones show it in their latency.
 * - Closed loop (no rate): `connections` requests in flight at all times,
 *   latency from the actual send.
 * - `run()` resolves with the report once nothing is in flight and either
 *   the input is exhausted, --duration or --limit is reached, --max-errors
 *   stopped it, or SIGINT arrived (a second SIGINT abandons the requests in
 *   flight). The clock starts with the first request ready.
 * - Unparseable lines go to stderr (the first MAX_REPORTED, escaped); a
 *   progress bar is drawn on stderr only when it is a terminal.
 */
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { ToolIo } from '../cli';
import { startProgress, type Progress } from '../progress';
import { escapeBytes, LineReader } from '../request-log';
import { Client } from './client';
import type { ReplayOptions } from './options';
import type { ReplayReport } from './report';
import { MAX_LINE_BYTES, RequestSource, type Job } from './source';

/** Unparseable lines printed on stderr; the rest are only counted. */
const MAX_REPORTED = 10;
/** Open loop: due requests waiting for a free connection before scheduling pauses. */
const MAX_WAITING = 100_000;

export class Replay {
  private readonly source: RequestSource;
  private readonly client: Client;
  private readonly histogram: RecordableHistogram = createHistogram();
  private readonly status = new Map<number, number>();
  private readonly errors = new Map<string, number>();
  private sent = 0;
  private answered = 0;
  private failed = 0;
  private reported = 0;
  private startAt = 0;
  private finishedAt = 0;
  private scheduled = 0;
  private readonly interval: number;
  private stopping = false;
  private interrupted = false;
  private stoppedByErrors = false;
  private paused = false;
  private timer: NodeJS.Timeout | undefined;
  private done: () => void = () => undefined;
  private progress: Progress | undefined;

  constructor(
    private readonly options: ReplayOptions,
    private readonly input: { stream: Readable; size: number | undefined },
    private readonly io: ToolIo,
  ) {
    this.interval = options.rate === undefined ? 0 : 1000 / options.rate;
    const reader = new LineReader(input.stream, { stripCR: true, maxLineBytes: MAX_LINE_BYTES });
    this.source = new RequestSource(
      reader,
      { defaultHost: options.defaultHost, keepEscapes: options.keepEscapes },
      options.limit ?? Infinity,
      (line, reason, text) => this.reportMalformed(line, reason, text),
    );
    this.client = new Client(options.target, options.connections, options.timeoutMs, {
      answered: (job, status, now) => this.onAnswered(job, status, now),
      failed: (_job, reason) => this.onFailed(reason),
    });
  }

  async run(): Promise<ReplayReport> {
    const finished = new Promise<void>((resolve) => (this.done = resolve));
    const onSigint = () => {
      if (this.interrupted) this.client.abort();
      this.interrupted = true;
      this.stop();
    };
    process.on('SIGINT', onSigint);
    void this.source.read();
    // The clock starts with the first request ready: opening and reading the
    // input is not the target's latency.
    // (A SIGINT while stdin has nothing yet ends the wait too.)
    const firstReady = new Promise<void>((resolve) => (this.source.pending > 0 || this.source.ended ? resolve() : (this.source.onReady = resolve)));
    await Promise.race([firstReady, finished]);
    this.startProgress();
    this.startAt = performance.now();
    let durationTimer: NodeJS.Timeout | undefined;
    if (this.options.durationMs !== undefined) durationTimer = setTimeout(() => this.stop(), this.options.durationMs);
    if (this.options.rate === undefined) this.fill();
    else this.pump();
    try {
      await finished;
    } finally {
      const endedAt = performance.now();
      process.off('SIGINT', onSigint);
      clearTimeout(durationTimer);
      clearTimeout(this.timer);
      this.progress?.stop();
      this.client.close();
      this.source.release();
      this.finishedAt = endedAt;
    }
    return this.report();
  }

  /** Stops sending new requests; those in flight or already due still get their answers. */
  private stop(): void {
    this.stopping = true;
    clearTimeout(this.timer);
    this.checkDone();
  }

  /** Open loop: sends every request whose intended time has come, then sleeps until the next one. */
  private readonly pump = (): void => {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopping) return this.checkDone();
    const now = performance.now();
    const due = Math.floor((now - this.startAt) / this.interval) + 1;
    while (this.scheduled < due) {
      if (this.client.waiting.length >= MAX_WAITING) {
        this.paused = true; // resumed by onAnswered/onFailed
        return;
      }
      const job = this.source.take();
      if (job === undefined) {
        if (this.source.ended) return this.checkDone();
        this.source.onReady = this.pump;
        return;
      }
      job.intended = this.startAt + this.scheduled * this.interval;
      this.scheduled++;
      this.sent++;
      this.client.send(job);
    }
    // setTimeout has ~1 ms resolution: at high rates a tick sends a small
    // burst, each request still timed from its own intended moment.
    this.timer = setTimeout(this.pump, Math.max(0, this.startAt + this.scheduled * this.interval - performance.now()));
  };

  /** Closed loop: keeps --connections requests in flight. */
  private readonly fill = (): void => {
    while (!this.stopping && this.client.inFlight + this.client.waiting.length < this.options.connections) {
      const job = this.source.take();
      if (job === undefined) {
        if (!this.source.ended) this.source.onReady = this.fill;
        break;
      }
      job.intended = performance.now();
      this.sent++;
      this.client.send(job);
    }
    this.checkDone();
  };

  private onAnswered(job: Job, status: number, now: number): void {
    this.answered++;
    this.status.set(status, (this.status.get(status) ?? 0) + 1);
    this.histogram.record(Math.max(1, Math.round((now - job.intended) * 1e6)));
    this.next();
  }

  private onFailed(reason: string): void {
    this.failed++;
    this.errors.set(reason, (this.errors.get(reason) ?? 0) + 1);
    if (this.options.maxErrors !== undefined && this.failed >= this.options.maxErrors && !this.stopping) {
      this.stoppedByErrors = true;
      this.stop();
    }
    this.next();
  }

  private next(): void {
    if (this.options.rate === undefined) return this.fill();
    if (this.paused && this.client.waiting.length < MAX_WAITING / 2) {
      this.paused = false;
      this.pump();
    }
    this.checkDone();
  }

  private checkDone(): void {
    const idle = this.client.inFlight === 0 && this.client.waiting.length === 0;
    if (idle && (this.stopping || (this.source.ended && this.source.pending === 0))) this.done();
  }

  private reportMalformed(line: number, reason: string, text: string | null): void {
    if (this.reported >= MAX_REPORTED) return;
    this.reported++;
    const shown = text === null ? '' : `: ${escapeBytes(text)}`;
    const more = this.reported === MAX_REPORTED ? ' (further malformed lines are only counted)' : '';
    this.print(`replay: line ${line}: ${reason}${shown}${more}\n`);
  }

  private print(text: string): void {
    if (this.progress !== undefined) this.progress.print(text);
    else this.io.stderr.write(text);
  }

  private startProgress(): void {
    let lastAt = performance.now();
    let lastSent = 0;
    let rate = 0;
    this.progress = startProgress(this.io.stderr, () => {
      const now = performance.now();
      if (now - lastAt >= 500) {
        rate = ((this.sent - lastSent) * 1000) / (now - lastAt);
        lastAt = now;
        lastSent = this.sent;
      }
      const { limit } = this.options;
      const fraction =
        limit !== undefined ? this.sent / limit : this.input.size !== undefined && this.input.size > 0 ? this.source.reader.bytesRead / this.input.size : undefined;
      return {
        fraction,
        label: `sent ${this.sent}${limit !== undefined ? `/${limit}` : ''} · ${Math.round(rate)} req/s · answered ${this.answered} · errors ${this.failed}`,
      };
    });
  }

  private report(): ReplayReport {
    const seconds = Math.max(1e-9, (this.finishedAt - this.startAt) / 1000);
    const h = this.histogram;
    const ms = (ns: number) => (h.count === 0 ? 0 : Math.round(ns / 1e3) / 1e3);
    const sorted = <T>(m: Map<T, number>) => Object.fromEntries([...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([k, v]) => [String(k), v]));
    return {
      target: this.options.target.url,
      mode: this.options.rate === undefined ? 'closed' : 'rate',
      target_rate: this.options.rate ?? null,
      connections: this.options.connections,
      lines: this.source.lines,
      sent: this.sent,
      answered: this.answered,
      status: sorted(this.status),
      failed: this.failed,
      errors: sorted(this.errors),
      retries: this.client.retries,
      skipped: { malformed: this.source.malformed, method: this.source.method },
      duration_s: Math.round(seconds * 1e6) / 1e6,
      rate: Math.round((this.sent / seconds) * 10) / 10,
      latency_ms: {
        p50: ms(h.percentile(50)),
        p90: ms(h.percentile(90)),
        p99: ms(h.percentile(99)),
        p99_9: ms(h.percentile(99.9)),
        max: ms(h.max),
        mean: ms(h.mean),
      },
      interrupted: this.interrupted,
      stopped_by_errors: this.stoppedByErrors,
      input_error: this.source.error === null ? null : this.source.error.message,
    };
  }
}
