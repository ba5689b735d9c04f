/** Lines through a batch (Kafka thread, HTTP threads) and back: byte-exact, in order, split where full. */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { BatchWriter, readBatch } from '../../src/io/line-batch';

interface L {
  flavorIndex: number;
  timeMs: number;
  record: string;
}

/** Writes `lines` through a writer of `size` bytes; returns what comes out of every batch, in order, and the batch count. */
function roundTrip(lines: readonly L[], size: number): { out: (L & { bytes: number })[]; batches: number } {
  const writer = new BatchWriter(size);
  const taken: ReturnType<BatchWriter['take']>[] = [];
  const full = () => taken.push(writer.take());
  for (const l of lines) assert.equal(writer.append(l.flavorIndex, l.timeMs, l.record, full), Buffer.byteLength(l.record));
  if (writer.lines > 0) taken.push(writer.take());
  const out: (L & { bytes: number })[] = [];
  for (const b of taken) {
    let n = 0;
    readBatch(b.buffer, b.length, (flavorIndex, timeMs, record, bytes) => {
      out.push({ flavorIndex, timeMs, record, bytes });
      n++;
    });
    assert.equal(n, b.lines);
  }
  return { out, batches: taken.length };
}

test('every line comes back as it went in: flavor, time to the ms, record byte for byte (UTF-8 of any width)', () => {
  const records = ['{"a":1}', '{"city":"Αθήνα"}', '{"e":"😀 \\u0000 ok"}', '{"cjk":"東京"}', `{"long":"${'x'.repeat(5000)}"}`];
  const lines = records.map((record, i) => ({ flavorIndex: i % 3, timeMs: 1_796_041_871_123 + i, record }));
  const { out, batches } = roundTrip(lines, 64 * 1024);
  assert.equal(batches, 1);
  assert.deepEqual(out.map(({ flavorIndex, timeMs, record }) => ({ flavorIndex, timeMs, record })), lines);
  assert.deepEqual(out.map((o) => o.bytes), records.map((r) => Buffer.byteLength(r)));
});

test('a full batch is handed over before the line that would not fit; order is kept across batches', () => {
  const lines = Array.from({ length: 1000 }, (_, i) => ({ flavorIndex: 1, timeMs: i, record: `{"n":${i},"pad":"${'é'.repeat(i % 50)}"}` }));
  const { out, batches } = roundTrip(lines, 4096);
  assert.ok(batches > 10, `${batches} batches`);
  assert.deepEqual(out.map((o) => o.record), lines.map((l) => l.record));
});

test('a record larger than a batch starts a batch of its own, in a buffer large enough', () => {
  const big = `{"big":"${'ü'.repeat(10_000)}"}`;
  const lines = [{ flavorIndex: 0, timeMs: 1, record: '{"before":1}' }, { flavorIndex: 0, timeMs: 2, record: big }, { flavorIndex: 0, timeMs: 3, record: '{"after":1}' }];
  const { out, batches } = roundTrip(lines, 1024);
  assert.equal(batches, 2, 'the small line before it goes first; the one after shares its buffer');
  assert.deepEqual(out.map((o) => o.record), lines.map((l) => l.record));
});

test('take() leaves the writer empty, with a fresh buffer (the old one is transferred away)', () => {
  const writer = new BatchWriter(1024);
  writer.append(0, 1, '{"a":1}', () => assert.fail('not full'));
  const first = writer.take();
  assert.equal(first.lines, 1);
  assert.equal(writer.lines, 0);
  assert.equal(writer.bytes, 0);
  structuredClone(first.buffer, { transfer: [first.buffer] }); // detaches it, as postMessage does
  writer.append(0, 2, '{"b":2}', () => assert.fail('not full'));
  const second = writer.take();
  const got: string[] = [];
  readBatch(second.buffer, second.length, (_f, _t, record) => got.push(record));
  assert.deepEqual(got, ['{"b":2}']);
});

test('a forwarded line carries its client and key (any width), and lines without them read back empty', () => {
  const writer = new BatchWriter(1024);
  const full = () => assert.fail('not full');
  writer.append(2, 5, '{"a":1}', full, '2001:db8::1', 'a1b2:c3d4');
  writer.append(1, 6, '{"b":2}', full);
  writer.append(0, 7, '{"c":"ü"}', full, 'ünïcode-proxy', '');
  const batch = writer.take();
  const got: unknown[] = [];
  readBatch(batch.buffer, batch.length, (flavorIndex, timeMs, record, bytes, client, key) => got.push({ flavorIndex, timeMs, record, bytes, client, key }));
  assert.deepEqual(got, [
    { flavorIndex: 2, timeMs: 5, record: '{"a":1}', bytes: 7, client: '2001:db8::1', key: 'a1b2:c3d4' },
    { flavorIndex: 1, timeMs: 6, record: '{"b":2}', bytes: 7, client: '', key: '' },
    { flavorIndex: 0, timeMs: 7, record: '{"c":"ü"}', bytes: 10, client: 'ünïcode-proxy', key: '' },
  ]);
});

test('a client address longer than 64 KiB (a long X-Forwarded-For) goes through whole', () => {
  const writer = new BatchWriter(1024);
  const client = `10.0.0.1${'x'.repeat(70_000)}`;
  writer.append(0, 1, '{}', () => undefined, client, 'k');
  const batch = writer.take();
  const got: string[] = [];
  readBatch(batch.buffer, batch.length, (_f, _t, _r, _b, c, k) => got.push(c, k));
  assert.deepEqual(got, [client, 'k']);
});
