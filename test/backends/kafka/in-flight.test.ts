/** Matching delivery reports to messages: by id per partition, in any order. */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import fc from 'fast-check';
import { InFlight, reportFits, type Reported } from '../../../src/backends/kafka/in-flight';

interface M {
  n: number;
  timeMs: number;
  size: number;
  /** The opaque it was produced with. */
  id?: number;
}

const tracker = (lastId = 0) => new InFlight<M>((m, r) => m.timeMs === r.timestamp && m.size === r.size, (m) => m.size, lastId);
const report = (m: M, topic: string, partition: number): Reported => ({ topic, partition, timestamp: m.timeMs, size: m.size, opaque: m.id });
const add = (t: InFlight<M>, m: M, topic: string, partition: number) => {
  m.id = t.nextId();
  t.addRouted(m, topic, partition, m.id);
};

test('reports of a partition in produce order take its messages; partitions and topics are separate', () => {
  const t = tracker();
  const ms: M[] = Array.from({ length: 6 }, (_, i) => ({ n: i, timeMs: 1000 + i, size: 10 + i }));
  add(t, ms[0]!, 'a', 0);
  add(t, ms[1]!, 'a', 1);
  add(t, ms[2]!, 'a', 0);
  add(t, ms[3]!, 'b', 0);
  add(t, ms[4]!, 'a', 1);
  assert.equal(t.size, 5);
  assert.equal(t.take(report(ms[1]!, 'a', 1)), ms[1]);
  assert.equal(t.take(report(ms[3]!, 'b', 0)), ms[3]);
  assert.equal(t.take(report(ms[0]!, 'a', 0)), ms[0]);
  assert.equal(t.take(report(ms[4]!, 'a', 1)), ms[4]);
  assert.equal(t.take(report(ms[2]!, 'a', 0)), ms[2]);
  assert.equal(t.size, 0);
  assert.equal(t.mismatches, 0);
  assert.equal(t.reordered, 0);
  ms[5]!.id = 12345;
  assert.equal(t.take(report(ms[5]!, 'a', 0)), undefined, 'nothing in flight');
});

test('failures reported before older successes (as after an outage) still take exactly their own message', () => {
  // Two beacons of one client in one millisecond: same timestamp, same size.
  const t = tracker();
  const ms = Array.from({ length: 6 }, (_, i) => ({ n: i, timeMs: 7, size: 30 }));
  for (const m of ms) add(t, m, 'a', 0);
  // The queued ones (3..5) time out first; the in-flight ones (0..2) succeed later.
  for (const i of [3, 4, 5, 0, 1, 2]) assert.equal(t.take(report(ms[i]!, 'a', 0)), ms[i]);
  assert.equal(t.reordered, 3);
  assert.equal(t.mismatches, 0);
  assert.equal(t.size, 0);
  assert.equal(t.held.bytes, 0);
});

test('a second report for one message is unknown and counted; so is a report unlike its message, not one after takeAll', () => {
  const t = tracker();
  const m: M = { n: 1, timeMs: 5, size: 5 };
  add(t, m, 'a', 0);
  const other: M = { n: 2, timeMs: 5, size: 5 };
  add(t, other, 'a', 0);
  assert.equal(t.take(report(other, 'a', 0)), other);
  assert.equal(t.take(report(other, 'a', 0)), undefined, 'taken once');
  assert.equal(t.mismatches, 1, 'a second report is counted');
  assert.equal(t.take({ topic: 'a', partition: 0, timestamp: 6, size: 5, opaque: m.id }), m);
  assert.equal(t.mismatches, 2, 'a report unlike its line is counted');
  const late = { n: 3, timeMs: 5, size: 5 };
  add(t, late, 'a', 0);
  assert.deepEqual(t.takeAll(), [late]);
  assert.equal(t.take(report(late, 'a', 0)), undefined);
  assert.equal(t.mismatches, 2, 'a report for a line a stop gave up on is expected');
});

test('reports are checked by size only: a failure (no timestamp) or a LogAppendTime topic (the broker\'s time) is no mismatch', () => {
  // As librdkafka reports a timed-out message: size and opaque, timestamp absent (the binding sets none for -1).
  const t = new InFlight<M>((m, r) => reportFits(m.size, r), (m) => m.size);
  const ms: M[] = Array.from({ length: 3 }, (_, i) => ({ n: i, timeMs: 1000 + i, size: 20 + i }));
  for (const m of ms) add(t, m, 'a', 0);
  assert.equal(t.take({ topic: 'a', partition: 0, size: 22, opaque: ms[2]!.id }), ms[2]);
  assert.equal(t.take({ topic: 'a', partition: 0, size: 20, opaque: ms[0]!.id }), ms[0]);
  assert.equal(t.mismatches, 0);
  assert.equal(t.take({ topic: 'a', partition: 0, size: 99, opaque: ms[1]!.id }), ms[1]);
  assert.equal(t.mismatches, 1, 'a size unlike the line is still counted');
  assert.equal(reportFits(3, { topic: 'a', partition: 0, timestamp: 5, size: 3 }), true);
  assert.equal(reportFits(3, { topic: 'a', partition: 0, timestamp: 1_800_000_000_000, size: 3 }), true, 'a success stamped with the append time');
  assert.equal(reportFits(3, { topic: 'a', partition: 0, timestamp: 5, size: 4 }), false, 'another size');
});

test('ids wrap at 2^30 and stay findable in any order', () => {
  const t = tracker(0x3fffffff - 3);
  const ms: M[] = Array.from({ length: 8 }, (_, i) => ({ n: i, timeMs: i, size: 1 }));
  for (const m of ms) add(t, m, 'a', 0);
  assert.ok(ms.some((m) => m.id === 0) && ms.some((m) => m.id === 0x3fffffff), 'the ids cross the wrap');
  for (const i of [6, 1, 7, 0, 3, 2, 5, 4]) assert.equal(t.take(report(ms[i]!, 'a', 0)), ms[i]);
  assert.equal(t.size, 0);
});

test('takeAll after partial takes, and long queues', () => {
  const t = tracker();
  const many = Array.from({ length: 5000 }, (_, i) => ({ n: i, timeMs: i, size: 1 }));
  for (const m of many) add(t, m, 'a', 0);
  for (const m of many.slice(0, 3000)) assert.equal(t.take(report(m, 'a', 0)), m);
  t.take(report(many[4000]!, 'a', 0));
  const rest = t.takeAll();
  assert.deepEqual(rest.map((m) => m.n), many.slice(3000).filter((m) => m.n !== 4000).map((m) => m.n));
  assert.equal(t.size, 0);
  assert.equal(t.held.bytes, 0);
});

test('bytes in flight are accounted per message and released by its report', () => {
  const t = tracker();
  const ms = Array.from({ length: 4 }, (_, i) => ({ n: i, timeMs: 2000 + i, size: 100 * (i + 1) }));
  add(t, ms[0]!, 'a', 0);
  add(t, ms[1]!, 'a', 0);
  add(t, ms[2]!, 'a', 1);
  add(t, ms[3]!, 'b', 2);
  assert.equal(t.held.bytes, 1000);
  assert.equal(t.size, 4);
  t.take(report(ms[0]!, 'a', 0));
  assert.equal(t.held.bytes, 900);
  t.take(report(ms[2]!, 'a', 1));
  assert.equal(t.held.bytes, 600);
  assert.equal(t.take(report(ms[2]!, 'a', 1)), undefined, 'a second report for it is unknown');
  assert.equal(t.take({ topic: 'a', partition: 0, size: 1, opaque: { not: 'an id' } }), undefined, 'an opaque that is no id is unknown');
  assert.equal(t.mismatches, 2);
  assert.equal(t.held.bytes, 600);
  assert.deepEqual(t.takeAll(), [ms[1], ms[3]]);
  assert.equal(t.held.bytes, 0);
  assert.equal(t.size, 0);
});

test('property: reports as ordered chains merged at random (in flight, queued, retried) each take their own message', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 6 }), fc.array(fc.nat(), { maxLength: 6000 }), fc.nat(0x3fffffff), fc.nat(200), (count, chainCount, picks, firstId, takeAllAfter) => {
      const t = tracker(firstId);
      const ms = Array.from({ length: count }, (_, i) => ({ n: i, timeMs: i >> 4, size: 10 + (i & 1) }));
      for (const m of ms) add(t, m, 't', m.n % 2);
      // Split produce order into consecutive chains; each is reported in order, the chains interleave.
      const chains: M[][] = Array.from({ length: chainCount }, () => []);
      ms.forEach((m, i) => chains[Math.min(chainCount - 1, Math.floor((i * chainCount) / count))]!.push(m));
      const taken = new Set<number>();
      let pick = 0;
      while (taken.size < Math.max(0, count - takeAllAfter)) {
        const open = chains.filter((c) => c.length > 0);
        const chain = open[(picks[pick++ % Math.max(1, picks.length)] ?? 0) % open.length]!;
        const m = chain.shift()!;
        assert.equal(t.take(report(m, 't', m.n % 2)), m);
        taken.add(m.n);
      }
      const rest = t.takeAll();
      assert.deepEqual(rest.map((m) => m.n).sort((a, b) => a - b), ms.filter((m) => !taken.has(m.n)).map((m) => m.n));
      assert.equal(t.mismatches, 0);
      assert.equal(t.size, 0);
      assert.equal(t.held.bytes, 0);
    }),
    { numRuns: 60 },
  );
});
