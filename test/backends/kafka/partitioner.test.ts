/** Partition choice as librdkafka's default partitioner makes it. */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { crc32, partitionFor, STICKY_RUN, StickyPartition } from '../../../src/backends/kafka/partitioner';

test('crc32 is zlib/IEEE CRC-32 over UTF-8', () => {
  // Values from Python's zlib.crc32.
  assert.equal(crc32('hello'), 907060870);
  assert.equal(crc32('αβγ'), 3772667006);
  assert.equal(crc32(''), 0);
});

test('a key always maps to the same partition; no key sticks for a run, then moves', () => {
  const sticky = new StickyPartition();
  assert.equal(partitionFor('user-42', 6, sticky), crc32('user-42') % 6);
  assert.equal(partitionFor('user-42', 6, sticky), partitionFor('user-42', 6, sticky));
  const seen: number[] = [];
  for (let i = 0; i < STICKY_RUN * 6; i++) seen.push(partitionFor(null, 3, sticky));
  for (let run = 0; run < 6; run++) {
    const slice = seen.slice(run * STICKY_RUN, (run + 1) * STICKY_RUN);
    assert.ok(slice.every((p) => p === slice[0]), 'one partition per run');
    if (run > 0) assert.notEqual(slice[0], seen[run * STICKY_RUN - 1], 'the next run moves');
  }
  assert.ok(seen.every((p) => p >= 0 && p < 3));
  assert.equal(partitionFor(null, 1, new StickyPartition()), 0);
});
