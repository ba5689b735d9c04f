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

interface Fifo<T> {
  items: T[];
  head: number;
}

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
  private readonly fifos = new Map<string, Fifo<T>>();
  private readonly unrouted = new Set<T>();
  private count = 0;

  constructor(private readonly matches: (message: T, report: Reported) => boolean) {}

  get size(): number {
    return this.count + this.unrouted.size;
  }

  /** A message produced to an explicit partition. */
  addRouted(message: T, topic: string, partition: number): void {
    const key = `${topic}\u0000${partition}`;
    let fifo = this.fifos.get(key);
    if (fifo === undefined) {
      fifo = { items: [], head: 0 };
      this.fifos.set(key, fifo);
    }
    fifo.items.push(message);
    this.count++;
  }

  /** A message produced with itself as opaque (partition left to librdkafka). */
  addUnrouted(message: T): void {
    this.unrouted.add(message);
  }

  /** The message a delivery report is about, removed; undefined if unknown (already taken at close). */
  take(report: Reported): T | undefined {
    if (report.opaque !== undefined && report.opaque !== null) {
      const message = report.opaque as T;
      return this.unrouted.delete(message) ? message : undefined;
    }
    const fifo = this.fifos.get(`${report.topic}\u0000${report.partition}`);
    if (fifo === undefined || fifo.head >= fifo.items.length) return undefined;
    const message = fifo.items[fifo.head]!;
    fifo.items[fifo.head] = undefined as T;
    fifo.head++;
    this.count--;
    if (fifo.head === fifo.items.length) {
      fifo.items = [];
      fifo.head = 0;
    } else if (fifo.head > 1024 && fifo.head * 2 > fifo.items.length) {
      fifo.items = fifo.items.slice(fifo.head);
      fifo.head = 0;
    }
    if (!this.matches(message, report)) this.mismatches++;
    return message;
  }

  /** Everything still in flight, oldest first per partition; the tracker is empty afterwards. */
  takeAll(): T[] {
    const all: T[] = [...this.unrouted];
    this.unrouted.clear();
    for (const fifo of this.fifos.values()) all.push(...fifo.items.slice(fifo.head));
    this.fifos.clear();
    this.count = 0;
    return all;
  }
}
