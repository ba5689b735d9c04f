/** Offsets of successful delivery reports only grow, per topic partition; a repeat is counted. */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { OffsetWatch } from '../../../src/backends/kafka/offset-watch';

test('growing offsets pass, per topic partition; the first report of a partition may start anywhere', () => {
  const watch = new OffsetWatch();
  assert.equal(watch.advanced('a', 0, 0), true);
  assert.equal(watch.advanced('a', 0, 1), true);
  assert.equal(watch.advanced('a', 1, 0), true); // another partition
  assert.equal(watch.advanced('b', 0, 0), true); // another topic
  assert.equal(watch.advanced('a', 0, 7), true); // a batch the broker appended before (a retry answered with its first offsets)
  assert.equal(watch.advanced('c', 2, 500), true);
  assert.equal(watch.repeats, 0);
});

test('an offset already reported in its partition is a repeat, counted and not remembered', () => {
  const watch = new OffsetWatch();
  for (let offset = 0; offset < 5; offset++) assert.equal(watch.advanced('a', 0, offset), true);
  assert.equal(watch.advanced('a', 0, 3), false); // the broker answered with an earlier message's place
  assert.equal(watch.advanced('a', 0, 4), false);
  assert.equal(watch.repeats, 2);
  assert.equal(watch.advanced('a', 0, 5), true);
  assert.equal(watch.advanced('a', 1, 3), true); // the other partition keeps its own
  assert.equal(watch.repeats, 2);
});

test('a report without an offset (-1: acks=0) is not judged', () => {
  const watch = new OffsetWatch();
  assert.equal(watch.advanced('a', 0, 10), true);
  assert.equal(watch.advanced('a', 0, -1), true);
  assert.equal(watch.advanced('a', 0, 11), true);
  assert.equal(watch.repeats, 0);
});
