/**
 * The Kafka backend as the HTTP thread sees it when `kafka.thread` is on (the
 * default; docs/kafka.md, "Threads"): push() appends the line to a batch
 * (io/line-batch.ts) that goes to the Kafka thread (worker.ts) HANDOFF_MS after
 * its first line, or at once when full (64 KiB): each postMessage wakes that
 * thread, which shares a core with others (at a low rate one per event-loop
 * turn would be one per line, and under load ~18 lines a wake-up); librdkafka
 * lingers 50 ms anyway. That thread runs the KafkaBackend — producer, delivery reports,
 * in-flight tracker, spool — and sends its counters back as reports.
 *
 * - push() stays synchronous, O(1) and never blocks: an append to a buffer.
 * - `held` is what the HTTP thread has handed over and the Kafka thread has
 *   not yet reported safe (delivered, in the spool, or counted as dropped),
 *   in lines and bytes of records: the server's backpressure reads it.
 * - close(deadline) sends what is pending, then has the worker run the
 *   backend's close (flush, spool the rest, fsync) and waits for its final
 *   report; lines the worker never confirmed are counted as dropped.
 * - If the worker dies (an exception in it; a native crash takes the whole
 *   process anyway), the lines it held are counted as `thread_died`, logged,
 *   and the process stops in order (SIGTERM: every other backend flushes)
 *   with exit status 70, for the supervisor to restart it; the spool on disk
 *   is drained by the next start. It is not restarted in place: the lines it
 *   held in memory are gone with it, and only a loud stop makes that visible.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Flavor } from '../../flavor';
import type { Line } from '../../line';
import { logger } from '../../log';
import { ErrorCodes, ScratchError, type ErrorCode } from '../../errors';
import { Budget } from '../../io/bounded-queue';
import { BackendCounters, type Backend, type WhenFull } from '../backend';
import { BatchWriter } from '../../io/line-batch';
import { MessageSizeLimit } from './message-size';
import { kafkaDropReasons } from './options';
import { detailsOf, DROP_KEYS, droppedIn, makeReport, REPORT, reportIndexOfDetail, type FromWorker, type Report, type ToWorker, type WorkerInit } from './thread-protocol';
import type { KafkaConfig } from './types';

const log = logger('kafka');
/**
 * Beyond the close deadline, how long the worker may take to let a running
 * client call finish (6 s), close the spool (2 s) and disconnect (2 s).
 */
const CLOSE_GRACE_MS = 12_000;
const EXIT_SOFTWARE = 70;
const SPOOL_BYTES_AT = reportIndexOfDetail('spool_bytes');

/** How long a batch may wait for more lines before it goes to the Kafka thread (see the module comment). */
const HANDOFF_MS = 5;

const NOTHING: Report = makeReport(0, 0, 0, null, {});

/**
 * A spool entry is its record plus the key (a value of the record, so at most
 * as long again) and ~100 bytes of time, flavor, seq and framing: this bounds
 * what a line still on its way could take in the spool.
 */
const spoolBytesAtMost = (lines: number, recordBytes: number) => 2 * recordBytes + 160 * lines;

export class KafkaThread implements Backend {
  readonly name = 'kafka';
  readonly counters = new BackendCounters(kafkaDropReasons);
  /** Lines and record bytes handed to the Kafka thread and not yet reported safe. */
  readonly held = new Budget();
  /** Batches posted to the worker (a gauge of the forwarding rate in /stats). */
  batches = 0;

  private readonly worker: Worker;
  private readonly writer = new BatchWriter();
  private flushScheduled = false;
  /** Lines posted to the worker. */
  private posted = 0;
  private last: Report = NOTHING;
  /** Drops counted here rather than by the worker (after it is gone). */
  private readonly ownDrops: Record<string, number> = {};
  /** The worker is gone (closed or dead): push() counts drops. */
  private gone = false;
  private dead = false;
  private closing: Promise<void> | null = null;
  private startWaiter: { resolve: () => void; reject: (err: Error) => void } | null = null;
  private closeWaiter: ((report: Report | null) => void) | null = null;
  /** The length of the last record refused for the spool, until one as long would fit (refusing()). */
  private refusedRecordChars = 0;
  /** The spool's bytes in the last report. */
  private spoolBytes = 0;
  private readonly flushBound = () => this.flush();
  private readonly postBound = () => this.post();
  private readonly sizeLimit: MessageSizeLimit;

  constructor(private readonly config: KafkaConfig, flavors: readonly Flavor[], lockWaitMs: number, workerFile = path.join(__dirname, 'worker.js')) {
    const init: WorkerInit = { config, flavors: flavors.map((f) => ({ name: f.name, index: f.index, timezone: f.timezone, hosts: f.hosts })), lockWaitMs };
    this.sizeLimit = new MessageSizeLimit(config, Math.max(...flavors.map((f) => f.name.length)));
    this.worker = new Worker(workerFile, { workerData: init, name: 'scratchd-kafka' });
    this.worker.on('message', (message: FromWorker) => this.received(message));
    this.worker.on('error', (err: Error) => this.died(err.stack ?? err.message));
    this.worker.on('exit', (code) => this.died(`exited with status ${code}`));
    // Until start(), and after close(), the worker must not keep the process alive on its own.
    this.worker.unref();
  }

  start(): Promise<void> {
    this.worker.ref();
    return new Promise((resolve, reject) => {
      this.startWaiter = { resolve, reject };
      this.send({ t: 'start' });
    });
  }

  get whenFull(): WhenFull {
    return this.config.whenFull;
  }

  /**
   * Refuses a line (false: spool_full, so 'block' answers 503) when the spool
   * might not have room for it should everything still on its way end up
   * there: the worker's verdict on a line comes only after the answer, so
   * the promise of a 200 is kept with a bound known on this thread. The
   * margin is what is in flight (a few MB) against a spool of GBs.
   */
  push(line: Line, answered = false): boolean {
    if (this.gone) {
      this.drop(this.dead ? 'thread_died' : 'shutdown', 1);
      return false;
    }
    // Refused here, before the answer, rather than by the worker after it (message-size.ts).
    if (!this.sizeLimit.fits(line.record, line.flavor.name)) {
      this.drop('too_large', 1);
      this.sizeLimit.logRefusal(line.record, line.flavor.name);
      return false;
    }
    if (this.spoolMightOverflow(line.record.length)) {
      this.refusedRecordChars = line.record.length;
      // An answered line (Backend.push) is taken all the same: the margin is
      // for it; refusing() now tells the HTTP threads to answer 503.
      if (!(answered && this.config.whenFull === 'block')) {
        this.ownDrops.spool_full = (this.ownDrops.spool_full ?? 0) + 1;
        this.counters.dropped.spool_full++;
        return false;
      }
    }
    const bytes = this.writer.append(line.flavor.index, line.timeMs, line.record, this.postBound);
    this.held.charge(1, bytes);
    this.counters.queued++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setTimeout(this.flushBound, HANDOFF_MS);
    }
    return true;
  }

  /** Since push() last refused a line for the spool, a line as long would still be refused (the worker has not reported room). */
  refusing(): boolean {
    if (this.refusedRecordChars === 0) return false;
    if (this.spoolMightOverflow(this.refusedRecordChars)) return true;
    this.refusedRecordChars = 0;
    return false;
  }

  /** Whether a record of `chars` UTF-16 units might not fit should everything on its way end up in the spool. */
  private spoolMightOverflow(chars: number): boolean {
    return this.spoolBytes + spoolBytesAtMost(this.held.items + 1, this.held.bytes + 3 * chars) > this.config.spool.maxBytes;
  }

  reopen(): void {
    // Nothing to reopen: the spool's segments are opened per use.
  }

  close(deadline: number): Promise<void> {
    this.closing ??= this.runClose(deadline);
    return this.closing;
  }

  details(): Record<string, number> {
    const details = detailsOf(this.last);
    details.thread_batches = this.batches;
    return details;
  }

  private async runClose(deadline: number): Promise<void> {
    if (this.gone) return;
    this.post();
    const final = await new Promise<Report | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), Math.max(deadline, Date.now()) + CLOSE_GRACE_MS - Date.now());
      this.closeWaiter = (report) => {
        clearTimeout(timer);
        resolve(report);
      };
      this.send({ t: 'close', deadline });
    });
    this.closeWaiter = null;
    if (this.dead) return; // died while closing: counted there
    this.gone = true;
    if (final === null) {
      const unconfirmed = this.posted - this.last[REPORT.received]! + this.last[REPORT.queued]!;
      log.error(`the Kafka thread did not finish closing in time: ${unconfirmed} lines unconfirmed`);
      this.drop('shutdown', unconfirmed);
    } else {
      this.apply(final);
      // Posted after the worker had closed its spool: never read.
      const unread = this.posted - final[REPORT.received]!;
      if (unread > 0) this.drop('shutdown', unread);
    }
    this.counters.queued = 0;
    this.held.release(this.held.items, this.held.bytes);
    await this.worker.terminate();
  }

  /** Hands the current batch to the worker (its buffer is transferred, not copied). */
  private post(): void {
    if (this.writer.lines === 0 || this.gone) return;
    const batch = this.writer.take();
    this.posted += batch.lines;
    this.batches++;
    this.worker.postMessage({ t: 'lines', buffer: batch.buffer, length: batch.length } satisfies ToWorker, [batch.buffer]);
  }

  private flush(): void {
    this.flushScheduled = false;
    this.post();
  }

  private send(message: ToWorker): void {
    this.worker.postMessage(message);
  }

  private received(message: FromWorker): void {
    switch (message.t) {
      case 'report':
        this.apply(message.report);
        break;
      case 'closed':
        this.closeWaiter?.(message.report);
        break;
      case 'started':
        this.startWaiter?.resolve();
        this.startWaiter = null;
        break;
      case 'failed':
        this.startWaiter?.reject(rebuildError(message.code, message.message));
        this.startWaiter = null;
        break;
    }
  }

  /** Takes the worker's counters; what it settled since the last report leaves `held`. */
  private apply(report: Report): void {
    const lines = report[REPORT.settledLines]! - this.last[REPORT.settledLines]!;
    const bytes = report[REPORT.settledBytes]! - this.last[REPORT.settledBytes]!;
    if (lines > 0 || bytes > 0) this.held.release(lines, bytes);
    this.last = report;
    this.spoolBytes = report[SPOOL_BYTES_AT]!;
    const c = this.counters;
    c.written = report[REPORT.written]!;
    c.errors = report[REPORT.errors]!;
    // Still in a batch or on its way, plus what the worker holds.
    c.queued = report[REPORT.queued]! + this.posted + this.writer.lines - report[REPORT.received]!;
    const dropped = c.dropped as Record<string, number>;
    for (const reason of DROP_KEYS) dropped[reason] = droppedIn(report, reason) + (this.ownDrops[reason] ?? 0);
  }

  private drop(reason: 'shutdown' | 'thread_died' | 'too_large', lines: number): void {
    this.ownDrops[reason] = (this.ownDrops[reason] ?? 0) + lines;
    this.counters.dropped[reason] += lines;
  }

  private died(why: string): void {
    if (this.gone) return;
    this.gone = true;
    this.dead = true;
    const unconfirmed = this.held.items;
    this.drop('thread_died', unconfirmed);
    this.counters.queued = 0;
    this.held.release(this.held.items, this.held.bytes);
    log.error(`the Kafka thread died (${why}): ${unconfirmed} lines unconfirmed (they may have reached Kafka); stopping with status ${EXIT_SOFTWARE}`);
    this.startWaiter?.reject(new ScratchError('KAFKA_ERROR', `the Kafka thread died: ${why}`));
    this.startWaiter = null;
    this.closeWaiter?.(null);
    // An orderly stop, so that every other backend still flushes; the exit
    // status says it was not a normal one (set in 'exit', after main's own).
    process.once('exit', () => {
      process.exitCode = EXIT_SOFTWARE;
    });
    process.kill(process.pid, 'SIGTERM');
  }
}

function rebuildError(code: string, message: string): Error {
  if (Object.hasOwn(ErrorCodes, code)) {
    const base = ErrorCodes[code as ErrorCode];
    return new ScratchError(code as ErrorCode, message.startsWith(`${base}: `) ? message.slice(base.length + 2) : message);
  }
  return new ScratchError('KAFKA_ERROR', message);
}
