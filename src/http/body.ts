/**
 * An incremental reader of one request body (RFC 9112 §6–7), for POST
 * beacons: fed the socket's chunks as they come, it keeps its place between
 * them and looks at each byte once, like the head parser (request-head.ts).
 *
 * - Content-Length: exactly that many bytes; a length over the limit is
 *   refused before a byte is read (the server answers 413 at once, and
 *   never sends "100 Continue" for it).
 * - chunked (§7.1): chunk-size in hex, an optional chunk extension
 *   (";" then field-value bytes, ignored), CRLF, the data, CRLF; the last
 *   chunk "0", an optional trailer section of field lines (ignored), CRLF.
 *   Bare LF or CR, a size that is not hex, data not followed by CRLF: 400.
 *   The data is counted as it arrives: the byte past the limit fails (413),
 *   whatever the split; extensions and trailers together are limited to
 *   MAX_FRAMING_BYTES (413 too).
 *
 * Memory is bounded by the limit: the data is copied into one buffer (never
 * kept as slices of the socket's chunks, which would pin them) that grows
 * by doubling up to the limit.
 */
import * as zlib from 'node:zlib';

export const BodyError = { badRequest: 1, tooLarge: 2 } as const;
export type BodyError = (typeof BodyError)[keyof typeof BodyError];

/** execute(): the body is not complete; every byte given was consumed. */
export const BODY_NEED_MORE = -1;
/** execute(): the body is invalid or too large; `error` says which. */
export const BODY_FAILED = -2;

/** Chunk extensions and trailer fields, all together, at most this many bytes. */
export const MAX_FRAMING_BYTES = 4096;

const CR = 13;
const LF = 10;

// States of the chunked decoder.
const S_LENGTH = 0; // Content-Length data
const S_SIZE_FIRST = 1; // the first hex digit of a chunk-size
const S_SIZE = 2;
const S_EXT = 3; // after ';' up to CR
const S_SIZE_LF = 4;
const S_DATA = 5;
const S_DATA_CR = 6;
const S_DATA_LF = 7;
const S_TRAILER_START = 8; // a trailer field line, or the final CRLF
const S_TRAILER = 9;
const S_TRAILER_LF = 10;
const S_END_LF = 11;

/** hex digit → value, else -1. */
const HEX = (() => {
  const table = new Int8Array(256).fill(-1);
  for (let d = 0; d < 10; d++) table[0x30 + d] = d;
  for (let d = 0; d < 6; d++) table[0x41 + d] = table[0x61 + d] = 10 + d;
  return table;
})();

/** field-vchar / obs-text / SP / HTAB (RFC 9110 §5.5): what an extension or a trailer line may hold. */
function isFieldByte(c: number): boolean {
  return (c >= 0x20 && c !== 0x7f) || c === 9;
}

export class BodyReader {
  error: BodyError = BodyError.badRequest;
  private state = S_LENGTH;
  /** Content-Length bytes, or the current chunk's, still to come. */
  private remaining = 0;
  private data: Buffer = Buffer.alloc(0);
  private size = 0;
  private framingBytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** Starts a body of `length` bytes (-1: chunked); false if the length alone is over the limit. */
  begin(length: number): boolean {
    this.size = 0;
    this.framingBytes = 0;
    if (length === -1) {
      this.state = S_SIZE_FIRST;
      this.remaining = 0;
      this.data = Buffer.allocUnsafe(Math.min(this.maxBytes, 1024));
      return true;
    }
    if (length > this.maxBytes) {
      this.error = BodyError.tooLarge;
      return false;
    }
    this.state = S_LENGTH;
    this.remaining = length;
    this.data = Buffer.allocUnsafe(length);
    return true;
  }

  /** The body read so far (all of it once execute() returned an index). */
  get body(): Buffer {
    return this.data.subarray(0, this.size);
  }

  /**
   * Reads buf[start, end). Returns the index just past the body (the body
   * is complete), BODY_NEED_MORE, or BODY_FAILED.
   */
  execute(buf: Buffer, start: number, end: number): number {
    let i = start;
    while (i < end) {
      switch (this.state) {
        case S_LENGTH: {
          const n = Math.min(this.remaining, end - i);
          buf.copy(this.data, this.size, i, i + n);
          this.size += n;
          this.remaining -= n;
          i += n;
          if (this.remaining === 0) return i;
          break;
        }
        case S_SIZE_FIRST:
        case S_SIZE: {
          const c = buf[i]!;
          const digit = HEX[c]!;
          if (digit >= 0) {
            this.remaining = this.remaining * 16 + digit;
            // The byte that announces more than the limit fails, before any of that data is read.
            if (this.size + this.remaining > this.maxBytes) return this.fail(BodyError.tooLarge);
            this.state = S_SIZE;
          } else if (this.state === S_SIZE_FIRST) {
            return this.fail(BodyError.badRequest);
          } else if (c === 59 /* ; */) {
            this.state = S_EXT;
          } else if (c === CR) {
            this.state = S_SIZE_LF;
          } else {
            return this.fail(BodyError.badRequest);
          }
          i++;
          break;
        }
        case S_EXT: {
          const c = buf[i]!;
          if (c === CR) this.state = S_SIZE_LF;
          else if (!isFieldByte(c)) return this.fail(BodyError.badRequest);
          else if (++this.framingBytes > MAX_FRAMING_BYTES) return this.fail(BodyError.tooLarge);
          i++;
          break;
        }
        case S_SIZE_LF:
          if (buf[i] !== LF) return this.fail(BodyError.badRequest);
          i++;
          this.state = this.remaining === 0 ? S_TRAILER_START : S_DATA;
          if (this.remaining > 0) this.reserve(this.remaining);
          break;
        case S_DATA: {
          const n = Math.min(this.remaining, end - i);
          buf.copy(this.data, this.size, i, i + n);
          this.size += n;
          this.remaining -= n;
          i += n;
          if (this.remaining === 0) this.state = S_DATA_CR;
          break;
        }
        case S_DATA_CR:
          if (buf[i] !== CR) return this.fail(BodyError.badRequest);
          i++;
          this.state = S_DATA_LF;
          break;
        case S_DATA_LF:
          if (buf[i] !== LF) return this.fail(BodyError.badRequest);
          i++;
          this.state = S_SIZE_FIRST;
          break;
        case S_TRAILER_START: {
          const c = buf[i]!;
          if (c === CR) {
            this.state = S_END_LF;
          } else if (c > 0x20 && c < 0x7f && c !== 58 /* : */) {
            // A field line starts with a name (a stricter check would add nothing: trailers are ignored).
            this.state = S_TRAILER;
          } else {
            return this.fail(BodyError.badRequest);
          }
          i++;
          break;
        }
        case S_TRAILER: {
          const c = buf[i]!;
          if (c === CR) this.state = S_TRAILER_LF;
          else if (!isFieldByte(c)) return this.fail(BodyError.badRequest);
          else if (++this.framingBytes > MAX_FRAMING_BYTES) return this.fail(BodyError.tooLarge);
          i++;
          break;
        }
        case S_TRAILER_LF:
          if (buf[i] !== LF) return this.fail(BodyError.badRequest);
          i++;
          this.state = S_TRAILER_START;
          break;
        case S_END_LF:
          if (buf[i] !== LF) return this.fail(BodyError.badRequest);
          return i + 1;
      }
    }
    return BODY_NEED_MORE;
  }

  /** Room for `more` bytes of chunk data (within the limit, checked when the size was read). */
  private reserve(more: number): void {
    const need = this.size + more;
    if (need <= this.data.length) return;
    const bigger = Buffer.allocUnsafe(Math.min(this.maxBytes, Math.max(need, this.data.length * 2)));
    this.data.copy(bigger, 0, 0, this.size);
    this.data = bigger;
  }

  private fail(error: BodyError): number {
    this.error = error;
    return BODY_FAILED;
  }
}

/** The content codings accepted (RFC 9110 §8.4.1), by the lower-case Content-Encoding value. */
export const Coding = { identity: 0, gzip: 1, deflate: 2, unsupported: 3 } as const;
export type Coding = (typeof Coding)[keyof typeof Coding];

export function codingOf(header: string | undefined): Coding {
  if (header === undefined) return Coding.identity;
  switch (header.trim().toLowerCase()) {
    case '':
    case 'identity':
      return Coding.identity;
    case 'gzip':
    case 'x-gzip':
      return Coding.gzip;
    case 'deflate':
      return Coding.deflate;
  }
  return Coding.unsupported;
}

/**
 * The decoded body, or a BodyError. The decompressed size has the same
 * limit as the body: zlib stops as soon as its output passes
 * `maxOutputLength`, so a zip bomb costs at most that much memory and the
 * CPU to inflate it. "deflate" is the zlib format (RFC 9110 §8.4.1.2).
 */
export function decode(body: Buffer, coding: Coding, maxBytes: number): Buffer | BodyError {
  if (coding === Coding.identity || body.length === 0) return body;
  try {
    const options = { maxOutputLength: maxBytes };
    return coding === Coding.gzip ? zlib.gunzipSync(body, options) : zlib.inflateSync(body, options);
  } catch (err) {
    return (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' ? BodyError.tooLarge : BodyError.badRequest;
  }
}
