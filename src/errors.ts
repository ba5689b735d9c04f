/**
 * The one error registry (DESIGN.md convention 4, after fastify's lib/errors.js).
 *
 * Every error scratchd raises is a ScratchError with a stable `code`, a message
 * that names the offending input or config key, an HTTP status where one
 * applies, and the original `cause` when it wraps another error. Never throw
 * strings; add a code here instead.
 */

export const ErrorCodes = {
  CONFIG_INVALID: { status: 0, message: 'invalid config' },
  CONFIG_UNREADABLE: { status: 0, message: 'cannot read config file' },
  KAFKA_UNAVAILABLE: { status: 0, message: 'Kafka client unavailable' },
  QUERY_MALFORMED: { status: 400, message: 'malformed query string' },
  SYSTEMD_NO_SOCKET: { status: 0, message: 'listen is "systemd" but no socket was passed' },
  USAGE: { status: 0, message: 'usage' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ErrorCodes;

export class ScratchError extends Error {
  readonly code: ErrorCode;
  /** HTTP status to answer with, or 0 where the error never reaches HTTP. */
  readonly status: number;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const base = ErrorCodes[code].message;
    super(detail === undefined ? base : `${base}: ${detail}`, options);
    this.name = 'ScratchError';
    this.code = code;
    this.status = ErrorCodes[code].status;
  }
}

export function isScratchError(err: unknown, code?: ErrorCode): err is ScratchError {
  return err instanceof ScratchError && (code === undefined || err.code === code);
}
