/** The Kafka backend's config types (schema and defaults: options.ts). */
import type { WhenFull } from '../backend';

export type LibrdkafkaSettings = Readonly<Record<string, string | number | boolean>>;

/** The `kafka` section as the schema leaves it (defaults filled in), and as the backend runs with it. */
export interface KafkaConfig {
  readonly brokers: string;
  /** Topic template with {flavor}. */
  readonly topic: string;
  /** The top-level query parameter whose value is the message key; null: no key. */
  readonly key: string | null;
  readonly queue: number;
  readonly queueMaxBytes: number;
  readonly whenFull: WhenFull;
  readonly downAfterMs: number;
  readonly spool: {
    /** Absolute folder once resolved. */
    readonly path: string;
    readonly maxBytes: number;
    readonly drainRatePerSec: number;
  };
  /** Kafka client, delivery reports and spool on a worker_thread of their own (thread.ts); false: on the HTTP thread. */
  readonly thread: boolean;
  /** The user's librdkafka settings; scratchd's defaults go under them (settings.ts). */
  readonly librdkafka: LibrdkafkaSettings;
}
