/**
 * What the owner thread and its HTTP threads share (workers > 1;
 * docs/architecture.md, "Threads"): the messages between them, and the layout
 * of the SharedArrayBuffer through which the owner publishes its backpressure
 * state and the threads publish the lines they have answered and the owner
 * has not pushed yet.
 *
 * Messages are plain objects (structured clone), except a batch's
 * ArrayBuffer, which is transferred (io/line-batch.ts).
 */
import type { Config } from '../config/types';
import type { ConnectionLimit } from '../http/server';
import { Outcomes } from '../telemetry';

/** The Int32Array over the shared memory. */
export const SHARED = {
  /** The owner's Pressure (http/backpressure.ts): open, paused or refusing. */
  pressure: 0,
  /** Lines (and record bytes) forwarded by all threads, not yet pushed by the owner. */
  inFlightItems: 1,
  inFlightBytes: 2,
  /** Connections open on every event loop (http.maxConnections bounds them together). */
  connections: 3,
  /** 1 while a backend whose whenFull is 'block' refuses lines (Backend.refusing): the threads answer beacons 503. */
  refusing: 4,
} as const;
/** Thread `w` (1 … workers − 1) has its own pair: its lines in flight, then their bytes. */
export const threadSlot = (worker: number): number => 4 + 2 * worker;
export const sharedBytes = (workers: number): number => Int32Array.BYTES_PER_ELEMENT * threadSlot(workers);

/**
 * A thread stops reading its sockets once this much it answered is not yet
 * pushed by the owner (the owner is behind), and reads again below half:
 * this bounds what the threads can add to the backends beyond their bounds
 * (docs/buffering.md, "More than one worker").
 */
export const IN_FLIGHT_MAX_BYTES = 1024 * 1024;
export const IN_FLIGHT_MAX_LINES = 8192;

/** http.maxConnections over every event loop, counted in SHARED.connections (http/server.ts). */
export class SharedConnectionLimit implements ConnectionLimit {
  constructor(
    private readonly shared: Int32Array,
    private readonly max: number,
  ) {}

  open(): boolean {
    if (Atomics.add(this.shared, SHARED.connections, 1) < this.max) return true;
    Atomics.sub(this.shared, SHARED.connections, 1);
    return false;
  }

  close(): void {
    Atomics.sub(this.shared, SHARED.connections, 1);
  }
}

/** What an HTTP thread is started with (workerData). */
export interface HttpThreadInit {
  readonly config: Config;
  /** 1 … workers − 1 (the owner is 0). */
  readonly worker: number;
  readonly shared: SharedArrayBuffer;
}

export type ToHttpThread =
  | { readonly t: 'listen'; readonly host: string; readonly port: number }
  /** A descriptor of the systemd socket of this thread's own (http-threads.ts listenOnSocketOf). */
  | { readonly t: 'listen'; readonly fd: number }
  /** The owner's pressure state changed (read it in SHARED.pressure). */
  | { readonly t: 'pressure' }
  /** Post the current batch, then the counters (for /stats, /metrics). */
  | { readonly t: 'report'; readonly id: number }
  | { readonly t: 'drain'; readonly deadline: number; readonly idleGraceMs: number };

export type FromHttpThread =
  | { readonly t: 'listening'; readonly address: string }
  | { readonly t: 'failed'; readonly message: string }
  | { readonly t: 'lines'; readonly buffer: ArrayBuffer; readonly length: number; readonly lines: number; readonly bytes: number }
  /** id: the report asked for, or 0 (sent on its own every REPORT_MS while something changed). */
  | { readonly t: 'counters'; readonly id: number; readonly counters: ThreadCounters }
  | { readonly t: 'drained'; readonly counters: ThreadCounters };

/**
 * A thread's counters, flat: its RequestCounters by Outcomes, then the
 * COUNTER_KEYS. A thread's `tracked` counts the GET beacons it answered and
 * forwarded; the totals take `tracked`, `duplicate` and `malicious` from the
 * owner, which judges and pushes every forwarded line.
 */
export type ThreadCounters = readonly number[];
export const COUNTER_KEYS = ['connections_open', 'connections_accepted', 'connections_rejected', 'lines', 'batches', 'in_flight_pauses'] as const;
export type CounterKey = (typeof COUNTER_KEYS)[number];
export const counterAt = (key: CounterKey): number => Outcomes.length + COUNTER_KEYS.indexOf(key);
export const COUNTERS_LENGTH = Outcomes.length + COUNTER_KEYS.length;
export const NO_COUNTERS: ThreadCounters = new Array<number>(COUNTERS_LENGTH).fill(0);

/** How often a thread sends its counters on its own while they change (for Graphite; /stats asks). */
export const REPORT_MS = 1_000;

export const threadName = (worker: number): string => `scratchd-http-${worker}`;
