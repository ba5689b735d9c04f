/** The `kafka` section's JSON Schema, every default next to its key (docs/configuration.md renders it). */
import { positiveInt } from '../../config/keys';
import { whenFullKey, type BackendSchema } from '../backend';

export const kafkaSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['brokers'],
  description: 'The Kafka backend; omit to turn it off.',
  properties: {
    brokers: { type: 'string', minLength: 1, description: 'Bootstrap brokers, "host:port[,host:port…]" (librdkafka bootstrap.servers).' },
    topic: { type: 'string', minLength: 1, pattern: '^[A-Za-z0-9._{}-]+$', default: 'scratch.{flavor}', description: 'Topic template; {flavor} is the flavor name.' },
    key: { type: ['string', 'null'], minLength: 1, default: null, description: 'Top-level query parameter whose value (a string) becomes the message key (null: no key).' },
    queue: positiveInt(10_000_000, 20_000, 'Lines in memory or in flight to Kafka; beyond it new lines go to the spool.'),
    queueMaxBytes: positiveInt(Number.MAX_SAFE_INTEGER, 64 * 1024 ** 2, 'Bytes in flight to Kafka; beyond it new lines go to the spool.'),
    whenFull: whenFullKey('When the spool is full (or its disk fails): "block" (the beacon is answered 503, so the client or HAProxy retries elsewhere) or "drop_newest" (the line is dropped and counted as spool_full).'),
    downAfterMs: positiveInt(600_000, 5_000, 'Kafka counts as down when nothing in flight was acknowledged for this long.'),
    spool: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'The disk spool that holds lines while Kafka is away.',
      properties: {
        path: { type: 'string', minLength: 1, default: '/var/spool/scratchd', description: 'Folder of the disk spool (relative: to the config file\'s folder).' },
        maxBytes: positiveInt(Number.MAX_SAFE_INTEGER, 10 * 1024 ** 3, 'Spool size limit; beyond it lines are dropped and counted (spool_full).'),
        drainRatePerSec: positiveInt(10_000_000, 20_000, 'Spooled lines sent per second at most once Kafka is back.'),
      },
    },
    thread: {
      type: 'boolean',
      default: true,
      description: 'Run the Kafka client, its delivery reports and the spool on a thread of their own (a worker_thread), off the thread that answers HTTP (docs/kafka.md, "Threads").',
    },
    librdkafka: {
      type: 'object',
      default: {},
      additionalProperties: { type: ['string', 'number', 'boolean'] },
      description: 'Any other librdkafka setting (CONFIGURATION.md), passed through.',
    },
  },
} as const satisfies BackendSchema;

export const kafkaDropReasons = {
  spool_full: 'the disk spool reached kafka.spool.maxBytes while Kafka could not take the line',
  too_large: 'the line is larger than librdkafka\'s message.max.bytes (kafka.librdkafka), which refuses it at every try; it is not spooled',
  thread_died: 'the Kafka thread died holding the line unconfirmed (it may have reached Kafka), or the line arrived after; scratchd stops with status 70',
  spool_write: 'the line was taken by the disk spool, whose disk then kept failing (or hung) for the 60 s a segment is given to be written when it is sealed',
} as const satisfies Record<string, string>;
