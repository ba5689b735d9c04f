/**
 * SanityChecks with an injected clock (the store's clock and judge's nowMs
 * are the same value, as in the tracking handler), and hash64.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { hash64, SanityChecks } from '../src/checks';
import type { ChecksConfig } from '../src/config/types';

const MINUTE = 60_000;
/** A minute boundary, so tests can count within one clock minute. */
const T0 = Date.UTC(2026, 2, 1, 12, 0, 0, 0);

function checksAt(config: Partial<ChecksConfig>) {
  const clock = { now: T0 };
  const checks = new SanityChecks({ duplicateWindowMs: 0, maxPerMinute: 0, maxKeys: 100_000, ...config }, () => clock.now);
  /** Judges at `at` (ms since T0). */
  const judge = (at: number, flavor: number, client: string, query: string) => {
    clock.now = T0 + at;
    return checks.judge(flavor, client, query, clock.now);
  };
  return { checks, judge };
}

describe('SanityChecks.enabled', () => {
  const cases: [Partial<ChecksConfig>, boolean][] = [
    [{}, false],
    [{ duplicateWindowMs: 0, maxPerMinute: 0 }, false],
    [{ duplicateWindowMs: 1 }, true],
    [{ maxPerMinute: 1 }, true],
    [{ duplicateWindowMs: 5000, maxPerMinute: 100 }, true],
  ];
  for (const [config, enabled] of cases) {
    test(`${JSON.stringify(config)} → ${enabled}`, () => {
      assert.equal(checksAt(config).checks.enabled, enabled);
    });
  }
});

describe('SanityChecks: duplicates', () => {
  test('within the window → duplicate; at its end and after → ok', () => {
    const { judge } = checksAt({ duplicateWindowMs: 1000 });
    assert.equal(judge(0, 0, '10.0.0.1', 'a=1'), 'ok');
    assert.equal(judge(1, 0, '10.0.0.1', 'a=1'), 'duplicate');
    assert.equal(judge(999, 0, '10.0.0.1', 'a=1'), 'duplicate');
    assert.equal(judge(1000, 0, '10.0.0.1', 'a=1'), 'ok');
    // That ok starts a new window.
    assert.equal(judge(1500, 0, '10.0.0.1', 'a=1'), 'duplicate');
    assert.equal(judge(5000, 0, '10.0.0.1', 'a=1'), 'ok');
  });

  test('a different client, flavor or query is not a duplicate', () => {
    const { judge } = checksAt({ duplicateWindowMs: 60_000 });
    assert.equal(judge(0, 0, '10.0.0.1', 'a=1'), 'ok');
    assert.equal(judge(1, 0, '10.0.0.2', 'a=1'), 'ok');
    assert.equal(judge(2, 1, '10.0.0.1', 'a=1'), 'ok');
    assert.equal(judge(3, 0, '10.0.0.1', 'a=2'), 'ok');
    assert.equal(judge(4, 0, '10.0.0.1', 'a=1&b'), 'ok');
    assert.equal(judge(5, 0, '10.0.0.1', ''), 'ok');
    // And each of them is now remembered on its own.
    assert.equal(judge(6, 0, '10.0.0.2', 'a=1'), 'duplicate');
    assert.equal(judge(7, 1, '10.0.0.1', 'a=1'), 'duplicate');
    assert.equal(judge(8, 0, '10.0.0.1', ''), 'duplicate');
    assert.equal(judge(9, 0, '10.0.0.1', 'a=1'), 'duplicate');
  });

  test('with duplicates off, the same beacon is always ok', () => {
    const { judge } = checksAt({ maxPerMinute: 1000 });
    for (let i = 0; i < 10; i++) assert.equal(judge(i, 0, '10.0.0.1', 'a=1'), 'ok');
  });
});

describe('SanityChecks: rate', () => {
  test('the (maxPerMinute+1)th beacon in a clock minute is malicious; the next minute resets', () => {
    const max = 5;
    const { judge } = checksAt({ maxPerMinute: max });
    for (let i = 0; i < max; i++) assert.equal(judge(i * 1000, 0, '10.0.0.1', `n=${i}`), 'ok', `beacon ${i + 1}`);
    assert.equal(judge(50_000, 0, '10.0.0.1', 'n=x'), 'malicious');
    assert.equal(judge(MINUTE - 1, 0, '10.0.0.1', 'n=y'), 'malicious');
    assert.equal(judge(MINUTE, 0, '10.0.0.1', 'n=z'), 'ok', 'a new clock minute');
    for (let i = 1; i < max; i++) assert.equal(judge(MINUTE + i, 0, '10.0.0.1', `m=${i}`), 'ok');
    assert.equal(judge(MINUTE + 100, 0, '10.0.0.1', 'm=x'), 'malicious');
  });

  test('counted per client and per flavor', () => {
    const { judge } = checksAt({ maxPerMinute: 2 });
    assert.equal(judge(0, 0, 'a', 'q'), 'ok');
    assert.equal(judge(1, 0, 'a', 'q'), 'ok');
    assert.equal(judge(2, 0, 'a', 'q'), 'malicious');
    assert.equal(judge(3, 0, 'b', 'q'), 'ok');
    assert.equal(judge(4, 1, 'a', 'q'), 'ok');
    assert.equal(judge(5, 1, 'a', 'q'), 'ok');
    assert.equal(judge(6, 1, 'a', 'q'), 'malicious');
    assert.equal(judge(7, 0, 'b', 'q'), 'ok');
    assert.equal(judge(8, 0, 'b', 'q'), 'malicious');
  });

  test('maxPerMinute 1: the second in the same minute is malicious', () => {
    const { judge } = checksAt({ maxPerMinute: 1 });
    assert.equal(judge(59_000, 0, 'a', 'q'), 'ok');
    assert.equal(judge(59_999, 0, 'a', 'q'), 'malicious');
    assert.equal(judge(60_000, 0, 'a', 'q'), 'ok');
  });

  test('both checks: rate first, then duplicates', () => {
    const { judge } = checksAt({ maxPerMinute: 3, duplicateWindowMs: 10_000 });
    assert.equal(judge(0, 0, 'a', 'q=1'), 'ok');
    assert.equal(judge(1, 0, 'a', 'q=1'), 'duplicate');
    assert.equal(judge(2, 0, 'a', 'q=2'), 'ok');
    assert.equal(judge(3, 0, 'a', 'q=3'), 'malicious');
  });

  test('rate counters survive a small store only as long as they are not evicted', () => {
    // One key per client-minute: with maxKeys 1 a second client evicts the first.
    const { checks, judge } = checksAt({ maxPerMinute: 1, maxKeys: 1 });
    assert.equal(judge(0, 0, 'a', 'q'), 'ok');
    assert.equal(judge(1, 0, 'a', 'q'), 'malicious');
    assert.equal(judge(2, 0, 'b', 'q'), 'ok');
    assert.equal(checks.store.evicted, 1);
  });
});

describe('hash64', () => {
  test('deterministic, two hex halves', () => {
    assert.equal(hash64('a=1'), hash64('a=1'));
    for (const s of ['', 'a', 'a=1&b=2', 'é☃\u{1F600}', '\0']) assert.match(hash64(s), /^[0-9a-f]{1,8}:[0-9a-f]{1,8}$/);
  });

  test('nearby strings differ', () => {
    const pairs: [string, string][] = [
      ['', '\0'],
      ['a', 'b'],
      ['ab', 'ba'],
      ['a=1', 'a=2'],
      ['a=1&b=2', 'b=2&a=1'],
      ['x', 'xx'],
      ['\u0100', '\u0000\u0001'],
    ];
    for (const [a, b] of pairs) assert.notEqual(hash64(a), hash64(b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  });

  test('no collisions among a few thousand random and sequential strings', () => {
    let seed = 0x1234567;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 4294967296;
    };
    const strings = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const length = 1 + Math.floor(random() * 40);
      let s = '';
      for (let j = 0; j < length; j++) s += String.fromCharCode(32 + Math.floor(random() * 95));
      strings.add(s);
    }
    for (let i = 0; i < 3000; i++) strings.add(`utm_source=news&id=${i}`);
    for (let i = 0; i < 26 * 26; i++) strings.add(String.fromCharCode(97 + (i % 26), 97 + Math.floor(i / 26)));
    const hashes = new Map<string, string>();
    for (const s of strings) {
      const h = hash64(s);
      const other = hashes.get(h);
      assert.equal(other, undefined, `${JSON.stringify(s)} and ${JSON.stringify(other)} both hash to ${h}`);
      hashes.set(h, s);
    }
    assert.ok(hashes.size > 6000);
  });
});
