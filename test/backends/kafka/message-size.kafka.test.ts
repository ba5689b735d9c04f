/**
 * MessageSizeLimit.fits() against librdkafka itself. A record
 * fits() accepts must be one librdkafka's produce() takes, or the line goes
 * to the spool and comes back (and fails again) at every drain.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { kafkaClient } from '../../../src/backends/kafka/client';
import { MessageSizeLimit } from '../../../src/backends/kafka/message-size';
import { kafkaAvailable, sharedBroker } from '../../support/kafka';
import { kafkaTestConfig } from '../../support/kafka-config';

test('every record fits() accepts is taken by librdkafka, whatever its seq (here the seq of a process past its millionth line)', kafkaAvailable, async () => {
  const Kafka = kafkaClient();
  const producer = new Kafka.Producer({ 'bootstrap.servers': sharedBroker(), 'message.max.bytes': 2_000 });
  await new Promise<void>((resolve, reject) => producer.connect({}, (err) => (err ? reject(new Error(err.message)) : resolve())));
  try {
    const limit = new MessageSizeLimit(kafkaTestConfig({ librdkafka: { 'message.max.bytes': 2_000 } }), 1);
    // kafka-backend.ts: `${boot}-${nextSeq}`, boot = Date.now().toString(36) (8 characters).
    const seq = `${Date.now().toString(36)}-${1_234_567}`;
    const refused: number[] = [];
    for (let n = 1_900; n <= 2_000; n++) {
      const record = 'x'.repeat(n);
      if (!limit.fits(record, 'a')) break;
      try {
        producer.produce('message-size-probe', null, Buffer.from(record), null, Date.now(), 0, [{ flavor: Buffer.from('a') }, { seq }]);
      } catch {
        refused.push(n);
      }
    }
    assert.deepEqual(refused, [], 'records fits() accepts and librdkafka refuses (MSG_SIZE_TOO_LARGE)');
  } finally {
    await new Promise<void>((resolve) => producer.disconnect(2_000, () => resolve()));
  }
});
