/**
 * The Kafka message key: one top-level query parameter, as the query parser
 * decoded it into the line's record.
 */
import { strict as assert } from 'node:assert';
import { isUtf8 } from 'node:buffer';
import { describe, test } from 'node:test';
import { keyFromRecord } from '../../../src/backends/kafka/message-key';
import { isScratchError } from '../../../src/errors';
import { FlavorTable } from '../../../src/flavor';
import { makeLine } from '../../../src/line';
import { queryToJson } from '../../../src/query';
import { prng } from '../../support/prng';
import { FLAVORS } from '../../support/scratchd';

const flavor = new FlavorTable(FLAVORS).byName('skroutz')!;
const recordOf = (query: string) => makeLine(flavor, Date.UTC(2026, 10, 30, 12), queryToJson(query)).record;

/** The key as the full parser sees it: values[name] when it is a string, else null. */
function parserKey(query: string, name: string): string | null {
  const values = JSON.parse(queryToJson(query)) as Record<string, unknown>;
  const value = Object.hasOwn(values, name) ? values[name] : undefined;
  return typeof value === 'string' ? value : null;
}

/**
 * The key as scratchd computed it before it came from the record: a regex
 * split on the raw query and a decoder of its own. Kept here only to prove
 * the keys did not change.
 */
function legacyKey(query: string, name: string): string | null {
  const decode = (text: string): string | null => {
    if (!/[%+\x80-\xff]/.test(text)) return text;
    if (/%(?![0-9A-Fa-f]{2})/.test(text)) return null;
    const bytes = Buffer.from(text.replace(/\+/g, ' ').replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
    return isUtf8(bytes) ? bytes.toString('utf8') : null;
  };
  let found: string | null = null;
  for (const pair of query.split(/[&;] */)) {
    const eq = pair.indexOf('=');
    if (decode(eq === -1 ? pair : pair.slice(0, eq)) !== name) continue;
    found = eq === -1 ? null : decode(pair.slice(eq + 1));
  }
  return found;
}

describe('keyFromRecord', () => {
  test('table', () => {
    const cases: [string, string, string | null][] = [
      ['uid=42&x=1', 'uid', '42'],
      ['x=1;uid=a+b%20c', 'uid', 'a b c'],
      ['uid=1&uid=2', 'uid', '2'],
      ['uid', 'uid', null],
      ['x=1', 'uid', null],
      ['', 'uid', null],
      ['u%69d=7', 'uid', '7'],
      ['uid=%CE%B1', 'uid', 'α'],
      ['uid[]=1', 'uid', null],
      ['a=1&  uid=5', 'uid', '5'],
      // Beyond the legacy table: values JSON escapes, nested values before the key, keys needing escapes.
      ['uid=%22q%22%5C%0A', 'uid', '"q"\\\n'],
      ['a[b][]=%22]}&c[]=x&uid=9', 'uid', '9'],
      ['a[b]=1&uid[c]=2', 'uid', null],
      ['%22k%22=v', '"k"', 'v'],
      ['k%0A=v&k=w', 'k\n', 'v'],
      ['uidx=1&xuid=2&ui=3', 'uid', null],
      ['uid=&x=1', 'uid', ''],
    ];
    for (const [query, name, expected] of cases) {
      assert.equal(keyFromRecord(recordOf(query), name), expected, query);
      assert.equal(parserKey(query, name), expected, `parser: ${query}`);
    }
  });

  test('a query the parser refuses never becomes a line: no key to compute', () => {
    // The legacy decoder returned null for these; now the request is a 400.
    for (const query of ['uid=%FF', 'uid=%zz']) {
      assert.throws(() => queryToJson(query), (err) => isScratchError(err, 'QUERY_MALFORMED'), query);
    }
  });

  test('differential: the key is the parser\'s top-level value, and the legacy key, on generated queries', () => {
    const random = prng(0x6b6579);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const names = ['uid', 'u%69d', 'UID', 'uid[]', 'uid[a]', 'uid[a][]', 'uidx', 'x', 'x[]', 'x[y]', '%75id', 'u+id', 'a b', 'a+b', 'k%22', 'k%5C', 'k%0A'];
    const values = ['', '1', 'a+b', '%20', '%22', '%5C', '%CE%B1', '%E2%80%A8', 'x%3Dy', '%26', '%3B', ']', '[', '}', '{', 'é'.normalize(), '%F0%9F%98%80'];
    const separators = ['&', ';', '& ', ';  '];
    const wanted = ['uid', 'a b', 'k"', 'k\\', 'k\n', 'x'];
    let compared = 0;
    let withKey = 0;
    for (let n = 0; n < 20_000; n++) {
      const pairs: string[] = [];
      const count = 1 + Math.floor(random() * 6);
      for (let i = 0; i < count; i++) {
        const name = pick(names);
        const r = random();
        const value = Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(values)).join('');
        pairs.push(r < 0.1 ? name : `${name}=${value}`);
      }
      let query = '';
      pairs.forEach((pair, i) => (query += (i === 0 ? '' : pick(separators)) + pair));
      // Raw non-ASCII as a browser might send it: latin1, one char per byte.
      query = Buffer.from(query, 'utf8').toString('latin1');
      let record: string;
      try {
        record = recordOf(query);
      } catch (err) {
        assert.ok(isScratchError(err, 'QUERY_MALFORMED'), String(err));
        continue;
      }
      for (const name of wanted) {
        const key = keyFromRecord(record, name);
        assert.equal(key, parserKey(query, name), `${JSON.stringify(query)} ${name}`);
        assert.equal(key, legacyKey(query, name), `legacy: ${JSON.stringify(query)} ${name}`);
        compared++;
        if (key !== null) withKey++;
      }
    }
    // The generator must reach both outcomes often, or the check proves little.
    assert.ok(compared > 50_000, `compared ${compared}`);
    assert.ok(withKey > 10_000, `with a key ${withKey}`);
  });

  test('where Rack strips brackets around a name, the key follows the record', () => {
    // Rack 2.2's normalize_params reads "[uid]" and "uid]" as uid; the record has
    // values.uid, so the key is its value (the legacy regex saw no "uid" here).
    assert.equal(keyFromRecord(recordOf('[uid]=7'), 'uid'), '7');
    assert.equal(parserKey('[uid]=7', 'uid'), '7');
    assert.equal(legacyKey('[uid]=7', 'uid'), null);
  });
});
