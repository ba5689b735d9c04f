/**
 * An incremental parser of one HTTP/1.x request head (RFC 9112 §2–7), for
 * the beacon port: GET/HEAD, and POST/OPTIONS whose body body.ts reads.
 *
 * It is a state machine fed the socket's chunks as they come: it keeps its
 * state between chunks and looks at each byte once, so reading a head costs
 * time linear in its bytes however TCP splits them, and the same bytes give
 * the same answer under every split (a limit is crossed at one byte, an
 * invalid byte sits at one place). Within a state it runs a tight loop over
 * a character-class table (a "span", as llhttp does), so that a browser's
 * 500-byte head costs well under a microsecond.
 *
 * The grammar is the RFC's, strictly (docs/http.md lists the rules and every
 * deliberate difference from llhttp, Node's parser):
 * - request-line = method SP request-target SP HTTP-version CRLF, single
 *   spaces; the method a token; the target visible ASCII (0x21–0x7E);
 *   the version HTTP/1.0 or HTTP/1.1 (any other HTTP/d.d: 505);
 * - lines end in CRLF: a bare LF or a bare CR anywhere is an error;
 *   empty lines (CRLF) before the request line are skipped (§2.2);
 * - field-name a token, the colon right after it (no whitespace, §5.1),
 *   no obs-fold (§5.2), field values VCHAR / obs-text / SP / HTAB (§5.5);
 * - Host (§3.2): exactly one in HTTP/1.1, at most one in 1.0, and valid
 *   (uri-host [":" port], RFC 3986 §3.2.2); an absolute-form target
 *   (http:// or https://) gives the host instead (§3.2.2);
 * - Content-Length: one header of digits only; Transfer-Encoding: only
 *   "chunked", once, last (other codings 501, §6.1); both together 400 (§6.3).
 *
 * Strings are made only for the target and the few header values used
 * (Host, Connection, Content-Length, Transfer-Encoding, X-Forwarded-For when
 * asked; for POST beacons and preflights Content-Type, Content-Encoding,
 * Origin, Expect, Access-Control-Request-Method); everything else is
 * compared as bytes. The body itself is read by body.ts.
 */

export const Method = { get: 0, head: 1, other: 2, post: 3, options: 4 } as const;
export type Method = (typeof Method)[keyof typeof Method];

export interface RequestHead {
  method: Method;
  /** Request target as latin1 (visible ASCII); an absolute-form target is given in origin form ("/track?a=1"). */
  target: string;
  http10: boolean;
  /** The Host header, or the authority of an absolute-form target; undefined only in HTTP/1.0 without either. */
  host: string | undefined;
  forwardedFor: string | undefined;
  /** Connection: close, or HTTP/1.0 without keep-alive. */
  wantsClose: boolean;
  /** A body follows (Content-Length > 0 or Transfer-Encoding: chunked): read only for POST (body.ts). */
  hasBody: boolean;
  /** The last value of each, when sent once (a second one is 400). */
  contentType: string | undefined;
  contentEncoding: string | undefined;
  origin: string | undefined;
  expect: string | undefined;
  /** Access-Control-Request-Method: the request is a CORS preflight. */
  preflightMethod: string | undefined;
  /** The body's framing: -1 chunked, else its Content-Length (0: none). */
  readonly bodyLength: number;
}

/** Why a head could not be used; the server maps each to an answer, and closes. */
export const HeadError = { badRequest: 1, uriTooLong: 2, headerTooLarge: 3, notImplemented: 4, versionNotSupported: 5 } as const;
export type HeadError = (typeof HeadError)[keyof typeof HeadError];

/** execute(): the head is not complete; every byte given was consumed. */
export const NEED_MORE = -1;
/** execute(): the head is invalid; `error` says why. */
export const FAILED = -2;

const CR = 13;
const LF = 10;
const SP = 32;
const TAB = 9;
const COLON = 58;

// Character classes (bits), one table lookup per byte.
const C_TOKEN = 1; // tchar, RFC 9110 §5.6.2
const C_TARGET = 2; // visible ASCII 0x21–0x7E
const C_VALUE = 4; // field-vchar / SP / HTAB, RFC 9110 §5.5
const CLASS = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  let bits = 0;
  const ch = String.fromCharCode(c);
  if (/[A-Za-z0-9!#$%&'*+\-.^_`|~]/.test(ch)) bits |= C_TOKEN;
  if (c >= 0x21 && c <= 0x7e) bits |= C_TARGET;
  if ((c >= 0x21 && c <= 0x7e) || c >= 0x80 || c === SP || c === TAB) bits |= C_VALUE;
  CLASS[c] = bits;
}

// States.
const S_LEADING = 0; // before the request line: empty lines are skipped
const S_LEADING_LF = 1;
const S_METHOD = 2;
const S_TARGET = 3;
const S_VERSION = 4;
const S_LINE_LF = 5;
const S_FIELD_START = 6;
const S_NAME = 7;
const S_VALUE = 8;
const S_VALUE_LF = 9;
const S_END_LF = 10;

// The header fields read; the rest are only checked.
const F_OTHER = 0;
const F_HOST = 1;
const F_CONNECTION = 2;
const F_CONTENT_LENGTH = 3;
const F_TRANSFER_ENCODING = 4;
const F_FORWARDED_FOR = 5;
const F_CONTENT_TYPE = 6;
const F_CONTENT_ENCODING = 7;
const F_ORIGIN = 8;
const F_EXPECT = 9;
const F_PREFLIGHT_METHOD = 10;

/** Spans shorter than this are checked byte by byte (a typed-array view costs an allocation). */
const SWAR_MIN = 32;
/** "HTTP/" */
const VERSION_PREFIX = [72, 84, 84, 80, 47];
/** Longest field name we look for; longer names are F_OTHER without being kept. */
const MAX_KNOWN_NAME = 29;

export class HeadParser implements RequestHead {
  method: Method = Method.other;
  target = '';
  http10 = false;
  host: string | undefined = undefined;
  forwardedFor: string | undefined = undefined;
  wantsClose = false;
  hasBody = false;
  contentType: string | undefined = undefined;
  contentEncoding: string | undefined = undefined;
  origin: string | undefined = undefined;
  expect: string | undefined = undefined;
  preflightMethod: string | undefined = undefined;
  /** Set when execute() returns FAILED. */
  error: HeadError = HeadError.badRequest;

  private state = S_LEADING;
  /** Bytes of this head consumed in earlier chunks (leading empty lines included). */
  private headBytes = 0;
  /** Bytes of the request line so far (without its CRLF). */
  private lineBytes = 0;
  /** The first (up to) 4 bytes of the method, for GET/HEAD/POST. */
  private methodBits = 0;
  /** Bytes 5–8 of the method, for OPTIONS. */
  private methodBits2 = 0;
  /** Position in "HTTP/d.d". */
  private versionAt = 0;
  private versionMajor = 0;
  /** Part of a span (target, field name, field value) read in earlier chunks. */
  private carry = '';
  private field = F_OTHER;
  private hostCount = 0;
  private contentLength = -1;
  private chunked = 0;
  private otherCoding = false;
  private badCoding = false;
  private close = false;
  private keepAlive = false;
  private absoluteHost: string | undefined = undefined;

  constructor(
    private readonly maxLineBytes: number,
    private readonly maxHeadBytes: number,
    private readonly wantForwardedFor: boolean,
  ) {}

  /** Ready for the next head. */
  reset(): void {
    this.state = S_LEADING;
    this.headBytes = 0;
    this.lineBytes = 0;
    this.methodBits = 0;
    this.versionAt = 0;
    this.carry = '';
    this.field = F_OTHER;
    this.hostCount = 0;
    this.contentLength = -1;
    this.chunked = 0;
    this.otherCoding = false;
    this.badCoding = false;
    this.close = false;
    this.keepAlive = false;
    this.absoluteHost = undefined;
    this.host = undefined;
    this.forwardedFor = undefined;
    this.hasBody = false;
    this.target = '';
    this.methodBits2 = 0;
    this.contentType = undefined;
    this.contentEncoding = undefined;
    this.origin = undefined;
    this.expect = undefined;
    this.preflightMethod = undefined;
  }

  /** The body's framing: -1 chunked, else its Content-Length (0: none). */
  get bodyLength(): number {
    return this.chunked > 0 ? -1 : this.contentLength > 0 ? this.contentLength : 0;
  }

  /** A byte of a request line has been read (a head is under way, not just empty lines between requests). */
  get started(): boolean {
    return this.state !== S_LEADING && this.state !== S_LEADING_LF;
  }

  /**
   * Reads buf[start, end). Returns the index just past the head's final
   * CRLF (the head is in this object's fields; call reset() before the next
   * one), NEED_MORE (all bytes consumed, give the next chunk), or FAILED.
   */
  execute(buf: Buffer, start: number, end: number): number {
    // The head size limit is a position: the byte past it fails, whatever the split.
    const room = this.maxHeadBytes - this.headBytes;
    const stop = end - start > room ? start + room : end;
    const at = this.run(buf, start, stop);
    if (at >= 0 || at === FAILED) return at;
    if (stop < end) return this.fail(HeadError.headerTooLarge);
    this.headBytes += end - start;
    return NEED_MORE;
  }

  private fail(error: HeadError): number {
    this.error = error;
    return FAILED;
  }

  private run(buf: Buffer, start: number, end: number): number {
    let i = start;
    let spanStart = start;
    let state = this.state;
    while (i < end) {
      switch (state) {
        case S_LEADING: {
          const c = buf[i]!;
          if (c === CR) {
            state = S_LEADING_LF;
            i++;
          } else if (CLASS[c]! & C_TOKEN) {
            state = S_METHOD;
            // The leading empty lines do not count against the request line,
            // but (bounded by maxHeadBytes) against the head.
          } else {
            return this.fail(HeadError.badRequest);
          }
          break;
        }
        case S_LEADING_LF:
          if (buf[i] !== LF) return this.fail(HeadError.badRequest);
          state = S_LEADING;
          i++;
          break;
        case S_METHOD: {
          // A token; the first 4 bytes are kept to tell GET and HEAD.
          const room = this.maxLineBytes - this.lineBytes;
          const limit = end - i > room ? i + room : end;
          let bits = this.methodBits;
          let length = this.lineBytes;
          let j = i;
          for (; j < limit; j++) {
            const c = buf[j]!;
            if (!(CLASS[c]! & C_TOKEN)) break;
            if (++length <= 4) bits = (bits << 8) | c;
            else if (length <= 8) this.methodBits2 = (this.methodBits2 << 8) | c;
          }
          this.methodBits = bits;
          this.lineBytes = length;
          i = j;
          if (j === end) break;
          if (buf[j] === SP && length > 0) {
            if (++this.lineBytes > this.maxLineBytes) return this.fail(HeadError.uriTooLong);
            this.method = methodOf(bits, length, this.methodBits2);
            state = S_TARGET;
            i = j + 1;
            spanStart = i;
            this.carry = '';
          } else {
            return this.fail(j === limit ? HeadError.uriTooLong : HeadError.badRequest);
          }
          break;
        }
        case S_TARGET: {
          // The span loop: visible ASCII, up to the request line limit.
          const room = this.maxLineBytes - this.lineBytes;
          const limit = end - i > room ? i + room : end;
          const j = skip(buf, i, limit, C_TARGET);
          this.lineBytes += j - i;
          i = j;
          if (j === end) break; // more in the next chunk
          const c = buf[j]!;
          if (c === SP && (j > spanStart || this.carry !== '')) {
            if (++this.lineBytes > this.maxLineBytes) return this.fail(HeadError.uriTooLong);
            this.target = this.carry + buf.toString('latin1', spanStart, j);
            this.carry = '';
            state = S_VERSION;
            i = j + 1;
          } else if (j === limit) {
            return this.fail(HeadError.uriTooLong);
          } else {
            return this.fail(HeadError.badRequest);
          }
          break;
        }
        case S_VERSION: {
          // The usual case at once: "HTTP/1.1\r" or "HTTP/1.0\r" whole in this chunk, within the limit.
          if (this.versionAt === 0 && end - i >= 9 && this.lineBytes + 8 <= this.maxLineBytes &&
              buf[i] === 72 && buf[i + 1] === 84 && buf[i + 2] === 84 && buf[i + 3] === 80 && buf[i + 4] === 47 &&
              buf[i + 5] === 49 && buf[i + 6] === 46 && (buf[i + 7] === 49 || buf[i + 7] === 48) && buf[i + 8] === CR) {
            this.http10 = buf[i + 7] === 48;
            this.versionMajor = 1;
            this.lineBytes += 8;
            const error = this.requestLineDone();
            if (error !== 0) return this.fail(error);
            state = S_LINE_LF;
            i += 9;
            break;
          }
          const c = buf[i]!;
          const at = this.versionAt;
          if (at === 8) {
            if (c !== CR) return this.fail(this.lineBytes + 1 > this.maxLineBytes ? HeadError.uriTooLong : HeadError.badRequest);
            const error = this.requestLineDone();
            if (error !== 0) return this.fail(error);
            state = S_LINE_LF;
            i++;
            break;
          }
          if (++this.lineBytes > this.maxLineBytes) return this.fail(HeadError.uriTooLong);
          if (at < 5) {
            if (c !== VERSION_PREFIX[at]) return this.fail(HeadError.badRequest);
          } else if (at === 6) {
            if (c !== 46) return this.fail(HeadError.badRequest); // '.'
          } else {
            if (c < 48 || c > 57) return this.fail(HeadError.badRequest);
            if (at === 5) this.versionMajor = c - 48;
            else this.http10 = c === 48;
            // Not 1.0 or 1.1, whatever follows.
            if (at === 7 && (this.versionMajor !== 1 || c > 49)) return this.fail(HeadError.versionNotSupported);
          }
          this.versionAt = at + 1;
          i++;
          break;
        }
        case S_LINE_LF:
          if (buf[i] !== LF) return this.fail(HeadError.badRequest);
          state = S_FIELD_START;
          i++;
          break;
        case S_FIELD_START: {
          const c = buf[i]!;
          if (c === CR) {
            state = S_END_LF;
            i++;
          } else if (CLASS[c]! & C_TOKEN) {
            state = S_NAME;
            spanStart = i;
            this.carry = '';
          } else {
            // SP/HTAB: obs-fold (§5.2); LF: a bare LF; anything else: not a name.
            return this.fail(HeadError.badRequest);
          }
          break;
        }
        case S_NAME: {
          let j = i;
          while (j < end && CLASS[buf[j]!]! & C_TOKEN) j++;
          if (j === end) {
            // Keep the start of a name that may be one we read.
            if (this.carry.length + (j - spanStart) <= MAX_KNOWN_NAME) this.carry += buf.toString('latin1', spanStart, j);
            else this.carry = '-';
            i = j;
            break;
          }
          if (buf[j] !== COLON) return this.fail(HeadError.badRequest); // whitespace before the colon (§5.1) or a bad byte
          let field = this.carry === '' ? fieldOf(buf, spanStart, j - spanStart) : fieldOfString(this.carry + buf.toString('latin1', spanStart, j));
          if (field === F_FORWARDED_FOR && !this.wantForwardedFor) field = F_OTHER;
          this.field = field;
          this.carry = '';
          state = S_VALUE;
          i = j + 1;
          // Leading OWS is not part of a value (RFC 9110 §5.5): skipped here, trailing OWS in fieldDone.
          if (field !== F_OTHER) while (i < end && (buf[i] === SP || buf[i] === TAB)) i++;
          spanStart = i;
          break;
        }
        case S_VALUE: {
          const j = skip(buf, i, end, C_VALUE);
          if (j === end) {
            if (this.field !== F_OTHER) this.carry += buf.toString('latin1', spanStart, j);
            i = j;
            break;
          }
          if (buf[j] !== CR) return this.fail(HeadError.badRequest); // a bare LF, NUL, another control
          if (this.field !== F_OTHER) {
            const error = this.fieldDone(this.carry + buf.toString('latin1', spanStart, j));
            if (error !== 0) return this.fail(error);
            this.carry = '';
          }
          state = S_VALUE_LF;
          i = j + 1;
          break;
        }
        case S_VALUE_LF:
          if (buf[i] !== LF) return this.fail(HeadError.badRequest); // a bare CR
          state = S_FIELD_START;
          i++;
          break;
        case S_END_LF: {
          if (buf[i] !== LF) return this.fail(HeadError.badRequest);
          this.state = S_LEADING;
          const error = this.headDone();
          return error === 0 ? i + 1 : this.fail(error);
        }
      }
    }
    // The chunk ends inside a span: keep what it holds.
    if (state === S_TARGET) this.carry += buf.toString('latin1', spanStart, end);
    this.state = state;
    return NEED_MORE;
  }

  /** The target is read: the absolute form gives the host (RFC 9112 §3.2.2). */
  private requestLineDone(): HeadError | 0 {
    const target = this.target;
    const first = target.charCodeAt(0);
    if (first === 47 /* / */ || (first === 42 /* * */ && target.length === 1)) return 0;
    const scheme = /^https?:\/\//i.exec(target);
    if (scheme === null) return HeadError.badRequest;
    let slash = scheme[0].length;
    while (slash < target.length && target.charCodeAt(slash) !== 47 && target.charCodeAt(slash) !== 63) slash++;
    const authority = target.slice(scheme[0].length, slash);
    // No userinfo in an http(s) URI (RFC 9110 §4.2.4), and a host is required (§4.2.1).
    if (authority === '' || !validHost(authority)) return HeadError.badRequest;
    this.absoluteHost = authority;
    const rest = target.slice(slash);
    this.target = rest === '' ? '/' : rest.charCodeAt(0) === 63 ? `/${rest}` : rest;
    return 0;
  }

  private fieldDone(raw: string): HeadError | 0 {
    // OWS around the value is not part of it (RFC 9110 §5.5).
    let from = 0;
    let to = raw.length;
    while (from < to && (raw.charCodeAt(from) === SP || raw.charCodeAt(from) === TAB)) from++;
    while (to > from && (raw.charCodeAt(to - 1) === SP || raw.charCodeAt(to - 1) === TAB)) to--;
    const value = from === 0 && to === raw.length ? raw : raw.slice(from, to);
    switch (this.field) {
      case F_HOST:
        if (++this.hostCount > 1 || !validHost(value)) return HeadError.badRequest;
        this.host = value;
        return 0;
      case F_CONNECTION:
        // A comma-separated list of tokens (RFC 9110 §7.6.1).
        for (const token of value.toLowerCase().split(',')) {
          const option = token.trim();
          if (option === 'close') this.close = true;
          else if (option === 'keep-alive') this.keepAlive = true;
        }
        return 0;
      case F_CONTENT_LENGTH: {
        // One header, 1*DIGIT (RFC 9112 §6.3: a list or a second header is an unrecoverable error).
        if (this.contentLength !== -1 || value === '' || value.length > 15 || !/^[0-9]+$/.test(value)) return HeadError.badRequest;
        this.contentLength = Number(value);
        return 0;
      }
      case F_TRANSFER_ENCODING:
      {
        let codings = 0;
        for (const element of value.split(',')) {
          const coding = element.trim().toLowerCase();
          if (coding === '') continue; // empty list elements are ignored (RFC 9110 §5.6.1)
          codings++;
          if (this.chunked > 0) this.badCoding = true; // chunked must be the last coding (RFC 9112 §6.3)
          if (coding === 'chunked') this.chunked++;
          else this.otherCoding = true;
        }
        if (codings === 0) this.badCoding = true;
        return 0;
      }
      case F_FORWARDED_FOR:
        this.forwardedFor = this.forwardedFor === undefined ? value : `${this.forwardedFor},${value}`;
        return 0;
      // Each of these at most once: two would be ambiguous.
      case F_CONTENT_TYPE:
        if (this.contentType !== undefined) return HeadError.badRequest;
        this.contentType = value;
        return 0;
      case F_CONTENT_ENCODING:
        if (this.contentEncoding !== undefined) return HeadError.badRequest;
        this.contentEncoding = value;
        return 0;
      case F_ORIGIN:
        if (this.origin !== undefined) return HeadError.badRequest;
        this.origin = value;
        return 0;
      case F_EXPECT:
        if (this.expect !== undefined) return HeadError.badRequest;
        this.expect = value;
        return 0;
      case F_PREFLIGHT_METHOD:
        if (this.preflightMethod !== undefined) return HeadError.badRequest;
        this.preflightMethod = value;
        return 0;
    }
    return 0;
  }

  private headDone(): HeadError | 0 {
    if (this.absoluteHost !== undefined) {
      this.host = this.absoluteHost;
    }
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is answered 400.
    if (this.hostCount === 0 && !this.http10) return HeadError.badRequest;
    if (this.chunked > 0 || this.otherCoding || this.badCoding) {
      // §6.1, §6.3: Content-Length with Transfer-Encoding; chunked applied twice or not last;
      // Transfer-Encoding in HTTP/1.0 (framing that cannot be trusted).
      if (this.contentLength !== -1 || this.chunked > 1 || this.badCoding || this.http10) return HeadError.badRequest;
      if (this.otherCoding) return HeadError.notImplemented;
      this.hasBody = true;
    } else if (this.contentLength > 0) {
      this.hasBody = true;
    }
    this.wantsClose = this.close || (this.http10 && !this.keepAlive);
    return 0;
  }
}

/**
 * The first index in buf[from, to) whose byte is not of `cls` (C_TARGET or
 * C_VALUE), or `to`. Long spans (a query string, a User-Agent) are checked
 * four bytes at a time on an Int32Array view of the chunk (SWAR: a word is
 * skipped only if none of its bytes can be outside the class; any doubt goes
 * to the exact byte loop), about twice as fast as a byte loop.
 */
function skip(buf: Buffer, from: number, to: number, cls: number): number {
  let j = from;
  if (to - from >= SWAR_MIN) {
    const base = buf.byteOffset;
    // Bytes up to the first 4-aligned address, one by one.
    while (((base + j) & 3) !== 0) {
      if (!(CLASS[buf[j]!]! & cls)) return j;
      j++;
    }
    const words = wordsOf(buf);
    // words[k] holds buf[j .. j+3]; words[stop - 1] is the last whole word before `to`.
    let k = (base + j - viewStart) >> 2;
    const stop = k + ((to - j) >> 2);
    const first = k;
    if (cls === C_TARGET) {
      // Outside 0x21–0x7E: a byte >= 0x80, < 0x21, or 0x7F.
      while (k < stop) {
        const x = words[k]!;
        const y = x ^ 0x7f7f7f7f;
        if ((x | ((x - 0x21212121) & ~x) | ((y - 0x01010101) & ~y)) & 0x80808080) break;
        k++;
      }
    } else {
      // Outside VCHAR / obs-text / SP / HTAB: a byte < 0x20 (HTAB is left to the byte loop), or 0x7F.
      while (k < stop) {
        const x = words[k]!;
        const y = x ^ 0x7f7f7f7f;
        if ((((x - 0x20202020) & ~x) | ((y - 0x01010101) & ~y)) & 0x80808080) break;
        k++;
      }
    }
    j += (k - first) << 2;
  }
  while (j < to && CLASS[buf[j]!]! & cls) j++;
  return j;
}

// The Int32Array view of the last chunk skip() worked on: one view per chunk, not per span.
let viewOf: Buffer | null = null;
let view: Int32Array<ArrayBufferLike> = new Int32Array(0);
/** The ArrayBuffer offset of view[0]. */
let viewStart = 0;

function wordsOf(buf: Buffer): Int32Array {
  if (buf !== viewOf) {
    viewStart = (buf.byteOffset + 3) & ~3;
    view = new Int32Array(buf.buffer, viewStart, (buf.byteOffset + buf.length - viewStart) >> 2);
    viewOf = buf;
  }
  return view;
}

/** GET, HEAD, POST, OPTIONS (case-sensitive, RFC 9110 §9.1), else other. */
function methodOf(bits: number, length: number, bits2: number): Method {
  switch (length) {
    case 3:
      return bits === 0x474554 ? Method.get : Method.other;
    case 4:
      return bits === 0x48454144 ? Method.head : bits === 0x504f5354 ? Method.post : Method.other;
    case 7:
      return bits === 0x4f505449 && bits2 === 0x4f4e53 ? Method.options : Method.other;
  }
  return Method.other;
}

/** Which field a name (a token, any case) is. */
function fieldOf(buf: Buffer, at: number, length: number): number {
  switch (length) {
    case 4:
      return nameIs(buf, at, 'host') ? F_HOST : F_OTHER;
    case 6:
      return nameIs(buf, at, 'origin') ? F_ORIGIN : nameIs(buf, at, 'expect') ? F_EXPECT : F_OTHER;
    case 10:
      return nameIs(buf, at, 'connection') ? F_CONNECTION : F_OTHER;
    case 12:
      return nameIs(buf, at, 'content-type') ? F_CONTENT_TYPE : F_OTHER;
    case 14:
      return nameIs(buf, at, 'content-length') ? F_CONTENT_LENGTH : F_OTHER;
    case 15:
      return nameIs(buf, at, 'x-forwarded-for') ? F_FORWARDED_FOR : F_OTHER;
    case 16:
      return nameIs(buf, at, 'content-encoding') ? F_CONTENT_ENCODING : F_OTHER;
    case 17:
      return nameIs(buf, at, 'transfer-encoding') ? F_TRANSFER_ENCODING : F_OTHER;
    case 29:
      return nameIs(buf, at, 'access-control-request-method') ? F_PREFLIGHT_METHOD : F_OTHER;
  }
  return F_OTHER;
}

function fieldOfString(name: string): number {
  return fieldOf(Buffer.from(name, 'latin1'), 0, name.length);
}

/**
 * Case-insensitive match of a token against a lower-case name of letters and
 * '-'. `| 0x20` folds only letters here: the name was checked to be a token,
 * and no other token byte becomes a lower-case letter or '-' that way.
 */
function nameIs(buf: Buffer, at: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    if ((buf[at + i]! | 0x20) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

// RFC 3986 §3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims ).
const REG_NAME = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=") REG_NAME[c.charCodeAt(0)] = 1;
const HEX = /^[0-9A-Fa-f]{2}$/;
// IP-literal = "[" ( IPv6address / IPvFuture ) "]", checked for its characters only.
const IP_LITERAL = /^\[(?:[0-9A-Fa-f:.]+|v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+)\]$/;

/**
 * Host = uri-host [ ":" port ] (RFC 9110 §7.2), port = *DIGIT. An empty
 * value is valid syntax (it then names no flavor).
 */
export function validHost(value: string): boolean {
  let i = 0;
  const length = value.length;
  if (value.charCodeAt(0) === 91 /* [ */) {
    const close = value.indexOf(']');
    if (close === -1 || !IP_LITERAL.test(value.slice(0, close + 1))) return false;
    i = close + 1;
  } else {
    for (; i < length; i++) {
      const c = value.charCodeAt(i);
      if (c === 37 /* % */) {
        if (!HEX.test(value.slice(i + 1, i + 3))) return false;
        i += 2;
      } else if (c >= 128 || REG_NAME[c] !== 1) {
        break;
      }
    }
  }
  if (i === length) return true;
  if (value.charCodeAt(i) !== COLON) return false;
  for (i++; i < length; i++) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}
