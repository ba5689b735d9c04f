/**
 * The backend contract (DESIGN.md: "small interfaces with their contract in a
 * comment").
 *
 * - `push(line)` is called on the HTTP path: synchronous, O(1), never blocks,
 *   never throws. A line it cannot hold is counted in `counters` as dropped
 *   with a reason — never silently lost.
 * - Backends are independent: none may wait on another, and a failing one
 *   must not slow the HTTP path (its I/O happens after push returns).
 * - `reopen()` (SIGHUP) re-opens whatever external resource may have been
 *   moved underneath (log files); it must not lose or split a line.
 * - `close(deadline)` flushes everything held, makes it durable (fsync, or
 *   Kafka's spool), and resolves by `deadline` (ms since epoch) at the latest;
 *   what it could not save by then is counted as dropped("shutdown").
 */
import type { Line } from '../line';

export interface Backend {
  readonly name: string;
  readonly counters: BackendCounters;
  push(line: Line): void;
  reopen(): void;
  close(deadline: number): Promise<void>;
  /** Backend-specific gauges and counters for /stats and /metrics (numbers only). */
  details(): Record<string, number>;
}

export const DropReason = {
  /** The bounded in-memory queue was full when the line arrived. */
  queueFull: 'queue_full',
  /** The process stopped before the line could be saved. */
  shutdown: 'shutdown',
  /** Kafka's disk spool reached its maxBytes. */
  spoolFull: 'spool_full',
} as const;
export type DropReason = (typeof DropReason)[keyof typeof DropReason];

/** The counters every backend keeps; /stats and /metrics render them. */
export class BackendCounters {
  /** Lines accepted by push() and not yet written (a gauge). */
  queued = 0;
  /** Lines durably handed over (written to the file; acknowledged by Kafka). */
  written = 0;
  /** Failed I/O attempts (each retried), not lines. */
  errors = 0;
  readonly dropped: Record<DropReason, number> = { queue_full: 0, shutdown: 0, spool_full: 0 };

  get droppedTotal(): number {
    let total = 0;
    for (const n of Object.values(this.dropped)) total += n;
    return total;
  }
}
