/**
 * The config file's JSON Schema, with every default next to its key (DESIGN.md
 * convention 5). Unknown keys are errors everywhere (`additionalProperties:
 * false`), units are in key names. Checks a schema cannot express (timezones,
 * duplicate hosts, path templates) live in load.ts.
 */

const positiveInt = (max: number, fallback: number, description: string) =>
  ({ type: 'integer', minimum: 1, maximum: max, default: fallback, description }) as const;
const nonNegativeInt = (max: number, fallback: number, description: string) =>
  ({ type: 'integer', minimum: 0, maximum: max, default: fallback, description }) as const;

const DAY_MS = 86_400_000;

export const configSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['flavors'],
  properties: {
    listen: {
      type: 'string',
      default: '127.0.0.1:8080',
      description: 'Public tracking listener: "host:port" ("[v6]:port" for IPv6), or "systemd" for socket activation (fd 3).',
    },
    admin: {
      type: ['string', 'null'],
      default: '127.0.0.1:9090',
      description: 'Admin listener (stats, metrics, health, ready) "host:port"; null turns it off. Never the public port.',
    },
    flavors: {
      type: 'array',
      minItems: 1,
      description: 'The sites served: each with a name, the Host names it answers to, and its timezone.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'hosts', 'timezone'],
        properties: {
          name: {
            type: 'string',
            pattern: '^[a-z0-9][a-z0-9_-]{0,62}$',
            description: 'Lower-case letters, digits, "_" and "-": it becomes part of file paths and topic names.',
          },
          hosts: {
            type: 'array',
            minItems: 1,
            items: { type: 'string', minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*$' },
            description: 'Host header values (without port, case-insensitive) that map to this flavor.',
          },
          timezone: { type: 'string', minLength: 1, description: 'IANA timezone for the line time and the file date.' },
        },
      },
    },
    http: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        path: { type: 'string', pattern: '^/[^?#\\s]*$', default: '/track', description: 'The beacon path.' },
        maxConnections: positiveInt(1_000_000, 10_000, 'Open connections beyond this are closed at once and counted.'),
        headersTimeoutMs: positiveInt(600_000, 10_000, 'A request head must arrive completely within this time (else 408).'),
        keepAliveTimeoutMs: positiveInt(600_000, 5_000, 'An idle keep-alive connection is closed after this time.'),
        maxRequestLineBytes: positiveInt(65_536, 8_192, 'A longer request line is answered 414.'),
        maxHeaderBytes: positiveInt(1_048_576, 16_384, 'A larger request head is answered 431.'),
        trustForwardedFor: {
          type: 'boolean',
          default: false,
          description: 'Take the client address from the last X-Forwarded-For entry (only behind a proxy you run).',
        },
      },
    },
    file: {
      type: 'object',
      additionalProperties: false,
      required: ['path'],
      description: 'The file backend; omit to turn it off.',
      properties: {
        path: { type: 'string', minLength: 1, description: 'Path template with {flavor} and optionally {date} (YYYY-MM-DD in the flavor timezone).' },
        queue: positiveInt(100_000_000, 100_000, 'Lines held in memory, waiting for the disk; beyond it new lines are dropped and counted.'),
        queueMaxBytes: positiveInt(Number.MAX_SAFE_INTEGER, 64 * 1024 ** 2, 'Bytes held in memory, waiting for the disk (all files together); beyond it new lines are dropped and counted.'),
        maxBatchBytes: positiveInt(64 * 1024 * 1024, 1024 * 1024, 'Largest single write.'),
        writeIntervalMs: nonNegativeInt(1_000, 10, 'A file is written at most this often (0: at once), sooner when 64 KiB wait: lines then share a write.'),
        fsyncIntervalMs: nonNegativeInt(DAY_MS, 1_000, 'fsync open files this often (0: only when closing).'),
        closeIdleAfterMs: positiveInt(DAY_MS, 10_000, "A file that is no longer today's is closed after this long without writes."),
        retryMaxDelayMs: positiveInt(600_000, 5_000, 'Failed writes are retried with a backoff doubling up to this.'),
        fileMode: { type: 'string', pattern: '^0?[0-7]{3}$', default: '0640', description: 'Mode of new log files (octal).' },
      },
    },
    kafka: {
      type: 'object',
      additionalProperties: false,
      required: ['brokers'],
      description: 'The Kafka backend; omit to turn it off.',
      properties: {
        brokers: { type: 'string', minLength: 1, description: 'Bootstrap brokers, "host:port[,host:port…]" (librdkafka bootstrap.servers).' },
        topic: { type: 'string', minLength: 1, pattern: '^[A-Za-z0-9._{}-]+$', default: 'scratch.{flavor}', description: 'Topic template; {flavor} is the flavor name.' },
        key: { type: ['string', 'null'], minLength: 1, default: null, description: 'Query parameter whose value becomes the message key (null: no key).' },
        queue: positiveInt(10_000_000, 20_000, 'Lines in memory or in flight to Kafka; beyond it new lines go to the spool.'),
        queueMaxBytes: positiveInt(Number.MAX_SAFE_INTEGER, 64 * 1024 ** 2, 'Bytes in flight to Kafka; beyond it new lines go to the spool.'),
        downAfterMs: positiveInt(600_000, 5_000, 'Kafka counts as down when nothing in flight was acknowledged for this long.'),
        spool: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            path: { type: 'string', minLength: 1, default: '/var/spool/scratchd', description: 'Folder of the disk spool (relative: to the config file\'s folder).' },
            maxBytes: positiveInt(Number.MAX_SAFE_INTEGER, 10 * 1024 ** 3, 'Spool size limit; beyond it lines are dropped and counted (spool_full).'),
            drainRatePerSec: positiveInt(10_000_000, 20_000, 'Spooled lines sent per second at most once Kafka is back.'),
          },
        },
        librdkafka: {
          type: 'object',
          default: {},
          additionalProperties: { type: ['string', 'number', 'boolean'] },
          description: 'Any other librdkafka setting (CONFIGURATION.md), passed through.',
        },
      },
    },
    checks: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        duplicateWindowMs: nonNegativeInt(DAY_MS, 0, 'Suppress a beacon with the same flavor, client address and query seen within this window (0: off).'),
        maxPerMinute: nonNegativeInt(1_000_000_000, 0, 'Flag a client sending more beacons per minute than this as malicious (0: off).'),
        maxKeys: positiveInt(100_000_000, 100_000, 'Entries the in-memory TTL store keeps; the oldest go first.'),
      },
    },
    shutdown: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        drainTimeoutMs: positiveInt(600_000, 10_000, 'Deadline for finishing requests and flushing backends on SIGTERM.'),
        idleCloseGraceMs: nonNegativeInt(600_000, 250, 'While draining, an idle keep-alive connection may still send one request within this time.'),
      },
    },
  },
} as const;
