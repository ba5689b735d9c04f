/**
 * The incremental request-head parser on raw bytes: a table of heads, good
 * and bad (RFC 9112 §2–7, RFC 9110 §5, §7.2), the limits, pipelining, and
 * the property that matters most for a parser fed by TCP: the same bytes give
 * the same answer however they are split into chunks (seeded random splits).
 * Heads are written as latin1 strings: one char per byte.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { FAILED, HeadError, HeadParser, Method, NEED_MORE, validHost, type RequestHead } from '../../src/http/request-head';
import { prng } from '../support/prng';

const MAX_LINE = 8192;
const MAX_HEAD = 16384;
const bytes = (s: string) => Buffer.from(s, 'latin1');

type Outcome = { error: HeadError } | { head: RequestHead; end: number } | 'incomplete';

const FIELDS = ['method', 'target', 'http10', 'host', 'forwardedFor', 'wantsClose', 'hasBody', 'contentType', 'contentEncoding', 'origin', 'expect', 'preflightMethod', 'bodyLength'] as const;

function snapshot(p: HeadParser): RequestHead {
  return Object.fromEntries(FIELDS.map((k) => [k, p[k]])) as unknown as RequestHead;
}

/** Feeds `chunks` in turn (each from 0); the first head's outcome, with `end` counted from the start of all bytes. */
function feed(parser: HeadParser, chunks: Buffer[]): Outcome {
  let before = 0;
  for (const chunk of chunks) {
    const r = parser.execute(chunk, 0, chunk.length);
    if (r === FAILED) return { error: parser.error };
    if (r !== NEED_MORE) return { head: snapshot(parser), end: before + r };
    before += chunk.length;
  }
  return 'incomplete';
}

function parse(raw: string | Buffer, options: { forwardedFor?: boolean; maxLine?: number; maxHead?: number } = {}): Outcome {
  const parser = new HeadParser(options.maxLine ?? MAX_LINE, options.maxHead ?? MAX_HEAD, options.forwardedFor ?? false);
  return feed(parser, [typeof raw === 'string' ? bytes(raw) : raw]);
}

function parsed(raw: string | Buffer, options: { forwardedFor?: boolean; maxLine?: number } = {}): RequestHead {
  const outcome = parse(raw, options);
  assert.ok(typeof outcome === 'object' && 'head' in outcome, `parsed: ${JSON.stringify(outcome)}`);
  return outcome.head;
}

describe('HeadParser: good heads', () => {
  const cases: { why: string; raw: string | Buffer; forwardedFor?: boolean; expect: Partial<RequestHead> }[] = [
    {
      why: 'GET, HTTP/1.1, Host',
      raw: 'GET /track?a=1 HTTP/1.1\r\nHost: www.skroutz.gr\r\n\r\n',
      expect: { method: Method.get, target: '/track?a=1', http10: false, host: 'www.skroutz.gr', wantsClose: false, hasBody: false, forwardedFor: undefined },
    },
    { why: 'HEAD', raw: 'HEAD /track HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: Method.head, target: '/track' } },
    { why: 'POST', raw: 'POST /track HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: Method.post } },
    { why: 'POSTS is other', raw: 'POSTS /track HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: Method.other } },
    { why: 'OPTIONX is other', raw: 'OPTIONX / HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: Method.other } },
    { why: 'OPTIONSS is other', raw: 'OPTIONSS / HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: Method.other } },
    {
      why: 'the POST and CORS fields are read',
      raw: 'POST /track HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain;charset=UTF-8\r\nCONTENT-ENCODING: gzip\r\nOrigin: https://b.example\r\nExpect: 100-continue\r\nAccess-Control-Request-Method: POST\r\nContent-Length: 3\r\n\r\n',
      expect: { method: Method.post, contentType: 'text/plain;charset=UTF-8', contentEncoding: 'gzip', origin: 'https://b.example', expect: '100-continue', preflightMethod: 'POST', bodyLength: 3, hasBody: true },
    },
    { why: 'lower-case get is other (methods are case-sensitive)', raw: 'get / HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: Method.other } },
    { why: 'GETS is other', raw: 'GETS / HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: Method.other } },
    { why: 'HEA is other', raw: 'HEA / HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: Method.other } },
    { why: 'HEADS is other', raw: 'HEADS / HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: Method.other } },
    { why: 'any token is a method', raw: "X-!#$%&'*+.^_`|~9 / HTTP/1.1\r\nHost: a\r\n\r\n", expect: { method: Method.other } },
    { why: 'OPTIONS *', raw: 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: Method.options, target: '*' } },
    { why: 'HTTP/1.0 needs no Host', raw: 'GET / HTTP/1.0\r\n\r\n', expect: { host: undefined, http10: true } },
    // Persistence (RFC 9112 §9.3).
    { why: 'HTTP/1.1 keeps alive by default', raw: 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', expect: { http10: false, wantsClose: false } },
    { why: 'HTTP/1.1 Connection: close', raw: 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', expect: { wantsClose: true } },
    { why: 'HTTP/1.1 Connection: CLOSE', raw: 'GET / HTTP/1.1\r\nHost: a\r\nconnection: CLOSE\r\n\r\n', expect: { wantsClose: true } },
    { why: 'HTTP/1.1 CONNECTION: Close', raw: 'GET / HTTP/1.1\r\nHost: a\r\nCONNECTION:Close \r\n\r\n', expect: { wantsClose: true } },
    { why: 'HTTP/1.1 Connection: keep-alive', raw: 'GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n', expect: { wantsClose: false } },
    { why: 'HTTP/1.1 Connection: Upgrade', raw: 'GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n', expect: { wantsClose: false } },
    { why: 'HTTP/1.1 Connection list with close', raw: 'GET / HTTP/1.1\r\nHost: a\r\nConnection: TE, Close\r\n\r\n', expect: { wantsClose: true } },
    { why: 'HTTP/1.0 closes by default', raw: 'GET / HTTP/1.0\r\n\r\n', expect: { http10: true, wantsClose: true } },
    { why: 'HTTP/1.0 Connection: keep-alive', raw: 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', expect: { http10: true, wantsClose: false } },
    { why: 'HTTP/1.0 Connection: Keep-Alive', raw: 'GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n', expect: { http10: true, wantsClose: false } },
    { why: 'HTTP/1.0 Connection: close', raw: 'GET / HTTP/1.0\r\nConnection: close\r\n\r\n', expect: { http10: true, wantsClose: true } },
    { why: 'HTTP/1.0 close then keep-alive headers', raw: 'GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n', expect: { wantsClose: true } },
    { why: 'a header named like Connection is not it', raw: 'GET / HTTP/1.1\r\nHost: a\r\nXonnection: close\r\n\r\n', expect: { wantsClose: false } },
    // Host (RFC 9110 §7.2).
    { why: 'Host trimmed of spaces and tabs', raw: 'GET / HTTP/1.1\r\nHost: \t a.example \t\r\n\r\n', expect: { host: 'a.example' } },
    { why: 'Host without space after colon', raw: 'GET / HTTP/1.1\r\nHost:a.example\r\n\r\n', expect: { host: 'a.example' } },
    { why: 'Host in any case, port kept', raw: 'GET / HTTP/1.1\r\nhOST: A.Example:8080\r\n\r\n', expect: { host: 'A.Example:8080' } },
    { why: 'empty Host', raw: 'GET / HTTP/1.1\r\nHost:\r\n\r\n', expect: { host: '' } },
    { why: 'Host with an empty port', raw: 'GET / HTTP/1.1\r\nHost: a:\r\n\r\n', expect: { host: 'a:' } },
    { why: 'IPv6 Host with port', raw: 'GET / HTTP/1.1\r\nReferer: http://a:80/x\r\nHost: [::1]:8080\r\n\r\n', expect: { host: '[::1]:8080' } },
    { why: 'IPv4 Host', raw: 'GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n', expect: { host: '10.0.0.1' } },
    { why: 'Host among other headers', raw: 'GET / HTTP/1.1\r\nUser-Agent: x\r\nAccept: */*\r\nHost: h\r\nReferer: r\r\n\r\n', expect: { host: 'h' } },
    { why: 'Hosts is not Host', raw: 'GET / HTTP/1.1\r\nHosts: x\r\nHost: h\r\n\r\n', expect: { host: 'h' } },
    // Absolute form (RFC 9112 §3.2.2): the host comes from the target.
    { why: 'absolute-form', raw: 'GET http://www.skroutz.gr/track?a=1 HTTP/1.1\r\nHost: www.skroutz.gr\r\n\r\n', expect: { target: '/track?a=1', host: 'www.skroutz.gr' } },
    { why: 'absolute-form wins over Host', raw: 'GET HTTPS://b.example:443/track HTTP/1.1\r\nHost: a.example\r\n\r\n', expect: { target: '/track', host: 'b.example:443' } },
    { why: 'absolute-form without a path', raw: 'GET http://b.example?a=1 HTTP/1.1\r\nHost: a\r\n\r\n', expect: { target: '/?a=1', host: 'b.example' } },
    { why: 'absolute-form, HTTP/1.0 without Host', raw: 'GET http://b.example/ HTTP/1.0\r\n\r\n', expect: { target: '/', host: 'b.example' } },
    // Body.
    { why: 'Content-Length: 0 is no body', raw: 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n', expect: { hasBody: false } },
    { why: 'Content-Length > 0', raw: 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n', expect: { hasBody: true } },
    { why: 'Content-Length with OWS', raw: 'GET / HTTP/1.1\r\nHost: a\r\ncontent-length: 1 \r\n\r\n', expect: { hasBody: true } },
    { why: 'Content-Length with leading zeros', raw: 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n', expect: { hasBody: true } },
    { why: 'Transfer-Encoding: chunked', raw: 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n', expect: { hasBody: true } },
    { why: 'TRANSFER-ENCODING: Chunked', raw: 'GET / HTTP/1.1\r\nHost: a\r\nTRANSFER-ENCODING: Chunked\r\n\r\n', expect: { hasBody: true } },
    // X-Forwarded-For.
    { why: 'X-Forwarded-For ignored unless asked', raw: 'GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n', expect: { forwardedFor: undefined } },
    { why: 'X-Forwarded-For when asked', raw: 'GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For:  1.2.3.4, 5.6.7.8 \r\n\r\n', forwardedFor: true, expect: { forwardedFor: '1.2.3.4, 5.6.7.8' } },
    {
      why: 'several X-Forwarded-For headers are joined in order',
      raw: 'GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: h\r\nx-forwarded-for: 2.2.2.2, 3.3.3.3\r\nX-FORWARDED-FOR: 4.4.4.4\r\n\r\n',
      forwardedFor: true,
      expect: { forwardedFor: '1.1.1.1,2.2.2.2, 3.3.3.3,4.4.4.4', host: 'h' },
    },
    { why: 'no X-Forwarded-For when asked', raw: 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', forwardedFor: true, expect: { forwardedFor: undefined } },
    // Leading empty lines (RFC 9112 §2.2).
    { why: 'a leading CRLF', raw: '\r\nGET /t HTTP/1.1\r\nHost: h\r\n\r\n', expect: { method: Method.get, target: '/t', host: 'h' } },
    { why: 'leading empty lines', raw: '\r\n\r\n\r\nGET /t HTTP/1.1\r\nHost: h\r\n\r\n', expect: { method: Method.get, target: '/t', host: 'h' } },
    // Field values: VCHAR, obs-text, SP, HTAB.
    { why: 'obs-text, tabs and spaces in a value', raw: bytes('GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: caf\xe9 \t x\xff\r\n\r\n'), expect: { host: 'h' } },
    { why: 'visible ASCII in the target', raw: 'GET /track?q=%20"<>{}|\\^`[]#~ HTTP/1.1\r\nHost: h\r\n\r\n', expect: { target: '/track?q=%20"<>{}|\\^`[]#~' } },
  ];
  for (const c of cases) {
    test(c.why, () => {
      const head = parsed(c.raw, { forwardedFor: c.forwardedFor ?? false });
      const picked = Object.fromEntries(Object.keys(c.expect).map((k) => [k, head[k as keyof RequestHead]]));
      assert.deepEqual(picked, c.expect);
    });
  }
});

const BAD = HeadError.badRequest;
export const BAD_HEADS: [why: string, raw: string, error: HeadError][] = [
  ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\n\r\n', BAD],
  ['duplicate Host', 'GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n', BAD],
  ['duplicate Host, other case', 'GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n', BAD],
  ['Host port not digits', 'GET / HTTP/1.1\r\nHost: a:xyz\r\n\r\n', BAD],
  ['Host with a space inside', 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n', BAD],
  ['Host with userinfo', 'GET / HTTP/1.1\r\nHost: u@a\r\n\r\n', BAD],
  ['Host with a path', 'GET / HTTP/1.1\r\nHost: a/b\r\n\r\n', BAD],
  ['Host with obs-text', 'GET / HTTP/1.1\r\nHost: caf\xe9\r\n\r\n', BAD],
  ['Host, two ports', 'GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n', BAD],
  ['Host, unclosed IPv6', 'GET / HTTP/1.1\r\nHost: [::1\r\n\r\n', BAD],
  ['Host, bad percent-encoding', 'GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n', BAD],
  ['absolute-form with userinfo', 'GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  ['absolute-form without host', 'GET http:///t HTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  ['absolute-form, other scheme', 'GET ftp://a/t HTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  ['target neither origin nor absolute form', 'GET track HTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  ['missing version', 'GET /track\r\nHost: a\r\n\r\n', BAD],
  ['missing target and version', 'GET\r\n\r\n', BAD],
  ['empty target', 'GET  HTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  ['two spaces before the target', 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  ['empty method', ' / HTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  ['space in the target', 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  ['TAB in the target', 'GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  ['NUL in the target', 'GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  ['0x01 in the target', 'GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  ['DEL in the target', 'GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  ['bare CR in the target', 'GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  ['obs-text in the target', 'GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  ['a non-token method', 'G(T / HTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  ['trailing space after the version', 'GET / HTTP/1.1 \r\nHost: a\r\n\r\n', BAD],
  ['HTTP/1.2: a version we do not speak', 'GET / HTTP/1.2\r\nHost: a\r\n\r\n', HeadError.versionNotSupported],
  ['HTTP/2.0', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', HeadError.versionNotSupported],
  ['HTTP/0.9', 'GET / HTTP/0.9\r\n\r\n', HeadError.versionNotSupported],
  ['lower-case http', 'GET / http/1.1\r\nHost: a\r\n\r\n', BAD],
  ['HTTP/1.10', 'GET / HTTP/1.10\r\nHost: a\r\n\r\n', BAD],
  ['HTTP/1', 'GET / HTTP/1\r\nHost: a\r\n\r\n', BAD],
  ['not HTTP', 'GET / XTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  // Line endings (RFC 9112 §2.2): CRLF only.
  ['bare LF after the request line', 'GET / HTTP/1.1\nHost: a\r\n\r\n', BAD],
  ['bare LF after a field', 'GET / HTTP/1.1\r\nHost: a\n\r\n', BAD],
  ['bare LF blank line', 'GET / HTTP/1.1\r\nHost: a\r\n\n', BAD],
  ['bare-LF head', 'GET / HTTP/1.1\nHost: a\n\n', BAD],
  ['bare CR in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: 1\r2\r\n\r\n', BAD],
  ['bare CR separating fields', 'GET / HTTP/1.1\r\nHost: a\r\nFoo: 1\rBar: 2\r\n\r\n', BAD],
  ['a field line starting with CR', 'GET / HTTP/1.1\r\nHost: a\r\n\rX: 1\r\n\r\n', BAD],
  ['bare CR in a name', 'GET / HTTP/1.1\r\nHost: a\r\nX\rForwarded\rFor: 1\r\n\r\n', BAD],
  ['bare CR before the request line', '\rGET / HTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  ['bare LF before the request line', '\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', BAD],
  // Fields (RFC 9112 §5, RFC 9110 §5.5).
  ['obs-fold with space', 'GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: a\r\n b: c\r\n\r\n', BAD],
  ['obs-fold with tab', 'GET / HTTP/1.1\r\nHost: a\r\nReferer: a\r\n\tb:c\r\n\r\n', BAD],
  ['header without colon', 'GET / HTTP/1.1\r\nHost a\r\n\r\n', BAD],
  ['colon only on a later line does not count', 'GET / HTTP/1.1\r\nNoColon\r\nHost: a\r\n\r\n', BAD],
  ['empty header name', 'GET / HTTP/1.1\r\nHost: a\r\n: a\r\n\r\n', BAD],
  ['space before colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', BAD],
  ['tab before colon', 'GET / HTTP/1.1\r\nHost: a\r\nX-Thing\t: a\r\n\r\n', BAD],
  ['a non-token name', 'GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n', BAD],
  ['NUL in a name', 'GET / HTTP/1.1\r\nHost: a\r\nX\x00: 1\r\n\r\n', BAD],
  ['NUL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n', BAD],
  ['0x01 in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n', BAD],
  ['DEL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n', BAD],
  // Message length (RFC 9112 §6).
  ['non-numeric Content-Length', 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n', BAD],
  ['negative Content-Length', 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', BAD],
  ['Content-Length list', 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n', BAD],
  ['empty Content-Length', 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n', BAD],
  ['two equal Content-Lengths', 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n', BAD],
  ['two different Content-Lengths', 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', BAD],
  ['a 23-digit Content-Length', 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 12345678901234567890123\r\n\r\n', BAD],
  ['Content-Length with Transfer-Encoding', 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', BAD],
  ['Transfer-Encoding before Content-Length', 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n', BAD],
  ['chunked twice', 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', BAD],
  ['chunked twice, two headers', 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', BAD],
  ['chunked not last', 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', BAD],
  ['empty Transfer-Encoding', 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n', BAD],
  ['Transfer-Encoding in HTTP/1.0', 'GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', BAD],
  ['xchunked', 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n', HeadError.notImplemented],
  ['gzip, chunked', 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', HeadError.notImplemented],
  ['obfuscated chunked', 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n', HeadError.notImplemented],
];

describe('HeadParser: bad heads', () => {
  for (const [why, raw, error] of BAD_HEADS) {
    test(why, () => {
      assert.deepEqual(parse(raw), { error });
    });
  }
});

describe('validHost', () => {
  const good = ['', 'a', 'www.skroutz.gr', 'www.skroutz.gr.', 'a:80', 'a:', '10.0.0.1:8080', '[::1]', '[::1]:80', '[v1.x]', 'a%41b', "a!$&'()*+,;=b"];
  const bad = ['a:xyz', 'a b', 'a@b', 'a/b', '[::1', '[::1]x', '[::1]:x', 'a:1:2', 'a%4', 'a?b', 'a#b', 'caf\xe9', '[zz]', 'a\tb'];
  for (const host of good) test(`valid: ${JSON.stringify(host)}`, () => assert.equal(validHost(host), true));
  for (const host of bad) test(`invalid: ${JSON.stringify(host)}`, () => assert.equal(validHost(host), false));
});

describe('HeadParser: limits', () => {
  const line = (targetLength: number) => `GET /${'a'.repeat(targetLength - 1)} HTTP/1.1`;

  test('a request line of exactly the limit is fine', () => {
    const head = parsed(`${line(100)}\r\nHost: h\r\n\r\n`, { maxLine: line(100).length });
    assert.equal(head.target.length, 100);
  });

  test('one byte over the limit → uriTooLong', () => {
    assert.deepEqual(parse(`${line(101)}\r\nHost: h\r\n\r\n`, { maxLine: line(100).length }), { error: HeadError.uriTooLong });
  });

  test('an unfinished request line over the limit → uriTooLong before the line ends', () => {
    assert.deepEqual(parse(`GET /${'a'.repeat(200)}`, { maxLine: 100 }), { error: HeadError.uriTooLong });
    assert.equal(parse(`GET /${'a'.repeat(90)}`, { maxLine: 100 }), 'incomplete');
  });

  test('long headers do not count against the request line', () => {
    parsed(`GET / HTTP/1.1\r\nCookie: ${'c'.repeat(10_000)}\r\nHost: h\r\n\r\n`, { maxLine: 100 });
  });

  test('uriTooLong wins over a bad version', () => {
    assert.deepEqual(parse(`GET /${'a'.repeat(200)}\r\n\r\n`, { maxLine: 100 }), { error: HeadError.uriTooLong });
  });

  test('a head of exactly maxHeaderBytes is fine; one byte more → headerTooLarge', () => {
    const head = (size: number) => {
      const start = 'GET / HTTP/1.1\r\nHost: h\r\nX: ';
      return `${start}${'x'.repeat(size - start.length - 4)}\r\n\r\n`;
    };
    assert.equal(head(1000).length, 1000);
    assert.ok(typeof parse(head(1000), { maxHead: 1000 }) === 'object' && 'head' in (parse(head(1000), { maxHead: 1000 }) as object));
    assert.deepEqual(parse(head(1001), { maxHead: 1000 }), { error: HeadError.headerTooLarge });
    assert.deepEqual(parse(head(1001).slice(0, 1000), { maxHead: 1000 }), 'incomplete', 'not yet over');
  });

  test('a version other than 1.0/1.1 is known at its minor digit: 505 before the line ends', () => {
    assert.deepEqual(parse('GET / HTTP/5.6'), { error: HeadError.versionNotSupported });
    assert.deepEqual(parse('GET / HTTP/1.2'), { error: HeadError.versionNotSupported });
    assert.equal(parse('GET / HTTP/1.1'), 'incomplete');
  });

  test('leading empty lines count against the head, not against the request line', () => {
    assert.deepEqual(parse(`${'\r\n'.repeat(600)}GET / HTTP/1.1\r\nHost: h\r\n\r\n`, { maxHead: 1000, maxLine: 20 }), { error: HeadError.headerTooLarge });
    parsed(`${'\r\n'.repeat(100)}GET / HTTP/1.1\r\nHost: h\r\n\r\n`, { maxLine: 14 });
  });
});

describe('HeadParser: chunks, pipelining and reuse', () => {
  test('pipelined heads in one buffer, read one after the other with reset()', () => {
    const buf = bytes(
      'GET /1 HTTP/1.1\r\nHost: one\r\nContent-Length: 5\r\nX-Forwarded-For: 9.9.9.9\r\nConnection: close\r\n\r\n' +
        'HEAD /2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n' +
        'GET /3 HTTP/1.1\r\nHost: three\r\n\r\n' +
        '\r\n',
    );
    const p = new HeadParser(MAX_LINE, MAX_HEAD, true);
    const end1 = p.execute(buf, 0, buf.length);
    assert.ok(end1 > 0);
    assert.deepEqual(snapshot(p), { method: Method.get, target: '/1', http10: false, host: 'one', forwardedFor: '9.9.9.9', wantsClose: true, hasBody: true, contentType: undefined, contentEncoding: undefined, origin: undefined, expect: undefined, preflightMethod: undefined, bodyLength: 5 });
    p.reset();
    const end2 = p.execute(buf, end1, buf.length);
    // Nothing of the first head is left over.
    assert.deepEqual(snapshot(p), { method: Method.head, target: '/2', http10: true, host: undefined, forwardedFor: undefined, wantsClose: false, hasBody: false, contentType: undefined, contentEncoding: undefined, origin: undefined, expect: undefined, preflightMethod: undefined, bodyLength: 0 });
    p.reset();
    const end3 = p.execute(buf, end2, buf.length);
    assert.equal(end3, buf.length - 2);
    assert.deepEqual(snapshot(p), { method: Method.get, target: '/3', http10: false, host: 'three', forwardedFor: undefined, wantsClose: false, hasBody: false, contentType: undefined, contentEncoding: undefined, origin: undefined, expect: undefined, preflightMethod: undefined, bodyLength: 0 });
    p.reset();
    // A trailing CRLF: consumed, and no head is under way.
    assert.equal(p.execute(buf, end3, buf.length), NEED_MORE);
    assert.equal(p.started, false);
  });

  test('a head read from the middle of a buffer reads nothing past its end', () => {
    const buf = bytes('xxxxGET /t HTTP/1.1\r\nHost: h\r\n\r\nHost: other\r\n\r\n');
    const p = new HeadParser(MAX_LINE, MAX_HEAD, false);
    assert.equal(p.execute(buf, 4, buf.length), 32);
    assert.equal(p.target, '/t');
    assert.equal(p.host, 'h');
  });

  test('started: false before and between heads (empty lines), true once a request line begins', () => {
    const p = new HeadParser(MAX_LINE, MAX_HEAD, false);
    assert.equal(p.started, false);
    assert.equal(p.execute(bytes('\r\n\r'), 0, 3), NEED_MORE);
    assert.equal(p.started, false);
    assert.equal(p.execute(bytes('\nG'), 0, 2), NEED_MORE);
    assert.equal(p.started, true);
  });
});

/** Splits `buf` at `cuts` random points (empty pieces included: a zero-length chunk must change nothing). */
function randomSplit(buf: Buffer, random: () => number): Buffer[] {
  const cuts = Math.floor(random() * Math.min(buf.length, 40));
  const points = Array.from({ length: cuts }, () => Math.floor(random() * (buf.length + 1))).sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    pieces.push(buf.subarray(at, p));
    at = p;
  }
  pieces.push(buf.subarray(at));
  return pieces;
}

describe('HeadParser: the same bytes give the same answer under every split (property, seeded)', () => {
  const corpus: Buffer[] = [
    ...BAD_HEADS.map(([, raw]) => bytes(raw)),
    bytes('GET /track?a=1 HTTP/1.1\r\nHost: www.skroutz.gr\r\nUser-Agent: Mozilla/5.0\r\nX-Forwarded-For: 1.2.3.4\r\nConnection: close\r\n\r\n'),
    bytes(`GET /${'a'.repeat(300)} HTTP/1.1\r\nHost: h\r\n\r\n`),
    bytes(`GET / HTTP/1.1\r\nHost: h\r\nX: ${'x'.repeat(1200)}\r\n\r\n`),
    bytes('\r\n\r\nGET http://www.skroutz.gr/track HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'),
  ];

  test('whole vs split, byte-identical outcomes; random mutations too', () => {
    const random = prng(0x5eed10);
    const alphabet = bytes('\r\n :\t\x00\x7f\xff/aH1.,');
    let runs = 0;
    for (let round = 0; round < 3000; round++) {
      let input = corpus[round % corpus.length]!;
      if (round >= corpus.length * 10) {
        // A random mutation of a corpus head: insert, delete or replace one byte.
        const at = Math.floor(random() * input.length);
        const b = alphabet[Math.floor(random() * alphabet.length)]!;
        const kind = Math.floor(random() * 3);
        const copy = Buffer.from(input);
        input =
          kind === 0 ? Buffer.concat([copy.subarray(0, at), Buffer.from([b]), copy.subarray(at)])
          : kind === 1 ? Buffer.concat([copy.subarray(0, at), copy.subarray(at + 1)])
          : (copy[at] = b, copy);
      }
      for (const [maxLine, maxHead] of [[MAX_LINE, MAX_HEAD], [120, 400]] as const) {
        const whole = feed(new HeadParser(maxLine, maxHead, true), [input]);
        const split = feed(new HeadParser(maxLine, maxHead, true), randomSplit(input, random));
        assert.deepEqual(split, whole, `input ${JSON.stringify(input.toString('latin1'))} (round ${round}, limits ${maxLine}/${maxHead})`);
        runs++;
      }
    }
    assert.equal(runs, 6000);
  });

  test('byte by byte: every head of the corpus', () => {
    for (const input of corpus) {
      const whole = feed(new HeadParser(120, 400, true), [input]);
      const pieces = [...input].map((b) => Buffer.from([b]));
      assert.deepEqual(feed(new HeadParser(120, 400, true), pieces), whole, JSON.stringify(input.toString('latin1')));
    }
  });
});
