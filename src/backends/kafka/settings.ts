/**
 * librdkafka settings: scratchd's defaults, then the user's `kafka.librdkafka`
 * on top (CONFIGURATION.md of librdkafka names every key). The defaults are
 * chosen not to lose data:
 * - acks=all and enable.idempotence=true: a delivery report means every
 *   in-sync replica has the message, and librdkafka's own retries cannot
 *   duplicate or reorder it;
 * - message.timeout.ms=30000: a bounded time before an undelivered message
 *   comes back as failed (and goes to the spool);
 * - compression lz4 (cheap on CPU, good on JSON);
 * - linger.ms=50: bigger batches cost less CPU per message (~10.5 vs 13 us of
 *   process CPU at 25k msg/s against 5 ms, measured), and analytics lines do
 *   not need Kafka within milliseconds;
 * - queue.buffering.max.kbytes=65536: librdkafka holds at most 64 MiB; beyond
 *   that lines go to the spool on disk (a slow broker once grew it to 300 MB);
 * - statistics every 15 s for /stats (cheap at that pace).
 * librdkafkaProblem() builds (does not connect) a producer so that librdkafka
 * itself rejects unknown keys and bad values while the config is checked.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { ScratchError } from '../../errors';
import { kafkaClient, kafkaClientLoaded } from './client';
import type { KafkaConfig } from './types';

export function producerSettings(config: KafkaConfig): Record<string, string | number | boolean> {
  return {
    'client.id': 'scratchd',
    'bootstrap.servers': config.brokers,
    acks: 'all',
    'enable.idempotence': true,
    'compression.codec': 'lz4',
    'linger.ms': 50,
    'message.timeout.ms': 30_000,
    'queue.buffering.max.messages': Math.max(config.queue, 1000),
    'queue.buffering.max.kbytes': 64 * 1024,
    'statistics.interval.ms': 15_000,
    'socket.keepalive.enable': true,
    'log.connection.close': false,
    ...config.librdkafka,
  };
}

/**
 * librdkafka's verdict on the settings, as one config problem naming
 * `kafka.librdkafka` (and the setting, when its message names one); null when
 * it accepts them. Loads the native client (KAFKA_UNAVAILABLE if it cannot).
 */
export function librdkafkaProblem(config: KafkaConfig): string | null {
  if (config.thread && !kafkaClientLoaded() && isMainThread) return librdkafkaProblemElsewhere(config);
  const Kafka = kafkaClient();
  try {
    // As in kafka-backend.ts: no topic config argument, or it replaces the topic-level settings.
    const producer = new Kafka.Producer(producerSettings(config));
    void producer;
    return null;
  } catch (err) {
    const message = (err as Error).message;
    const key = Object.keys(config.librdkafka).find((k) => message.includes(k));
    return `kafka.librdkafka${key === undefined ? '' : `["${key}"]`}: ${message}`;
  }
}

/**
 * librdkafkaProblem() in a child process (check-settings.ts), so that this
 * thread does not load the client the Kafka thread will need (client.ts says
 * why). Once per config load; ~0.1 s.
 */
function librdkafkaProblemElsewhere(config: KafkaConfig): string | null {
  const child = spawnSync(process.execPath, [path.join(__dirname, 'check-settings.js')], { input: JSON.stringify({ ...config, thread: false }), encoding: 'utf8', timeout: 30_000 });
  const answer = /^(null|".*")$/m.exec(child.stdout ?? '');
  if (child.status !== 0 || answer === null) {
    throw new ScratchError('KAFKA_UNAVAILABLE', `checking kafka.librdkafka in a child process failed (status ${child.status ?? child.signal}): ${(child.stderr ?? '').trim() || child.error?.message || ''}`);
  }
  return JSON.parse(answer[1]!) as string | null;
}
