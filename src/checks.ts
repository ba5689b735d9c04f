/**
 * The optional sanity checks the legacy stack ran against Memcached, now on
 * the in-memory TtlStore:
 * - duplicate: the same flavor, client address and query seen within
 *   `duplicateWindowMs` → answered like any beacon but not persisted;
 * - malicious: a client sending more than `maxPerMinute` beacons of one flavor
 *   in a clock minute → answered, counted, not persisted.
 * Both off (0) unless configured; `judge` is then never called.
 * Keys hold a 64-bit hash of the query, not the query, to bound memory.
 * With workers > 1 the checks run on the owner thread only (one store: they
 * see every beacon of a client whichever thread took it); an HTTP thread
 * sends the hash along with the line (`duplicateKey`), so the owner never
 * hashes forwarded queries itself.
 */
import type { ChecksConfig } from './config/types';
import { TtlStore } from './kv';

export type Verdict = 'ok' | 'duplicate' | 'malicious';

export class SanityChecks {
  readonly store: TtlStore;
  private readonly windowMs: number;
  private readonly maxPerMinute: number;

  constructor(config: ChecksConfig, now: () => number = Date.now) {
    this.store = new TtlStore(config.maxKeys, now);
    this.windowMs = config.duplicateWindowMs;
    this.maxPerMinute = config.maxPerMinute;
  }

  get enabled(): boolean {
    return this.windowMs > 0 || this.maxPerMinute > 0;
  }

  /** Whether the duplicate check is on (an HTTP thread then sends duplicateKey(query) along). */
  get duplicates(): boolean {
    return this.windowMs > 0;
  }

  judge(flavorIndex: number, client: string, query: string, nowMs: number): Verdict {
    return this.judgeKeyed(flavorIndex, client, this.windowMs > 0 ? hash64(query) : '', nowMs);
  }

  /** judge() with the query already hashed (duplicateKey), as a forwarded line carries it. */
  judgeKeyed(flavorIndex: number, client: string, queryHash: string, nowMs: number): Verdict {
    if (this.maxPerMinute > 0 && this.countRate(flavorIndex, client, nowMs, 1) > this.maxPerMinute) return 'malicious';
    if (this.windowMs > 0) {
      const key = duplicateStoreKey(flavorIndex, client, queryHash);
      if (this.store.get(key) !== undefined) return 'duplicate';
      this.store.set(key, '', this.windowMs);
    }
    return 'ok';
  }

  /** Adds `by` to the client's count of beacons of this flavor in nowMs's clock minute; the new count. */
  private countRate(flavorIndex: number, client: string, nowMs: number, by: number): number {
    const key = `r${flavorIndex} ${client} ${Math.floor(nowMs / 60_000)}`;
    const count = Number(this.store.get(key) ?? '0') + by;
    if (count > 0) this.store.set(key, String(count), 60_000 - (nowMs % 60_000));
    else this.store.delete(key);
    return count;
  }

  /**
   * Forgets that judge() saw this beacon: its line was answered 503 and no
   * backend took it, so the client's retry is a new beacon, neither a
   * duplicate nor one more toward the rate (either would answer it 200 and
   * drop it). `nowMs` as given to judge().
   */
  retract(flavorIndex: number, client: string, query: string, nowMs: number): void {
    if (this.maxPerMinute > 0) this.countRate(flavorIndex, client, nowMs, -1);
    if (this.windowMs > 0) this.store.delete(duplicateStoreKey(flavorIndex, client, hash64(query)));
  }
}

/** The duplicate check's entry for a flavor, a client and a query's hash. */
const duplicateStoreKey = (flavorIndex: number, client: string, queryHash: string): string => `d${flavorIndex} ${client} ${queryHash}`;

/** What the duplicate check keys a query by. */
export const duplicateKey = (query: string): string => hash64(query);

/** Two independent 32-bit FNV-1a style hashes over the UTF-16 code units, as hex. */
export function hash64(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return (a >>> 0).toString(16) + ':' + (b >>> 0).toString(16);
}
