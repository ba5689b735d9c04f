/**
 * librdkafka settings: scratchd's defaults, then the user's `kafka.librdkafka`
 * on top (CONFIGURATION.md of librdkafka names every key). The defaults are
 * chosen not to lose data:
 * - acks=all and enable.idempotence=true: a delivery report means every
 *   in-sync replica has the message, and librdkafka's own retries cannot
 *   duplicate or reorder it;
 * - message.timeout.ms=30000: a bounded time before an undelivered message
 *   comes back as failed (and goes to the spool);
 * - compression lz4 (cheap on CPU, good on JSON), linger 5 ms for batching;
 * - statistics every 15 s for /stats (cheap at that pace).
 * validateLibrdkafka() builds (does not connect) a producer so that librdkafka
 * itself rejects unknown keys and bad values while the config is checked.
 */
import type { KafkaConfig } from '../../config/types';
import { ScratchError } from '../../errors';
import { kafkaClient } from './client';

export function producerSettings(config: KafkaConfig): Record<string, string | number | boolean> {
  return {
    'client.id': 'scratchd',
    'bootstrap.servers': config.brokers,
    acks: 'all',
    'enable.idempotence': true,
    'compression.codec': 'lz4',
    'linger.ms': 5,
    'message.timeout.ms': 30_000,
    'queue.buffering.max.messages': Math.max(config.queue, 1000),
    'queue.buffering.max.kbytes': 256 * 1024,
    'statistics.interval.ms': 15_000,
    'socket.keepalive.enable': true,
    'log.connection.close': false,
    ...config.librdkafka,
  };
}

/** Throws CONFIG_INVALID naming `kafka.librdkafka` when librdkafka refuses a setting. */
export function validateLibrdkafka(config: KafkaConfig): void {
  const Kafka = kafkaClient();
  try {
    const producer = new Kafka.Producer(producerSettings(config), {});
    void producer;
  } catch (err) {
    const message = (err as Error).message;
    const key = Object.keys(config.librdkafka).find((k) => message.includes(k));
    throw new ScratchError('CONFIG_INVALID', `kafka.librdkafka${key === undefined ? '' : `["${key}"]`}: ${message}`, { cause: err });
  }
}
