/**
 * The incremental body reader on raw bytes: framing rules as a table, and a
 * property test (seeded): random bodies in random chunked framings, and
 * random mutations of them, give the same outcome whole, split at random
 * points, and byte by byte; a decoded body is the data sent. Plus the
 * decompression limit.
 */
import { strict as assert } from 'node:assert';
import * as zlib from 'node:zlib';
import { describe, test } from 'node:test';
import { BODY_FAILED, BODY_NEED_MORE, BodyError, BodyReader, Coding, codingOf, decode, MAX_FRAMING_BYTES } from '../../src/http/body';
import { prng } from '../support/prng';

type Outcome = { body: string; end: number } | { error: BodyError } | 'incomplete';

function read(length: number, chunks: Buffer[], max = 1000): Outcome {
  const reader = new BodyReader(max);
  if (!reader.begin(length)) return { error: reader.error };
  let before = 0;
  for (const chunk of chunks) {
    const r = reader.execute(chunk, 0, chunk.length);
    if (r === BODY_FAILED) return { error: reader.error };
    if (r !== BODY_NEED_MORE) return { body: reader.body.toString('latin1'), end: before + r };
    before += chunk.length;
  }
  return 'incomplete';
}

const whole = (s: string) => [Buffer.from(s, 'latin1')];
const bytewise = (s: string) => [...Buffer.from(s, 'latin1')].map((b) => Buffer.from([b]));

describe('BodyReader', () => {
  const cases: { why: string; length?: number; raw: string; expect: Outcome }[] = [
    { why: 'Content-Length', length: 3, raw: 'a=1GET', expect: { body: 'a=1', end: 3 } },
    { why: 'Content-Length over the limit', length: 1001, raw: '', expect: { error: BodyError.tooLarge } },
    { why: 'Content-Length at the limit', length: 1000, raw: 'x'.repeat(1000), expect: { body: 'x'.repeat(1000), end: 1000 } },
    { why: 'chunked', raw: '3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT', expect: { body: 'abcde', end: 20 } },
    { why: 'chunked, upper-case hex and leading zeros', raw: '00A\r\n0123456789\r\n0\r\n\r\n', expect: { body: '0123456789', end: 22 } },
    { why: 'chunk extensions are ignored', raw: '3;a=b;c="d e"\r\nabc\r\n0;x\r\n\r\n', expect: { body: 'abc', end: 27 } },
    { why: 'trailers are ignored', raw: '1\r\na\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n', expect: { body: 'a', end: 25 } },
    { why: 'an empty chunked body', raw: '0\r\n\r\n', expect: { body: '', end: 5 } },
    { why: 'no size', raw: '\r\n', expect: { error: BodyError.badRequest } },
    { why: 'size not hex', raw: 'g\r\n', expect: { error: BodyError.badRequest } },
    { why: 'space before the CRLF', raw: '3 \r\nabc\r\n0\r\n\r\n', expect: { error: BodyError.badRequest } },
    { why: 'bare LF after the size', raw: '3\nabc\r\n0\r\n\r\n', expect: { error: BodyError.badRequest } },
    { why: 'data longer than its size', raw: '3\r\nabcd\r\n0\r\n\r\n', expect: { error: BodyError.badRequest } },
    { why: 'bare LF after the data', raw: '3\r\nabc\n0\r\n\r\n', expect: { error: BodyError.badRequest } },
    { why: 'a control byte in an extension', raw: '3;\x01\r\nabc\r\n0\r\n\r\n', expect: { error: BodyError.badRequest } },
    { why: 'a trailer line starting with a space', raw: '0\r\n x: 1\r\n\r\n', expect: { error: BodyError.badRequest } },
    { why: 'bare LF at the end', raw: '0\r\n\n', expect: { error: BodyError.badRequest } },
    { why: 'a size over the limit fails at its digit', raw: '3e9\r\n', expect: { error: BodyError.tooLarge } },
    { why: 'sizes that add up over the limit', raw: `1f4\r\n${'a'.repeat(500)}\r\n1f5\r\n`, expect: { error: BodyError.tooLarge } },
    { why: 'a huge size does not overflow', raw: 'ffffffffffffffffffffffff\r\n', expect: { error: BodyError.tooLarge } },
    { why: 'extensions over the framing limit', raw: `1;${'x'.repeat(MAX_FRAMING_BYTES + 1)}\r\n`, expect: { error: BodyError.tooLarge } },
    { why: 'incomplete', raw: '3\r\nab', expect: 'incomplete' },
  ];
  for (const c of cases) {
    test(c.why, () => {
      const length = c.length ?? -1;
      assert.deepEqual(read(length, whole(c.raw)), c.expect);
      assert.deepEqual(read(length, bytewise(c.raw)), c.expect, 'byte by byte');
    });
  }

  test('random chunked bodies and mutations: the same outcome under every split', () => {
    const seed = Number(process.env.BODY_SEED ?? Math.floor(Math.random() * 2 ** 32));
    const random = prng(seed);
    const int = (n: number) => Math.floor(random() * n);
    for (let round = 0; round < 2000; round++) {
      const data = Buffer.from(Array.from({ length: int(300) }, () => int(256))).toString('latin1');
      let raw = '';
      for (let at = 0; at < data.length; ) {
        const n = 1 + int(Math.min(64, data.length - at));
        raw += `${n.toString(16)}${random() < 0.1 ? ';e=1' : ''}\r\n${data.slice(at, at + n)}\r\n`;
        at += n;
      }
      raw += `0\r\n${random() < 0.2 ? 'T: v\r\n' : ''}\r\n`;
      if (random() < 0.4) {
        const at = int(raw.length);
        raw = raw.slice(0, at) + String.fromCharCode(int(256)) + raw.slice(at + int(2));
      }
      const expected = read(-1, whole(raw), 200);
      const cuts: Buffer[] = [];
      for (let at = 0; at < raw.length; ) {
        const n = 1 + int(20);
        cuts.push(Buffer.from(raw.slice(at, at + n), 'latin1'));
        at += n;
      }
      assert.deepEqual(read(-1, cuts, 200), expected, `seed ${seed} round ${round}: random split`);
      assert.deepEqual(read(-1, bytewise(raw), 200), expected, `seed ${seed} round ${round}: byte by byte`);
    }
  });
});

describe('decode', () => {
  test('content codings', () => {
    assert.equal(codingOf(undefined), Coding.identity);
    assert.equal(codingOf(' GZIP '), Coding.gzip);
    assert.equal(codingOf('x-gzip'), Coding.gzip);
    assert.equal(codingOf('deflate'), Coding.deflate);
    assert.equal(codingOf('gzip, deflate'), Coding.unsupported);
    assert.equal(codingOf('br'), Coding.unsupported);
  });

  test('the decompressed size has the limit; zlib stops there', () => {
    const data = Buffer.alloc(5000, 0x61);
    assert.deepEqual(decode(zlib.gzipSync(data), Coding.gzip, 5000), data);
    assert.deepEqual(decode(zlib.deflateSync(data), Coding.deflate, 5000), data);
    assert.equal(decode(zlib.gzipSync(data), Coding.gzip, 4999), BodyError.tooLarge);
    assert.equal(decode(zlib.gzipSync(Buffer.alloc(100 * 1024 * 1024)), Coding.gzip, 65_536), BodyError.tooLarge);
    assert.equal(decode(Buffer.from('not gzip'), Coding.gzip, 5000), BodyError.badRequest);
    assert.equal(decode(zlib.deflateRawSync(data), Coding.deflate, 5000), BodyError.badRequest);
  });
});
