/**
 * queryToJson, case by case, on the hand-written table of
 * test/support/query-cases.ts (which test/query/query-to-json.rack.test.ts also checks
 * against Rack itself), plus the error messages.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { isScratchError } from '../../src/errors';
import { queryToJson } from '../../src/query';
import { MALFORMED, QUERY_CASES } from '../support/query-cases';

void describe('queryToJson', () => {
  for (const { why, query, expected } of QUERY_CASES) {
    void test(why, () => {
      if (expected === MALFORMED) {
        assert.throws(() => queryToJson(query), (err: unknown) => isScratchError(err, 'QUERY_MALFORMED'));
      } else {
        assert.equal(queryToJson(query), expected);
      }
    });
  }

  void test('errors say what was wrong', () => {
    assert.throws(() => queryToJson('a=%zz'), /malformed query string: invalid %-encoding at byte 2: "%zz"/);
    assert.throws(() => queryToJson('a=1&a[]=2'), /expected Array \(got String\) for param "a"/);
    assert.throws(() => queryToJson('a=%FF'), /not valid UTF-8/);
  });

  void test('malformed errors carry HTTP 400', () => {
    try {
      queryToJson('%');
      assert.fail('expected a throw');
    } catch (err) {
      assert.ok(isScratchError(err, 'QUERY_MALFORMED'));
    }
  });

  void test('a long %-encoded component after a short one (scratch buffer grows)', () => {
    const long = '%41'.repeat(5000);
    assert.equal(queryToJson(`s=%41&l=${long}&t=%42`), `{"s":"A","l":"${'A'.repeat(5000)}","t":"B"}`);
  });

  void test('queries past the shared buffers (the tree, its key index and the output grow), then a small one', () => {
    const inner = 'q'.repeat(20);
    const count = 4000;
    const query = Array.from({ length: count }, (_, i) => `p${i}[${inner}]=v`).join('&');
    assert.ok(query.length > 64 * 1024);
    const expected = `{${Array.from({ length: count }, (_, i) => `"p${i}":{"${inner}":"v"}`).join(',')}}`;
    assert.equal(queryToJson(query), expected);
    assert.equal(queryToJson('a[][x]=1&a[][x]=2&b=3'), '{"a":[{"x":"1"},{"x":"2"}],"b":"3"}');
  });

  void test('a name with newlines past the shared buffers: Rack\'s line anchors find the last line', () => {
    // "a[x\n<70,000 z>\n[][y]": the array regexes match on the third line, child key "y".
    const query = `a[x%0A${'z'.repeat(70_000)}%0A[][y]=1`;
    assert.equal(queryToJson(query), '{"a":[{"y":"1"}]}');
    assert.equal(queryToJson('a[x%0A[][y]=1'), '{"a":[{"y":"1"}]}');
  });
});
