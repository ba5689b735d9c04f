import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { MessageSizeLimit } from '../../../src/backends/kafka/message-size';
import { kafkaTestConfig } from '../../support/kafka-config';

const config = (maxBytes: number | undefined, key: string | null = null) => kafkaTestConfig({ key, librdkafka: maxBytes === undefined ? {} : { 'message.max.bytes': maxBytes } });
const record = (values: string) => `{"flavor":"a","time":"2026-11-30T20:00:00.000+00:00","values":${values}}`;

test("librdkafka's default (1,000,000 bytes) unless kafka.librdkafka sets message.max.bytes", () => {
  assert.equal(new MessageSizeLimit(config(undefined), 1).maxBytes, 1_000_000);
  assert.equal(new MessageSizeLimit(config(5_000), 1).maxBytes, 5_000);
  assert.equal(new MessageSizeLimit(config('5000' as unknown as number), 1).maxBytes, 5_000, 'a string setting as librdkafka reads it');
});

test('a record fits by its UTF-8 bytes, the key and the headers counted', () => {
  const limit = new MessageSizeLimit(config(2_000), 1);
  const fixed = Buffer.byteLength(record('{"p":""}'));
  // What is left for the value: 2,000 − record − flavor name − framing and headers (86).
  const room = 2_000 - fixed - 1 - 86;
  assert.equal(limit.fits(record(`{"p":"${'x'.repeat(room)}"}`), 'a'), true);
  assert.equal(limit.fits(record(`{"p":"${'x'.repeat(room + 1)}"}`), 'a'), false);
  // 2 bytes a character: fewer characters than the limit, too many bytes.
  assert.equal(limit.fits(record(`{"p":"${'é'.repeat(room / 2 + 1)}"}`), 'a'), false);
  const keyed = new MessageSizeLimit(config(2_000, 'p'), 1);
  assert.equal(keyed.fits(record(`{"p":"${'x'.repeat(room)}"}`), 'a'), false, 'the key (the same value) counts too');
  assert.equal(keyed.fits(record(`{"p":"${'x'.repeat(Math.floor((room - 8) / 2))}"}`), 'a'), true);
});
