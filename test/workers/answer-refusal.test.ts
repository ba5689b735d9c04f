/**
 * What an HTTP thread refuses before it answers (workers > 1), decided once
 * at start-up from the config: nothing (null) unless some line that can
 * arrive may be too large for Kafka and that refusal makes the answer a 503.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load';
import { buildRecord, recordHead } from '../../src/record';
import { answerRefusal } from '../../src/workers/answer-refusal';
import { FLAVORS } from '../support/scratchd';

const kafka = (extra: Record<string, unknown> = {}) => ({ brokers: '127.0.0.1:1', spool: { path: 'spool' }, ...extra });
const config = (json: Record<string, unknown>) => parseConfig({ flavors: FLAVORS, workers: 2, ...json }, '/tmp/scratchd.json');
const record = (values: string) => buildRecord(recordHead(FLAVORS[0]!.name), '2026-01-01T00:00:00.000+00:00', values);

test('no test at all when no line that can arrive is too large, or when refusing it does not change the answer', () => {
  assert.equal(answerRefusal(config({ file: { path: 'logs/{flavor}.log' } })), null, 'no Kafka');
  assert.equal(answerRefusal(config({ kafka: kafka() })), null, "default limits: a record is at most ~600 KB, message.max.bytes 1,000,000");
  assert.equal(answerRefusal(config({ file: { path: 'logs/{flavor}.log' }, kafka: kafka({ whenFull: 'drop_newest', librdkafka: { 'message.max.bytes': 2_000 } }) })), null, 'the file backend takes it: 200 whatever Kafka does');
});

test('a test when a line may be too large and the answer would be 503: it refuses exactly what the backend refuses', () => {
  const small = { librdkafka: { 'message.max.bytes': 2_000 } };
  for (const [limit, json] of [
    [2_000, { kafka: kafka(small) }],
    [1_000_000, { kafka: kafka({ key: 'uid' }) }], // the key may double a message
    [2_000, { file: { path: 'logs/{flavor}.log' }, kafka: kafka(small) }],
  ] as const) {
    const refuses = answerRefusal(config(json));
    assert.ok(refuses !== null, JSON.stringify(json));
    assert.equal(refuses(record('{"uid":"a"}'), FLAVORS[0]!.name), false);
    assert.equal(refuses(record(`{"pad":"${'x'.repeat(limit)}"}`), FLAVORS[0]!.name), true, JSON.stringify(json));
  }
});
