/**
 * A small in-memory TTL key-value store, standing in for the Memcached the
 * legacy checks used: strings only, get/set with expiry, bounded size.
 *
 * Contract: `get` never returns an expired value. At most `maxKeys` entries
 * are held; setting a new key when full evicts the oldest-written entry (Map
 * insertion order; `set` moves a key to the end), counted in `evicted`.
 * Expired entries are removed lazily: on `get`, and a couple at the old end
 * of the map on every `set`, so memory does not fill with dead keys.
 */

interface Entry {
  value: string;
  expiresAt: number;
}

export class TtlStore {
  evicted = 0;
  private readonly entries = new Map<string, Entry>();

  constructor(
    readonly maxKeys: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: string): string | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: string, ttlMs: number): void {
    const now = this.now();
    this.sweep(now, 2);
    if (!this.entries.delete(key) && this.entries.size >= this.maxKeys) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) {
        this.entries.delete(oldest.value);
        this.evicted++;
      }
    }
    this.entries.set(key, { value, expiresAt: now + ttlMs });
  }

  delete(key: string): boolean {
    return this.entries.delete(key);
  }

  /** Drops up to `limit` expired entries from the old end. */
  private sweep(now: number, limit: number): void {
    for (const [key, entry] of this.entries) {
      if (limit-- <= 0 || entry.expiresAt > now) return;
      this.entries.delete(key);
    }
  }
}
