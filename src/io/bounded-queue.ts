/**
 * The one bounded FIFO of scratchd, and the byte/line account behind it.
 *
 * - `Budget` is what a backend holds in memory: lines and bytes, with a bound
 *   on each. Several queues may share one budget (the file backend's writers,
 *   one per file; Kafka's per-partition FIFOs), so the bound is on the total.
 *   Bytes, not only lines, because one line can be 50 bytes or 50 KB
 *   (docs/buffering.md). `whenAtMost(bytes)` resolves once the bytes held fall
 *   to that level: a producer that stopped at a high-water mark waits on it.
 * - `BoundedQueue` is a ring buffer: push, shift and unshift are O(1)
 *   (amortized: the ring doubles when full), each item carries its byte size
 *   so that taking it out releases exactly what putting it in charged.
 *   `tryPush` honours the budget's bounds; `push`/`unshift` always succeed and
 *   are for items that were already accepted once (a batch given back after a
 *   failure must not be lost because new lines filled the room meanwhile).
 */

export class Budget {
  /** Items (lines) held now. */
  items = 0;
  /** Bytes held now. */
  bytes = 0;
  private waiters: { atMost: number; atMostItems: number; resolve: () => void }[] = [];
  /** The highest `atMost` any waiter has: releases above it skip the scan. */
  private highestWaiter = -1;
  /** The highest `atMostItems` any waiter has. */
  private highestItemsWaiter = -1;

  constructor(
    readonly maxItems = Infinity,
    readonly maxBytes = Infinity,
  ) {}

  /** Whether one more item of `bytes` fits under both bounds. */
  fits(bytes: number): boolean {
    return this.items < this.maxItems && this.bytes + bytes <= this.maxBytes;
  }

  charge(items: number, bytes: number): void {
    this.items += items;
    this.bytes += bytes;
  }

  release(items: number, bytes: number): void {
    this.items -= items;
    this.bytes -= bytes;
    if (this.bytes <= this.highestWaiter && this.items <= this.highestItemsWaiter) this.wakeWaiters();
  }

  /**
   * Resolves when the bytes held are at most `atMost` and the items at most
   * `atMostItems` (at once if they are).
   */
  whenAtMost(atMost: number, atMostItems = Infinity): Promise<void> {
    if (this.bytes <= atMost && this.items <= atMostItems) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push({ atMost, atMostItems, resolve });
      if (atMost > this.highestWaiter) this.highestWaiter = atMost;
      if (atMostItems > this.highestItemsWaiter) this.highestItemsWaiter = atMostItems;
    });
  }

  private wakeWaiters(): void {
    const still: { atMost: number; atMostItems: number; resolve: () => void }[] = [];
    let highest = -1;
    let highestItems = -1;
    for (const waiter of this.waiters) {
      if (this.bytes <= waiter.atMost && this.items <= waiter.atMostItems) {
        waiter.resolve();
      } else {
        still.push(waiter);
        if (waiter.atMost > highest) highest = waiter.atMost;
        if (waiter.atMostItems > highestItems) highestItems = waiter.atMostItems;
      }
    }
    this.waiters = still;
    this.highestWaiter = highest;
    this.highestItemsWaiter = highestItems;
  }
}

const INITIAL_CAPACITY = 16;
/** An empty ring larger than this shrinks back, so one burst does not pin its memory. */
const SHRINK_ABOVE = 1 << 16;

export class BoundedQueue<T> {
  /** Bytes of the items in this queue (the budget may be shared with others). */
  bytes = 0;
  private items: (T | undefined)[] = new Array<T | undefined>(INITIAL_CAPACITY);
  private sizes: number[] = new Array<number>(INITIAL_CAPACITY).fill(0);
  private head = 0;
  private count = 0;
  private mask = INITIAL_CAPACITY - 1;

  constructor(readonly budget: Budget = new Budget()) {}

  get length(): number {
    return this.count;
  }

  /** Appends `item` (`bytes` long) if the budget has room; false (nothing changed) if not. */
  tryPush(item: T, bytes: number): boolean {
    if (!this.budget.fits(bytes)) return false;
    this.push(item, bytes);
    return true;
  }

  /** Appends whatever the bounds say (an item accepted before, being put back). */
  push(item: T, bytes: number): void {
    if (this.count > this.mask) this.grow();
    const at = (this.head + this.count) & this.mask;
    this.items[at] = item;
    this.sizes[at] = bytes;
    this.count++;
    this.bytes += bytes;
    this.budget.charge(1, bytes);
  }

  /** Puts `item` back at the head, whatever the bounds say. */
  unshift(item: T, bytes: number): void {
    if (this.count > this.mask) this.grow();
    this.head = (this.head - 1) & this.mask;
    this.items[this.head] = item;
    this.sizes[this.head] = bytes;
    this.count++;
    this.bytes += bytes;
    this.budget.charge(1, bytes);
  }

  /** The oldest item, left in place. */
  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  /** The byte size of the oldest item (0 when empty). */
  peekBytes(): number {
    return this.count === 0 ? 0 : this.sizes[this.head]!;
  }

  /**
   * Takes the oldest item out (undefined when empty). `release: false` leaves
   * its bytes charged to the budget: the caller still holds the item and
   * releases them itself (a writer, once the bytes are on disk).
   */
  shift(release = true): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    const bytes = this.sizes[this.head]!;
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    this.count--;
    this.bytes -= bytes;
    if (this.count === 0) this.reset();
    if (release) this.budget.release(1, bytes);
    return item;
  }

  /** Takes everything out, oldest first. */
  drain(): T[] {
    const all: T[] = [];
    for (let i = 0; i < this.count; i++) all.push(this.items[(this.head + i) & this.mask]!);
    const { count, bytes } = this;
    this.items = new Array<T | undefined>(INITIAL_CAPACITY);
    this.sizes = new Array<number>(INITIAL_CAPACITY).fill(0);
    this.mask = INITIAL_CAPACITY - 1;
    this.head = 0;
    this.count = 0;
    this.bytes = 0;
    this.budget.release(count, bytes);
    return all;
  }

  private grow(): void {
    const capacity = (this.mask + 1) * 2;
    const items = new Array<T | undefined>(capacity);
    const sizes = new Array<number>(capacity).fill(0);
    for (let i = 0; i < this.count; i++) {
      const from = (this.head + i) & this.mask;
      items[i] = this.items[from];
      sizes[i] = this.sizes[from]!;
    }
    this.items = items;
    this.sizes = sizes;
    this.head = 0;
    this.mask = capacity - 1;
  }

  private reset(): void {
    this.head = 0;
    this.bytes = 0;
    if (this.mask + 1 > SHRINK_ABOVE) {
      this.items = new Array<T | undefined>(INITIAL_CAPACITY);
      this.sizes = new Array<number>(INITIAL_CAPACITY).fill(0);
      this.mask = INITIAL_CAPACITY - 1;
    }
  }
}
