/** Matching delivery reports to messages by partition order, and by opaque. */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { InFlight } from '../../../src/backends/kafka/in-flight';

interface M {
  id: number;
  timeMs: number;
  size: number;
}

const tracker = () => new InFlight<M>((m, r) => m.timeMs === r.timestamp && m.size === r.size);
const report = (m: M, topic: string, partition: number) => ({ topic, partition, timestamp: m.timeMs, size: m.size });

test('reports of a partition take its messages in produce order; partitions and topics are separate', () => {
  const t = tracker();
  const ms = Array.from({ length: 6 }, (_, i) => ({ id: i, timeMs: 1000 + i, size: 10 + i }));
  t.addRouted(ms[0]!, 'a', 0);
  t.addRouted(ms[1]!, 'a', 1);
  t.addRouted(ms[2]!, 'a', 0);
  t.addRouted(ms[3]!, 'b', 0);
  t.addRouted(ms[4]!, 'a', 1);
  assert.equal(t.size, 5);
  assert.equal(t.take(report(ms[1]!, 'a', 1)), ms[1]);
  assert.equal(t.take(report(ms[3]!, 'b', 0)), ms[3]);
  assert.equal(t.take(report(ms[0]!, 'a', 0)), ms[0]);
  assert.equal(t.take(report(ms[4]!, 'a', 1)), ms[4]);
  assert.equal(t.take(report(ms[2]!, 'a', 0)), ms[2]);
  assert.equal(t.size, 0);
  assert.equal(t.mismatches, 0);
  assert.equal(t.take(report(ms[5]!, 'a', 0)), undefined, 'nothing in flight');
});

test('a report that does not fit the oldest message is counted', () => {
  const t = tracker();
  const m = { id: 1, timeMs: 5, size: 5 };
  t.addRouted(m, 'a', 0);
  assert.equal(t.take({ topic: 'a', partition: 0, timestamp: 6, size: 5 }), m);
  assert.equal(t.mismatches, 1);
});

test('opaque messages, takeAll, and long queues', () => {
  const t = tracker();
  const u = { id: 99, timeMs: 1, size: 1 };
  t.addUnrouted(u);
  assert.equal(t.take({ topic: 'a', partition: 2, size: 1, opaque: u }), u);
  assert.equal(t.take({ topic: 'a', partition: 2, size: 1, opaque: u }), undefined, 'taken once');
  const many = Array.from({ length: 5000 }, (_, i) => ({ id: i, timeMs: i, size: 1 }));
  for (const m of many) t.addRouted(m, 'a', 0);
  for (const m of many.slice(0, 3000)) assert.equal(t.take(report(m, 'a', 0)), m);
  t.addUnrouted(u);
  const rest = t.takeAll();
  assert.deepEqual(rest.map((m) => m.id), [99, ...many.slice(3000).map((m) => m.id)]);
  assert.equal(t.size, 0);
});

test('bytes in flight are accounted per message and released by its report, routed or not', () => {
  const t = new InFlight<M>((m, r) => m.timeMs === r.timestamp && m.size === r.size, (m) => m.size);
  const ms = Array.from({ length: 4 }, (_, i) => ({ id: i, timeMs: 2000 + i, size: 100 * (i + 1) }));
  t.addRouted(ms[0]!, 'a', 0);
  t.addRouted(ms[1]!, 'a', 0);
  t.addUnrouted(ms[2]!);
  t.addRouted(ms[3]!, 'b', 2);
  assert.equal(t.held.bytes, 1000);
  assert.equal(t.size, 4);
  t.take(report(ms[0]!, 'a', 0));
  assert.equal(t.held.bytes, 900);
  t.take({ ...report(ms[2]!, 'x', -1), opaque: ms[2] });
  assert.equal(t.held.bytes, 600);
  assert.equal(t.take({ ...report(ms[2]!, 'x', -1), opaque: ms[2] }), undefined, 'a second report for it is unknown');
  assert.equal(t.held.bytes, 600);
  assert.deepEqual(t.takeAll(), [ms[1], ms[3]]);
  assert.equal(t.held.bytes, 0);
  assert.equal(t.size, 0);
});
