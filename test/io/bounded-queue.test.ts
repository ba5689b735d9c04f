/** BoundedQueue and Budget: order, bounds in items and bytes, shared budgets, the low-water wake-up. */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { Budget, BoundedQueue } from '../../src/io/bounded-queue';
import { prng } from '../support/prng';

describe('BoundedQueue', () => {
  test('matches a plain array under random push/unshift/shift, across ring growth and wrap-around (seeded)', () => {
    for (const seed of [1, 2, 3, 42, 1234]) {
      const random = prng(seed);
      const queue = new BoundedQueue<number>();
      const model: { item: number; bytes: number }[] = [];
      for (let step = 0; step < 20_000; step++) {
        const r = random();
        const bytes = Math.floor(random() * 100);
        if (r < 0.45) {
          queue.push(step, bytes);
          model.push({ item: step, bytes });
        } else if (r < 0.55) {
          queue.unshift(step, bytes);
          model.unshift({ item: step, bytes });
        } else {
          assert.equal(queue.peekBytes(), model[0]?.bytes ?? 0, `seed ${seed} step ${step}`);
          assert.equal(queue.shift(), model.shift()?.item, `seed ${seed} step ${step}`);
        }
        assert.equal(queue.length, model.length);
        assert.equal(queue.bytes, model.reduce((sum, m) => sum + m.bytes, 0));
        assert.equal(queue.budget.items, model.length);
      }
      assert.deepEqual(queue.drain(), model.map((m) => m.item));
      assert.equal(queue.budget.bytes, 0);
      assert.equal(queue.shift(), undefined);
    }
  });

  test('tryPush refuses at either bound, leaving the queue unchanged; push/unshift always succeed', () => {
    const byItems = new BoundedQueue<string>(new Budget(2, Infinity));
    assert.equal(byItems.tryPush('a', 1), true);
    assert.equal(byItems.tryPush('b', 1), true);
    assert.equal(byItems.tryPush('c', 1), false);
    assert.equal(byItems.length, 2);
    byItems.unshift('z', 1);
    assert.deepEqual(byItems.drain(), ['z', 'a', 'b']);

    const byBytes = new BoundedQueue<string>(new Budget(Infinity, 100));
    assert.equal(byBytes.tryPush('a', 60), true);
    assert.equal(byBytes.tryPush('b', 41), false, '101 bytes would pass 100');
    assert.equal(byBytes.tryPush('c', 40), true, 'exactly 100 fits');
    assert.equal(byBytes.tryPush('d', 0), true);
    assert.equal(byBytes.bytes, 100);
    byBytes.shift();
    assert.equal(byBytes.tryPush('e', 60), true, 'room again once bytes left');
    assert.equal(new BoundedQueue<string>(new Budget(10, 100)).tryPush('huge', 101), false, 'one item larger than the bound never fits');
  });

  test('queues sharing a budget are bounded together', () => {
    const budget = new Budget(Infinity, 100);
    const a = new BoundedQueue<string>(budget);
    const b = new BoundedQueue<string>(budget);
    assert.equal(a.tryPush('a', 70), true);
    assert.equal(b.tryPush('b', 40), false);
    assert.equal(b.tryPush('b', 30), true);
    assert.equal(budget.bytes, 100);
    assert.equal(budget.items, 2);
    a.shift();
    assert.equal(budget.bytes, 30);
    assert.equal(b.tryPush('c', 70), true);
    assert.equal(b.shift(false), 'b', 'taken out, still charged: the caller holds it');
    assert.equal(b.bytes, 70);
    assert.equal(budget.bytes, 100);
    assert.equal(b.tryPush('d', 1), false);
    budget.release(1, 30);
    assert.equal(b.tryPush('d', 1), true);
  });

  test('whenAtMost resolves once the bytes held fall to the level, not before', async () => {
    const queue = new BoundedQueue<number>(new Budget(Infinity, 1000));
    for (let i = 0; i < 10; i++) queue.push(i, 100);
    const order: string[] = [];
    const low = queue.budget.whenAtMost(300).then(() => order.push(`low at ${queue.bytes}`));
    const empty = queue.budget.whenAtMost(0).then(() => order.push(`empty at ${queue.bytes}`));
    await queue.budget.whenAtMost(1000); // already true: resolves at once
    for (let i = 0; i < 6; i++) queue.shift();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, [], '400 bytes held: above both levels');
    queue.shift();
    await low;
    assert.deepEqual(order, ['low at 300']);
    queue.drain();
    await empty;
    assert.deepEqual(order, ['low at 300', 'empty at 0']);
  });

  test('push and shift stay O(1): a million items through a queue kept at 100,000', () => {
    const queue = new BoundedQueue<number>();
    const started = performance.now();
    for (let i = 0; i < 100_000; i++) queue.push(i, 1);
    for (let i = 100_000; i < 1_000_000; i++) {
      queue.push(i, 1);
      assert.equal(queue.shift(), i - 100_000);
    }
    // Generous: a shift that moves the 100,000 held items would take minutes.
    assert.ok(performance.now() - started < 5_000, `${performance.now() - started} ms`);
  });
});
