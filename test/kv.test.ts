/**
 * TtlStore with an injected clock: expiry at exactly expiresAt, bounded size
 * evicting the oldest-written key, overwrite moving a key to the end, and
 * expired entries swept on set.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { TtlStore } from '../src/kv';

/** A store whose clock the test moves by hand. */
function storeWithClock(maxKeys: number, start = 1_000_000) {
  const clock = { now: start };
  const store = new TtlStore(maxKeys, () => clock.now);
  return { store, clock };
}

function keysOf(store: TtlStore, candidates: string[]): string[] {
  return candidates.filter((k) => store.get(k) !== undefined);
}

describe('TtlStore', () => {
  test('get returns what set stored; unknown keys are undefined', () => {
    const { store } = storeWithClock(10);
    assert.equal(store.get('a'), undefined);
    store.set('a', '1', 1000);
    store.set('b', '', 1000);
    assert.equal(store.get('a'), '1');
    assert.equal(store.get('b'), '');
    assert.equal(store.get('c'), undefined);
    assert.equal(store.size, 2);
  });

  test('set overwrites the value and the expiry', () => {
    const { store, clock } = storeWithClock(10);
    store.set('a', '1', 100);
    clock.now += 50;
    store.set('a', '2', 100);
    assert.equal(store.size, 1);
    clock.now += 99; // 149 after the first set: the first expiry is long past
    assert.equal(store.get('a'), '2');
    clock.now += 1;
    assert.equal(store.get('a'), undefined);
  });

  test('a value is there until just before expiresAt and gone exactly at it', () => {
    const { store, clock } = storeWithClock(10);
    const t0 = clock.now;
    store.set('a', 'v', 1000);
    clock.now = t0 + 999;
    assert.equal(store.get('a'), 'v');
    clock.now = t0 + 1000;
    assert.equal(store.get('a'), undefined);
    assert.equal(store.size, 0, 'an expired get removes the entry');
    clock.now = t0; // even if time goes back, the entry is gone
    assert.equal(store.get('a'), undefined);
  });

  test('a ttl of 0 expires at once', () => {
    const { store } = storeWithClock(10);
    store.set('a', 'v', 0);
    assert.equal(store.get('a'), undefined);
  });

  test('when full, a new key evicts the oldest written and counts it', () => {
    const { store } = storeWithClock(3);
    for (const k of ['a', 'b', 'c']) store.set(k, k, 10_000);
    assert.equal(store.evicted, 0);
    store.set('d', 'd', 10_000);
    assert.equal(store.size, 3);
    assert.equal(store.evicted, 1);
    assert.deepEqual(keysOf(store, ['a', 'b', 'c', 'd']), ['b', 'c', 'd']);
    store.set('e', 'e', 10_000);
    store.set('f', 'f', 10_000);
    assert.equal(store.evicted, 3);
    assert.deepEqual(keysOf(store, ['a', 'b', 'c', 'd', 'e', 'f']), ['d', 'e', 'f']);
  });

  test('overwriting a key moves it to the end, so it is evicted last', () => {
    const { store } = storeWithClock(3);
    for (const k of ['a', 'b', 'c']) store.set(k, k, 10_000);
    store.set('a', 'A', 10_000); // existing key: no eviction
    assert.equal(store.evicted, 0);
    assert.equal(store.size, 3);
    store.set('d', 'd', 10_000);
    assert.equal(store.evicted, 1);
    assert.deepEqual(keysOf(store, ['a', 'b', 'c', 'd']), ['a', 'c', 'd']);
    assert.equal(store.get('a'), 'A');
  });

  test('a get does not change the eviction order', () => {
    const { store } = storeWithClock(2);
    store.set('a', 'a', 10_000);
    store.set('b', 'b', 10_000);
    assert.equal(store.get('a'), 'a');
    store.set('c', 'c', 10_000);
    assert.deepEqual(keysOf(store, ['a', 'b', 'c']), ['b', 'c']);
  });

  test('maxKeys 1 keeps only the latest key', () => {
    const { store } = storeWithClock(1);
    store.set('a', 'a', 10_000);
    store.set('b', 'b', 10_000);
    store.set('b', 'B', 10_000);
    assert.equal(store.size, 1);
    assert.equal(store.evicted, 1);
    assert.equal(store.get('b'), 'B');
  });

  test('expired entries at the old end are swept on set, so size shrinks', () => {
    const { store, clock } = storeWithClock(100);
    for (let i = 0; i < 10; i++) store.set(`old${i}`, 'x', 100);
    assert.equal(store.size, 10);
    clock.now += 100;
    // Each set sweeps a couple of expired entries before adding its own.
    store.set('new0', 'x', 10_000);
    assert.ok(store.size < 10, `size ${store.size} after one set`);
    for (let i = 1; i < 10; i++) store.set(`new${i}`, 'x', 10_000);
    assert.equal(store.size, 10, 'all the old entries are gone, without a get');
    assert.equal(store.evicted, 0, 'sweeping expired entries is not eviction');
  });

  test('sweeping stops at the first live entry', () => {
    const { store, clock } = storeWithClock(100);
    store.set('live', 'x', 10_000);
    store.set('dead', 'x', 10);
    clock.now += 10;
    store.set('other', 'x', 10_000);
    assert.equal(store.size, 3, 'the expired entry behind a live one waits for get');
    assert.equal(store.get('dead'), undefined);
    assert.equal(store.size, 2);
  });

  test('a full store with expired entries sweeps rather than evicting live ones', () => {
    const { store, clock } = storeWithClock(3);
    store.set('a', 'a', 10);
    store.set('b', 'b', 10_000);
    store.set('c', 'c', 10_000);
    clock.now += 10;
    store.set('d', 'd', 10_000);
    assert.equal(store.evicted, 0);
    assert.deepEqual(keysOf(store, ['a', 'b', 'c', 'd']), ['b', 'c', 'd']);
  });

  test('delete', () => {
    const { store } = storeWithClock(10);
    store.set('a', 'a', 1000);
    store.set('b', 'b', 1000);
    assert.equal(store.delete('a'), true);
    assert.equal(store.delete('a'), false);
    assert.equal(store.delete('zz'), false);
    assert.equal(store.get('a'), undefined);
    assert.equal(store.get('b'), 'b');
    assert.equal(store.size, 1);
  });

  test('uses Date.now by default', () => {
    const store = new TtlStore(10);
    store.set('a', 'a', 60_000);
    assert.equal(store.get('a'), 'a');
    store.set('b', 'b', -1);
    assert.equal(store.get('b'), undefined);
  });
});
