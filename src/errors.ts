/**
 * The one error registry (after fastify's lib/errors.js).
 *
 * Every error scratchd raises is a ScratchError with a stable `code`, a message
 * that names the offending input or config key, and the original `cause` when
 * it wraps another error. Never throw strings or plain Errors; add a code here
 * instead. Where an error reaches HTTP, the handler maps its code to an answer
 * (only QUERY_MALFORMED does: a 400, in http/track.ts).
 */

export const ErrorCodes = {
  CONFIG_INVALID: 'invalid config',
  CONFIG_UNREADABLE: 'cannot read config file',
  FILE_LINES_UNWRITTEN: 'lines left unwritten when the file was closed',
  KAFKA_ERROR: 'Kafka client error',
  KAFKA_TOPIC_MISSING: 'no such Kafka topic',
  KAFKA_UNAVAILABLE: 'Kafka client unavailable',
  QUERY_MALFORMED: 'malformed query string',
  RESTORE_TIMEOUT: 'restore timed out',
  SPOOL_LOCKED: 'spool in use',
  SYSTEMD_NO_SOCKET: 'listen is "systemd" but no socket was passed',
  USAGE: 'usage',
} as const satisfies Record<string, string>;

export type ErrorCode = keyof typeof ErrorCodes;

export class ScratchError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const base = ErrorCodes[code];
    super(detail === undefined ? base : `${base}: ${detail}`, options);
    this.name = 'ScratchError';
    this.code = code;
  }
}

export function isScratchError(err: unknown, code?: ErrorCode): err is ScratchError {
  return err instanceof ScratchError && (code === undefined || err.code === code);
}
