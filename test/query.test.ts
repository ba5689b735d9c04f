/**
 * queryToJson, case by case: each rule of Rack 2.2's parse_nested_query and
 * json 2.6.3's JSON.generate that src/query.ts matches. Queries are latin1
 * strings of raw bytes ('\xff' is the byte 0xFF); expected JSON is the text
 * as a JS string (its UTF-8 encoding is what Ruby wrote).
 *
 * The cases live in test/support/query-cases.ts; test/query.oracle.test.ts
 * runs every query there through the real Ruby code too, so each
 * expectation is also checked against Rack itself.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { isScratchError } from '../src/errors';
import { queryToJson } from '../src/query';
import { MALFORMED, QUERY_CASES } from './support/query-cases';

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

  void test('malformed errors are QUERY_MALFORMED (the one error http/track.ts answers 400)', () => {
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
});
