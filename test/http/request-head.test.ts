/**
 * The request head parser on raw bytes: where a head ends, when a request
 * line is too long, and what parseHead makes of a table of heads, good and
 * bad (RFC 9112 §2–5). Heads are written as latin1 strings: one char per byte.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { findHeadEnd, HeadError, Method, parseHead, requestLineTooLong, type RequestHead } from '../../src/http/request-head';

const MAX_LINE = 8192;
const bytes = (s: string) => Buffer.from(s, 'latin1');

function emptyHead(): RequestHead {
  return { method: Method.other, target: '', http10: false, host: undefined, forwardedFor: undefined, wantsClose: false, hasBody: false };
}

/** Finds the end of the head at 0 and parses it; returns the error or the head. */
function parse(raw: string | Buffer, options: { forwardedFor?: boolean; maxLine?: number } = {}): RequestHead | HeadError {
  const buf = typeof raw === 'string' ? bytes(raw) : raw;
  const end = findHeadEnd(buf, 0);
  assert.notEqual(end, -1, `head is complete: ${JSON.stringify(buf.toString('latin1'))}`);
  const out = emptyHead();
  const error = parseHead(buf, 0, end, options.maxLine ?? MAX_LINE, options.forwardedFor ?? false, out);
  return error === 0 ? out : (error as HeadError);
}

describe('findHeadEnd', () => {
  const cases: [why: string, raw: string, start: number, end: number][] = [
    ['CRLF head', 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', 0, 27],
    ['request line only', 'GET / HTTP/1.1\r\n\r\n', 0, 18],
    ['incomplete: no blank line', 'GET / HTTP/1.1\r\nHost: a\r\n', 0, -1],
    ['incomplete: half a blank line', 'GET / HTTP/1.1\r\nHost: a\r\n\r', 0, -1],
    ['incomplete: empty', '', 0, -1],
    ['bare LF head', 'GET / HTTP/1.1\nHost: a\n\n', 0, 24],
    ['CRLF lines, bare LF blank line', 'GET / HTTP/1.1\r\nHost: a\r\n\n', 0, 26],
    ['bare LF lines, CRLF blank line', 'GET / HTTP/1.1\nHost: a\n\r\n', 0, 25],
    ['pipelined: the first head ends first', 'GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n', 0, 19],
    ['pipelined: the second head from its start', 'GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n', 19, 38],
    ['pipelined: bare LF head before a CRLF head', 'GET /1 HTTP/1.1\nHost: a\n\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n', 0, 25],
    ['pipelined: CRLF head before a bare LF head', 'GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\nHost: a\n\n', 0, 28],
    ['body after the head is not part of it', 'GET / HTTP/1.1\r\nContent-Length: 4\r\n\r\n\r\n\r\n', 0, 37],
    ['leading empty line', '\r\nGET / HTTP/1.1\r\n\r\n', 0, 20],
    ['leading empty lines, mixed', '\r\n\n\r\nGET / HTTP/1.1\r\n\r\n', 0, 23],
    ['only empty lines: not a head yet', '\r\n\r\n', 0, -1],
  ];
  for (const [why, raw, start, end] of cases) {
    test(why, () => {
      assert.equal(findHeadEnd(bytes(raw), start), end);
    });
  }
});

describe('requestLineTooLong', () => {
  const cases: [why: string, raw: string, start: number, max: number, tooLong: boolean][] = [
    ['unfinished line within max', 'GET /aaaa', 0, 9, false],
    ['unfinished line over max', 'GET /aaaaa', 0, 9, true],
    ['finished line at max (CRLF not counted)', 'GET /aaaa\r\nHost: a', 0, 9, false],
    ['finished line over max', 'GET /aaaaa\r\n', 0, 9, true],
    ['finished with bare LF at max', 'GET /aaaa\n', 0, 9, false],
    ['from an offset', 'GET / HTTP/1.1\r\n\r\nGET /aaaaa', 18, 9, true],
    ['from an offset, within max', 'GET / HTTP/1.1\r\n\r\nGET /aaaa', 18, 9, false],
    ['empty', '', 0, 0, false],
  ];
  for (const [why, raw, start, max, tooLong] of cases) {
    test(why, () => {
      assert.equal(requestLineTooLong(bytes(raw), start, max), tooLong);
    });
  }
});

describe('parseHead: good heads', () => {
  const cases: { why: string; raw: string | Buffer; forwardedFor?: boolean; expect: Partial<RequestHead> }[] = [
    {
      why: 'GET, HTTP/1.1, Host',
      raw: 'GET /track?a=1 HTTP/1.1\r\nHost: www.skroutz.gr\r\n\r\n',
      expect: { method: Method.get, target: '/track?a=1', http10: false, host: 'www.skroutz.gr', wantsClose: false, hasBody: false, forwardedFor: undefined },
    },
    { why: 'HEAD', raw: 'HEAD /track HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: Method.head, target: '/track' } },
    { why: 'POST is other', raw: 'POST /track HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: Method.other } },
    { why: 'lower-case get is other (methods are case-sensitive)', raw: 'get / HTTP/1.1\r\n\r\n', expect: { method: Method.other } },
    { why: 'GETS is other', raw: 'GETS / HTTP/1.1\r\n\r\n', expect: { method: Method.other } },
    { why: 'HEA is other', raw: 'HEA / HTTP/1.1\r\n\r\n', expect: { method: Method.other } },
    { why: 'OPTIONS *', raw: 'OPTIONS * HTTP/1.1\r\n\r\n', expect: { method: Method.other, target: '*' } },
    { why: 'no Host header', raw: 'GET / HTTP/1.1\r\n\r\n', expect: { host: undefined } },
    // Persistence (RFC 9112 §9.3).
    { why: 'HTTP/1.1 keeps alive by default', raw: 'GET / HTTP/1.1\r\n\r\n', expect: { http10: false, wantsClose: false } },
    { why: 'HTTP/1.1 Connection: close', raw: 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n', expect: { wantsClose: true } },
    { why: 'HTTP/1.1 Connection: CLOSE', raw: 'GET / HTTP/1.1\r\nconnection: CLOSE\r\n\r\n', expect: { wantsClose: true } },
    { why: 'HTTP/1.1 CONNECTION: Close', raw: 'GET / HTTP/1.1\r\nCONNECTION:Close \r\n\r\n', expect: { wantsClose: true } },
    { why: 'HTTP/1.1 Connection: keep-alive', raw: 'GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n', expect: { wantsClose: false } },
    { why: 'HTTP/1.1 Connection: Upgrade', raw: 'GET / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n', expect: { wantsClose: false } },
    { why: 'HTTP/1.1 Connection list with close', raw: 'GET / HTTP/1.1\r\nConnection: TE, Close\r\n\r\n', expect: { wantsClose: true } },
    { why: 'HTTP/1.0 closes by default', raw: 'GET / HTTP/1.0\r\n\r\n', expect: { http10: true, wantsClose: true } },
    { why: 'HTTP/1.0 Connection: keep-alive', raw: 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', expect: { http10: true, wantsClose: false } },
    { why: 'HTTP/1.0 Connection: Keep-Alive', raw: 'GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n', expect: { http10: true, wantsClose: false } },
    { why: 'HTTP/1.0 Connection: close', raw: 'GET / HTTP/1.0\r\nConnection: close\r\n\r\n', expect: { http10: true, wantsClose: true } },
    { why: 'HTTP/1.0 close then keep-alive headers', raw: 'GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n', expect: { wantsClose: true } },
    { why: 'a header named like Connection is not it', raw: 'GET / HTTP/1.1\r\nXonnection: close\r\n\r\n', expect: { wantsClose: false } },
    // Host.
    { why: 'Host trimmed of spaces and tabs', raw: 'GET / HTTP/1.1\r\nHost: \t a.example \t\r\n\r\n', expect: { host: 'a.example' } },
    { why: 'Host without space after colon', raw: 'GET / HTTP/1.1\r\nHost:a.example\r\n\r\n', expect: { host: 'a.example' } },
    { why: 'Host in any case, port kept', raw: 'GET / HTTP/1.1\r\nhOST: A.Example:8080\r\n\r\n', expect: { host: 'A.Example:8080' } },
    { why: 'empty Host', raw: 'GET / HTTP/1.1\r\nHost:\r\n\r\n', expect: { host: '' } },
    { why: 'Host among other headers', raw: 'GET / HTTP/1.1\r\nUser-Agent: x\r\nAccept: */*\r\nHost: h\r\nReferer: r\r\n\r\n', expect: { host: 'h' } },
    { why: 'Hosts is not Host', raw: 'GET / HTTP/1.1\r\nHosts: x\r\nHost: h\r\n\r\n', expect: { host: 'h' } },
    // Body.
    { why: 'Content-Length: 0 is no body', raw: 'GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n', expect: { hasBody: false } },
    { why: 'Content-Length > 0', raw: 'GET / HTTP/1.1\r\nContent-Length: 12\r\n\r\n', expect: { hasBody: true } },
    { why: 'content-length in lower case', raw: 'GET / HTTP/1.1\r\ncontent-length:1\r\n\r\n', expect: { hasBody: true } },
    { why: 'Transfer-Encoding', raw: 'GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n', expect: { hasBody: true } },
    { why: 'TRANSFER-ENCODING', raw: 'GET / HTTP/1.1\r\nTRANSFER-ENCODING: gzip, chunked\r\n\r\n', expect: { hasBody: true } },
    // X-Forwarded-For.
    { why: 'X-Forwarded-For ignored unless asked', raw: 'GET / HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n', expect: { forwardedFor: undefined } },
    { why: 'X-Forwarded-For when asked', raw: 'GET / HTTP/1.1\r\nX-Forwarded-For:  1.2.3.4, 5.6.7.8 \r\n\r\n', forwardedFor: true, expect: { forwardedFor: '1.2.3.4, 5.6.7.8' } },
    {
      why: 'several X-Forwarded-For headers are joined in order',
      raw: 'GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: h\r\nx-forwarded-for: 2.2.2.2, 3.3.3.3\r\nX-FORWARDED-FOR: 4.4.4.4\r\n\r\n',
      forwardedFor: true,
      expect: { forwardedFor: '1.1.1.1,2.2.2.2, 3.3.3.3,4.4.4.4', host: 'h' },
    },
    { why: 'no X-Forwarded-For when asked', raw: 'GET / HTTP/1.1\r\n\r\n', forwardedFor: true, expect: { forwardedFor: undefined } },
    // Line endings and leading empty lines (RFC 9112 §2.2).
    { why: 'bare-LF head', raw: 'GET /t HTTP/1.0\nHost: h\nConnection: keep-alive\n\n', expect: { target: '/t', http10: true, host: 'h', wantsClose: false } },
    { why: 'mixed line endings', raw: 'GET /t HTTP/1.1\nHost: h\r\nConnection: close\n\r\n', expect: { host: 'h', wantsClose: true } },
    { why: 'a leading CRLF', raw: '\r\nGET /t HTTP/1.1\r\nHost: h\r\n\r\n', expect: { method: Method.get, target: '/t', host: 'h' } },
    { why: 'leading empty lines', raw: '\r\n\r\n\nGET /t HTTP/1.1\r\nHost: h\r\n\r\n', expect: { method: Method.get, target: '/t', host: 'h' } },
    // Targets are kept byte for byte.
    { why: 'odd bytes in the target as latin1', raw: bytes('GET /track?q=\xff\x80\x00%20\x7f HTTP/1.1\r\n\r\n'), expect: { target: '/track?q=\xff\x80\x00%20\x7f' } },
    { why: 'UTF-8 in the target as latin1', raw: Buffer.from('GET /track?q=é☃ HTTP/1.1\r\n\r\n', 'utf8'), expect: { target: Buffer.from('/track?q=é☃', 'utf8').toString('latin1') } },
    { why: 'latin1 Host value', raw: bytes('GET / HTTP/1.1\r\nHost: caf\xe9.example\r\n\r\n'), expect: { host: 'caf\xe9.example' } },
    { why: 'header value with colons', raw: 'GET / HTTP/1.1\r\nReferer: http://a:80/x\r\nHost: [::1]:8080\r\n\r\n', expect: { host: '[::1]:8080' } },
  ];
  for (const c of cases) {
    test(c.why, () => {
      const head = parse(c.raw, { forwardedFor: c.forwardedFor ?? false });
      assert.equal(typeof head, 'object', `parsed, got error ${JSON.stringify(head)}`);
      const picked = Object.fromEntries(Object.keys(c.expect).map((k) => [k, (head as RequestHead)[k as keyof RequestHead]]));
      assert.deepEqual(picked, c.expect);
    });
  }
});

describe('parseHead: bad heads', () => {
  const cases: [why: string, raw: string, error: HeadError][] = [
    ['duplicate Host', 'GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n', HeadError.badRequest],
    ['duplicate Host, other case', 'GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n', HeadError.badRequest],
    ['missing version', 'GET /track\r\nHost: a\r\n\r\n', HeadError.badRequest],
    ['missing target and version', 'GET\r\n\r\n', HeadError.badRequest],
    ['empty target', 'GET  HTTP/1.1\r\n\r\n', HeadError.badRequest],
    ['empty method', ' / HTTP/1.1\r\n\r\n', HeadError.badRequest],
    ['space in the target', 'GET /a b HTTP/1.1\r\n\r\n', HeadError.badRequest],
    ['trailing space after the version', 'GET / HTTP/1.1 \r\n\r\n', HeadError.badRequest],
    ['HTTP/2.0', 'GET / HTTP/2.0\r\n\r\n', HeadError.badRequest],
    ['HTTP/1.2', 'GET / HTTP/1.2\r\n\r\n', HeadError.badRequest],
    ['HTTP/0.9 style', 'GET / HTTP/0.9\r\n\r\n', HeadError.badRequest],
    ['lower-case http', 'GET / http/1.1\r\n\r\n', HeadError.badRequest],
    ['HTTP/1.10', 'GET / HTTP/1.10\r\n\r\n', HeadError.badRequest],
    ['not HTTP', 'GET / XTTP/1.1\r\n\r\n', HeadError.badRequest],
    // The folded lines hold a colon, so only the fold itself makes them bad.
    ['obs-fold with space', 'GET / HTTP/1.1\r\nUser-Agent: a\r\n b: c\r\n\r\n', HeadError.badRequest],
    ['obs-fold with tab', 'GET / HTTP/1.1\r\nReferer: a\r\n\tb:c\r\n\r\n', HeadError.badRequest],
    ['header without colon', 'GET / HTTP/1.1\r\nHost a\r\n\r\n', HeadError.badRequest],
    ['colon only on a later line does not count', 'GET / HTTP/1.1\r\nNoColon\r\nHost: a\r\n\r\n', HeadError.badRequest],
    ['empty header name', 'GET / HTTP/1.1\r\n: a\r\n\r\n', HeadError.badRequest],
    ['space before colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', HeadError.badRequest],
    ['tab before colon', 'GET / HTTP/1.1\r\nX-Thing\t: a\r\n\r\n', HeadError.badRequest],
    ['non-numeric Content-Length', 'GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n', HeadError.badRequest],
    ['negative Content-Length', 'GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n', HeadError.badRequest],
    ['Content-Length list', 'GET / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n', HeadError.badRequest],
    ['empty Content-Length', 'GET / HTTP/1.1\r\nContent-Length:\r\n\r\n', HeadError.badRequest],
    ['bare-LF head with a bad header', 'GET / HTTP/1.1\nHost a\n\n', HeadError.badRequest],
  ];
  for (const [why, raw, error] of cases) {
    test(why, () => {
      assert.equal(parse(raw), error);
    });
  }
});

describe('parseHead: request line length', () => {
  const line = (targetLength: number) => `GET /${'a'.repeat(targetLength - 1)} HTTP/1.1`;

  test('a request line of exactly the limit is fine', () => {
    const raw = `${line(100)}\r\nHost: h\r\n\r\n`;
    const head = parse(raw, { maxLine: line(100).length });
    assert.equal(typeof head, 'object');
    assert.equal((head as RequestHead).target.length, 100);
  });

  test('one byte over the limit → uriTooLong', () => {
    assert.equal(parse(`${line(101)}\r\nHost: h\r\n\r\n`, { maxLine: line(100).length }), HeadError.uriTooLong);
  });

  test('bare-LF line over the limit → uriTooLong', () => {
    assert.equal(parse(`${line(101)}\nHost: h\n\n`, { maxLine: line(100).length }), HeadError.uriTooLong);
  });

  test('long headers do not count against the request line', () => {
    const head = parse(`GET / HTTP/1.1\r\nCookie: ${'c'.repeat(10_000)}\r\nHost: h\r\n\r\n`, { maxLine: 100 });
    assert.equal(typeof head, 'object');
  });

  test('uriTooLong wins over a bad version', () => {
    assert.equal(parse(`GET /${'a'.repeat(200)}\r\n\r\n`, { maxLine: 100 }), HeadError.uriTooLong);
  });
});

describe('parseHead: buffers and reuse', () => {
  test('pipelined heads in one buffer, parsed one after the other into one object', () => {
    const buf = bytes(
      'GET /1 HTTP/1.1\r\nHost: one\r\nContent-Length: 5\r\nX-Forwarded-For: 9.9.9.9\r\nConnection: close\r\n\r\n' +
        'HEAD /2 HTTP/1.0\nConnection: keep-alive\n\n' +
        'GET /3 HTTP/1.1\r\n\r\n',
    );
    const out = emptyHead();
    const end1 = findHeadEnd(buf, 0);
    assert.equal(parseHead(buf, 0, end1, MAX_LINE, true, out), 0);
    assert.deepEqual(out, { method: Method.get, target: '/1', http10: false, host: 'one', forwardedFor: '9.9.9.9', wantsClose: true, hasBody: true });

    const end2 = findHeadEnd(buf, end1);
    assert.equal(parseHead(buf, end1, end2, MAX_LINE, true, out), 0);
    // Nothing of the first head is left over.
    assert.deepEqual(out, { method: Method.head, target: '/2', http10: true, host: undefined, forwardedFor: undefined, wantsClose: false, hasBody: false });

    const end3 = findHeadEnd(buf, end2);
    assert.equal(end3, buf.length);
    assert.equal(parseHead(buf, end2, end3, MAX_LINE, true, out), 0);
    assert.deepEqual(out, { method: Method.get, target: '/3', http10: false, host: undefined, forwardedFor: undefined, wantsClose: false, hasBody: false });
    assert.equal(findHeadEnd(buf, end3), -1);
  });

  test('a head in the middle of a larger buffer reads nothing past its end', () => {
    const buf = bytes('xxxxGET /t HTTP/1.1\r\nHost: h\r\n\r\nHost: other\r\n\r\n');
    const out = emptyHead();
    const end = findHeadEnd(buf, 4);
    assert.equal(parseHead(buf, 4, end, MAX_LINE, false, out), 0);
    assert.equal(out.target, '/t');
    assert.equal(out.host, 'h');
  });

  test('a head cut before its blank line is a bad request, not a crash', () => {
    const buf = bytes('GET / HTTP/1.1\r\nHost: h\r\n');
    assert.equal(parseHead(buf, 0, 10, MAX_LINE, false, emptyHead()), HeadError.badRequest);
  });
});
