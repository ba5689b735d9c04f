/**
 * Messages handed to librdkafka and not yet reported, matched with their
 * delivery reports without a per-message `opaque`.
 *
 * Why: the binding keeps an opaque as a V8 persistent handle per message;
 * with thousands in flight every scavenge walks them, and producing with an
 * opaque cost ~3 us more per message (measured). So scratchd picks the
 * partition itself (partitioner.ts) and keeps one FIFO per topic partition:
 * librdkafka reports the messages of a partition in the order they were
 * produced (it never reorders within a partition, and the idempotent
 * producer keeps it so across retries), so a report for partition p belongs
 * to the oldest message of p. Each match is checked against the report's
 * timestamp and size; a mismatch is counted (`mismatches`) and logged.
 * Messages produced before the partition count is known go with an opaque
 * (the `unrouted` set), as before.
 */

import { Budget, BoundedQueue } from '../../io/bounded-queue';

export interface Reported {
  topic: string;
  partition: number;
  timestamp?: number;
  size: number;
  opaque?: unknown;
}

export class InFlight<T> {
  /** Reports whose message did not match the FIFO's oldest (should stay 0). */
  mismatches = 0;
  /** Lines and bytes in flight (routed and unrouted), for bounds and /stats. */
  readonly held = new Budget();
  private readonly fifos = new Map<string, BoundedQueue<T>>();
  private readonly unrouted = new Map<T, number>();

  constructor(
    private readonly matches: (message: T, report: Reported) => boolean,
    /** The bytes a message holds in memory (its record, UTF-8). */
    private readonly sizeOf: (message: T) => number = () => 0,
  ) {}

  get size(): number {
    return this.held.items;
  }

  /** A message produced to an explicit partition. */
  addRouted(message: T, topic: string, partition: number): void {
    const key = `${topic}\u0000${partition}`;
    let fifo = this.fifos.get(key);
    if (fifo === undefined) {
      fifo = new BoundedQueue<T>(this.held);
      this.fifos.set(key, fifo);
    }
    fifo.push(message, this.sizeOf(message));
  }

  /** A message produced with itself as opaque (partition left to librdkafka). */
  addUnrouted(message: T): void {
    const bytes = this.sizeOf(message);
    this.unrouted.set(message, bytes);
    this.held.charge(1, bytes);
  }

  /** The message a delivery report is about, removed; undefined if unknown (already taken at close). */
  take(report: Reported): T | undefined {
    if (report.opaque !== undefined && report.opaque !== null) {
      const message = report.opaque as T;
      const bytes = this.unrouted.get(message);
      if (bytes === undefined) return undefined;
      this.unrouted.delete(message);
      this.held.release(1, bytes);
      return message;
    }
    const message = this.fifos.get(`${report.topic}\u0000${report.partition}`)?.shift();
    if (message === undefined) return undefined;
    if (!this.matches(message, report)) this.mismatches++;
    return message;
  }

  /** Everything still in flight, oldest first per partition; the tracker is empty afterwards. */
  takeAll(): T[] {
    const all: T[] = [...this.unrouted.keys()];
    for (const bytes of this.unrouted.values()) this.held.release(1, bytes);
    this.unrouted.clear();
    for (const fifo of this.fifos.values()) all.push(...fifo.drain());
    this.fifos.clear();
    return all;
  }
}
