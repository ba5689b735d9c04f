/**
 * queryToJson against the real thing: every query goes through Ruby's
 * Rack::Utils.parse_nested_query + JSON.generate (test/support/rack-oracle.rb,
 * one ruby process for all of them) and the answers must be byte-identical,
 * with "malformed" exactly where Ruby raised (and where Ruby wrote bytes
 * that are not UTF-8, which no string can hold: see expectedAnswer).
 *
 * The corpus is the hand-written table of test/support/query-cases.ts (whose expected
 * values are checked against Ruby here too), every single byte raw and
 * %-encoded, UTF-8 sequences at every edge of validity, and thousands of
 * seeded random queries from a grammar that favours collisions: few key
 * names, odd bracket combinations, invalid %-escapes, non-UTF-8 bytes,
 * newlines, separators with spaces, duplicates, deep nesting; and the
 * hostile shapes of test/support/query-hostile.ts, named and random, up to a
 * request line's worth of bytes each.
 *
 * The generated queries are fast-check's, from a fixed seed: all of them go
 * to one ruby process at once; where one disagrees with Rack, fast-check
 * replays it (seed and path) and shrinks it to a small counter-example,
 * asking Rack (one process per try) at each step, and the failure shows it.
 */
import { isUtf8 } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { isScratchError } from '../../src/errors';
import { queryToJson } from '../../src/query';
import { MALFORMED, QUERY_CASES } from '../support/query-cases';
import { testFile } from '../support/paths';
import { hasCommand, needs } from '../support/requires';
import fc from 'fast-check';
import { grammarQuery, hostileQuery, rawBytesQuery } from '../support/query-grammar';
import { hostileShapes } from '../support/query-hostile';

/**
 * The generated queries: fast-check arbitraries (test/support/query-grammar.ts),
 * sampled with a fixed seed (QUERY_ORACLE_SEED=<n> tries another corpus).
 * Random queries of hostile shape are each up to a request line's worth.
 */
const GENERATED: readonly { what: string; arbitrary: fc.Arbitrary<string>; count: number }[] = [
  { what: 'grammar', arbitrary: grammarQuery, count: 6000 },
  { what: 'random bytes', arbitrary: rawBytesQuery, count: 1500 },
  { what: 'hostile', arbitrary: hostileQuery, count: 300 },
];
const SEED = process.env.QUERY_ORACLE_SEED ? Number(process.env.QUERY_ORACLE_SEED) : 0x0ac1e;

function rackIsLoadable(): boolean {
  if (!hasCommand('ruby')) return false;
  const probe = spawnSync('ruby', ['-e', 'require "rack"; require "json"'], { stdio: 'ignore' });
  return probe.status === 0;
}


/** Every byte value as a value, raw and %-encoded, and as a key. */
function singleByteQueries(): string[] {
  const queries: string[] = [];
  for (let byte = 0; byte < 256; byte++) {
    const raw = String.fromCharCode(byte);
    const escaped = `%${byte.toString(16).padStart(2, '0')}`;
    queries.push(`a=${raw}`, `a=${escaped}`, `${escaped}=1`, `k${raw}=1`);
  }
  return queries;
}

/**
 * UTF-8 at its edges: every 2-byte sequence as a value, and 3- and 4-byte
 * sequences around each boundary (overlongs, surrogates, U+10FFFF, bad
 * continuations) as values and as keys.
 */
function utf8EdgeQueries(): string[] {
  const hex = (byte: number): string => `%${byte.toString(16).padStart(2, '0')}`;
  const queries: string[] = [];
  for (let lead = 0x80; lead < 0x100; lead++) {
    for (let second = 0; second < 0x100; second++) queries.push(`a=${hex(lead)}${hex(second)}`);
  }
  const leads = [0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5];
  const seconds = [0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0];
  const laters = [0x7f, 0x80, 0xbf, 0xc0];
  for (const lead of leads) {
    for (const second of seconds) {
      for (const third of laters) {
        const three = `${hex(lead)}${hex(second)}${hex(third)}`;
        queries.push(`a=${three}`, `${three}=1`);
        for (const fourth of laters) queries.push(`a=${three}${hex(fourth)}`, `${three}${hex(fourth)}=1`);
      }
    }
  }
  // json 2.6.3 lets an ASCII byte through after ED and F4 (see expectedAnswer).
  for (let second = 0; second < 0x80; second++) {
    queries.push(`a=%ed${hex(second)}%80`, `a=%f4${hex(second)}%80%bf&b=1`, `%ed${hex(second)}%80=1`);
  }
  return queries;
}

interface Answer {
  malformed: boolean;
  /** The JSON's bytes; empty when malformed. */
  json: Buffer;
}

const MALFORMED_ANSWER: Answer = { malformed: true, json: Buffer.alloc(0) };

/** Runs all queries through one ruby process. */
function askRack(queries: readonly string[]): Answer[] {
  const input = queries.map((q) => Buffer.from(q, 'latin1').toString('hex')).join('\n') + '\n';
  const ruby = spawnSync('ruby', [testFile('support', 'rack-oracle.rb')], {
    input,
    maxBuffer: 512 * 1024 * 1024,
    timeout: 300_000,
  });
  if (ruby.status !== 0) throw new Error(`rack-oracle.rb failed (${ruby.status}): ${ruby.stderr.toString()}`);
  const lines = ruby.stdout.toString('latin1').split('\n');
  assert.equal(lines.pop(), '', 'the last answer ends with a newline');
  assert.equal(lines.length, queries.length, 'one answer per query from rack-oracle.rb');
  return lines.map((line) => {
    if (line.startsWith('ERROR ')) return MALFORMED_ANSWER;
    assert.ok(line.startsWith('OK '), `unexpected rack-oracle.rb answer: ${line.slice(0, 80)}`);
    return { malformed: false, json: Buffer.from(line.slice(3), 'hex') };
  });
}

/**
 * What queryToJson must answer where Rack answered `rack`.
 *
 * json 2.6.3's isLegalUTF8 (from ConvertUTF.c) does not check that the
 * second byte after a lead byte ED or F4 is a continuation byte, so values
 * such as ED 7F 80 or ED 22 80 pass and are copied out raw: the "JSON" holds
 * bytes that are not UTF-8 (and, for ED 22 80, an unescaped quote). No JS
 * string encodes to those bytes, so queryToJson calls such a query
 * malformed; src/query/query-to-json.ts documents this one deviation.
 */
function expectedAnswer(rack: Answer): Answer {
  return !rack.malformed && !isUtf8(rack.json) ? MALFORMED_ANSWER : rack;
}

function ours(query: string): Answer {
  try {
    return { malformed: false, json: Buffer.from(queryToJson(query), 'utf8') };
  } catch (err) {
    if (isScratchError(err, 'QUERY_MALFORMED')) return MALFORMED_ANSWER;
    throw err;
  }
}

function show(answer: Answer): string {
  if (answer.malformed) return 'MALFORMED';
  if (!isUtf8(answer.json)) return `not UTF-8 (hex) ${answer.json.toString('hex')}`;
  const text = answer.json.toString('utf8');
  return text.length > 200 ? `${text.slice(0, 200)}… (${answer.json.length} bytes)` : text;
}

function sameAnswer(a: Answer, b: Answer): boolean {
  return a.malformed === b.malformed && a.json.equals(b.json);
}

/** Whether queryToJson answers `query` as Rack does (one ruby process for this query). */
function agreesWithRack(query: string): boolean {
  const [rack] = askRack([query]);
  return rack !== undefined && sameAnswer(ours(query), expectedAnswer(rack));
}

/**
 * fast-check's shrunk counter-example for the generated query at `index`
 * of `arbitrary`'s sample: replayed from the seed and that run's path.
 */
function shrunk(arbitrary: fc.Arbitrary<string>, index: number): string {
  try {
    fc.assert(fc.property(arbitrary, agreesWithRack), { seed: SEED, path: String(index), interruptAfterTimeLimit: 120_000 });
    return `(fast-check could not reproduce it: seed ${SEED}, path ${index})`;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

function describeQuery(query: string): string {
  const hex = Buffer.from(query, 'latin1').toString('hex');
  return hex.length > 200 ? `${hex.slice(0, 200)}… (${query.length} bytes)` : hex;
}

void test('queryToJson is byte-identical to Rack 2.2 + JSON.generate', needs('ruby-rack', rackIsLoadable(), 'apt-get install ruby-rack'), (t) => {
  const queries = [...QUERY_CASES.map((c) => c.query), ...singleByteQueries(), ...utf8EdgeQueries()];
  // The shapes the hostile-input budget is measured on, whole and cut at odd
  // lengths, and random ones: whatever fast path they take must stay Rack's.
  for (const { query } of hostileShapes()) queries.push(query, query.slice(0, 777), query.slice(0, 3001));
  const generatedFrom = queries.length;
  const generated = GENERATED.map((g) => ({ ...g, from: queries.length, queries: fc.sample(g.arbitrary, { seed: SEED, numRuns: g.count }) }));
  for (const g of generated) queries.push(...g.queries);

  const rack = askRack(queries);
  const failures: string[] = [];
  let notUtf8 = 0;
  let firstGeneratedFailure = -1;
  queries.forEach((query, i) => {
    const rackAnswer = rack[i];
    assert.ok(rackAnswer);
    const expected = expectedAnswer(rackAnswer);
    if (expected !== rackAnswer) notUtf8++;
    const actual = ours(query);
    if (!sameAnswer(actual, expected)) {
      failures.push(`query (hex) ${describeQuery(query)}\n  rack: ${show(rackAnswer)}\n  ours: ${show(actual)}`);
      if (i >= generatedFrom && firstGeneratedFailure < 0) firstGeneratedFailure = i;
    }
  });
  // The hand-written expectations must be Rack's, too.
  QUERY_CASES.forEach((c, i) => {
    const rackAnswer = rack[i];
    assert.ok(rackAnswer);
    const written: Answer =
      c.expected === MALFORMED ? MALFORMED_ANSWER : { malformed: false, json: Buffer.from(c.expected, 'utf8') };
    if (!sameAnswer(written, expectedAnswer(rackAnswer))) {
      failures.push(`hand-written case "${c.why}" expects ${show(written)}\n  rack: ${show(rackAnswer)}`);
    }
  });

  t.diagnostic(
    `${queries.length} queries (${generatedFrom} fixed; generated with seed ${SEED}: ${generated.map((g) => `${g.count} ${g.what}`).join(', ')}), ${notUtf8} where Rack wrote bytes that are not UTF-8`,
  );
  if (failures.length > 0) {
    const g = generated.find((x) => firstGeneratedFailure >= x.from && firstGeneratedFailure < x.from + x.count);
    const counterExample = g === undefined ? '' : `\nfast-check, the first failing ${g.what} query shrunk:\n${shrunk(g.arbitrary, firstGeneratedFailure - g.from)}\n`;
    assert.fail(`${failures.length} of ${queries.length} queries differ from Rack:\n${failures.slice(0, 20).join('\n')}${counterExample}`);
  }
});
