/**
 * FileWriter: one append-only file, written by one actor.
 *
 * Contract:
 * - `append(record)` is synchronous and never blocks: `record` is one line
 *   without its "\n"; it is held in memory until written.
 * - Every fd operation (open, write, fsync, reopen, close) runs in one async
 *   loop (`pump`), so at most one write is in flight, writes start at most
 *   every `writeIntervalMs` (sooner when 64 KiB wait), a batch is finished
 *   (partial writes continued) before anything else touches the fd, and a
 *   line is never split or interleaved. (After pinojs/sonic-boom's
 *   actualWrite/release/reopen, with the fd operations serialized instead of
 *   guarded by flags.)
 * - A failed open or write is counted and retried with a doubling backoff,
 *   keeping the bytes; errors that mean "this fd is no good" (EBADF, ESTALE,
 *   EIO, ENXIO) reopen the path (creating its folder) before the retry;
 *   "try again" errors (EAGAIN, ENOSPC, EDQUOT, …) retry on the same fd so
 *   the rest of a partial line lands in the same file.
 * - `reopen()` (SIGHUP) opens the path anew after the current batch: new fd
 *   first, then the old one is closed.
 * - `close(deadline)` writes what is held, fsyncs and closes; at the
 *   deadline it gives up and reports the lines it could not write.
 */
import type { Logger } from '../log';
import type { FileOps } from './file-ops';

const REOPEN_ERRORS = new Set(['EBADF', 'ESTALE', 'EIO', 'ENXIO', 'ENOENT']);

export interface WriterEvents {
  /** `lines` whole lines (`bytes` bytes) reached the file. */
  written(lines: number, bytes: number): void;
  /** An open/write/fsync failed; it will be retried. */
  failed(operation: string, err: NodeJS.ErrnoException): void;
}

export interface WriterOptions {
  readonly mode: number;
  readonly maxBatchBytes: number;
  readonly retryMaxDelayMs: number;
  /** A write starts at most this often (0: as soon as lines are there), unless WRITE_NOW_BYTES are waiting. */
  readonly writeIntervalMs: number;
}

/** This much waiting is written at once, whatever writeIntervalMs says. */
const WRITE_NOW_BYTES = 64 * 1024;

export class FileWriter {
  /** Lines appended and not yet written. */
  pendingLines = 0;
  /** When the last byte reached the file (or the writer was made). */
  lastWriteAt = Date.now();

  /** Records waiting, from index `head` on (taken batches advance `head`, not splice). */
  private pending: string[] = [];
  private head = 0;
  private pendingChars = 0;
  private lastBatchAt = 0;
  private fd: number | null = null;
  private running = false;
  private dirty = false;
  private wantReopen = false;
  private wantFsync = false;
  private wantCheck = false;
  private closing = false;
  private deadline = Infinity;
  private closed: Promise<number> | null = null;
  private wake: (() => void) | null = null;

  constructor(
    readonly path: string,
    private readonly options: WriterOptions,
    private readonly ops: FileOps,
    private readonly events: WriterEvents,
    private readonly log: Logger,
  ) {}

  get idle(): boolean {
    return !this.running && this.pendingLines === 0;
  }

  /** Appends one line; `record` has no newline, the writer adds it. */
  append(record: string): void {
    this.pending.push(record);
    this.pendingChars += record.length + 1;
    this.pendingLines++;
    this.kick();
  }

  /** SIGHUP: open the path anew once the batch in flight is done. */
  reopen(): void {
    if (this.fd === null) return;
    this.wantReopen = true;
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
    }
    return this.closed;
  }

  private kick(): void {
    if (this.running || this.closing) return;
    this.running = true;
    // setImmediate: lines appended during this turn of the event loop join one batch.
    setImmediate(() => void this.pump());
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        if (this.wantReopen) {
          // Before the next batch: lines that arrive after SIGHUP go to the new file.
          this.wantReopen = false;
          await this.swapFd('reopened');
        } else if (this.pendingLines > 0) {
          // Pace writes: at low rates every line would otherwise cost a
          // thread-pool round trip of its own (sonic-boom's minLength idea).
          const wait = this.closing || this.pendingChars >= WRITE_NOW_BYTES ? 0 : this.lastBatchAt + this.options.writeIntervalMs - Date.now();
          if (wait > 0) {
            await this.sleep(wait);
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
          const same = fd === null || (await this.ops.sameFile(fd, this.path).catch(() => true));
          if (!same) await this.swapFd('moved or deleted: reopened');
        } else {
          return;
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Writes one batch, retrying failures; false when closing ran out of time. */
  private async writeBatch(): Promise<boolean> {
    const lines = this.takeBatch();
    const buffer = Buffer.from(lines.text, 'utf8');
    let offset = 0;
    let delay = 50;
    while (offset < buffer.length) {
      if (this.fd === null && !(await this.openWithRetry())) {
        this.giveBack(lines);
        return false;
      }
      try {
        offset += await this.ops.write(this.fd!, buffer, offset, buffer.length - offset);
        delay = 50;
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        this.events.failed('write', e);
        if (REOPEN_ERRORS.has(e.code ?? '') && offset === 0) await this.dropFd();
        if (!(await this.backoff(delay))) {
          // Out of time: give back what is unwritten so close() counts it.
          const rest = buffer.subarray(offset);
          const unwritten = offset === 0 ? lines.count : countNewlines(rest);
          if (unwritten < lines.count) this.events.written(lines.count - unwritten, offset);
          this.giveBack({ text: offset === 0 ? lines.text : rest.toString('utf8'), count: unwritten });
          return false;
        }
        delay = Math.min(delay * 2, this.options.retryMaxDelayMs);
      }
    }
    this.dirty = true;
    this.lastWriteAt = Date.now();
    this.events.written(lines.count, buffer.length);
    return true;
  }

  private takeBatch(): { text: string; count: number } {
    if (this.pendingChars <= this.options.maxBatchBytes) {
      const records = this.head === 0 ? this.pending : this.pending.slice(this.head);
      const count = this.pendingLines;
      this.pending = [];
      this.head = 0;
      this.pendingChars = 0;
      this.pendingLines = 0;
      return { text: records.join('\n') + '\n', count };
    }
    // A backlog: take up to maxBatchBytes from the head without moving the rest.
    let chars = 0;
    let end = this.head;
    while (end < this.pending.length && (end === this.head || chars + this.pending[end]!.length + 1 <= this.options.maxBatchBytes)) {
      chars += this.pending[end]!.length + 1;
      end++;
    }
    const taken = this.pending.slice(this.head, end);
    this.head = end;
    if (this.head > 65_536 && this.head * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.head);
      this.head = 0;
    }
    this.pendingChars -= chars;
    this.pendingLines -= taken.length;
    return { text: taken.join('\n') + '\n', count: taken.length };
  }

  /** Puts newline-terminated text back at the head of the queue (as one record). */
  private giveBack(batch: { text: string; count: number }): void {
    this.pending = [batch.text.endsWith('\n') ? batch.text.slice(0, -1) : batch.text, ...this.pending.slice(this.head)];
    this.head = 0;
    this.pendingChars += batch.text.length;
    this.pendingLines += batch.count;
  }

  private async openWithRetry(): Promise<boolean> {
    let delay = 50;
    for (;;) {
      try {
        this.fd = await this.ops.openAppend(this.path, this.options.mode);
        return true;
      } catch (err) {
        this.events.failed('open', err as NodeJS.ErrnoException);
        if (!(await this.backoff(delay))) return false;
        delay = Math.min(delay * 2, this.options.retryMaxDelayMs);
      }
    }
  }

  /** Opens the path again, then closes the old fd (SIGHUP, or the file was moved). */
  private async swapFd(reason: string): Promise<void> {
    let fd: number;
    try {
      fd = await this.ops.openAppend(this.path, this.options.mode);
    } catch (err) {
      this.events.failed('open', err as NodeJS.ErrnoException);
      return; // keep writing to the old fd; the next SIGHUP or check tries again
    }
    const old = this.fd;
    this.fd = fd;
    this.dirty = false;
    if (old !== null) {
      await this.ops.fsync(old).catch(() => undefined);
      await this.ops.close(old).catch(() => undefined);
    }
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

  /** Waits for pacing; close() cuts it short. */
  private async sleep(ms: number): Promise<void> {
    await this.backoff(ms);
  }

  /** Sleeps before a retry; false if closing and the deadline has passed. */
  private backoff(ms: number): Promise<boolean> {
    const left = this.deadline - Date.now();
    if (left <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve(true);
      }, Math.min(ms, left));
      // close() cuts a long backoff short so the last attempt happens before the deadline.
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve(Date.now() < this.deadline);
      };
    });
  }

  private async finish(): Promise<number> {
    // Wait for the running pump (it sees `closing` and stops kicking new rounds).
    while (this.running) await new Promise((r) => setTimeout(r, 5));
    this.running = true;
    while (this.pendingLines > 0 && Date.now() < this.deadline) {
      if (!(await this.writeBatch())) break;
    }
    if (this.fd !== null) {
      if (this.dirty) await this.attempt('fsync', () => this.ops.fsync(this.fd!));
      await this.attempt('close', () => this.ops.close(this.fd!));
      this.fd = null;
    }
    const lost = this.pendingLines;
    this.pending = [];
    this.head = 0;
    this.pendingLines = 0;
    this.pendingChars = 0;
    return lost;
  }
}

function countNewlines(buffer: Buffer): number {
  let n = 0;
  for (let at = buffer.indexOf(10); at !== -1; at = buffer.indexOf(10, at + 1)) n++;
  return n;
}
