/**
 * Body → values, hand-written cases (the Ruby oracle test,
 * body-to-json.rack.test.ts, checks these rules against Ruby at scale).
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { isScratchError } from '../../src/errors';
import { formBodyToJson, jsonBodyToJson, rubyFloat } from '../../src/query/body-to-json';

const json = (query: string, body: string, maxBatch = 100) => jsonBodyToJson(query, Buffer.from(body, 'latin1'), maxBatch);
const malformed = (run: () => unknown) => assert.throws(run, (err) => isScratchError(err, 'QUERY_MALFORMED'));

test('form bodies: Rack::Request#params', () => {
  assert.equal(formBodyToJson('a=1&b=0', Buffer.from('b=2&c[]=x;y')), '{"a":"1","b":"2","c":["x;y"]}');
  assert.equal(formBodyToJson('a[x]=1', Buffer.from('a[y]=2')), '{"a":{"y":"2"}}', 'the merge is shallow');
  assert.equal(formBodyToJson('', Buffer.from('a=1\0')), '{"a":"1"}', 'one trailing NUL is dropped');
  assert.equal(formBodyToJson('', Buffer.from('a=%3B;b')), '{"a":";;b"}');
  assert.equal(formBodyToJson('q=1', Buffer.from('')), '{"q":"1"}');
  malformed(() => formBodyToJson('', Buffer.from('a=%zz')));
});

test('JSON bodies: merged, ordered, written as Ruby does', () => {
  assert.deepEqual(json('a=1&z=0', '{"z":1e2,"b":[1.0e20,-0,1e-5],"a":"\\u00e9\\/"}'), ['{"a":"é/","z":100.0,"b":[1.0e+20,0,1.0e-05]}']);
  assert.deepEqual(json('', '{"a":1,"b":2,"a":3}'), ['{"a":3,"b":2}']);
  assert.deepEqual(json('', '{"10":1,"2":2}'), ['{"10":1,"2":2}']);
  assert.deepEqual(json('q=1', '[{"a":1},{"a":2}]'), ['{"q":"1","a":1}', '{"q":"1","a":2}']);
  assert.deepEqual(json('', '[]'), []);
  assert.equal(json('', '[{},{},{}]', 2), null, 'a batch over maxBatch');
  assert.deepEqual(json('', '/* c */ {"n":123456789012345678901234567890} // x\n'), ['{"n":123456789012345678901234567890}']);
  assert.deepEqual(json('', '{"s":"\\x\\ud83d\\ude00\\u0001\\u2028"}'), ['{"s":"x😀\\u0001\u2028"}']);
  assert.deepEqual(json('', '{"a":1e400,"a":1}'), ['{"a":1}'], 'an infinite float replaced before it is written');
  for (const bad of ['', '1', '"s"', '[1]', '{"a":1e400}', '{"a":"\\ud800"}', '{"a":"\xff"}', '{"a":1,}', '{"a":01}', '{} // no newline', `{"a":${'['.repeat(100)}${']'.repeat(100)}}`]) {
    malformed(() => json('', bad));
  }
  assert.deepEqual(json('', `{"a":${'['.repeat(99)}${']'.repeat(99)}}`), [`{"a":${'['.repeat(99)}${']'.repeat(99)}}`], 'nesting 100 is allowed');
});

test('Float#to_s', () => {
  const cases: [number, string][] = [
    [100, '100.0'], [1e14, '100000000000000.0'], [1e15, '1.0e+15'], [1234567890123456, '1.234567890123456e+15'], [0.0001, '0.0001'],
    [1.5e-5, '1.5e-05'], [5e-324, '5.0e-324'], [-0, '-0.0'], [0, '0.0'], [-2.5, '-2.5'], [1.7976931348623157e308, '1.7976931348623157e+308'],
  ];
  for (const [x, text] of cases) assert.equal(rubyFloat(x), text, String(x));
});
