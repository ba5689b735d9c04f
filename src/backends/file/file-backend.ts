/**
 * The file backend: one append-only file per flavor per local day,
 * `file.path` with {flavor} and {date} filled from config values and the
 * flavor's clock — never from request data.
 *
 * push() finds the writer for the line's flavor and date (a two-field check on
 * the hot path; a Map lookup only at a new day) and hands the record over.
 * Lines beyond `file.queue` lines or `file.queueMaxBytes` bytes held in
 * memory are dropped and counted (queue_full); lines pushed once close()
 * began, as shutdown. A 1 s upkeep timer fsyncs (file.fsyncIntervalMs), notices
 * files moved or deleted underneath, and closes yesterday's files once idle.
 */
import { ScratchError } from '../../errors';
import type { Flavor } from '../../flavor';
import type { Line } from '../../line';
import { logger } from '../../log';
import { BackendCounters, type Backend, type WhenFull } from '../backend';
import { Budget } from '../../io/bounded-queue';
import { realFileOps, type FileOps } from '../../io/file-ops';
import { FileWriter, type WriterEvents } from '../../io/file-writer';
import type { FileConfig } from './types';

const log = logger('file');
const UPKEEP_MS = 1_000;

export class FileBackend implements Backend {
  readonly name = 'file';
  readonly counters = new BackendCounters();
  readonly whenFull: WhenFull;
  bytesWritten = 0;

  private readonly writers = new Map<string, FileWriter>();
  /** Per flavor index: the writer of the date it last saw, and that date. */
  private readonly currentWriter: (FileWriter | undefined)[];
  private readonly currentDate: string[];
  private readonly events: WriterEvents;
  private readonly upkeep: NodeJS.Timeout;
  /** What all writers hold in memory (lines and bytes), bounded by `file.queue` and `file.queueMaxBytes`. */
  readonly held: Budget;
  private lastFsyncAt = Date.now();
  private closing = false;

  constructor(
    private readonly config: FileConfig,
    flavors: readonly Flavor[],
    private readonly ops: FileOps = realFileOps,
  ) {
    this.held = new Budget(config.queue, config.queueMaxBytes);
    this.whenFull = config.whenFull;
    this.currentWriter = flavors.map(() => undefined);
    this.currentDate = flavors.map(() => '');
    this.events = {
      written: (lines, bytes) => {
        this.counters.written += lines;
        this.counters.queued -= lines;
        this.bytesWritten += bytes;
      },
      failed: (operation, err) => {
        this.counters.errors++;
        log.every(`${operation}:${err.code ?? ''}`, 10_000, `${operation} failed, will retry: ${err.message}`);
      },
    };
    this.upkeep = setInterval(() => this.maintain(), UPKEEP_MS).unref();
  }

  /** Nothing to acquire: files open on first use. */
  start(): Promise<void> {
    return Promise.resolve();
  }

  push(line: Line, answered = false): boolean {
    if (this.closing) {
      this.counters.dropped.shutdown++;
      return false;
    }
    const index = line.flavor.index;
    let writer = this.currentWriter[index];
    if (writer === undefined || this.currentDate[index] !== line.date) {
      writer = this.writerFor(line.flavor, line.date);
    }
    if (!writer.append(line.record, answered && this.whenFull === 'block')) {
      this.counters.dropped.queue_full++;
      return false;
    }
    this.counters.queued++;
    return true;
  }

  reopen(): void {
    for (const writer of this.writers.values()) writer.reopen();
  }

  async close(deadline: number): Promise<void> {
    this.closing = true;
    clearInterval(this.upkeep);
    const lost = await Promise.all([...this.writers.values()].map((w) => w.close(deadline)));
    this.writers.clear();
    const total = lost.reduce((a, b) => a + b, 0);
    if (total > 0) {
      this.counters.dropped.shutdown += total;
      this.counters.queued -= total;
      log.error(`stopped with ${total} lines unwritten (the deadline passed while writes kept failing or did not return)`);
    }
  }

  refusing(): boolean {
    // A full queue shows in `held`: backpressure and /ready already follow it.
    return false;
  }

  details(): Record<string, number> {
    return { open_files: this.writers.size, bytes: this.bytesWritten, queued_bytes: this.held.bytes };
  }

  /** The path for a flavor and date: config values only. */
  pathFor(flavor: Flavor, date: string): string {
    return this.config.path.replaceAll('{flavor}', flavor.name).replaceAll('{date}', date);
  }

  private writerFor(flavor: Flavor, date: string): FileWriter {
    const path = this.pathFor(flavor, date);
    let writer = this.writers.get(path);
    if (writer === undefined) {
      const { fileMode: mode, maxBatchBytes, retryMaxDelayMs, writeIntervalMs } = this.config;
      writer = new FileWriter(path, { mode, maxBatchBytes, retryMaxDelayMs, writeIntervalMs }, this.ops, this.events, log, this.held);
      this.writers.set(path, writer);
    }
    // Only move "current" forward: a late line of yesterday must not make
    // today's writer look idle-closable.
    if (this.currentDate[flavor.index]! <= date) {
      this.currentWriter[flavor.index] = writer;
      this.currentDate[flavor.index] = date;
    }
    return writer;
  }

  private maintain(): void {
    const now = Date.now();
    const fsync = this.config.fsyncIntervalMs > 0 && now - this.lastFsyncAt >= this.config.fsyncIntervalMs;
    if (fsync) this.lastFsyncAt = now;
    const current = new Set(this.currentWriter);
    for (const [path, writer] of this.writers) {
      if (!current.has(writer) && writer.idle && now - writer.lastWriteAt >= this.config.closeIdleAfterMs) {
        this.writers.delete(path);
        void writer.close(now + this.config.retryMaxDelayMs).then((lost) => {
          if (lost > 0) this.events.failed('close', new ScratchError('FILE_LINES_UNWRITTEN', `${lost} lines of ${path}`));
        });
        continue;
      }
      writer.maintain(fsync);
    }
  }
}
