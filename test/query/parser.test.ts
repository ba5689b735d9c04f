/**
 * topLevelParam: one top-level parameter, as Rack's
 * `parse_nested_query(query)[name]` gives it when it is a String. Checked
 * case by case, and against queryToJson (itself checked against Rack by
 * test/query/oracle.test.ts) on the hand-written cases and on generated
 * queries: for every accepted query and every top-level key, plus names
 * that are absent, both must agree.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { queryToJson, topLevelParam } from '../../src/query';
import { QUERY_CASES } from '../support/query-cases';
import { prng } from '../support/prng';
import { QueryGrammar } from '../support/query-grammar';

/** The top-level strings of queryToJson's answer, or undefined where it is malformed. */
function rackStrings(query: string): Map<string, unknown> | undefined {
  let json: string;
  try {
    json = queryToJson(query);
  } catch {
    return undefined;
  }
  return new Map(Object.entries(JSON.parse(json) as Record<string, unknown>));
}

function expected(values: Map<string, unknown>, name: string): string | undefined {
  const value = values.get(name);
  return typeof value === 'string' ? value : undefined;
}

/** Names worth asking about: every top-level key, and some that are absent or only nested. */
function namesFor(values: Map<string, unknown>): string[] {
  return [...values.keys(), 'a', 'b', 'x', 'a[', 'a[]', '[', 'é', ' '];
}

void describe('topLevelParam', () => {
  void test('cases', () => {
    const cases: [query: string, name: string, expected: string | undefined][] = [
      ['uid=42&x=1', 'uid', '42'],
      ['x=1;uid=a+b%20c', 'uid', 'a b c'],
      ['uid=1&uid=2', 'uid', '2'],
      ['uid', 'uid', undefined],
      ['uid=1&uid', 'uid', undefined],
      ['x=1', 'uid', undefined],
      ['', 'uid', undefined],
      ['u%69d=7', 'uid', '7'],
      ['uid=%CE%B1', 'uid', 'α'],
      ['uid=%FF', 'uid', undefined],
      ['uid=%zz', 'uid', undefined],
      ['uid[]=1', 'uid', undefined],
      ['uid[x]=1', 'uid', undefined],
      ['uid[x]=1&uid=2', 'uid', '2'],
      ['uid=2&uid[[]=1', 'uid', undefined],
      ['a=1&  uid=5', 'uid', '5'],
      // normalize_params strips brackets around a plain key…
      ['[uid]=6', 'uid', '6'],
      ['uid]]=7', 'uid', '7'],
      ['%5Buid%5D=8', 'uid', '8'],
      // …and keeps the whole name when it ends in a lone '['.
      ['uid[=9', 'uid[', '9'],
      ['uid[=9', 'uid', undefined],
      ['%C3%A9=1', 'é', '1'],
      ['uid=a=b', 'uid', 'a=b'],
    ];
    for (const [query, name, want] of cases) assert.equal(topLevelParam(query, name), want, `${query} [${name}]`);
  });

  void test('agrees with queryToJson on the hand-written cases', () => {
    for (const { query } of QUERY_CASES) {
      const values = rackStrings(query);
      if (values === undefined) continue;
      for (const name of namesFor(values)) assert.equal(topLevelParam(query, name), expected(values, name), `${JSON.stringify(query)} [${name}]`);
    }
  });

  void test('agrees with queryToJson on generated queries', (t) => {
    const seed = process.env.QUERY_SEED ? Number(process.env.QUERY_SEED) : Math.floor(Math.random() * 2 ** 32);
    t.diagnostic(`seed ${seed} (rerun with QUERY_SEED=${seed})`);
    const grammar = new QueryGrammar(prng(seed));
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const query = grammar.query();
      const values = rackStrings(query);
      if (values === undefined) continue;
      accepted++;
      for (const name of namesFor(values)) {
        assert.equal(topLevelParam(query, name), expected(values, name), `seed ${seed}: ${JSON.stringify(query)} [${name}]`);
      }
    }
    assert.ok(accepted > 5000, `only ${accepted} generated queries were accepted`);
  });
});
