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
/**
 * Thread `w` (1 … workers − 1) has a block of its own, one cache line (16
 * int32) so that threads do not write each other's line: at threadSlot(w) +
 * the THREAD offsets. Only the thread writes `connections`, `heartbeat` and
 * `pending`; the owner reads them (the heartbeat while it runs, the others
 * once it has ended: the lines and connections a dead thread leaves behind).
 */
export const THREAD = {
  /** Its lines (then their record bytes) posted, not yet pushed by the owner. */
  inFlightLines: 0,
  inFlightBytes: 1,
  /** Its open connections (also in SHARED.connections, which the owner corrects when the thread dies). */
  connections: 2,
  /** Bumped every heartbeatMs while its event loop turns (the owner's watchdog, http-threads.ts). */
  heartbeat: 3,
  /** Lines answered and still in its unposted batch (forwarder.ts): what is lost if it ends without posting. */
  pending: 4,
} as const;
const THREAD_BLOCK = 16;
export const threadSlot = (worker: number): number => THREAD_BLOCK * worker;
export const sharedBytes = (workers: number): number => Int32Array.BYTES_PER_ELEMENT * threadSlot(workers);
/** How often a thread bumps its heartbeat: often enough that the owner's watchdog (http.threadStallMs) sees it move. */
export const heartbeatMs = (stallMs: number): number => Math.max(10, Math.floor(stallMs / 4));

/**
 * A thread stops reading its sockets once this much it answered is not yet
 * pushed by the owner (the owner is behind), and reads again below half:
 * this bounds what the threads can add to the backends beyond their bounds
 * (docs/buffering.md, "More than one worker").
 */
export const IN_FLIGHT_MAX_BYTES = 1024 * 1024;
export const IN_FLIGHT_MAX_LINES = 8192;

/**
 * http.maxConnections over every event loop, counted in SHARED.connections
 * (http/server.ts); an HTTP thread (`worker` > 0) also counts its own, so
 * that the owner can give back a dead thread's.
 */
export class SharedConnectionLimit implements ConnectionLimit {
  private readonly own: number;

  constructor(
    private readonly shared: Int32Array,
    private readonly max: number,
    worker = 0,
  ) {
    this.own = worker === 0 ? -1 : threadSlot(worker) + THREAD.connections;
  }

  open(): boolean {
    if (Atomics.add(this.shared, SHARED.connections, 1) < this.max) {
      if (this.own >= 0) this.shared[this.own]!++;
      return true;
    }
    Atomics.sub(this.shared, SHARED.connections, 1);
    return false;
  }

  close(): void {
    Atomics.sub(this.shared, SHARED.connections, 1);
    if (this.own >= 0) this.shared[this.own]!--;
  }
}

/** What an HTTP thread is started with (workerData). */
export interface HttpThreadInit {
  readonly config: Config;
  /** 1 … workers − 1 (the owner is 0). */
  readonly worker: number;
  readonly shared: SharedArrayBuffer;
  /** 0 for the first thread in this slot, then 1, 2 … for each replacement of a dead one. */
  readonly incarnation: number;
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
  | { readonly t: 'drained'; readonly counters: ThreadCounters }
  /** An uncaught exception: the thread has posted its batch and ends now (http-thread.ts). */
  | { readonly t: 'dying'; readonly error: string; readonly counters: ThreadCounters };

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
