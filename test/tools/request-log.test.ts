/**
 * Access-log lines → requests to replay (src/tools/request-log.ts): a table
 * per format, malformed lines with their reasons, odd bytes in paths, and
 * the line splitter over real streams and files.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { escapeBytes, LineReader, parseRequestLine, requestBytes, type ParsedLine } from '../../src/tools/request-log';
import { tempDir } from '../support/scratchd';

/** A line as the bytes a log file holds (latin1: one char per byte). */
const bytes = (...parts: (string | number[])[]) =>
  parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p)).toString('latin1')).join('');

const NGINX = (request: string, tail = ' 200 43 "https://ref/" "Mozilla/5.0 (X11; Linux x86_64)"') =>
  `1.2.3.4 - - [29/Nov/2026:22:41:03 +0200] "${request}"${tail}`;
const HAPROXY = (captures: string, request: string) =>
  `Nov 29 22:41:03 lb1 haproxy[14389]: 10.0.1.2:33317 [29/Nov/2026:22:41:03.655] http-in scratchd/srv1 10/0/30/69/109 200 43 - - ---- 1/1/1/1/0 0/0 ${captures}"${request}"`;

type Expect = { host: string; target: string; method?: 'GET' | 'HEAD'; format: string } | { malformed: RegExp } | { skip: RegExp } | 'empty';

const cases: { name: string; line: string; host?: string; keepEscapes?: boolean; expect: Expect }[] = [
  // simple
  { name: 'simple', line: 'www.skroutz.gr /track?foo=bar', expect: { host: 'www.skroutz.gr', target: '/track?foo=bar', format: 'simple' } },
  { name: 'simple, tabs and extra blanks', line: '  www.skroutz.gr\t /track?a[]=1&a[]=2  ', expect: { host: 'www.skroutz.gr', target: '/track?a[]=1&a[]=2', format: 'simple' } },
  { name: 'simple, path alone with --host', line: '/track?x=1', host: 'www.alve.com', expect: { host: 'www.alve.com', target: '/track?x=1', format: 'simple' } },
  { name: 'simple, path alone without --host', line: '/track?x=1', expect: { malformed: /no Host/ } },
  { name: 'simple, raw UTF-8 and odd bytes kept byte for byte', line: bytes('www.skroutz.gr /track?q=', [0xce, 0xb1, 0xff], '&p=%ZZ%2F+x\\y"z'), expect: { host: 'www.skroutz.gr', target: bytes('/track?q=', [0xce, 0xb1, 0xff], '&p=%ZZ%2F+x\\y"z'), format: 'simple' } },
  { name: 'simple, escapes are not undone', line: 'www.skroutz.gr /track?q=\\xCE#41', expect: { host: 'www.skroutz.gr', target: '/track?q=\\xCE#41', format: 'simple' } },
  { name: 'simple, no path', line: 'www.skroutz.gr track?x=1', expect: { malformed: /no path/ } },
  { name: 'simple, three fields', line: 'www.skroutz.gr /track?x=1 extra', expect: { malformed: /unrecognised format/ } },
  { name: 'simple, control byte in path', line: bytes('www.skroutz.gr /track?x=', [0x01]), expect: { malformed: /cannot be sent/ } },
  { name: 'blank', line: '   ', expect: 'empty' },
  { name: 'comment', line: '# replayed from lb1, 2026-11-29', expect: 'empty' },
  { name: 'comment after blanks', line: '   #x', expect: 'empty' },

  // nginx / Apache combined and common
  { name: 'combined with --host', line: NGINX('GET /track?foo=bar HTTP/1.1'), host: 'www.skroutz.gr', expect: { host: 'www.skroutz.gr', target: '/track?foo=bar', format: 'combined' } },
  { name: 'combined without --host', line: NGINX('GET /track?foo=bar HTTP/1.1'), expect: { malformed: /no Host in the line; give --host/ } },
  { name: 'combined, HEAD', line: NGINX('HEAD /track?h=1 HTTP/1.0'), host: 'h.example', expect: { host: 'h.example', target: '/track?h=1', method: 'HEAD', format: 'combined' } },
  { name: 'combined, HTTP/2.0 is replayed as HTTP/1.1', line: NGINX('GET /track?v=2 HTTP/2.0'), host: 'h', expect: { host: 'h', target: '/track?v=2', format: 'combined' } },
  { name: 'common (no referer, no agent)', line: NGINX('GET /track?c=1 HTTP/1.1', ' 200 43'), host: 'h', expect: { host: 'h', target: '/track?c=1', format: 'combined' } },
  { name: 'combined with trailing timings, ignored', line: NGINX('GET /t?x HTTP/1.1', ' 200 43 "-" "-" 0.001 "www.other.gr"'), host: 'h', expect: { host: 'h', target: '/t?x', format: 'combined' } },
  { name: 'vhost: $host as first field wins over --host', line: `www.skroutz.gr ${NGINX('GET /track?v=1 HTTP/1.1')}`, host: 'other', expect: { host: 'www.skroutz.gr', target: '/track?v=1', format: 'combined' } },
  { name: 'Apache vhost_combined %v:%p', line: `www.scrooge.co.uk:443 ${NGINX('GET /track?v=1 HTTP/1.1')}`, expect: { host: 'www.scrooge.co.uk:443', target: '/track?v=1', format: 'combined' } },
  { name: 'vhost "-" falls back to --host', line: `- ${NGINX('GET /track HTTP/1.1')}`, host: 'h', expect: { host: 'h', target: '/track', format: 'combined' } },
  { name: 'nginx \\xHH escapes are undone (bytes as received)', line: NGINX('GET /track?q=\\xCE\\xB1&s=\\x22\\x5C&t=%CE%B1 HTTP/1.1'), host: 'h', expect: { host: 'h', target: bytes('/track?q=', [0xce, 0xb1], '&s="\\&t=%CE%B1'), format: 'combined' } },
  { name: 'Apache \\" and \\\\ escapes are undone', line: NGINX('GET /track?q=\\"a\\\\b HTTP/1.1'), host: 'h', expect: { host: 'h', target: '/track?q="a\\b', format: 'combined' } },
  { name: '--keep-escapes sends the logged text', line: NGINX('GET /track?q=\\xCE\\xB1 HTTP/1.1'), host: 'h', keepEscapes: true, expect: { host: 'h', target: '/track?q=\\xCE\\xB1', format: 'combined' } },
  { name: 'escaped control byte cannot be sent', line: NGINX('GET /track?q=\\x0A HTTP/1.1'), host: 'h', expect: { malformed: /cannot be sent/ } },
  { name: 'space in the target', line: NGINX('GET /track?q=a b HTTP/1.1'), host: 'h', expect: { malformed: /cannot be sent/ } },
  { name: 'POST is skipped', line: NGINX('POST /track?x=1 HTTP/1.1'), host: 'h', expect: { skip: /method POST/ } },
  { name: 'OPTIONS * is skipped', line: NGINX('OPTIONS * HTTP/1.1'), host: 'h', expect: { skip: /method OPTIONS/ } },
  { name: 'absolute-form target', line: NGINX('GET http://www.skroutz.gr/track?x HTTP/1.1'), host: 'h', expect: { malformed: /not a path/ } },
  { name: 'empty request "-"', line: NGINX('-', ' 400 0 "-" "-"'), host: 'h', expect: { malformed: /not "METHOD TARGET HTTP/ } },
  { name: 'TLS bytes on the HTTP port', line: NGINX('\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xFC\\x03\\x03', ' 400 157 "-" "-"'), host: 'h', expect: { malformed: /not "METHOD TARGET HTTP/ } },
  { name: 'request without version (truncated)', line: NGINX('GET /track?x=1'), host: 'h', expect: { malformed: /no HTTP version/ } },
  { name: 'truncated inside the request', line: '1.2.3.4 - - [29/Nov/2026:22:41:03 +0200] "GET /track?foo=b', host: 'h', expect: { malformed: /unterminated quote/ } },
  { name: 'truncated after the request', line: NGINX('GET /track?x=1 HTTP/1.1', ''), host: 'h', expect: { malformed: /truncated/ } },
  { name: 'truncated inside the time', line: '1.2.3.4 - - [29/Nov/2026:22:41', host: 'h', expect: { malformed: /unterminated \[/ } },
  { name: 'bad quotes: text glued to a closing quote', line: NGINX('GET /t HTTP/1.1', 'x 200 43'), host: 'h', expect: { malformed: /closing "/ } },
  { name: 'status is not a number', line: NGINX('GET /t HTTP/1.1', ' OK 43'), host: 'h', expect: { malformed: /truncated/ } },
  { name: 'too many fields before [time]', line: `a b ${NGINX('GET /t HTTP/1.1')}`, host: 'h', expect: { malformed: /unrecognised format/ } },
  { name: 'lowercase method is a request, skipped', line: NGINX('get /t HTTP/1.1'), host: 'h', expect: { skip: /method get/ } },

  // HAProxy httplog
  { name: 'HAProxy with captured Host', line: HAPROXY('{www.skroutz.gr|Mozilla/5.0} ', 'GET /track?foo=bar HTTP/1.1'), expect: { host: 'www.skroutz.gr', target: '/track?foo=bar', format: 'haproxy' } },
  { name: 'HAProxy request and response captures', line: HAPROXY('{www.alve.com} {image/gif} ', 'HEAD /track HTTP/1.1'), expect: { host: 'www.alve.com', target: '/track', method: 'HEAD', format: 'haproxy' } },
  { name: 'HAProxy without captures uses --host', line: HAPROXY('', 'GET /track?x=1 HTTP/1.1'), host: 'h', expect: { host: 'h', target: '/track?x=1', format: 'haproxy' } },
  { name: 'HAProxy with empty capture and no --host', line: HAPROXY('{} ', 'GET /track?x=1 HTTP/1.1'), expect: { malformed: /no Host/ } },
  { name: 'HAProxy #HH escapes are undone', line: HAPROXY('{h} ', 'GET /track?q=#CE#B1&r=#23#22 HTTP/1.1'), expect: { host: 'h', target: bytes('/track?q=', [0xce, 0xb1], '&r=#"'), format: 'haproxy' } },
  { name: 'HAProxy <BADREQ>', line: HAPROXY('{h} ', '<BADREQ>'), expect: { malformed: /not "METHOD TARGET HTTP/ } },
  { name: 'HAProxy POST', line: HAPROXY('{h} ', 'POST /track HTTP/1.1'), expect: { skip: /method POST/ } },
  { name: 'HAProxy truncated', line: HAPROXY('{h} ', 'GET /track?x=1 HTTP/1.1').slice(0, -10), expect: { malformed: /unterminated quote/ } },
  { name: 'HAProxy without backend/server', line: 'x [29/Nov/2026:22:41:03.655] http-in 200 "GET / HTTP/1.1"', host: 'h', expect: { malformed: /HAProxy/ } },
];

describe('parseRequestLine', () => {
  for (const c of cases) {
    test(c.name, () => {
      const parsed: ParsedLine = parseRequestLine(c.line, { defaultHost: c.host, keepEscapes: c.keepEscapes ?? false });
      const e = c.expect;
      if (e === 'empty') return assert.deepEqual(parsed, { kind: 'empty' });
      if ('malformed' in e) {
        assert.equal(parsed.kind, 'malformed', JSON.stringify(parsed));
        return assert.match((parsed as { reason: string }).reason, e.malformed);
      }
      if ('skip' in e) {
        assert.equal(parsed.kind, 'skip', JSON.stringify(parsed));
        return assert.match((parsed as { reason: string }).reason, e.skip);
      }
      assert.deepEqual(parsed, { kind: 'request', format: e.format, method: e.method ?? 'GET', host: e.host, target: e.target });
    });
  }

  test('the request bytes carry the target (bytes outside visible ASCII percent-encoded, the rest as logged) and the Host', () => {
    const target = bytes('/track?q=', [0xce, 0xb1, 0x80], '&x=%2&s= \t~');
    const buf = requestBytes('GET', target, 'www.skroutz.gr');
    assert.deepEqual(buf, Buffer.from('GET /track?q=%CE%B1%80&x=%2&s=%20%09~ HTTP/1.1\r\nHost: www.skroutz.gr\r\n\r\n'));
  });

  test('escapeBytes makes untrusted text safe to print and keeps bytes readable', () => {
    assert.equal(escapeBytes(bytes('a\x1b[2J', [0xce], '\\ok')), 'a\\x1b[2J\\xce\\x5cok');
    assert.equal(escapeBytes('x'.repeat(10), 4), 'xxxx…');
  });
});

describe('LineReader', () => {
  async function readAll(chunks: (string | Buffer)[], options = { stripCR: true, maxLineBytes: 1024 }) {
    const reader = new LineReader(Readable.from(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c, 'latin1') : c))), options);
    const lines: (string | null)[] = [];
    const starts: number[] = [];
    for (let batch = await reader.next(); batch !== null; batch = await reader.next()) {
      starts.push(batch.firstLine);
      lines.push(...batch.lines);
    }
    return { lines, starts, bytesRead: reader.bytesRead };
  }

  test('lines split across chunks, CRLF, a last line without LF, an empty input', async () => {
    const { lines, starts, bytesRead } = await readAll(['a\r\nb', 'c\n', '\n', 'd\re\n', 'last']);
    assert.deepEqual(lines, ['a', 'bc', '', 'd\re', 'last']);
    assert.deepEqual(starts, [1, 2, 3, 4, 5]);
    assert.equal(bytesRead, 15);
    assert.deepEqual((await readAll([])).lines, []);
    assert.deepEqual((await readAll(['only\n'])).lines, ['only']);
  });

  test('stripCR off keeps the CR (diff compares bytes)', async () => {
    assert.deepEqual((await readAll(['a\r\n'], { stripCR: false, maxLineBytes: 100 })).lines, ['a\r']);
  });

  test('bytes >= 0x80 survive as latin1 chars', async () => {
    const raw = Buffer.from([0x2f, 0xce, 0xb1, 0xff, 0x0a, 0x80]);
    const { lines } = await readAll([raw.subarray(0, 2), raw.subarray(2)]);
    assert.deepEqual(lines.map((l) => Buffer.from(l!, 'latin1')), [raw.subarray(0, 4), raw.subarray(5)]);
  });

  test('a line over maxLineBytes comes out as null, even split over chunks, and the next line is intact', async () => {
    const { lines } = await readAll(['ok\n', 'x'.repeat(6), 'y'.repeat(6), 'z'.repeat(6) + '\nnext\n', 'w'.repeat(20)], { stripCR: true, maxLineBytes: 10 });
    assert.deepEqual(lines, ['ok', null, 'next', null]);
  });

  test('a real file, read in 256 KiB chunks', async () => {
    const file = path.join(tempDir(), 'big.log');
    const expected = Array.from({ length: 50_000 }, (_, i) => `www.skroutz.gr /track?i=${i}&pad=${'p'.repeat(i % 97)}`);
    fs.writeFileSync(file, `${expected.join('\n')}\n`);
    const reader = new LineReader(fs.createReadStream(file, { highWaterMark: 256 * 1024 }), { stripCR: true, maxLineBytes: 1024 });
    const lines: (string | null)[] = [];
    for (let batch = await reader.next(); batch !== null; batch = await reader.next()) {
      assert.equal(batch.firstLine, lines.length + 1);
      lines.push(...batch.lines);
    }
    assert.deepEqual(lines, expected);
  });
});
