/** A whole KafkaConfig for tests that build the backend's parts directly (no config file): defaults, then `overrides`. */
import type { KafkaConfig } from '../../src/backends/kafka/types';

export function kafkaTestConfig(overrides: Partial<KafkaConfig> = {}): KafkaConfig {
  return {
    brokers: '127.0.0.1:9',
    topic: 't.{flavor}',
    key: null,
    queue: 1000,
    queueMaxBytes: 1 << 20,
    whenFull: 'block',
    downAfterMs: 1000,
    spool: { path: '/nonexistent', maxBytes: 1 << 20, drainRatePerSec: 1000 },
    thread: false,
    librdkafka: {},
    ...overrides,
  };
}
