/** settlesBy / returnsInTime: waits on file calls at a stop, with an end. */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { returnsInTime, settlesBy, STOP_CALL_GRACE_MS } from '../../src/io/deadline';

const never = new Promise<void>(() => undefined);

describe('settlesBy', () => {
  test('true as soon as the work settles, resolved or rejected', async () => {
    const by = Date.now() + 10_000;
    const started = Date.now();
    assert.equal(await settlesBy(new Promise((r) => setTimeout(r, 20)), () => by), true);
    assert.equal(await settlesBy(Promise.reject(new Error('EIO')), () => by), true);
    assert.ok(Date.now() - started < 2000);
  });

  test('false at the time given when the work never settles', async () => {
    const started = Date.now();
    assert.equal(await settlesBy(never, () => started + 150), false);
    const waited = Date.now() - started;
    assert.ok(waited >= 140 && waited < 2000, `waited ${waited} ms`);
  });

  test('a deadline brought forward ends the wait', async () => {
    let by = Date.now() + 60_000;
    setTimeout(() => (by = Date.now()), 50);
    const started = Date.now();
    assert.equal(await settlesBy(never, () => by), false);
    assert.ok(Date.now() - started < 2000);
  });

  test('returnsInTime gives a call under way its grace even when the deadline has passed', async () => {
    const started = Date.now();
    assert.equal(await returnsInTime(new Promise((r) => setTimeout(r, 100)), () => started - 1000), true, 'a call that returns within the grace');
    assert.equal(await returnsInTime(never, () => started - 1000), false);
    const waited = Date.now() - started;
    assert.ok(waited >= STOP_CALL_GRACE_MS - 20 && waited < STOP_CALL_GRACE_MS + 2000, `waited ${waited} ms`);
  });
});
