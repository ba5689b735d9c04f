/**
 * The Kafka backend's disk spool: an append-only queue of lines that Kafka
 * has not (certainly) taken, drained in order when the broker is back.
 *
 * Layout: `<dir>/segment-<seq>.spool` files, appended by one FileWriter (the
 * "head" segment, a new one per process start and per seal), each with an
 * optional `segment-<seq>.cursor` holding the byte offset drained so far.
 * One entry per line (tab-separated; the record is JSON, which escapes tabs
 * and newlines, and so is the key):
 *
 *   <receive ms>\t<flavor>\t<key as JSON, or ->\t<d: maybe in Kafka already, or ->\t<seq>\t<record length>\t<record>\n
 *
 * Contract:
 * - `append` is synchronous and non-blocking; it refuses (returns false) once
 *   `maxBytes` would be exceeded. The entry counts as spooled only when the
 *   writer reports it on disk (`onPersisted`): a line is in the spool file
 *   before it leaves the backend's memory accounting.
 * - `take` hands out the oldest entries, reading only sealed segments (the
 *   head is sealed — closed, fsynced — when the reader reaches it), so a
 *   reader never sees half a write. `commit` advances the cursor after the
 *   caller has delivered or re-spooled every entry of the batch; a fully
 *   drained segment is deleted. A take whose read fails (EIO) throws and
 *   hands out nothing: the next take starts again at the last commit, as
 *   after `rewind` (a batch the caller could not settle).
 * - Crash safety: a torn or garbled entry (a crash mid-write) fails
 *   validation and is skipped and counted as `corrupt`. Entries handed out
 *   but not committed before a crash are read again at the next start:
 *   at-least-once; they are counted as possible duplicates.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { ScratchError } from '../../errors';
import type { Logger } from '../../log';
import { Budget } from '../../io/bounded-queue';
import { realFileOps, type FileOps } from '../../io/file-ops';
import { returnsInTime } from '../../io/deadline';
import { FileWriter } from '../../io/file-writer';
import { isRecordOf, recordHead } from '../../record';

export interface SpoolEntry {
  timeMs: number;
  flavor: string;
  key: string | null;
  /** Kafka may already hold it (a delivery that failed after sending). */
  maybeDelivered: boolean;
  /** The `seq` header: where the line stands in its process's write order. */
  seq: string;
  record: string;
}

export interface SpoolBatch {
  readonly entries: SpoolEntry[];
  /** Where each entry ends in its segment (rewind commits up to one of them). */
  readonly ends: number[];
  readonly segment: number;
  readonly endOffset: number;
}

export interface SpoolEvents {
  /** `lines` entries (`bytes` bytes) reached the disk. */
  persisted(lines: number, bytes: number): void;
  failed(operation: string, err: NodeJS.ErrnoException): void;
  /** `lines` entries taken by append() were given up: their segment could not be written (sealHead's deadline). */
  lost(lines: number): void;
}

const SEGMENT = /^segment-(\d{12})\.spool$/;
const CURSOR = /^segment-(\d{12})\.cursor$/;
const SEQ = /^[0-9a-z]{1,16}-\d{1,16}$/;
const READ_CHUNK = 1024 * 1024;
const SEAL_TIMEOUT_MS = 60_000;
/** Bytes waiting in memory for the spool's disk, at most (while its writes fail). */
export const SPOOL_MEMORY_MAX_BYTES = 64 * 1024 * 1024;

export class Spool {
  /** Bytes on disk (and on their way there) not yet drained. */
  bytes = 0;
  /** Entries skipped because they failed validation (torn writes). */
  corrupt = 0;
  /** Entries read again after an unclean stop: Kafka may hold them already. */
  replayedAfterCrash = 0;
  /** Segments found shorter than their cursor or than what was being read from them: cut by something else (cutShort). */
  truncated = 0;

  private readonly sealed: number[] = [];
  private head: { seq: number; writer: FileWriter; lines: number } | null = null;
  private nextSeq = 1;
  /** Read state of the oldest sealed segment. */
  private reading: { seq: number; fd: number; offset: number; size: number; leftover: string; dirty: boolean } | null = null;
  private readonly lockPath: string;

  constructor(
    readonly dir: string,
    private readonly maxBytes: number,
    private readonly knownFlavors: ReadonlySet<string>,
    private readonly events: SpoolEvents,
    private readonly log: Logger,
    private readonly ops: FileOps = realFileOps,
    /** What the head segment's writer holds in memory: bounded, so a failing spool disk cannot exhaust the heap. */
    private readonly memory: Budget = new Budget(Infinity, SPOOL_MEMORY_MAX_BYTES),
    /** How long a sealed segment's writes may keep failing before its entries are given up (counted lost). */
    private readonly sealTimeoutMs = SEAL_TIMEOUT_MS,
  ) {
    this.lockPath = path.join(dir, 'lock');
  }

  /**
   * Locks the folder (waiting up to `waitMs` for another live scratchd to
   * let go of it), then finds existing segments (they drain first, oldest
   * first). Runs once at start-up, before any append.
   */
  async open(waitMs = 0): Promise<void> {
    await fs.promises.mkdir(this.dir, { recursive: true, mode: 0o750 });
    const uncleanStop = await this.lock(Date.now() + waitMs);
    const names = await fs.promises.readdir(this.dir);
    const found = names
      .map((name) => SEGMENT.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    // A cursor whose segment is gone (a crash between removeSegment's two
    // deletions) would apply to the next segment given its number: removed.
    const segments = new Set(found);
    for (const name of names) {
      const cursor = CURSOR.exec(name);
      if (cursor !== null && !segments.has(Number(cursor[1]))) await fs.promises.rm(path.join(this.dir, name), { force: true });
    }
    for (const seq of found) {
      const size = (await fs.promises.stat(this.segmentPath(seq))).size;
      const offset = (await this.readCursor(seq)) ?? 0;
      if (offset >= size) {
        this.checkCursor(seq, offset, size);
        await this.removeSegment(seq);
        continue;
      }
      this.sealed.push(seq);
      this.bytes += size - offset;
    }
    this.nextSeq = (found.at(-1) ?? 0) + 1;
    this.uncleanStop = uncleanStop && this.sealed.length > 0;
    if (this.sealed.length > 0) {
      this.log.info(`spool: ${this.sealed.length} segments, ${this.bytes} bytes to drain from ${this.dir}${this.uncleanStop ? ' (after an unclean stop)' : ''}`);
    }
  }

  private uncleanStop = false;

  /**
   * One process per spool folder: two would drain and delete each other's
   * segments. The lock file holds the owner's pid and is made with O_EXCL;
   * a lock whose pid is gone was left by a crash (an unclean stop: entries
   * handed out before it may be in Kafka already). Returns whether the
   * previous owner stopped uncleanly.
   */
  private async lock(deadline: number): Promise<boolean> {
    for (;;) {
      try {
        await fs.promises.writeFile(this.lockPath, `${process.pid}\n`, { flag: 'wx', mode: 0o640 });
        return false;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const owner = Number((await fs.promises.readFile(this.lockPath, 'utf8')).trim());
      if (!isAlive(owner) || owner === process.pid) {
        // Left by a process that is gone: take it over.
        await fs.promises.writeFile(this.lockPath, `${process.pid}\n`);
        return true;
      }
      if (Date.now() >= deadline) {
        throw new ScratchError('SPOOL_LOCKED', `${this.dir} is in use by pid ${owner} (${this.lockPath}); give each scratchd its own kafka.spool.path`);
      }
      // No event says another process let go (it may be on its way out): poll, at start-up only.
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  get isEmpty(): boolean {
    return this.bytes === 0;
  }

  /** Resolves once the head segment's writer has written what it was given (or given up at close). */
  async headSettled(): Promise<void> {
    await this.head?.writer.settled();
  }

  /** Whether append() has room for all these entries under maxBytes (its memory bound, while the disk fails, aside). */
  hasRoomFor(entries: readonly SpoolEntry[]): boolean {
    let size = 0;
    for (const entry of entries) size += Buffer.byteLength(formatEntry(entry)) + 1;
    return this.bytes + size <= this.maxBytes;
  }

  /** Appends one entry; false (nothing written) when the spool is full (maxBytes on disk, or its memory while the disk fails). */
  append(entry: SpoolEntry): boolean {
    // After close() a new head would never be written nor sealed: refused, so the caller counts it.
    if (this.closed) return false;
    const text = formatEntry(entry);
    const size = Buffer.byteLength(text) + 1;
    if (this.bytes + size > this.maxBytes) return false;
    if (this.head === null) this.head = this.newHead();
    if (!this.head.writer.append(text)) return false;
    this.bytes += size;
    this.head.lines++;
    return true;
  }

  /**
   * Up to `max` of the oldest entries, or null when nothing is sealed and the
   * head is empty. Seals the head when the reader has caught up with it.
   */
  async take(max: number): Promise<SpoolBatch | null> {
    const taking = this.takeEntries(max);
    this.taking = taking;
    try {
      return await taking;
    } finally {
      if (this.taking === taking) this.taking = null;
    }
  }

  /** The take() under way, which close() lets finish (it hands out nothing once closed). */
  private taking: Promise<SpoolBatch | null> | null = null;

  private async takeEntries(max: number): Promise<SpoolBatch | null> {
    // Checked after every wait: a take that close() overtook hands out nothing
    // (its entries stay in the segment, from the cursor close() wrote).
    for (;;) {
      if (this.closed) return null;
      if (this.reading === null) {
        if (this.sealed.length === 0) {
          if (this.head === null || this.head.lines === 0) {
            // Nothing left on disk to drain. Bytes still counted were in a
            // segment cut below its cursor (openOldest): not there any more.
            this.bytes = 0;
            return null;
          }
          await this.sealHead();
          continue;
        }
        await this.openOldest();
        continue;
      }
      const batch = await this.readEntries(this.reading, max);
      if (this.closed) return null;
      if (batch.entries.length > 0) return batch;
      if (this.reading.offset >= this.reading.size) {
        // Fully read: nothing in flight from it, so it can go.
        await this.finishSegment();
        continue;
      }
    }
  }

  /** The caller has delivered or re-spooled every entry of `batch`. After close() it does nothing: close() commits. */
  async commit(batch: SpoolBatch): Promise<void> {
    const reading = this.reading;
    if (this.closed || reading === null || reading.seq !== batch.segment) return;
    const drained = batch.endOffset - reading.offset;
    reading.offset = batch.endOffset;
    this.bytes = Math.max(0, this.bytes - drained);
    if (reading.offset >= reading.size && reading.leftover === '') await this.finishSegment();
    else await this.writeCursor(reading.seq, reading.offset);
  }

  /**
   * The caller delivered or re-spooled only the first `settled` entries of
   * `batch` (the spool was too full to take the next one back): those are
   * committed, and the next take() reads the rest again.
   */
  async rewind(batch: SpoolBatch, settled: number): Promise<void> {
    const reading = this.reading;
    if (this.closed || reading === null || reading.seq !== batch.segment) return;
    const to = settled > 0 ? batch.ends[settled - 1]! : reading.offset;
    // The read state is set back before the cursor's write, which can fail
    // (a full disk): the next take then reads on from `to`, not from past
    // what was read ahead (which would skip entries, or spin on an empty read).
    reading.leftover = '';
    this.readPosition = to;
    if (settled > 0) await this.commit({ ...batch, endOffset: to });
  }

  /**
   * Seals the head (fsync), and a head whose sealing a take() had begun, and
   * forgets the read state; resolves with entries lost at the deadline.
   * `batch`, the last one taken, is committed if every entry written since
   * reached the disk: the caller has delivered or re-spooled all of it.
   */
  async close(deadline: number, batch: SpoolBatch | null = null): Promise<number> {
    this.closed = true;
    let lost = 0;
    if (this.head !== null) lost += await this.head.writer.close(deadline);
    // Brings the seal's own (longer) deadline forward to ours.
    if (this.sealing !== null) lost += await this.sealing.writer.close(deadline);
    // Hands out nothing now; waited for so that its reads end before the fd is
    // closed. A read, cursor write or close that never returns (a hung NFS
    // server) is given up at the deadline (io/deadline.ts): the cursor then
    // stays where it was, and the next start reads that part again.
    const inTime = (work: Promise<unknown>): Promise<boolean> => returnsInTime(work, () => deadline);
    if (this.taking !== null && !(await inTime(this.taking))) return lost;
    if (this.reading !== null) {
      const reading = this.reading;
      this.reading = null;
      if (batch !== null && lost === 0 && batch.segment === reading.seq) reading.offset = Math.max(reading.offset, batch.endOffset);
      const cursor = this.writeCursor(reading.seq, reading.offset);
      if (!(await inTime(cursor))) return lost;
      await cursor; // settled: a failed write rejects here, as before
      const closing = closeFd(reading.fd);
      if (!(await inTime(closing))) return lost;
      await closing;
    }
    // Only our own lock: a successor may have taken over a stale one.
    const owner = await fs.promises.readFile(this.lockPath, 'utf8').catch(() => '');
    if (owner.trim() === String(process.pid)) await fs.promises.rm(this.lockPath, { force: true });
    return lost;
  }

  /** Set by close(): append() refuses from then on. */
  private closed = false;

  private newHead(): { seq: number; writer: FileWriter; lines: number } {
    const seq = this.nextSeq++;
    const writer = new FileWriter(
      this.segmentPath(seq),
      { mode: 0o640, maxBatchBytes: 4 * 1024 * 1024, retryMaxDelayMs: 5000, writeIntervalMs: 10 },
      this.ops,
      { written: (lines, bytes) => this.events.persisted(lines, bytes), failed: (op, err) => this.events.failed(`spool ${op}`, err) },
      this.log,
      this.memory,
    );
    return { seq, writer, lines: 0 };
  }

  private async sealHead(): Promise<void> {
    const head = this.head!;
    this.head = null;
    this.sealing = head;
    const lost = await head.writer.close(Date.now() + this.sealTimeoutMs);
    this.sealing = null;
    // At a stop, close() counts them.
    if (lost > 0 && !this.closed) {
      this.log.error(`spool: ${lost} entries could not be written to ${this.segmentPath(head.seq)}`);
      this.events.lost(lost);
    }
    this.sealed.push(head.seq);
  }

  /** The head sealHead() is closing: close() waits for it (its lines are not on disk yet). */
  private sealing: { seq: number; writer: FileWriter; lines: number } | null = null;

  private async openOldest(): Promise<void> {
    const seq = this.sealed[0]!;
    const file = this.segmentPath(seq);
    const cursor = await this.readCursor(seq);
    // A cursor file says the segment's drain began, before its first entry
    // is handed out: after a crash, the batch read again from a segment
    // never committed from is counted as replayed too.
    if (cursor === null) await this.writeCursor(seq, 0);
    const fd = await openFd(file, 'r');
    const size = (await fstat(fd)).size;
    if (cursor !== null) this.checkCursor(seq, cursor, size);
    const offset = Math.min(cursor ?? 0, size);
    this.reading = { seq, fd, offset, size, leftover: '', dirty: this.uncleanStop && cursor !== null };
    this.readPosition = offset;
    this.corruptCountedTo = offset;
  }

  /** Where the next read() starts (ahead of `offset`, which is only the committed position). */
  private readPosition = 0;

  /** The reading segment's bytes up to here have had their garbled entries counted: a rewind reads them again, uncounted. */
  private corruptCountedTo = 0;

  private async readEntries(reading: NonNullable<Spool['reading']>, max: number): Promise<SpoolBatch> {
    const entries: SpoolEntry[] = [];
    const ends: number[] = [];
    // Entries start at the committed offset; `leftover` holds the text read
    // past it but not handed out yet, and readPosition is where reading goes on.
    let endOffset = reading.offset;
    let pending = reading.leftover;
    let corrupt = 0;
    try {
      for (;;) {
        let start = 0;
        for (let nl = pending.indexOf('\n'); nl !== -1 && entries.length < max; nl = pending.indexOf('\n', start)) {
          // `pending` holds bytes as latin1 (a chunk may end inside a UTF-8 character).
          const bytes = pending.slice(start, nl);
          endOffset += bytes.length + 1;
          start = nl + 1;
          const entry = parseEntry(Buffer.from(bytes, 'latin1').toString('utf8'), this.knownFlavors);
          if (entry === null) {
            if (endOffset > this.corruptCountedTo) corrupt++;
          } else {
            entries.push(entry);
            ends.push(endOffset);
          }
        }
        pending = pending.slice(start);
        if (entries.length >= max || this.readPosition >= reading.size) break;
        const length = Math.min(READ_CHUNK, reading.size - this.readPosition);
        const buffer = Buffer.allocUnsafe(length);
        const n = await this.ops.read(reading.fd, buffer, 0, length, this.readPosition);
        if (n === 0) {
          // The file ends before the size it had: what was read is all there
          // is (a last entry torn by the cut is counted corrupt below).
          this.cutShort(reading.seq, `ends at or before byte ${this.readPosition}, short of the ${reading.size} it had when its reading began`);
          this.bytes = Math.max(0, this.bytes - (reading.size - this.readPosition));
          reading.size = this.readPosition;
          continue;
        }
        this.readPosition += n;
        pending += buffer.toString('latin1', 0, n);
      }
    } catch (err) {
      // A failed read (EIO): what was read ahead of the committed offset is
      // forgotten, none of it handed out nor counted; the next take reads it
      // again from there (docs/kafka.md, "Nothing lost: the spool").
      reading.leftover = '';
      this.readPosition = reading.offset;
      throw err;
    }
    if (this.readPosition >= reading.size && pending !== '' && entries.length < max) {
      // A last entry without its newline: torn by a crash.
      endOffset += pending.length;
      if (endOffset > this.corruptCountedTo) corrupt++;
      pending = '';
    }
    this.corrupt += corrupt;
    this.corruptCountedTo = Math.max(this.corruptCountedTo, endOffset);
    reading.leftover = pending;
    if (reading.dirty) {
      this.replayedAfterCrash += entries.length;
      reading.dirty = false;
    }
    if (entries.length === 0 && endOffset > reading.offset) {
      // Only corrupt entries: skip past them at once.
      this.bytes = Math.max(0, this.bytes - (endOffset - reading.offset));
      reading.offset = endOffset;
    }
    return { entries, ends, segment: reading.seq, endOffset };
  }

  /**
   * A segment shorter than it was, cut by something else (a person, a tool):
   * its entries past the cut are gone. Logged (once per segment: it is not
   * read again past that) and counted; the drain goes on with what is left
   * and then the next segment (docs/kafka.md, "Nothing lost: the spool").
   */
  /** A cursor past its segment's end: the segment was cut (cutShort). */
  private checkCursor(seq: number, cursor: number, size: number): void {
    if (cursor > size) this.cutShort(seq, `is ${size} bytes, shorter than its cursor (${cursor})`);
  }

  private cutShort(seq: number, how: string): void {
    this.truncated++;
    this.log.error(`spool: ${this.segmentPath(seq)} ${how}: cut by something else, the entries past that are lost; going on with the next segment`);
  }

  private async finishSegment(): Promise<void> {
    const reading = this.reading!;
    this.reading = null;
    this.sealed.shift();
    await closeFd(reading.fd);
    await this.removeSegment(reading.seq);
  }

  private async removeSegment(seq: number): Promise<void> {
    await fs.promises.rm(this.segmentPath(seq), { force: true });
    await fs.promises.rm(this.cursorPath(seq), { force: true });
  }

  /** The committed offset; null when there is no cursor file (the segment's drain has not begun). */
  private async readCursor(seq: number): Promise<number | null> {
    try {
      const offset = Number((await fs.promises.readFile(this.cursorPath(seq), 'utf8')).trim());
      return Number.isSafeInteger(offset) && offset >= 0 ? offset : 0;
    } catch {
      return null;
    }
  }

  /**
   * Cursor writes run one at a time, in call order: two at once (close()
   * during a commit's write) would share the .tmp file, so one rename would
   * fail, and an older offset could land last.
   */
  private writeCursor(seq: number, offset: number): Promise<void> {
    const file = this.cursorPath(seq);
    const write = this.cursorWrite.then(async () => {
      await fs.promises.writeFile(`${file}.tmp`, `${offset}\n`);
      await fs.promises.rename(`${file}.tmp`, file);
    });
    this.cursorWrite = write.catch(() => undefined); // a failed write is its caller's; the next one still runs
    return write;
  }

  private cursorWrite: Promise<void> = Promise.resolve();

  private segmentPath(seq: number): string {
    return path.join(this.dir, `segment-${String(seq).padStart(12, '0')}.spool`);
  }

  private cursorPath(seq: number): string {
    return path.join(this.dir, `segment-${String(seq).padStart(12, '0')}.cursor`);
  }
}

// The callback API, not fs.promises' FileHandle: a handle
// closes "its" fd when garbage-collected, and a segment's fd outlives any one call.
const openFd = (file: string, flags: string): Promise<number> => new Promise((resolve, reject) => fs.open(file, flags, (err, fd) => (err ? reject(err) : resolve(fd))));
const fstat = (fd: number): Promise<fs.Stats> => new Promise((resolve, reject) => fs.fstat(fd, (err, stats) => (err ? reject(err) : resolve(stats))));
const closeFd = promisify(fs.close);

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function formatEntry(entry: SpoolEntry): string {
  const key = entry.key === null ? '-' : JSON.stringify(entry.key);
  return `${entry.timeMs}\t${entry.flavor}\t${key}\t${entry.maybeDelivered ? 'd' : '-'}\t${entry.seq}\t${entry.record.length}\t${entry.record}`;
}

/** Parses and validates one entry; null when it is torn or garbled. */
export function parseEntry(text: string, knownFlavors: ReadonlySet<string>): SpoolEntry | null {
  const parts = text.split('\t');
  if (parts.length !== 7) return null;
  const [time, flavor, key, dup, seq, length, record] = parts as [string, string, string, string, string, string, string];
  if (!/^\d{1,15}$/.test(time) || !knownFlavors.has(flavor) || (dup !== 'd' && dup !== '-') || !SEQ.test(seq)) return null;
  if (String(record.length) !== length) return null;
  if (!isRecordOf(recordHead(flavor), record)) return null;
  let parsedKey: string | null = null;
  if (key !== '-') {
    try {
      const value: unknown = JSON.parse(key);
      if (typeof value !== 'string') return null;
      parsedKey = value;
    } catch {
      return null;
    }
  }
  return { timeMs: Number(time), flavor, key: parsedKey, maybeDelivered: dup === 'd', seq, record };
}
