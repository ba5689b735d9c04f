/**
 * FileWriter: one append-only file, written by one actor. Used by the file
 * backend (one per flavor and day) and by the Kafka spool (its head segment).
 *
 * Contract:
 * - `append(record)` is synchronous and never blocks: `record` is one line
 *   without its "\n"; it is held in memory (a BoundedQueue charged to the
 *   caller's Budget) until written. It returns false, holding nothing, when
 *   the budget is full. The budget stays charged for a line until its last
 *   byte is in the file, so `budget.bytes` is what memory holds.
 * - Every fd operation (open, write, fsync, reopen, close) runs in one async
 *   loop (`pump`), so at most one write is in flight, writes start at most
 *   every `writeIntervalMs` (sooner when 64 KiB wait), and a line is never
 *   interleaved with another. (After pinojs/sonic-boom's
 *   actualWrite/release/reopen, with the fd operations serialized instead of
 *   guarded by flags.)
 * - A batch is at most `maxBatchBytes` bytes (UTF-8, as written). `written`
 *   is reported after every write for the lines whose "\n" it wrote, so the
 *   count never lags the file.
 * - A failed open or write is counted and retried with a doubling backoff,
 *   keeping the bytes. Errors that mean "this fd is no good" (EBADF, ESTALE,
 *   EIO, ENXIO, ENOENT) reopen the path (creating its folder) before the
 *   retry. Other errors (ENOSPC, EDQUOT, EAGAIN, …) retry on the same fd,
 *   unless the file was deleted or moved meanwhile (st_nlink == 0 or another
 *   inode at the path): then the path is reopened, which also lets the kernel
 *   free the space a deleted file held.
 * - No torn line: when a line was half written to one file and the writer
 *   moves to another (a different inode), the whole line is written again to
 *   the new one; when the reopened path is the same file, the rest follows
 *   the half already there.
 * - `reopen()` (SIGHUP) opens the path anew at the next line boundary, or at
 *   once while writes are failing: new fd first, then the old one is closed.
 * - `close(deadline)` writes what is held, fsyncs and closes; at the
 *   deadline it gives up and reports the lines it could not write. Called
 *   again, it can bring the deadline forward, never push it back.
 */
import type { Logger } from '../log';
import { Budget, BoundedQueue } from './bounded-queue';
import { sameId, withReturns, type FileId, type FileOps } from './file-ops';
import { returnsInTime } from './deadline';

const REOPEN_ERRORS = new Set(['EBADF', 'ESTALE', 'EIO', 'ENXIO', 'ENOENT']);
const NEWLINE = 10;

export interface WriterEvents {
  /** `lines` whole lines (`bytes` bytes, a line's start may be among them) reached the file. */
  written(lines: number, bytes: number): void;
  /** An open/write/fsync failed; it will be retried. */
  failed(operation: string, err: NodeJS.ErrnoException): void;
}

export interface WriterOptions {
  readonly mode: number;
  /** Bytes (UTF-8, newlines included) per write at most; one longer line is written alone. */
  readonly maxBatchBytes: number;
  readonly retryMaxDelayMs: number;
  /** A write starts at most this often (0: as soon as lines are there), unless WRITE_NOW_BYTES are waiting. */
  readonly writeIntervalMs: number;
}

/** This much waiting is written at once, whatever writeIntervalMs says. */
const WRITE_NOW_BYTES = 64 * 1024;

/** The bytes being written: taken from the queue, kept until all reached a file. */
interface Batch {
  readonly buffer: Buffer;
  /** Bytes written so far. */
  offset: number;
  /** Lines whose "\n" is not written yet. */
  lines: number;
}

export class FileWriter {
  /** When the last byte reached the file (or the writer was made). */
  lastWriteAt = Date.now();

  private readonly pending: BoundedQueue<string>;
  private batch: Batch | null = null;
  private lastBatchAt = 0;
  private fd: number | null = null;
  /** The file `fd` is, and the file the last bytes went to (a half line may be there). */
  private fdId: FileId | null = null;
  private writtenId: FileId | null = null;
  private pumping: Promise<void> | null = null;
  private dirty = false;
  private wantReopen = false;
  private wantFsync = false;
  private wantCheck = false;
  private closing = false;
  private deadline = Infinity;
  private closed: Promise<number> | null = null;
  private wake: (() => void) | null = null;

  /** The file calls, each noting when it returned (lastReturnAt): close() waits on them while they keep returning. */
  private readonly ops: FileOps;
  private lastReturnAt = 0;

  constructor(
    readonly path: string,
    private readonly options: WriterOptions,
    ops: FileOps,
    private readonly events: WriterEvents,
    private readonly log: Logger,
    /** What this writer holds is charged here; shared by the writers of one backend. */
    private readonly budget: Budget = new Budget(),
  ) {
    this.pending = new BoundedQueue<string>(budget);
    this.ops = withReturns(ops, () => (this.lastReturnAt = Date.now()));
  }

  /** Lines appended and not yet (entirely) written. */
  get pendingLines(): number {
    return this.pending.length + (this.batch?.lines ?? 0);
  }

  get idle(): boolean {
    return this.pumping === null && this.pendingLines === 0;
  }

  /** Resolves when the writer has nothing left to do right now (written all, or closing gave up). */
  async settled(): Promise<void> {
    while (this.pumping !== null) await this.pumping;
  }

  /** Appends one line (the writer adds its "\n"); false, nothing held, when the budget is full. */
  /** `beyondBounds`: a line already promised (see Backend.push's `answered`), held whatever the budget says. */
  append(record: string, beyondBounds = false): boolean {
    if (beyondBounds) this.pending.push(record, Buffer.byteLength(record) + 1);
    else if (!this.pending.tryPush(record, Buffer.byteLength(record) + 1)) return false;
    this.kick();
    return true;
  }

  /** SIGHUP: open the path anew (at the next line boundary, or at once while writes fail). */
  reopen(): void {
    this.wantReopen = true;
    this.wake?.(); // a retry's backoff may be long: the reopen should not wait for it
    this.kick();
  }

  /** Periodic upkeep: fsync if anything was written, and reopen if the file was moved or deleted. */
  maintain(fsync: boolean): void {
    if (this.fd === null) return;
    if (fsync && this.dirty) this.wantFsync = true;
    this.wantCheck = true;
    this.kick();
  }

  /** Resolves with the number of lines that could not be written by `deadline`. */
  close(deadline: number): Promise<number> {
    if (this.closed === null) {
      this.closing = true;
      this.deadline = deadline;
      this.wake?.();
      this.closed = this.finish();
    } else if (deadline < this.deadline) {
      // Closed again with an earlier deadline (the Kafka spool stopping while it seals this file): it comes forward.
      this.deadline = deadline;
      this.wake?.();
    }
    return this.closed;
  }

  private kick(): void {
    if (this.pumping !== null || this.closing) return;
    // setImmediate: lines appended during this turn of the event loop join one batch.
    this.pumping = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.pump())
      .catch((err: unknown) => this.log.error(`${this.path}: writer stopped on an unexpected error: ${String(err)}`))
      .finally(() => {
        this.pumping = null;
      });
  }

  private async pump(): Promise<void> {
    for (;;) {
      if (this.finished) return;
      if (this.wantReopen && this.batch === null) {
        // Before the next batch: lines that arrive after SIGHUP go to the new file.
        this.wantReopen = false;
        if (this.fd !== null) await this.swapFd('reopened');
      } else if (this.batch !== null || this.pending.length > 0) {
        // Pace writes: at low rates every line would otherwise cost a
        // thread-pool round trip of its own (sonic-boom's minLength idea).
        const wait =
          this.closing || this.batch !== null || this.pending.bytes >= WRITE_NOW_BYTES ? 0 : this.lastBatchAt + this.options.writeIntervalMs - Date.now();
        if (wait > 0) {
          await this.backoff(wait);
          continue;
        }
        this.lastBatchAt = Date.now();
        if (!(await this.writeBatch())) return;
      } else if (this.wantFsync) {
        this.wantFsync = false;
        this.dirty = false;
        const fd = this.fd;
        if (fd !== null) await this.attempt('fsync', () => this.ops.fsync(fd));
      } else if (this.wantCheck) {
        this.wantCheck = false;
        const fd = this.fd;
        if (fd !== null && !(await this.ops.sameFile(fd, this.path).catch(() => true))) await this.swapFd('moved or deleted: reopened');
      } else {
        return;
      }
    }
  }

  /** Writes the current batch (or takes one), retrying failures; false when closing ran out of time. */
  private async writeBatch(): Promise<boolean> {
    const batch = (this.batch ??= this.takeBatch());
    let delay = 50;
    let failing = false;
    while (batch.offset < batch.buffer.length) {
      if (this.finished) return false;
      // SIGHUP inside a batch: at a line boundary, or at once when the fd fails
      // (the operator may be freeing a deleted file's space).
      if (this.wantReopen && this.fd !== null && (failing || atLineStart(batch))) {
        this.wantReopen = false;
        await this.swapFd('reopened');
      }
      if (this.fd === null && !(await this.openWithRetry())) return false;
      try {
        const n = await this.ops.write(this.fd!, batch.buffer, batch.offset, batch.buffer.length - batch.offset);
        if (this.finished) return false;
        this.wrote(batch, n);
        delay = 50;
        failing = false;
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        failing = true;
        this.events.failed('write', e);
        if (REOPEN_ERRORS.has(e.code ?? '')) await this.dropFd();
        else if (!(await this.ops.sameFile(this.fd!, this.path).catch(() => true))) await this.swapFd('moved or deleted: reopened');
        if (!(await this.backoff(delay))) return false;
        delay = Math.min(delay * 2, this.options.retryMaxDelayMs);
      }
    }
    this.batch = null;
    return true;
  }

  /** Accounts `n` bytes of `batch` as written. */
  private wrote(batch: Batch, n: number): void {
    if (n <= 0) return;
    const end = batch.offset + n;
    let lines = 0;
    for (let at = batch.buffer.indexOf(NEWLINE, batch.offset); at !== -1 && at < end; at = batch.buffer.indexOf(NEWLINE, at + 1)) lines++;
    batch.offset = end;
    batch.lines -= lines;
    this.writtenId = this.fdId;
    this.dirty = true;
    this.lastWriteAt = Date.now();
    this.budget.release(lines, n);
    this.events.written(lines, n);
  }

  /** Up to maxBatchBytes of the oldest lines (at least one), encoded once into one buffer. */
  private takeBatch(): Batch {
    const records: string[] = [];
    let bytes = 0;
    while (this.pending.length > 0 && (records.length === 0 || bytes + this.pending.peekBytes() <= this.options.maxBatchBytes)) {
      bytes += this.pending.peekBytes();
      // Still charged to the budget: the batch holds it until written (wrote()).
      records.push(this.pending.shift(false)!);
    }
    const buffer = Buffer.allocUnsafe(bytes);
    let at = 0;
    for (const record of records) {
      at += buffer.write(record, at, 'utf8');
      buffer[at++] = NEWLINE;
    }
    return { buffer, offset: 0, lines: records.length };
  }

  /**
   * After a new fd: if the current batch stopped inside a line and the new fd
   * is another file, start that line again from its beginning. Returns how
   * many bytes of it went to the old file (0: nothing to undo there).
   */
  private realign(): number {
    const batch = this.batch;
    if (batch === null || atLineStart(batch) || sameId(this.fdId, this.writtenId)) return 0;
    const start = batch.buffer.lastIndexOf(NEWLINE, batch.offset - 1) + 1;
    const cut = batch.offset - start;
    this.budget.charge(0, cut);
    batch.offset = start;
    return cut;
  }

  private async open(): Promise<number> {
    const fd = await this.ops.openAppend(this.path, this.options.mode);
    try {
      this.fdId = await this.ops.identify(fd);
    } catch {
      this.fdId = null; // unknown: a half line is then written again in full
    }
    return fd;
  }

  private async openWithRetry(): Promise<boolean> {
    let delay = 50;
    for (;;) {
      try {
        const fd = await this.open();
        if (this.finished) {
          await this.ops.close(fd).catch(() => undefined);
          return false;
        }
        this.fd = fd;
        this.wantReopen = false; // a fresh open is what SIGHUP asked for
        this.realign();
        return true;
      } catch (err) {
        this.events.failed('open', err as NodeJS.ErrnoException);
        if (!(await this.backoff(delay))) return false;
        delay = Math.min(delay * 2, this.options.retryMaxDelayMs);
      }
    }
  }

  /** Opens the path again, then closes the old fd (SIGHUP, or the file was moved or deleted). */
  private async swapFd(reason: string): Promise<void> {
    const oldId = this.fdId;
    let fd: number;
    try {
      fd = await this.open();
    } catch (err) {
      this.fdId = oldId;
      this.events.failed('open', err as NodeJS.ErrnoException);
      return; // keep writing to the old fd; the next SIGHUP or check tries again
    }
    if (this.finished) {
      await this.ops.close(fd).catch(() => undefined);
      return;
    }
    const old = this.fd;
    this.fd = fd;
    const cut = this.realign();
    if (old !== null) {
      // The old file (moved away, or deleted) keeps only whole lines: the cut
      // line's start is removed there, as it is written whole to the new file.
      if (cut > 0) await this.ops.truncateTail(old, cut).catch(() => undefined);
      if (this.dirty) await this.ops.fsync(old).catch(() => undefined);
      await this.ops.close(old).catch(() => undefined);
    }
    this.dirty = false;
    this.log.info(`${reason} ${this.path}`);
  }

  private async dropFd(): Promise<void> {
    const old = this.fd;
    this.fd = null;
    if (old !== null) await this.ops.close(old).catch(() => undefined);
  }

  private async attempt(operation: string, run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (err) {
      this.events.failed(operation, err as NodeJS.ErrnoException);
    }
  }

  /** Sleeps (pacing or a retry's backoff); false if closing and the deadline has passed. reopen() and close() cut it short. */
  private backoff(ms: number): Promise<boolean> {
    const left = this.deadline - Date.now();
    if (left <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve(true);
      }, Math.min(ms, left));
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve(Date.now() < this.deadline);
      };
    });
  }

  private async finish(): Promise<number> {
    // The running pump sees `closing`, stops pacing, and returns when done or
    // out of time. A call that never returns (a write to a hung NFS server)
    // would hold the stop for ever: past the deadline, the calls here are
    // waited for only while they keep returning (io/deadline.ts), and what is
    // unwritten when one hangs is reported lost.
    if (this.pumping !== null && !(await this.returnsInTime(this.pumping))) return this.giveUp(this.pumping);
    while (this.pendingLines > 0 && Date.now() < this.deadline) {
      const writing = this.writeBatch();
      if (!(await this.returnsInTime(writing))) return this.giveUp(writing);
      if (!(await writing)) break;
    }
    if (this.fd !== null) {
      const fd = this.fd;
      // What was written is synced and closed even when the deadline has passed.
      if (this.dirty) {
        const syncing = this.attempt('fsync', () => this.ops.fsync(fd));
        if (!(await this.returnsInTime(syncing))) return this.giveUp(syncing);
      }
      this.fd = null;
      if (!(await this.returnsInTime(this.attempt('close', () => this.ops.close(fd))))) return this.giveUp(null);
    }
    return this.giveUp(null);
  }

  /** True when `work` settles by the deadline, or while file calls keep returning (io/deadline.ts). */
  private returnsInTime(work: Promise<unknown>): Promise<boolean> {
    return returnsInTime(work, () => this.deadline, () => this.lastReturnAt);
  }

  /**
   * The end of close(): lines not written are released and counted lost (a
   * write under way when `hung` was given up on may still land: "lost" is
   * then an over-count, never an under-count). From here on a call that
   * returns late writes nothing and opens nothing; the fd that `hung` holds
   * is closed once it returns.
   */
  private giveUp(hung: Promise<unknown> | null): number {
    this.finished = true;
    if (hung !== null && this.fd !== null) {
      const fd = this.fd;
      this.fd = null;
      void hung.catch(() => undefined).then(() => this.ops.close(fd).catch(() => undefined));
    }
    const lost = this.pendingLines;
    if (this.batch !== null) this.budget.release(this.batch.lines, this.batch.buffer.length - this.batch.offset);
    this.batch = null;
    this.pending.drain();
    return lost;
  }

  /** Set by giveUp(): from then on the pump and a late-returning call stop at their next step (checked after every wait). */
  private finished = false;
}

function atLineStart(batch: Batch): boolean {
  return batch.offset === 0 || batch.buffer[batch.offset - 1] === NEWLINE;
}
