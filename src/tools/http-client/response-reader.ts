/**
 * Reads HTTP/1.1 answers off a client connection: where each answer ends,
 * its status, and whether the connection may carry another request. The
 * one response reader of the project, shared by `scratchd replay` and the
 * tests' load client (test/support/load-client.ts); the server's request
 * parser lives apart, in src/http/.
 *
 * Contract
 * --------
 * - One reader per connection, one request in flight at a time (no
 *   pipelining): `start(head)` before each request, then `feed(chunk)` with
 *   every chunk the socket delivers until it returns something other than
 *   `Feed.more`, and `closedByPeer()` when the socket ends.
 * - `feed` returns `Feed.done` when the answer is complete (then `status`
 *   and `keepAlive` hold), `Feed.doneWithExtra` when bytes nobody asked for
 *   follow it (the caller must not reuse the connection), `Feed.invalid`
 *   when the bytes are not an HTTP/1.x answer we can delimit (the caller
 *   closes the connection), and `Feed.more` when it needs more bytes.
 * - Bodies are delimited as RFC 9112 §6.3 says: none for HEAD, 204 and 304;
 *   chunked (§7.1; extensions and trailers skipped); Content-Length; else
 *   read until the server closes (then `closedByPeer()` returns true: that
 *   close completed the answer). 1xx interim answers are skipped; 101 is
 *   invalid (we never ask to switch protocols). Bodies are skipped, never
 *   kept: the callers need only the status and the end.
 * - Memory is bounded: a head over MAX_HEAD_BYTES or a chunk-size line over
 *   4 KiB is invalid; only an unfinished line is kept between chunks.
 * - Why not node:http: its Agent and per-request objects cost more CPU than
 *   everything else in replay, and it hides which socket a request used and
 *   retries on its own terms, which the load client must see.
 */

/** What `feed` found. */
export const Feed = { more: 0, done: 1, doneWithExtra: 2, invalid: 3 } as const;
export type Feed = (typeof Feed)[keyof typeof Feed];

/** Longest answer head (status line and headers) accepted. */
export const MAX_HEAD_BYTES = 64 * 1024;
/** Longest chunk-size line accepted. */
const MAX_CHUNK_LINE_BYTES = 4096;

/** Where the reader is in an answer. */
const Read = { head: 0, length: 1, chunkSize: 2, chunkData: 3, chunkEnd: 4, trailer: 5, untilClose: 6 } as const;
type Read = (typeof Read)[keyof typeof Read];

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');

export class ResponseReader {
  /** Status code of the last complete answer (1xx never). */
  status = 0;
  /** Whether the connection may carry another request after the last complete answer. */
  keepAlive = true;
  private state: Read = Read.head;
  /** Bytes left in the body or chunk; -1 after a head: no body follows. */
  private remaining = 0;
  private partial: Buffer | null = null;
  private headRequest = false;

  /** Expects the answer to a new request; `headRequest`: it was a HEAD (no body, whatever the headers say). */
  start(headRequest: boolean): void {
    this.headRequest = headRequest;
    this.state = Read.head;
    this.remaining = 0;
    this.partial = null;
  }

  /** The server closed the connection: true if that ends the answer (a body read until close). */
  closedByPeer(): boolean {
    return this.state === Read.untilClose;
  }

  feed(chunk: Buffer): Feed {
    let buf = chunk;
    if (this.partial !== null) {
      buf = Buffer.concat([this.partial, chunk]);
      this.partial = null;
    }
    let pos = 0;
    while (pos < buf.length) {
      switch (this.state) {
        case Read.head: {
          const end = buf.indexOf(CRLFCRLF, pos);
          if (end === -1) return this.keepPartial(buf, pos, MAX_HEAD_BYTES);
          if (!this.parseHead(buf, pos, end)) return Feed.invalid;
          pos = end + 4;
          if (this.remaining === -1) return this.complete(pos < buf.length);
          break;
        }
        case Read.length: {
          const take = Math.min(this.remaining, buf.length - pos);
          this.remaining -= take;
          pos += take;
          if (this.remaining === 0) return this.complete(pos < buf.length);
          break;
        }
        case Read.chunkSize: {
          const eol = buf.indexOf(CRLF, pos);
          if (eol === -1) return this.keepPartial(buf, pos, MAX_CHUNK_LINE_BYTES);
          const size = parseChunkSize(buf, pos, eol);
          if (size < 0) return Feed.invalid;
          pos = eol + 2;
          this.remaining = size;
          this.state = size === 0 ? Read.trailer : Read.chunkData;
          break;
        }
        case Read.chunkData: {
          const take = Math.min(this.remaining, buf.length - pos);
          this.remaining -= take;
          pos += take;
          if (this.remaining === 0) {
            this.state = Read.chunkEnd;
            this.remaining = 2;
          }
          break;
        }
        case Read.chunkEnd: {
          const take = Math.min(this.remaining, buf.length - pos);
          this.remaining -= take;
          pos += take;
          if (this.remaining === 0) this.state = Read.chunkSize;
          break;
        }
        case Read.trailer: {
          const eol = buf.indexOf(CRLF, pos);
          if (eol === -1) return this.keepPartial(buf, pos, MAX_HEAD_BYTES);
          const empty = eol === pos;
          pos = eol + 2;
          if (empty) return this.complete(pos < buf.length);
          break;
        }
        case Read.untilClose:
          pos = buf.length;
          break;
      }
    }
    return Feed.more;
  }

  private keepPartial(buf: Buffer, pos: number, max: number): Feed {
    if (buf.length - pos > max) return Feed.invalid;
    // Copy: a view would pin the whole chunk.
    this.partial = Buffer.from(buf.subarray(pos));
    return Feed.more;
  }

  private complete(extraBytes: boolean): Feed {
    this.partial = null;
    this.state = Read.head;
    return extraBytes ? Feed.doneWithExtra : Feed.done;
  }

  /**
   * Status line and the three headers that delimit the body (RFC 9112 §6.3).
   * Sets state and remaining; remaining = -1: no body follows.
   */
  private parseHead(buf: Buffer, start: number, end: number): boolean {
    this.remaining = 0; // never a value left from the previous answer
    const head = buf.toString('latin1', start, end);
    if (!head.startsWith('HTTP/1.') || head.charCodeAt(8) !== 32) return false;
    const status = Number(head.slice(9, 12));
    if (!Number.isInteger(status) || status < 100 || status > 999) return false;
    const http10 = head.charCodeAt(7) === 48;
    let close = false;
    let keepAlive = false;
    let length = -1;
    let chunked = false;
    for (let at = head.indexOf('\r\n') + 2; at > 1 && at < head.length; ) {
      const eol = head.indexOf('\r\n', at);
      const lineEnd = eol === -1 ? head.length : eol;
      const colon = head.indexOf(':', at);
      if (colon > at && colon < lineEnd) {
        const nameLength = colon - at;
        if (nameLength === 10 || nameLength === 14 || nameLength === 17) {
          const name = head.slice(at, colon).toLowerCase();
          const value = head.slice(colon + 1, lineEnd).trim().toLowerCase();
          if (name === 'content-length') {
            if (!/^\d+$/.test(value)) return false;
            length = Number(value);
          } else if (name === 'transfer-encoding') {
            chunked = value.endsWith('chunked');
          } else if (name === 'connection') {
            for (const token of value.split(',')) {
              const option = token.trim();
              if (option === 'close') close = true;
              else if (option === 'keep-alive') keepAlive = true;
            }
          }
        }
      }
      if (eol === -1) break;
      at = eol + 2;
    }
    if (status < 200) {
      if (status === 101) return false; // we never ask to switch protocols
      this.state = Read.head; // 1xx: the real answer follows
      return true;
    }
    this.status = status;
    this.keepAlive = !close && (!http10 || keepAlive);
    if (this.headRequest || status === 204 || status === 304) this.remaining = -1;
    else if (chunked) this.state = Read.chunkSize;
    else if (length >= 0) {
      this.state = Read.length;
      this.remaining = length === 0 ? -1 : length;
    } else {
      this.state = Read.untilClose;
      this.keepAlive = false;
    }
    return true;
  }
}

/** Hex size before an optional ";extension" (RFC 9112 §7.1); -1 if not one. */
function parseChunkSize(buf: Buffer, start: number, end: number): number {
  let size = 0;
  let digits = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    const v = c >= 48 && c <= 57 ? c - 48 : (c | 0x20) >= 97 && (c | 0x20) <= 102 ? (c | 0x20) - 87 : -1;
    if (v === -1) {
      if (c === 59 /* ; */ || c === 32 || c === 9) break;
      return -1;
    }
    size = size * 16 + v;
    if (++digits > 12) return -1;
  }
  return digits === 0 ? -1 : size;
}
