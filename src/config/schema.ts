/**
 * The config file's JSON Schema, with every default next to its key, so that
 * docs/configuration.md can be checked against it. Unknown keys are errors
 * everywhere (`additionalProperties: false`), units are in key names. Checks a
 * schema cannot express (timezones, duplicate hosts) live in load.ts.
 *
 * coreSchema is scratchd's own part; each backend plug-in adds its section
 * under its name (backends/registry.ts), so nothing here names a backend.
 * `patternReason` (an annotation) says in words what a `pattern` demands.
 */
import { backendRegistry } from '../backends/registry';
import { nonNegativeInt, positiveInt, DAY_MS } from './keys';
import { graphiteSchema } from '../graphite';

export const coreSchema = {
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
    // No `type`: load.ts checks the value, so that every wrong one gets the same message naming what is allowed.
    workers: {
      default: 1,
      description: 'Event loops serving the public port: an integer from 1 to 256, or "auto" (the cores available). 1 serves on the main thread alone; N > 1 adds N - 1 HTTP threads that forward their lines to the main thread (docs/performance.md, "More than one core").',
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
            patternReason: 'must be lower-case letters, digits, "_" or "-" (at most 63)',
            description: 'Lower-case letters, digits, "_" and "-": it becomes part of file paths and topic names.',
          },
          hosts: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'string',
              minLength: 1,
              maxLength: 253,
              pattern: '^[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*$',
              patternReason: 'must be a host name (letters, digits, "-", dot-separated), without port or trailing dot',
            },
            description: 'Host header values (without port, case-insensitive) that map to this flavor.',
          },
          timezone: { type: 'string', minLength: 1, description: 'IANA timezone for the line time and the file date.' },
          paths: {
            type: 'array',
            minItems: 1,
            uniqueItems: true,
            items: {
              type: 'string',
              pattern: '^/[^?#\\s]*$',
              patternReason: 'must start with "/" and contain no "?", "#" or spaces',
            },
            description: 'The beacon paths of this flavor; absent: [http.path].',
          },
          cors: {
            type: 'object',
            additionalProperties: false,
            required: ['origins'],
            properties: {
              origins: {
                type: 'array',
                items: {
                  type: 'string',
                  pattern: '^(\\*|https?://(\\*\\.)?[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?)$',
                  patternReason: 'must be "*", "scheme://host[:port]" or "scheme://*.domain[:port]" (http or https)',
                },
                description: 'Origins whose pages may send beacons (exact, or "https://*.example.com"); absent: https:// and http:// of each host.',
              },
            },
            description: 'Cross-origin rules for POST beacons and preflights; absent: derived from hosts.',
          },
          postStatus: {
            type: 'integer',
            enum: [200, 204],
            default: 204,
            description: 'Status of the answer to an accepted POST beacon.',
          },
        },
      },
    },
    http: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        path: {
          type: 'string',
          pattern: '^/[^?#\\s]*$',
          patternReason: 'must start with "/" and contain no "?", "#" or spaces',
          default: '/track',
          description: 'The beacon path of the flavors without their own paths.',
        },
        maxConnections: positiveInt(1_000_000, 10_000, 'Open connections beyond this are closed at once and counted.'),
        headersTimeoutMs: positiveInt(600_000, 10_000, 'A request head must arrive completely within this time (else 408).'),
        keepAliveTimeoutMs: positiveInt(600_000, 5_000, 'An idle keep-alive connection is closed after this time.'),
        maxRequestLineBytes: positiveInt(65_536, 8_192, 'A longer request line is answered 414.'),
        maxHeaderBytes: positiveInt(1_048_576, 16_384, 'A larger request head is answered 431.'),
        maxBodyBytes: positiveInt(1_048_576, 65_536, 'A larger POST body (on the wire, or decompressed) is answered 413.'),
        maxBatch: positiveInt(10_000, 100, 'A JSON array body with more beacons than this is answered 413.'),
        bodyTimeoutMs: positiveInt(600_000, 10_000, 'A POST body must arrive completely within this time after its head (else 408).'),
        backpressureHighPercent: positiveInt(100, 50, 'Stop reading the sockets when a backend with whenFull "block" holds this share of its queue bounds (bytes or lines).'),
        backpressureLowPercent: nonNegativeInt(99, 25, 'Read again once every such backend holds at most this share (below backpressureHighPercent).'),
        blockTimeoutMs: nonNegativeInt(600_000, 2_000, 'Reading stopped this long means a backend is stuck: answer beacons 503 (Retry-After) until it falls to the low mark; /ready turns 503 at half this time.'),
        threadStallMs: positiveInt(600_000, 3_000, 'workers > 1: an HTTP thread whose event loop has not turned for this long is stuck: logged, counted, /ready answers 503; still stuck at twice this, it is terminated and replaced.'),
        trustForwardedFor: {
          type: 'boolean',
          default: false,
          description: 'Take the client address from the last X-Forwarded-For entry (only behind a proxy you run).',
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
    graphite: graphiteSchema,
  },
} as const;

/** The whole config file's schema: the core's keys and one section per registered backend. */
export const configSchema = {
  ...coreSchema,
  properties: {
    ...coreSchema.properties,
    ...Object.fromEntries(backendRegistry.map((backend) => [backend.name, backend.schema])),
  },
};
