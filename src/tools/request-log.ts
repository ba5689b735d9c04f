/**
 * Input lines for the tools: a byte-exact line splitter (LineReader), and
 * the parser of one access-log line into the request to replay.
 *
 * Bytes: every line is a latin1 string, one char per byte (0..255), so that
 * a path with raw bytes >= 0x80 or invalid UTF-8 goes out exactly as it came
 * in (`Buffer.from(text, 'latin1')` gives the bytes back), and two lines are
 * byte-identical exactly when their strings are equal.
 *
 * Formats of `parseRequestLine` (decided per line, so files may mix them):
 *
 * - simple:    `www.skroutz.gr /track?foo=bar`, or `/track?foo=bar` alone
 *              (Host from --host). The path is sent byte for byte.
 * - combined:  nginx/Apache "combined" or "common":
 *              `addr ident user [time] "GET /p HTTP/1.1" status bytes ...`.
 *              Has no Host (--host supplies it), except the common variant
 *              with the host as an extra FIRST field (nginx
 *              `log_format vhost '$host $remote_addr - ...'`, Apache
 *              `vhost_combined` `%v:%p`), recognised by four fields before
 *              `[time]` instead of three. Fields after `status bytes`
 *              (referer, user agent, timings, ...) are ignored; a host in a
 *              trailing field is NOT recognised, because trailing fields are
 *              usually timings and guessing would be wrong: use --host.
 * - haproxy:   HAProxy `option httplog`: `... [accept_date] frontend
 *              backend/server timers status bytes ... {captures} "GET /p HTTP/1.1"`
 *              (with or without a syslog prefix). The Host is the first
 *              field of the first `{...}` block, which is where HAProxy puts
 *              `capture request header Host len N` when it is the first
 *              request capture; else --host.
 *
 * Escapes: loggers escape bytes, losslessly. nginx writes `"`, `\` and bytes
 * outside 0x20..0x7e as `\xHH` (log_format escape=default); Apache writes
 * `\"`, `\\` and `\xHH`; HAProxy writes `#`, `"` and non-printables as `#HH`
 * (configuration manual, "8.6 Logging: non-printable characters"). By
 * default they are undone, so the bytes sent are the bytes the logged server
 * received; nothing else is decoded or re-encoded (`%XX` stays `%XX`).
 * `keepEscapes` sends the logged text itself.
 *
 * What is rejected (malformed, with a reason): unterminated quotes or
 * brackets, an unrecognised layout, a truncated line (no status after the
 * request, no HTTP version), a target that is not a path (absolute-form,
 * `*`), a target or host with a byte that cannot be sent in a request line
 * (controls, space, DEL), no Host when --host is not given. Methods other
 * than GET and HEAD are skipped (a separate count), not replayed.
 */
import type { Readable } from 'node:stream';

export const LineFormat = { simple: 'simple', combined: 'combined', haproxy: 'haproxy' } as const;
export type LineFormat = (typeof LineFormat)[keyof typeof LineFormat];

export type ParsedLine =
  | { kind: 'request'; format: LineFormat; method: 'GET' | 'HEAD'; host: string; target: string }
  /** A well-formed request that is not replayed (POST, OPTIONS, ...). */
  | { kind: 'skip'; reason: string }
  | { kind: 'malformed'; reason: string }
  /** Blank line or `#` comment. */
  | { kind: 'empty' };

export interface ParseOptions {
  /** Host for lines whose format has none. */
  defaultHost: string | undefined;
  /** Send the logged text as is instead of undoing the logger's escapes. */
  keepEscapes: boolean;
}

const TAB = 9;
const SP = 32;
const QUOTE = 34;
const HASH = 35;
const SLASH = 47;
const OPEN_BRACKET = 91;
const BACKSLASH = 92;
const OPEN_BRACE = 123;

const Token = { bare: 0, bracket: 1, quoted: 2, brace: 3 } as const;
type TokenKind = (typeof Token)[keyof typeof Token];
/** A field of the line; start/end exclude the delimiters. */
interface Field {
  kind: TokenKind;
  start: number;
  end: number;
}

export function parseRequestLine(line: string, options: ParseOptions): ParsedLine {
  const fields = tokenize(line);
  if (typeof fields === 'string') return malformed(fields);
  if (fields.length === 0) return { kind: 'empty' };
  const first = fields[0]!;
  if (first.kind === Token.bare && line.charCodeAt(first.start) === HASH) return { kind: 'empty' };

  const at = fields.findIndex((f) => f.kind === Token.bracket);
  if (at === -1) return parseSimple(line, fields, options);
  const next = fields[at + 1];
  if (next?.kind === Token.quoted) return parseCombined(line, fields, at, options);
  if (next?.kind === Token.bare) return parseHaproxy(line, fields, at, options);
  return malformed('unrecognised format (expected combined, HAProxy httplog or "host path")');
}

function parseSimple(line: string, fields: Field[], options: ParseOptions): ParsedLine {
  if (!fields.every((f) => f.kind === Token.bare) || fields.length > 2) {
    return malformed('unrecognised format (expected combined, HAProxy httplog or "host path")');
  }
  const path = fields[fields.length - 1]!;
  if (line.charCodeAt(path.start) !== SLASH) return malformed('no path (expected "host /path?query")');
  const host = fields.length === 2 ? line.slice(fields[0]!.start, fields[0]!.end) : undefined;
  return request(LineFormat.simple, 'GET', host, line.slice(path.start, path.end), options);
}

function parseCombined(line: string, fields: Field[], at: number, options: ParseOptions): ParsedLine {
  // "addr ident user [time]", or "host addr ident user [time]".
  if ((at !== 3 && at !== 4) || fields.slice(0, at).some((f) => f.kind !== Token.bare)) {
    return malformed('unrecognised format (combined: expected "addr ident user [time]" before the request)');
  }
  const status = fields[at + 2];
  const bytes = fields[at + 3];
  if (status?.kind !== Token.bare || bytes?.kind !== Token.bare || !isDigits(line, status.start, status.end)) {
    return malformed('truncated (combined: no "status bytes" after the request)');
  }
  const unescape = options.keepEscapes ? slice : unescapeBackslash;
  const host = at === 4 ? unescape(line, fields[0]!.start, fields[0]!.end) : undefined;
  const req = fields[at + 1]!;
  return parseRequestField(LineFormat.combined, unescape(line, req.start, req.end), host, options);
}

function parseHaproxy(line: string, fields: Field[], at: number, options: ParseOptions): ParsedLine {
  const server = fields[at + 2];
  const last = fields[fields.length - 1]!;
  if (server?.kind !== Token.bare || line.lastIndexOf('/', server.end - 1) < server.start || last.kind !== Token.quoted || fields.length < at + 6) {
    return malformed('unrecognised format (HAProxy httplog: expected "[date] frontend backend/server ... \\"request\\"")');
  }
  const unescape = options.keepEscapes ? slice : unescapeHash;
  let host: string | undefined;
  const captures = fields.find((f, i) => i > at && f.kind === Token.brace);
  if (captures !== undefined) {
    const pipe = line.indexOf('|', captures.start);
    const end = pipe === -1 || pipe > captures.end ? captures.end : pipe;
    if (end > captures.start) host = unescape(line, captures.start, end);
  }
  return parseRequestField(LineFormat.haproxy, unescape(line, last.start, last.end), host, options);
}

/** "METHOD TARGET HTTP/x.y", already unescaped. */
function parseRequestField(format: LineFormat, text: string, host: string | undefined, options: ParseOptions): ParsedLine {
  const sp1 = text.indexOf(' ');
  const sp2 = text.lastIndexOf(' ');
  if (sp1 <= 0 || sp2 === sp1) {
    return malformed(sp1 <= 0 ? 'request is not "METHOD TARGET HTTP/x.y"' : 'truncated (request has no HTTP version)');
  }
  if (!text.startsWith('HTTP/', sp2 + 1)) return malformed('truncated (request has no HTTP version)');
  const method = text.slice(0, sp1);
  if (method !== 'GET' && method !== 'HEAD') {
    return /^[A-Za-z]+$/.test(method) ? { kind: 'skip', reason: `method ${method}` } : malformed('request is not "METHOD TARGET HTTP/x.y"');
  }
  return request(format, method, host, text.slice(sp1 + 1, sp2), options);
}

function request(format: LineFormat, method: 'GET' | 'HEAD', host: string | undefined, target: string, options: ParseOptions): ParsedLine {
  if (target.charCodeAt(0) !== SLASH) return malformed('target is not a path (origin-form "/...")');
  if (!sendable(target)) return malformed('target has a byte that cannot be sent in a request line (control, space or DEL)');
  // "-" is how loggers write an empty variable.
  const h = host === undefined || host === '-' || host === '' ? options.defaultHost : host;
  if (h === undefined) return malformed('no Host in the line; give --host');
  if (!isHostText(h)) return malformed('host has a byte that cannot be sent in a Host header');
  return { kind: 'request', format, method, host: h, target };
}

function malformed(reason: string): ParsedLine {
  return { kind: 'malformed', reason };
}

/**
 * Splits a line into bare words, `[...]`, `"..."` and `{...}` fields,
 * separated by spaces or tabs; an error text if a field is not closed. In a
 * quoted field a backslash escapes the next char (Apache's `\"`); nginx and
 * HAProxy never write a raw quote or backslash there, so it is harmless for
 * them.
 */
function tokenize(line: string): Field[] | string {
  const fields: Field[] = [];
  const n = line.length;
  let i = 0;
  while (true) {
    while (i < n && isBlank(line.charCodeAt(i))) i++;
    if (i >= n) return fields;
    const c = line.charCodeAt(i);
    let end: number;
    if (c === QUOTE) {
      end = i + 1;
      while (end < n) {
        const d = line.charCodeAt(end);
        if (d === QUOTE) break;
        end += d === BACKSLASH ? 2 : 1;
      }
      if (end >= n) return 'unterminated quote';
      fields.push({ kind: Token.quoted, start: i + 1, end });
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      end = line.indexOf(c === OPEN_BRACKET ? ']' : '}', i + 1);
      if (end === -1) return c === OPEN_BRACKET ? 'unterminated [' : 'unterminated {';
      fields.push({ kind: c === OPEN_BRACKET ? Token.bracket : Token.brace, start: i + 1, end });
    } else {
      end = i;
      while (end < n && !isBlank(line.charCodeAt(end))) end++;
      fields.push({ kind: Token.bare, start: i, end });
      i = end;
      continue;
    }
    i = end + 1;
    if (i < n && !isBlank(line.charCodeAt(i))) {
      return `text right after a closing ${String.fromCharCode(line.charCodeAt(end))}`;
    }
  }
}

function isBlank(c: number): boolean {
  return c === SP || c === TAB;
}

function isDigits(s: string, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** RFC 9112 §3.2: a request target is a run of visible chars; obs-text (>= 0x80) is passed through as bytes. */
function sendable(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= SP || c === 0x7f || c > 0xff) return false;
  }
  return true;
}

function isHostText(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= SP || c >= 0x7f) return false;
  }
  return s.length > 0;
}

function slice(s: string, start: number, end: number): string {
  return s.slice(start, end);
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const lower = c | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

/** nginx `\xHH`, Apache `\xHH`, `\"`, `\\`, `\n`, `\r`, `\t`; any other backslash stays. */
function unescapeBackslash(s: string, start: number, end: number): string {
  let at = s.indexOf('\\', start);
  if (at === -1 || at >= end) return s.slice(start, end);
  let out = '';
  let from = start;
  while (at !== -1 && at < end) {
    const next = s.charCodeAt(at + 1);
    let decoded: string | undefined;
    let length = 2;
    if (next === 0x78 /* x */ && at + 3 < end) {
      const hi = hexValue(s.charCodeAt(at + 2));
      const lo = hexValue(s.charCodeAt(at + 3));
      if (hi >= 0 && lo >= 0) {
        decoded = String.fromCharCode(hi * 16 + lo);
        length = 4;
      }
    } else if (next === QUOTE || next === BACKSLASH) decoded = String.fromCharCode(next);
    else if (next === 0x6e /* n */) decoded = '\n';
    else if (next === 0x72 /* r */) decoded = '\r';
    else if (next === 0x74 /* t */) decoded = '\t';
    if (decoded === undefined || at + length > end) {
      at = s.indexOf('\\', at + 1);
      continue;
    }
    out += s.slice(from, at) + decoded;
    from = at + length;
    at = s.indexOf('\\', from);
  }
  return out + s.slice(from, end);
}

/** HAProxy `#HH`; a `#` not followed by two hex digits stays. */
function unescapeHash(s: string, start: number, end: number): string {
  let at = s.indexOf('#', start);
  if (at === -1 || at >= end) return s.slice(start, end);
  let out = '';
  let from = start;
  while (at !== -1 && at + 2 < end) {
    const hi = hexValue(s.charCodeAt(at + 1));
    const lo = hexValue(s.charCodeAt(at + 2));
    if (hi >= 0 && lo >= 0) {
      out += s.slice(from, at) + String.fromCharCode(hi * 16 + lo);
      from = at + 3;
    }
    at = s.indexOf('#', hi >= 0 && lo >= 0 ? from : at + 1);
  }
  return out + s.slice(from, end);
}

/**
 * Untrusted latin1 text for a message line: bytes outside 0x20..0x7e and the
 * backslash as \xHH (so no terminal escape or forged line gets through, and
 * the bytes stay readable), cut at `max` chars.
 */
export function escapeBytes(text: string, max = 300): string {
  let out = '';
  const n = Math.min(text.length, max);
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    out += c >= 0x20 && c <= 0x7e && c !== BACKSLASH ? text[i] : `\\x${(c & 0xff).toString(16).padStart(2, '0')}`;
  }
  return text.length > max ? `${out}…` : out;
}

/**
 * The bytes of a request as replay sends it: HTTP/1.1 (for keep-alive), the
 * logged Host, no other header. Target bytes outside visible ASCII (a log
 * may hold raw UTF-8 or a space) are percent-encoded, as a browser sends
 * them: the beacon port refuses them raw (docs/http.md), and the query
 * decodes to the same values either way.
 */
export function requestBytes(method: 'GET' | 'HEAD', target: string, host: string): Buffer {
  return Buffer.from(`${method} ${visibleTarget(target)} HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 'latin1');
}

function visibleTarget(target: string): string {
  return target.replace(/[^\x21-\x7e]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

export interface LineBatch {
  /** Line number (1-based) of lines[0]. */
  firstLine: number;
  /** Latin1 text of each line without its LF; null for a line over maxLineBytes (dropped). */
  lines: (string | null)[];
}

/**
 * Splits a byte stream into lines at LF, in batches (one per chunk read),
 * without readline: readline decodes text (so bytes would not survive) and
 * also breaks lines at a lone CR, which can sit inside a logged path. A last
 * line without LF is still a line; an empty input has no lines.
 *
 * `stripCR`: drop one CR before the LF (access logs written on Windows). Off
 * for diff, where a CR is a byte that differs.
 * `maxLineBytes`: a longer line is not kept in memory (a file without LFs
 * must not grow a buffer without bound); it comes out as null.
 */
export class LineReader {
  /** Bytes consumed from the stream so far. */
  bytesRead = 0;
  private readonly chunks: AsyncIterator<Buffer | string>;
  private carry: Buffer | null = null;
  private overlong = false;
  private nextLine = 1;
  private ended = false;

  constructor(
    stream: Readable,
    private readonly options: { stripCR: boolean; maxLineBytes: number },
  ) {
    this.chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  }

  /** The next batch of lines, or null at the end of the stream. Rejects with the stream's error. */
  async next(): Promise<LineBatch | null> {
    while (!this.ended) {
      const step: IteratorResult<Buffer | string> = await this.chunks.next();
      if (step.done === true) {
        this.ended = true;
        const lines: (string | null)[] = [];
        if (this.overlong) lines.push(null);
        else if (this.carry !== null && this.carry.length > 0) lines.push(this.text(this.carry, 0, this.carry.length));
        this.carry = null;
        return lines.length > 0 ? this.batch(lines) : null;
      }
      const chunk = typeof step.value === 'string' ? Buffer.from(step.value, 'latin1') : step.value;
      this.bytesRead += chunk.length;
      const lines = this.split(chunk);
      if (lines.length > 0) return this.batch(lines);
    }
    return null;
  }

  private batch(lines: (string | null)[]): LineBatch {
    const firstLine = this.nextLine;
    this.nextLine += lines.length;
    return { firstLine, lines };
  }

  private split(chunk: Buffer): (string | null)[] {
    const lines: (string | null)[] = [];
    let start = 0;
    for (let lf = chunk.indexOf(10); lf !== -1; lf = chunk.indexOf(10, start)) {
      if (this.overlong) {
        lines.push(null);
        this.overlong = false;
      } else if (this.carry !== null) {
        const joined = Buffer.concat([this.carry, chunk.subarray(0, lf)]);
        lines.push(joined.length > this.options.maxLineBytes ? null : this.text(joined, 0, joined.length));
      } else {
        lines.push(lf - start > this.options.maxLineBytes ? null : this.text(chunk, start, lf));
      }
      this.carry = null;
      start = lf + 1;
    }
    if (start < chunk.length && !this.overlong) {
      const rest = chunk.subarray(start);
      const length = (this.carry?.length ?? 0) + rest.length;
      if (length > this.options.maxLineBytes) {
        this.overlong = true;
        this.carry = null;
      } else {
        // Copy: keeping a view would pin the whole chunk.
        this.carry = this.carry === null ? Buffer.from(rest) : Buffer.concat([this.carry, rest]);
      }
    }
    return lines;
  }

  private text(buf: Buffer, start: number, end: number): string {
    if (this.options.stripCR && end > start && buf[end - 1] === 13) end--;
    return buf.toString('latin1', start, end);
  }
}
