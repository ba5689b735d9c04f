/**
 * The Kafka backend (on the calling thread) against a real broker, at a stop
 * that cuts into a spool drain: whatever the stop leaves behind, the next
 * start delivers every line, and every copy Kafka gets twice is counted in
 * `possible_duplicates` (docs/kafka.md, "Nothing lost: the spool").
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { Flavor } from '../../../src/flavor';
import { KafkaBackend } from '../../../src/backends/kafka/kafka-backend';
import { Spool } from '../../../src/backends/kafka/spool';
import type { KafkaConfig } from '../../../src/backends/kafka/types';
import { logger } from '../../../src/log';
import { kafkaCall, kafkaClient } from '../../../src/backends/kafka/client';
import { consumeAll, createTopics, kafkaAvailable, sharedBroker } from '../../support/kafka';
import { kafkaTestConfig } from '../../support/kafka-config';
import { tempDir } from '../../support/scratchd';

const flavors = [new Flavor('one', 0, 'UTC', ['one.example']), new Flavor('two', 1, 'Europe/Athens', ['two.example'])];

const config = (brokers: string, topic: string, spool: string, librdkafka: KafkaConfig['librdkafka'] = {}, spoolMaxBytes = 1024 ** 3): KafkaConfig =>
  kafkaTestConfig({ brokers, topic, queue: 20_000, queueMaxBytes: 64 * 1024 ** 2, downAfterMs: 5_000, spool: { path: spool, maxBytes: spoolMaxBytes, drainRatePerSec: 1_000_000 }, librdkafka });

/** A spool folder holding `count` lines, as a previous process would have left it; `first`, if given, is the record of line `at` (flavor two). */
/**
 * Topics `<name>-…-one` (3 partitions) and `-two`, which refuses `big` (too
 * large for its max.message.bytes, and not compressible below it): a
 * definite failure, reported at once. recreateTopic(two) lifts it.
 */
async function topicsRefusingBig(name: string): Promise<{ brokers: string; topic: string; one: string; two: string; big: string }> {
  const brokers = sharedBroker();
  const topic = `${name}-${process.pid}-${Date.now()}-{flavor}`;
  const [one, two] = flavors.map((f) => topic.replace('{flavor}', f.name)) as [string, string];
  await createTopics(brokers, [one], 3);
  await createTopics(brokers, [two], 1, { 'max.message.bytes': '2000' });
  const big = `{"flavor":"two","time":"t","values":{"blob":"${randomBytes(3000).toString('base64')}"}}`;
  return { brokers, topic, one, two, big };
}

/** A backend started on the spool `dir`, closed once it drained it all; nothing of it dropped. */
async function drainSpool(brokers: string, topic: string, dir: string): Promise<KafkaBackend> {
  const backend = new KafkaBackend(config(brokers, topic, dir), flavors, 10_000);
  await backend.start();
  await until(() => backend.details().spool_bytes === 0 && backend.details().in_flight === 0 && backend.details().drained! > 0, 'the spool drained', 60_000);
  await backend.close(Date.now() + 10_000);
  assert.equal(backend.counters.droppedTotal, 0, JSON.stringify(backend.counters.dropped));
  return backend;
}

async function spoolOf(dir: string, count: number, first?: string, at = 0): Promise<string[]> {
  const spool = new Spool(dir, 1024 ** 3, new Set(flavors.map((f) => f.name)), { persisted: () => undefined, failed: () => undefined, lost: () => undefined }, logger('test'));
  await spool.open();
  const seqs: string[] = [];
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const flavor = first === undefined ? flavors[i % 2]!.name : i === at ? 'two' : 'one';
    const seq = `old-${i}`;
    const record = i === at && first !== undefined ? first : `{"flavor":"${flavor}","time":"t","values":{"i":"${i}"}}`;
    assert.ok(spool.append({ timeMs: now, flavor, key: null, maybeDelivered: false, seq, record }));
    seqs.push(seq);
  }
  assert.equal(await spool.close(Date.now() + 10_000), 0);
  return seqs;
}

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** How many copies of each `seq` the topics hold. */
async function copiesBySeq(brokers: string, topics: readonly string[]): Promise<Map<string, number>> {
  const copies = new Map<string, number>();
  for (const topic of topics) for (const m of await consumeAll(brokers, topic)) copies.set(m.headers.seq!, (copies.get(m.headers.seq!) ?? 0) + 1);
  return copies;
}

/** Every spooled line reached Kafka, and every second copy is counted in some run's possible_duplicates. */
function assertAllThereDuplicatesCounted(seqs: readonly string[], copies: Map<string, number>, runs: readonly KafkaBackend[]): void {
  const missing = seqs.filter((s) => !copies.has(s));
  assert.deepEqual(missing.slice(0, 5), [], `${missing.length} lines never reached Kafka`);
  const duplicates = [...copies.values()].reduce((sum, n) => sum + n - 1, 0);
  const counted = runs.reduce((sum, run) => sum + run.details().possible_duplicates!, 0);
  assert.ok(duplicates <= counted, `${duplicates} copies in Kafka twice, ${counted} counted as possible duplicates`);
}

/** Deletes a topic and makes it again with the broker's defaults (no max.message.bytes of its own). */
async function recreateTopic(brokers: string, topic: string): Promise<void> {
  const admin = kafkaClient().AdminClient.create({ 'bootstrap.servers': brokers });
  try {
    await kafkaCall<void>((cb) => admin.deleteTopic(topic, 10_000, (err) => cb(err, undefined)));
  } finally {
    admin.disconnect();
  }
  for (let tries = 0; ; tries++) {
    try {
      await createTopics(brokers, [topic], 1);
      return;
    } catch (err) {
      if (tries > 20) throw err; // the deletion may still be under way
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

describe('kafka backend: a stop during a spool drain', kafkaAvailable, () => {
  test('the deadline comes with a drain batch in flight: nothing lost, nothing dropped, every duplicate counted', async () => {
    const brokers = sharedBroker();
    const topic = `spool-stop-${process.pid}-${Date.now()}-{flavor}`;
    await createTopics(brokers, flavors.map((f) => topic.replace('{flavor}', f.name)), 3);
    const dir = path.join(tempDir(), 'spool');
    const seqs = await spoolOf(dir, 12_000);

    const first = new KafkaBackend(config(brokers, topic, dir), flavors, 0);
    await first.start();
    // The first drain batch is being produced: stop at once, a deadline already past.
    await until(() => first.details().in_flight! > 0, 'a drain batch in flight');
    await first.close(Date.now());
    assert.equal(first.counters.droppedTotal, 0, `nothing dropped at the stop: ${JSON.stringify(first.counters.dropped)}`);
    assert.equal(first.counters.queued, 0);

    const second = await drainSpool(brokers, topic, dir);

    const copies = await copiesBySeq(brokers, flavors.map((f) => topic.replace('{flavor}', f.name)));
    assertAllThereDuplicatesCounted(seqs, copies, [first, second]);
  });

  test('a drained line whose delivery failed, then a stop before the rest of its batch is confirmed: after the restart it arrives once', async () => {
    const { brokers, topic, one, two, big } = await topicsRefusingBig('spool-fail');
    const dir = path.join(tempDir(), 'spool');
    const seqs = await spoolOf(dir, 12_000, big);

    // linger.ms 0: the batch goes in many requests, so the failure is reported while later ones are in flight.
    const first = new KafkaBackend(config(brokers, topic, dir, { 'linger.ms': 0 }), flavors, 0);
    await first.start();
    await until(() => first.counters.errors > 0, 'the failed delivery');
    const cutShort = first.details().in_flight! > 0;
    await first.close(Date.now());
    assert.ok(cutShort, 'the stop came with lines of the batch still in flight (the case under test)');
    assert.equal(first.counters.droppedTotal, 0, JSON.stringify(first.counters.dropped));

    // Topic two takes it now.
    await recreateTopic(brokers, two);

    const second = await drainSpool(brokers, topic, dir);

    const copies = await copiesBySeq(brokers, [one, two]);
    assert.equal(copies.get('old-0'), 1, 'the line that failed arrives once: its re-spooled copy, not its segment\'s too');
    assertAllThereDuplicatesCounted(seqs, copies, [first, second]);
  });

  test('the deadline comes with a drain batch in flight and the spool too full to take the batch back: the batch stays in its segment, nothing lost or dropped, every duplicate counted', async () => {
    const brokers = sharedBroker();
    const topic = `spool-full-${process.pid}-${Date.now()}-{flavor}`;
    await createTopics(brokers, flavors.map((f) => topic.replace('{flavor}', f.name)), 3);
    const dir = path.join(tempDir(), 'spool');
    const seqs = await spoolOf(dir, 12_000);
    const size = fs.readdirSync(dir).filter((f) => f.endsWith('.spool')).reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0);

    // Room for the spooled lines and a few more, not for a batch of them again.
    const first = new KafkaBackend(config(brokers, topic, dir, {}, size + 10_000), flavors, 0);
    await first.start();
    await until(() => first.details().in_flight! > 0, 'a drain batch in flight');
    await first.close(Date.now());
    assert.equal(first.counters.dropped.spool_full, 0, 'nothing of the batch offered to a spool without room for it');
    assert.ok(first.details().possible_duplicates! > 0, 'the batch was left in its segment (the case under test), what it handed on counted');

    const second = await drainSpool(brokers, topic, dir);

    const copies = await copiesBySeq(brokers, flavors.map((f) => topic.replace('{flavor}', f.name)));
    assertAllThereDuplicatesCounted(seqs, copies, [first, second]);
  });

  /**
   * A spool of 3,000 lines whose line `at` is too large for its topic (topic
   * two refuses it: a definite failure), and a first backend on a spool of
   * exactly that size; `whileUp` judges the first backend before it closes.
   * Then the topic takes large lines again, and a second backend drains the
   * spool: the line arrives, and every duplicate is counted. Resolves with
   * the copies of each line in Kafka, by seq.
   */
  async function undeliverableInSpool(name: string, at: number, whileUp: (first: KafkaBackend, size: number) => Promise<void>): Promise<Map<string, number>> {
    const { brokers, topic, one, two, big } = await topicsRefusingBig(name);
    const dir = path.join(tempDir(), 'spool');
    const seqs = await spoolOf(dir, 3_000, big, at);
    const size = fs.readdirSync(dir).filter((f) => f.endsWith('.spool')).reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0);

    const first = new KafkaBackend(config(brokers, topic, dir, {}, size), flavors, 0);
    await first.start();
    try {
      await whileUp(first, size);
    } finally {
      await first.close(Date.now() + 10_000);
    }
    assert.equal(first.counters.droppedTotal, 0, JSON.stringify(first.counters.dropped));

    await recreateTopic(brokers, two);
    const second = await drainSpool(brokers, topic, dir);

    const copies = await copiesBySeq(brokers, [one, two]);
    assert.ok(copies.has(`old-${at}`), 'the line that failed arrives');
    assertAllThereDuplicatesCounted(seqs, copies, [first, second]);
    return copies;
  }

  test('a drained line whose delivery failed, the spool too full to take it back: not dropped, its batch not committed; it arrives later, every duplicate counted', async () => {
    // The failed line first in its batch: no room for one more entry, so it cannot go back to the spool.
    await undeliverableInSpool('spool-fail-full', 0, async (first) => {
      await until(() => first.counters.errors > 0 && first.details().in_flight === 0 && (first.counters.dropped.spool_full > 0 || first.details().possible_duplicates! > 0), 'the failed delivery settled');
      assert.equal(first.counters.dropped.spool_full, 0, 'the line is still in its segment: not a drop');
      assert.ok(first.details().possible_duplicates! > 0, 'the batch stays in its segment, what it delivered counted');
    });
  });

  test('the same, the drain passing over the batch again and again: a later pass sends only the failed line again, not what the first delivered', async () => {
    const copies = await undeliverableInSpool('spool-fail-again', 0, async (first) => {
      // One failed delivery a pass.
      await until(() => first.counters.errors >= 3 && first.details().in_flight === 0, 'three passes over the batch', 60_000);
    });
    // The first pass delivered the other 2,999 lines; the stop counts them, and the second backend sends them again once.
    // Sending them again at every pass would have made at least 3 × 2,999 copies.
    const duplicates = [...copies.values()].reduce((sum, n) => sum + n - 1, 0);
    assert.ok(duplicates <= 2_999, `${duplicates} second copies in Kafka`);
  });

  test('the same with the failed line inside its batch: the batch is committed up to it, which makes room for it in the spool, and the drain goes on', async () => {
    await undeliverableInSpool('spool-fail-mid', 1_000, async (first, size) => {
      // Refused back at first (no room), then taken back once the entries before it are committed.
      await until(() => first.spooled > 0 || first.counters.dropped.spool_full > 0, 'the failed line back in the spool');
      assert.equal(first.counters.dropped.spool_full, 0, 'never a drop');
      assert.ok(first.details().possible_duplicates! > 0, 'the rest of the batch, sent again, counted');
      assert.ok(first.details().spool_bytes! < size, 'the entries before it were committed');
    });
  });
});
