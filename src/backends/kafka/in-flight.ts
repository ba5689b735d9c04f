/**
 * Messages handed to librdkafka and not yet reported, matched exactly with
 * their delivery reports.
 *
 * Each message produced to an explicit partition carries a small integer id
 * as its `opaque` (a Smi: the binding still keeps it in a V8 persistent
 * handle, ~1 us per message, measured in docs/kafka.md, but no object stays
 * alive through it). The id is needed: librdkafka reports a partition's
 * successes in produce order, but not its failures. Messages in flight to a
 * broker and messages still in its queue time out along separate paths, so
 * after an outage a newer line's failure can be reported before an older
 * line's success (seen in CI: matching by position then spooled the wrong
 * lines and marked others delivered). Timestamp and size cannot tell two
 * beacons of one client in one millisecond apart.
 *
 * So: one FIFO per topic partition, ids increasing in it. A report for the
 * oldest message is the common case and costs O(1); any other is found by
 * binary search over the ids and left as a hole the head skips later, so a
 * storm of out-of-order reports costs O(log n) each, never O(n). Those are
 * counted (`reordered`), as are reports for an id not in flight (before a
 * stop gave up on what was) or whose message has another size
 * (`mismatches`: a sanity check, expected 0). scratchd produces to a topic
 * only once it knows its partitions (kafka-backend.ts refreshPartitions), so
 * every message has a partition and an id.
 */

import { Budget } from '../../io/bounded-queue';

export interface Reported {
  topic: string;
  partition: number;
  timestamp?: number;
  size: number;
  opaque?: unknown;
}

/**
 * Whether a report can be about a line of this size. The id decides which
 * line a report is about; the size is the sanity check. The timestamp is not
 * one: a topic with message.timestamp.type=LogAppendTime reports the broker's
 * time, not the line's, and a failed report has none at all.
 */
export function reportFits(bytes: number, report: Reported): boolean {
  return report.size === bytes;
}

/** Ids stay Smis (31-bit on 64-bit V8) and wrap; a partition never holds 2^30 messages at once. */
const ID_MASK = 0x3fffffff;
/** A FIFO compacts its arrays once this many taken slots lead it (and they are at least half). */
const COMPACT_AFTER = 1024;

/** One partition's messages in produce order; ids increase (mod 2^30) from head to tail. */
class PartitionFifo<T> {
  /** Messages still in flight, oldest first (taken ones stay as holes until the head passes them). */
  live = 0;
  private items: (T | undefined)[] = [];
  private ids: number[] = [];
  private sizes: number[] = [];
  private head = 0;

  push(item: T, id: number, bytes: number): void {
    this.items.push(item);
    this.ids.push(id);
    this.sizes.push(bytes);
    this.live++;
  }

  /** Where the message with `id` is (an index for item()/bytesAt()/remove()); -1 if it is not here (already taken). */
  indexOf(id: number): number {
    const at = this.ids[this.head] === id ? this.head : this.find(id);
    return at < 0 || this.items[at] === undefined ? -1 : at;
  }

  /** Whether `at` is the oldest message (a report in produce order). */
  isHead(at: number): boolean {
    return at === this.head;
  }

  item(at: number): T {
    return this.items[at]!;
  }

  bytesAt(at: number): number {
    return this.sizes[at]!;
  }

  /** Takes the message at `at` (from indexOf()) out. */
  remove(at: number): void {
    this.items[at] = undefined;
    this.live--;
    while (this.head < this.items.length && this.items[this.head] === undefined) this.head++;
    if (this.live === 0) this.clear();
    else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.items.length) this.compact();
  }

  /** Every message still here, oldest first; empties the FIFO. */
  drain(): { item: T; bytes: number }[] {
    const all: { item: T; bytes: number }[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i];
      if (item !== undefined) all.push({ item, bytes: this.sizes[i]! });
    }
    this.clear();
    return all;
  }

  /** Binary search by distance from the head's id, which the wrap at 2^30 keeps monotonic. */
  private find(id: number): number {
    const base = this.ids[this.head]!;
    const target = (id - base) & ID_MASK;
    let lo = this.head;
    let hi = this.ids.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const distance = (this.ids[mid]! - base) & ID_MASK;
      if (distance === target) return mid;
      if (distance < target) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  private compact(): void {
    this.items = this.items.slice(this.head);
    this.ids = this.ids.slice(this.head);
    this.sizes = this.sizes.slice(this.head);
    this.head = 0;
  }

  private clear(): void {
    this.items = [];
    this.ids = [];
    this.sizes = [];
    this.head = 0;
    this.live = 0;
  }
}

export class InFlight<T> {
  /** Reports whose line is unknown, or has another size than the report says (expected 0). */
  mismatches = 0;
  /** Reports that did not come for their partition's oldest message (librdkafka reorders failures). */
  reordered = 0;
  /** Lines and bytes in flight, for bounds and /stats. */
  readonly held = new Budget();
  /** By topic, then partition: no key string built per message (it is the hot path, docs/kafka.md "Threads"). */
  private readonly fifos = new Map<string, PartitionFifo<T>[]>();
  /** Set by takeAll(): reports for lines it took are expected from then on. */
  private tookAll = false;

  constructor(
    private readonly matches: (message: T, report: Reported) => boolean,
    /** The bytes a message holds in memory (its record, UTF-8). */
    private readonly sizeOf: (message: T) => number = () => 0,
    /** The last id handed out (a test starts near the wrap). */
    private lastId = 0,
  ) {}

  get size(): number {
    return this.held.items;
  }

  /** The `opaque` to produce the next routed message with; ids not used (a refused produce) are harmless. */
  nextId(): number {
    this.lastId = (this.lastId + 1) & ID_MASK;
    return this.lastId;
  }

  /** A message produced to an explicit partition with `id` (from nextId()) as its opaque. */
  addRouted(message: T, topic: string, partition: number, id: number): void {
    let partitions = this.fifos.get(topic);
    if (partitions === undefined) {
      partitions = [];
      this.fifos.set(topic, partitions);
    }
    let fifo = partitions[partition];
    if (fifo === undefined) {
      fifo = new PartitionFifo<T>();
      partitions[partition] = fifo;
    }
    const bytes = this.sizeOf(message);
    fifo.push(message, id, bytes);
    this.held.charge(1, bytes);
  }

  /** The message a delivery report is about, removed; undefined if unknown (already taken at close). */
  take(report: Reported): T | undefined {
    const opaque = report.opaque;
    const fifo = typeof opaque === 'number' ? this.fifos.get(report.topic)?.[report.partition] : undefined;
    const at = fifo === undefined ? -1 : fifo.indexOf(opaque as number);
    if (at < 0) {
      // Expected only for lines takeAll() gave up on at a stop; otherwise librdkafka reported a line twice or one never produced.
      if (!this.tookAll) this.mismatches++;
      return undefined;
    }
    const item = fifo!.item(at);
    this.held.release(1, fifo!.bytesAt(at));
    if (!fifo!.isHead(at)) this.reordered++;
    fifo!.remove(at);
    if (!this.matches(item, report)) this.mismatches++;
    return item;
  }

  /** Everything still in flight, oldest first per partition; the tracker is empty afterwards. */
  takeAll(): T[] {
    this.tookAll = true;
    const all: T[] = [];
    for (const partitions of this.fifos.values()) {
      for (const fifo of partitions) {
        if (fifo === undefined) continue;
        for (const { item, bytes } of fifo.drain()) {
          all.push(item);
          this.held.release(1, bytes);
        }
      }
    }
    this.fifos.clear();
    return all;
  }
}
