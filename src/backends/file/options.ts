/** The `file` section's JSON Schema, every default next to its key (docs/configuration.md renders it). */
import { DAY_MS, nonNegativeInt, positiveInt } from '../../config/keys';
import { whenFullKey, type BackendSchema } from '../backend';

export const fileSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['path'],
  description: 'The file backend; omit to turn it off.',
  properties: {
    path: { type: 'string', minLength: 1, description: 'Path template with {flavor} and optionally {date} (YYYY-MM-DD in the flavor timezone).' },
    queue: positiveInt(100_000_000, 100_000, 'Lines held in memory, waiting for the disk; beyond it new lines are dropped and counted.'),
    queueMaxBytes: positiveInt(Number.MAX_SAFE_INTEGER, 64 * 1024 ** 2, 'Bytes held in memory, waiting for the disk (all files together); beyond it new lines are dropped and counted.'),
    whenFull: whenFullKey('When the queue is full: "block" (the server stops reading, then answers 503: nothing is lost) or "drop_newest" (the line is dropped and counted; the answer is 200 if another backend took it).'),
    maxBatchBytes: positiveInt(64 * 1024 * 1024, 1024 * 1024, 'Largest single write.'),
    writeIntervalMs: nonNegativeInt(1_000, 10, 'A file is written at most this often (0: at once), sooner when 64 KiB wait: lines then share a write.'),
    fsyncIntervalMs: nonNegativeInt(DAY_MS, 1_000, 'fsync open files this often (0: only when closing).'),
    closeIdleAfterMs: positiveInt(DAY_MS, 10_000, "A file that is no longer today's is closed after this long without writes."),
    retryMaxDelayMs: positiveInt(600_000, 5_000, 'Failed writes are retried with a backoff doubling up to this.'),
    fileMode: { type: 'string', pattern: '^0?[0-7]{3}$', patternReason: 'must be an octal mode like "0640"', default: '0640', description: 'Mode of new log files (octal).' },
  },
} as const satisfies BackendSchema;

/** The file backend counts only the common drop reasons. */
export const fileDropReasons = {} as const satisfies Record<string, string>;
