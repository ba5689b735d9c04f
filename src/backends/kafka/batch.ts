/**
 * Lines on their way from the HTTP thread to the Kafka thread
 * (docs/kafka.md, "Threads"): appended to one growing ArrayBuffer, which is
 * transferred (not copied) to the worker in one postMessage per event-loop
 * turn, or sooner once it holds BATCH_BYTES.
 *
 * Why a byte batch and not one message per line: a postMessage costs
 * microseconds (structured clone, a wake-up of the other thread); appending a
 * line here costs the UTF-8 encoding of its record and three numbers.
 *
 * Layout of one line: flavor index (u16), receive time in ms (f64), record
 * length in bytes (u32), the record as UTF-8. Little-endian.
 */

/** A batch is posted once it holds this many bytes, even within one turn. */
export const BATCH_BYTES = 64 * 1024;
const HEAD = 2 + 8 + 4;

export class BatchWriter {
  /** Lines in the current batch. */
  lines = 0;
  private buf: Buffer;
  private at = 0;

  constructor(private readonly size = BATCH_BYTES) {
    this.buf = Buffer.allocUnsafeSlow(size);
  }

  /** Bytes used in the current batch. */
  get bytes(): number {
    return this.at;
  }

  /**
   * Appends one line; returns the record's UTF-8 length. `full` is called
   * first when the line may not fit, to hand the current batch over.
   */
  append(flavorIndex: number, timeMs: number, record: string, full: () => void): number {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const worst = HEAD + record.length * 3;
    if (this.at + worst > this.buf.length) {
      if (this.lines > 0) full();
      if (worst > this.buf.length) this.buf = Buffer.allocUnsafeSlow(worst);
    }
    const buf = this.buf;
    const at = this.at;
    buf.writeUInt16LE(flavorIndex, at);
    buf.writeDoubleLE(timeMs, at + 2);
    const bytes = buf.write(record, at + HEAD, 'utf8');
    buf.writeUInt32LE(bytes, at + 10);
    this.at = at + HEAD + bytes;
    this.lines++;
    return bytes;
  }

  /** The current batch as a transferable ArrayBuffer (trimmed view: `length` bytes); the writer starts a new one. */
  take(): { buffer: ArrayBuffer; length: number; lines: number } {
    const taken = { buffer: this.buf.buffer as ArrayBuffer, length: this.at, lines: this.lines };
    this.buf = Buffer.allocUnsafeSlow(this.size);
    this.at = 0;
    this.lines = 0;
    return taken;
  }
}

/** Calls `line` for each line of a batch, in order. */
export function readBatch(buffer: ArrayBuffer, length: number, line: (flavorIndex: number, timeMs: number, record: string, bytes: number) => void): void {
  const buf = Buffer.from(buffer, 0, length);
  let at = 0;
  while (at < length) {
    const flavorIndex = buf.readUInt16LE(at);
    const timeMs = buf.readDoubleLE(at + 2);
    const bytes = buf.readUInt32LE(at + 10);
    const start = at + HEAD;
    line(flavorIndex, timeMs, buf.toString('utf8', start, start + bytes), bytes);
    at = start + bytes;
  }
}
