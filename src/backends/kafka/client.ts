/**
 * Loads Confluent's librdkafka client on first use, so that a config without
 * Kafka never loads the native addon (and a machine without it still runs the
 * file backend). The librdkafka-style API (Producer/KafkaConsumer with
 * delivery reports), not the KafkaJS-compatible layer.
 */
import type * as KafkaModule from '@confluentinc/kafka-javascript';
import { ScratchError } from '../../errors';

export type Kafka = typeof KafkaModule;

let loaded: Kafka | undefined;

/**
 * Whether this thread has loaded the client. The binding's addon is not
 * context-aware (NODE_MODULE, not NAN_MODULE_WORKER_ENABLED): it loads in one
 * thread of a process at a time, a second thread gets "Module did not
 * self-register". So with `kafka.thread` the HTTP thread must never load it
 * (settings.ts checks the settings in a child process then), and a thread
 * that has loaded it keeps Kafka on itself (index.ts).
 */
export function kafkaClientLoaded(): boolean {
  return loaded !== undefined;
}

export function kafkaClient(): Kafka {
  if (loaded === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = require('@confluentinc/kafka-javascript') as Kafka;
    } catch (err) {
      throw new ScratchError('KAFKA_UNAVAILABLE', `@confluentinc/kafka-javascript did not load: ${(err as Error).message}`, { cause: err });
    }
  }
  return loaded;
}

/** A callback-style client call (err first) as a promise; errors become ScratchError('KAFKA_ERROR') with the original as cause. */
export function kafkaCall<T>(run: (cb: (err: unknown, value: T) => void) => unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    run((err, value) => (err ? reject(asError(err)) : resolve(value)));
  });
}

function asError(err: unknown): ScratchError {
  const message = (err as { message?: unknown } | null)?.message;
  return new ScratchError('KAFKA_ERROR', typeof message === 'string' ? message : JSON.stringify(err), { cause: err });
}
