/**
 * POST bodies against the real thing (test/support/rack-oracle.rb, one ruby
 * process): form bodies through Rack 2.2's Rack::Request#params with the
 * body as rack.input, JSON bodies through
 * JSON.generate(query_params.merge(JSON.parse(body))) per object, both
 * byte-identical, "malformed" exactly where Ruby raised.
 *
 * Two known differences are recognized and counted, never hidden: Ruby
 * writing bytes that are not UTF-8 (json's isLegalUTF8 slip, as for
 * queries: malformed here), and a query value that is not UTF-8 but is
 * replaced by the body (Ruby never writes it; here the query alone is
 * already malformed).
 *
 * A failure prints the seed; rerun with BODY_ORACLE_SEED=<seed>.
 */
import { isUtf8 } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { isScratchError } from '../../src/errors';
import { queryToJson } from '../../src/query';
import { formBodyToJson, jsonBodyToJson } from '../../src/query/body-to-json';
import { testFile } from '../support/paths';
import { hasCommand, needs } from '../support/requires';
import { prng } from '../support/prng';
import { QueryGrammar } from '../support/query-grammar';
import { JsonBodyGrammar } from '../support/json-body-grammar';

const FORM_BODIES = 3000;
const JSON_BODIES = 4000;

interface Case {
  mode: 'F' | 'J';
  query: string;
  body: string;
}

/** null: malformed. */
type Answer = Buffer[] | null;

function rackIsLoadable(): boolean {
  if (!hasCommand('ruby')) return false;
  return spawnSync('ruby', ['-e', 'require "rack"; require "json"'], { stdio: 'ignore' }).status === 0;
}

const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

function askRuby(cases: readonly Case[]): Answer[] {
  const input = cases.map((c) => `${c.mode} ${hex(c.query)} ${hex(c.body)}`).join('\n') + '\n';
  const ruby = spawnSync('ruby', [testFile('support', 'rack-oracle.rb')], { input, maxBuffer: 512 * 1024 * 1024, timeout: 300_000 });
  if (ruby.status !== 0) throw new Error(`rack-oracle.rb failed (${ruby.status}): ${ruby.stderr.toString()}`);
  const lines = ruby.stdout.toString('latin1').split('\n');
  assert.equal(lines.pop(), '');
  assert.equal(lines.length, cases.length, 'one answer per case');
  return lines.map((line) => {
    if (line.startsWith('ERROR ')) return null;
    assert.ok(line.startsWith('OK '), line.slice(0, 80));
    const rest = line.slice(3);
    return rest === '' ? [] : rest.split(',').map((h) => Buffer.from(h, 'hex'));
  });
}

function ours(c: Case): Answer {
  try {
    const body = Buffer.from(c.body, 'latin1');
    const texts = c.mode === 'F' ? [formBodyToJson(c.query, body)] : jsonBodyToJson(c.query, body, Number.MAX_SAFE_INTEGER)!;
    return texts.map((t) => Buffer.from(t, 'utf8'));
  } catch (err) {
    if (isScratchError(err, 'QUERY_MALFORMED')) return null;
    throw err;
  }
}

function same(a: Answer, b: Answer): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((x, i) => x.equals(b[i]!));
}

function show(a: Answer): string {
  return a === null ? 'MALFORMED' : a.map((x) => (isUtf8(x) ? x.toString('utf8') : `hex ${x.toString('hex')}`)).join(' | ').slice(0, 300);
}

function queryIsMalformed(query: string): boolean {
  try {
    queryToJson(query);
    return false;
  } catch {
    return true;
  }
}

/** Hand-written cases whose answers are checked against Ruby too. */
const WRITTEN: { c: Case; expected: string[] | null }[] = [
  { c: { mode: 'F', query: 'a=1&b=0', body: 'b=2&c[]=x;y' }, expected: ['{"a":"1","b":"2","c":["x;y"]}'] },
  { c: { mode: 'F', query: 'a[x]=1', body: 'a[y]=2' }, expected: ['{"a":{"y":"2"}}'] },
  { c: { mode: 'F', query: '', body: 'a=1\x00' }, expected: ['{"a":"1"}'] },
  { c: { mode: 'F', query: '', body: 'a=1&  b=2; c=3' }, expected: ['{"a":"1","b":"2; c=3"}'] },
  { c: { mode: 'J', query: 'a=1&z=0', body: '{"z":1e2,"b":[1.0e20,-0,1e-5],"a":"\\u00e9/"}' }, expected: ['{"a":"é/","z":100.0,"b":[1.0e+20,0,1.0e-05]}'] },
  { c: { mode: 'J', query: 'q=1', body: '[{"a":1},{"a":2}]' }, expected: ['{"q":"1","a":1}', '{"q":"1","a":2}'] },
  { c: { mode: 'J', query: '', body: '{"a":1,"b":2,"a":3}' }, expected: ['{"a":3,"b":2}'] },
  { c: { mode: 'J', query: '', body: '/* c */ {"n":123456789012345678901234567890} // x\n' }, expected: ['{"n":123456789012345678901234567890}'] },
  { c: { mode: 'J', query: '', body: '{"a":1e400}' }, expected: null },
  { c: { mode: 'J', query: '', body: '[1]' }, expected: null },
  { c: { mode: 'J', query: '', body: '{"a":"\\ud800"}' }, expected: null },
];

void test('POST bodies are byte-identical to Rack::Request#params and JSON.generate(GET.merge(JSON.parse))', needs('ruby-rack', rackIsLoadable(), 'apt-get install ruby-rack'), (t) => {
  const seed = process.env.BODY_ORACLE_SEED ? Number(process.env.BODY_ORACLE_SEED) : Math.floor(Math.random() * 2 ** 32);
  const random = prng(seed);
  const queries = new QueryGrammar(random);
  const json = new JsonBodyGrammar(random);
  const cases: Case[] = WRITTEN.map((w) => w.c);
  const someQuery = (): string => (random() < 0.3 ? '' : random() < 0.7 ? queries.query() : 'a=1&b[]=2&1=x');
  for (let i = 0; i < FORM_BODIES; i++) {
    let body = random() < 0.9 ? queries.query() : queries.bytes();
    if (random() < 0.2) body = body.replaceAll('&', ';');
    if (random() < 0.05) body += '\x00';
    cases.push({ mode: 'F', query: someQuery(), body });
  }
  for (let i = 0; i < JSON_BODIES; i++) cases.push({ mode: 'J', query: someQuery(), body: json.body() });

  const ruby = askRuby(cases);
  const failures: string[] = [];
  let notUtf8 = 0;
  let replacedQueryValue = 0;
  let malformed = 0;
  cases.forEach((c, i) => {
    let expected: Answer = ruby[i]!;
    if (expected !== null && !expected.every((x) => isUtf8(x))) {
      notUtf8++;
      expected = null;
    }
    const actual = ours(c);
    if (actual === null) malformed++;
    if (same(actual, expected)) return;
    if (actual === null && expected !== null && queryIsMalformed(c.query)) {
      replacedQueryValue++;
      return;
    }
    failures.push(`${c.mode} query (hex) ${hex(c.query).slice(0, 200)} body (hex) ${hex(c.body).slice(0, 400)}\n  ruby: ${show(expected)}\n  ours: ${show(actual)}`);
  });
  WRITTEN.forEach((w, i) => {
    const expected = w.expected === null ? null : w.expected.map((s) => Buffer.from(s, 'utf8'));
    if (!same(expected, ruby[i]!)) failures.push(`hand-written ${JSON.stringify(w.c)} expects ${show(expected)}, ruby: ${show(ruby[i]!)}`);
  });
  t.diagnostic(`seed ${seed}: ${cases.length} bodies, ${malformed} malformed, ${notUtf8} where Ruby wrote non-UTF-8, ${replacedQueryValue} where the body replaced a query value that is not UTF-8`);
  if (failures.length > 0) {
    assert.fail(`${failures.length} of ${cases.length} bodies differ from Ruby (seed ${seed}; BODY_ORACLE_SEED=${seed}):\n${failures.slice(0, 15).join('\n')}`);
  }
});
