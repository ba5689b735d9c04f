/**
 * The Kafka backend plug-in: its config section `kafka`, checks (librdkafka's
 * own included) and constructor (the contract: backends/backend.ts).
 */
import * as path from 'node:path';
import type { BackendDescriptor, ResolveContext } from '../backend';
import { KafkaBackend } from './kafka-backend';
import { KafkaThread } from './thread';
import { kafkaClientLoaded } from './client';
import { logger } from '../../log';
import { MessageSizeLimit } from './message-size';
import { kafkaDropReasons, kafkaSchema } from './options';
import { librdkafkaProblem } from './settings';
import type { KafkaConfig } from './types';

export type { KafkaConfig } from './types';

/** librdkafka settings scratchd owns: they have keys of their own, or break delivery tracking. */
const RESERVED_LIBRDKAFKA = new Map([
  ['bootstrap.servers', 'set kafka.brokers instead'],
  ['metadata.broker.list', 'set kafka.brokers instead'],
  ['dr_cb', 'scratchd tracks deliveries itself'],
  ['dr_msg_cb', 'scratchd tracks deliveries itself'],
]);

export const kafkaBackend: BackendDescriptor<KafkaConfig> = {
  name: 'kafka',
  schema: kafkaSchema,
  dropReasons: kafkaDropReasons,
  resolve(section: KafkaConfig, { baseDir, flavors, problems, forwarding }: ResolveContext) {
    // Forwarded lines were answered already: only the Kafka thread takes them whatever the spool's margin (thread.ts).
    if (forwarding && !section.thread) problems.push('kafka.thread: must be true with workers > 1 (lines an HTTP thread answered are taken only by the Kafka thread whatever the spool holds)');
    const unknown = section.topic.match(/\{[^}]*\}/g)?.filter((p) => p !== '{flavor}') ?? [];
    if (unknown.length > 0) problems.push(`kafka.topic: unknown placeholder ${unknown[0]} (only {flavor})`);
    for (const flavor of flavors) {
      const topic = section.topic.replaceAll('{flavor}', flavor.name);
      // Kafka's own rule (kafka.common.internals.Topic): at most 249 of [a-zA-Z0-9._-].
      if (topic.length > 249 || !/^[A-Za-z0-9._-]+$/.test(topic)) problems.push(`kafka.topic: "${topic}" (flavor ${flavor.name}) is not a valid Kafka topic name`);
    }
    let reserved = false;
    for (const key of Object.keys(section.librdkafka)) {
      const why = RESERVED_LIBRDKAFKA.get(key);
      if (why !== undefined) {
        problems.push(`kafka.librdkafka["${key}"]: not allowed (${why})`);
        reserved = true;
      }
    }
    // Without the idempotent producer librdkafka's retries can write a line
    // twice or reorder a partition's lines (docs/kafka.md).
    const idempotence = section.librdkafka['enable.idempotence'];
    if (idempotence !== undefined && idempotence !== true && idempotence !== 'true') {
      problems.push(`kafka.librdkafka["enable.idempotence"]: must stay true (without it librdkafka's retries can duplicate or reorder a partition's lines)`);
      reserved = true;
    }
    const config: KafkaConfig = { ...section, spool: { ...section.spool, path: path.resolve(baseDir, section.spool.path) } };
    // librdkafka checks its own settings (unknown keys, bad values): asked only
    // when ours are sound, so that its message names the setting at fault.
    const problem = reserved ? null : librdkafkaProblem(config);
    if (problem !== null) problems.push(problem);
    return config;
  },
  summary: (config) => config.brokers,
  create: (config, { flavors, startWaitMs }) => {
    if (!config.thread) return new KafkaBackend(config, flavors, startWaitMs);
    // The client loads in one thread per process (client.ts): where this one has it already, Kafka stays here.
    if (kafkaClientLoaded()) {
      logger('kafka').warn('the Kafka client is loaded on this thread already: Kafka runs on it (kafka.thread ignored)');
      return new KafkaBackend(config, flavors, startWaitMs);
    }
    return new KafkaThread(config, flavors, startWaitMs);
  },
  // A line too large for Kafka (message-size.ts), refused by push() whatever Kafka's state.
  refusalBeforeAnswer(config, { flavors, alone, longestRecordBytes }) {
    // Another backend takes the line and Kafka's refusal does not block: answered 200 all the same.
    if (config.whenFull !== 'block' && !alone) return null;
    const longestName = Math.max(...flavors.map((f) => f.name.length));
    const limit = new MessageSizeLimit(config, longestName);
    if (!limit.mayRefuse(longestRecordBytes, longestName)) return null;
    return (record, flavorName) => !limit.fits(record, flavorName);
  },
};
