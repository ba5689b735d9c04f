/**
 * Lines on their way from one thread to another, in one byte format shared by
 * both crossings (docs/architecture.md, "Threads"): an HTTP thread forwards
 * the lines it answered to the owner thread (workers/), and the owner hands
 * lines to the Kafka thread (backends/kafka/thread.ts). Lines are appended to
 * one growing ArrayBuffer, which is transferred (not copied) in one
 * postMessage a few ms after its first line (each sender says how long), or
 * sooner once it holds BATCH_BYTES.
 *
 * Why a byte batch and not one message per line: a postMessage costs
 * microseconds (structured clone, a wake-up of the other thread); appending a
 * line here costs the UTF-8 encoding of its record and a few numbers.
 *
 * Layout of one line: flavor index (u16), receive time in ms (f64), record
 * length in bytes (u32), client length (u32), key length (u32), then the
 * record, the client and the key as UTF-8. Little-endian. `client` and `key`
 * are what the owner's sanity checks need of a forwarded line (the client
 * address and the hash of its query); empty where nobody needs them (the
 * Kafka thread, or checks off).
 */

/** A batch is posted once it holds this many bytes, even within one turn. */
export const BATCH_BYTES = 64 * 1024;
const HEAD = 2 + 8 + 4 + 4 + 4;

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
  append(flavorIndex: number, timeMs: number, record: string, full: () => void, client = '', key = ''): number {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const worst = HEAD + (record.length + client.length + key.length) * 3;
    if (this.at + worst > this.buf.length) {
      if (this.lines > 0) full();
      if (worst > this.buf.length) this.buf = Buffer.allocUnsafeSlow(worst);
    }
    const buf = this.buf;
    const at = this.at;
    buf.writeUInt16LE(flavorIndex, at);
    buf.writeDoubleLE(timeMs, at + 2);
    let end = at + HEAD;
    const bytes = buf.write(record, end, 'utf8');
    buf.writeUInt32LE(bytes, at + 10);
    end += bytes;
    if (client.length === 0 && key.length === 0) {
      buf.writeUInt32LE(0, at + 14);
      buf.writeUInt32LE(0, at + 18);
    } else {
      const clientBytes = buf.write(client, end, 'utf8');
      end += clientBytes;
      const keyBytes = buf.write(key, end, 'utf8');
      end += keyBytes;
      // u32: a client address from X-Forwarded-For is as long as the header allows.
      buf.writeUInt32LE(clientBytes, at + 14);
      buf.writeUInt32LE(keyBytes, at + 18);
    }
    this.at = end;
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

/** Calls `line` for each line of a batch, in order (`bytes`: the record's UTF-8 length). */
export function readBatch(
  buffer: ArrayBuffer,
  length: number,
  line: (flavorIndex: number, timeMs: number, record: string, bytes: number, client: string, key: string) => void,
): void {
  const buf = Buffer.from(buffer, 0, length);
  let at = 0;
  while (at < length) {
    const flavorIndex = buf.readUInt16LE(at);
    const timeMs = buf.readDoubleLE(at + 2);
    const bytes = buf.readUInt32LE(at + 10);
    const clientBytes = buf.readUInt32LE(at + 14);
    const keyBytes = buf.readUInt32LE(at + 18);
    let start = at + HEAD;
    const record = buf.toString('utf8', start, start + bytes);
    start += bytes;
    const client = clientBytes === 0 ? '' : buf.toString('utf8', start, start + clientBytes);
    start += clientBytes;
    const key = keyBytes === 0 ? '' : buf.toString('utf8', start, start + keyBytes);
    at = start + keyBytes;
    line(flavorIndex, timeMs, record, bytes, client, key);
  }
}
