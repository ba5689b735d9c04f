/**
 * Parsing one HTTP/1.x request head straight from the socket's Buffer
 * (RFC 9112 §2–5), for the beacon port only: GET/HEAD without a body.
 *
 * Only what scratchd uses is extracted: method, target, version, Host,
 * Connection, X-Forwarded-For, and whether a body follows. Strings are made
 * only for the target and the few header values needed; everything else is
 * compared as bytes. Malformed heads (no version, obs-fold, a header without
 * a colon or with space before it, two Host headers) are rejected with 400,
 * as RFC 9112 requires, never guessed at.
 */

export const Method = { get: 0, head: 1, other: 2 } as const;
export type Method = (typeof Method)[keyof typeof Method];

export interface RequestHead {
  method: Method;
  /** Request target as latin1 (one char per byte). */
  target: string;
  http10: boolean;
  host: string | undefined;
  forwardedFor: string | undefined;
  /** Connection: close, or HTTP/1.0 without keep-alive. */
  wantsClose: boolean;
  /** A body follows (Content-Length > 0 or Transfer-Encoding): we do not read bodies. */
  hasBody: boolean;
}

/** Why a head could not be used; the server maps these to answers. */
export const HeadError = { badRequest: 1, uriTooLong: 2 } as const;
export type HeadError = (typeof HeadError)[keyof typeof HeadError];

const CR = 13;
const LF = 10;
const SP = 32;
const TAB = 9;
const COLON = 58;

/**
 * Where the head that starts at `start` ends (the index just past its blank
 * line), or -1 if it is not complete yet. Empty lines before the request line
 * are skipped, as parseHead does. A bare LF is accepted as a line end
 * (RFC 9112 §2.2 allows it), so the head ends at the first LF followed by LF
 * or CRLF: the earliest blank line, even when a pipelined head behind it uses
 * the other line ending.
 */
export function findHeadEnd(buf: Buffer, start: number): number {
  while (start < buf.length && (buf[start] === CR || buf[start] === LF)) start++;
  for (let lf = buf.indexOf(LF, start); lf !== -1; lf = buf.indexOf(LF, lf + 1)) {
    const next = buf[lf + 1];
    if (next === LF) return lf + 2;
    if (next === CR && buf[lf + 2] === LF) return lf + 3;
  }
  return -1;
}

/** Whether the request line that starts at `start` is already longer than `max` bytes without ending. */
export function requestLineTooLong(buf: Buffer, start: number, max: number): boolean {
  while (start < buf.length && (buf[start] === CR || buf[start] === LF)) start++;
  const lf = buf.indexOf(LF, start);
  const lineLength = lf === -1 ? buf.length - start : lf - start - (lf > start && buf[lf - 1] === CR ? 1 : 0);
  return lineLength > max;
}

/**
 * Parses buf[start, end) (end just past the blank line) into `out`; returns 0
 * or a HeadError. `out` is reused across requests to avoid an allocation.
 */
export function parseHead(buf: Buffer, start: number, end: number, maxLine: number, wantForwardedFor: boolean, out: RequestHead): number {
  // Tolerate empty lines before a request line (RFC 9112 §2.2).
  while (start < end && (buf[start] === CR || buf[start] === LF)) start++;
  let lineEnd = buf.indexOf(LF, start);
  if (lineEnd === -1 || lineEnd >= end) return HeadError.badRequest;
  const requestLineEnd = buf[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd;
  if (requestLineEnd - start > maxLine) return HeadError.uriTooLong;

  const sp1 = buf.indexOf(SP, start);
  if (sp1 <= start || sp1 >= requestLineEnd) return HeadError.badRequest;
  const sp2 = buf.indexOf(SP, sp1 + 1);
  if (sp2 === -1 || sp2 >= requestLineEnd || sp2 === sp1 + 1 || requestLineEnd - sp2 !== 9) return HeadError.badRequest;
  // "HTTP/1.0" or "HTTP/1.1"
  if (buf[sp2 + 1] !== 72 || buf[sp2 + 2] !== 84 || buf[sp2 + 3] !== 84 || buf[sp2 + 4] !== 80 || buf[sp2 + 5] !== 47 ||
      buf[sp2 + 6] !== 49 || buf[sp2 + 7] !== 46 || (buf[sp2 + 8] !== 48 && buf[sp2 + 8] !== 49)) {
    return HeadError.badRequest;
  }
  out.http10 = buf[sp2 + 8] === 48;
  out.method = methodOf(buf, start, sp1);
  out.target = buf.toString('latin1', sp1 + 1, sp2);
  out.host = undefined;
  out.forwardedFor = undefined;
  out.hasBody = false;
  let close = false;
  let keepAlive = false;

  for (let at = lineEnd + 1; at < end; at = lineEnd + 1) {
    lineEnd = buf.indexOf(LF, at);
    if (lineEnd === -1 || lineEnd >= end) break;
    const stop = buf[lineEnd - 1] === CR && lineEnd - 1 >= at ? lineEnd - 1 : lineEnd;
    if (stop === at) break; // the blank line
    const first = buf[at];
    if (first === SP || first === TAB) return HeadError.badRequest; // obs-fold
    const colon = buf.indexOf(COLON, at);
    if (colon === -1 || colon >= stop || colon === at) return HeadError.badRequest;
    const last = buf[colon - 1];
    if (last === SP || last === TAB) return HeadError.badRequest;
    const nameLength = colon - at;
    switch (nameLength) {
      case 4:
        if (nameIs(buf, at, 'host')) {
          if (out.host !== undefined) return HeadError.badRequest;
          out.host = valueOf(buf, colon + 1, stop);
        }
        break;
      case 10:
        if (nameIs(buf, at, 'connection')) {
          // A comma-separated list of tokens (RFC 9110 §7.6.1).
          for (const token of valueOf(buf, colon + 1, stop).toLowerCase().split(',')) {
            const option = token.trim();
            if (option === 'close') close = true;
            else if (option === 'keep-alive') keepAlive = true;
          }
        }
        break;
      case 14:
        if (nameIs(buf, at, 'content-length')) {
          const value = valueOf(buf, colon + 1, stop);
          if (!/^\d+$/.test(value)) return HeadError.badRequest;
          if (Number(value) > 0) out.hasBody = true;
        }
        break;
      case 15:
        if (wantForwardedFor && nameIs(buf, at, 'x-forwarded-for')) {
          const value = valueOf(buf, colon + 1, stop);
          out.forwardedFor = out.forwardedFor === undefined ? value : `${out.forwardedFor},${value}`;
        }
        break;
      case 17:
        if (nameIs(buf, at, 'transfer-encoding')) out.hasBody = true;
        break;
    }
  }
  out.wantsClose = close || (out.http10 && !keepAlive);
  return 0;
}

function methodOf(buf: Buffer, start: number, sp: number): Method {
  const length = sp - start;
  if (length === 3 && buf[start] === 71 && buf[start + 1] === 69 && buf[start + 2] === 84) return Method.get;
  if (length === 4 && buf[start] === 72 && buf[start + 1] === 69 && buf[start + 2] === 65 && buf[start + 3] === 68) return Method.head;
  return Method.other;
}

/** Case-insensitive match of a header name against a lower-case ASCII name. */
function nameIs(buf: Buffer, at: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    if ((buf[at + i]! | 0x20) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

function valueOf(buf: Buffer, from: number, to: number): string {
  while (from < to && (buf[from] === SP || buf[from] === TAB)) from++;
  while (to > from && (buf[to - 1] === SP || buf[to - 1] === TAB)) to--;
  return buf.toString('latin1', from, to);
}
