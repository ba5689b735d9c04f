/**
 * When the public server reads its sockets (docs/buffering.md, "Backpressure").
 *
 * Each backend whose `whenFull` is 'block' and whose `held` budget has a bound
 * gets two marks, shares of its bounds: high (http.backpressureHighPercent)
 * and low (http.backpressureLowPercent), for bytes and for lines.
 *
 * - open: sockets are read. After each request the server asks `over()`: one
 *   comparison per watched backend. Above a high mark it calls `engage()`.
 * - paused: no socket is read (new connections are accepted, not read). The
 *   answers wait; the client's TCP window fills; nothing is dropped. Awaits
 *   `held.whenAtMost(low)` of each watched backend in turn (event-driven, no
 *   polling); once all are low: open.
 * - refusing: paused for http.blockTimeoutMs means a backend is stuck (a full
 *   or failing disk). Sockets are read again and beacons are answered 503 with
 *   Retry-After without being pushed. Back to open once all are low.
 * - `ready` turns false halfway through the block timeout, and stays false
 *   while refusing: /ready answers 503 before the first beacon does, so a
 *   load balancer has marked this server down by the time it sees a 503, and
 *   its retry (HAProxy `retry-on 503` with `option redispatch`) goes to the
 *   backup instead of coming back here.
 *
 * A budget with no bound (Kafka's in-flight memory, which overflows to its
 * disk spool) never stops the server.
 *
 * With workers > 1 (workers/), this state machine runs on the owner thread
 * only, and counts as held, besides each budget, the lines HTTP threads have
 * answered and not yet seen pushed (`countInFlight`); the threads read its
 * state from shared memory (workers/shared-pressure.ts implements the same
 * PressureGate for them).
 */
import type { Budget } from '../io/bounded-queue';
import type { WhenFull } from '../backends/backend';

export const Pressure = { open: 0, paused: 1, refusing: 2 } as const;
export type Pressure = (typeof Pressure)[keyof typeof Pressure];
export const pressureNames = ['open', 'paused', 'refusing'] as const;

/** What the server needs of a backend (backends/backend.ts). */
export interface HeldSource {
  readonly held: Budget;
  readonly whenFull: WhenFull;
}

export interface PressureMarks {
  readonly backpressureHighPercent: number;
  readonly backpressureLowPercent: number;
  readonly blockTimeoutMs: number;
}

/** What the public server asks of its backpressure (this Backpressure, or an HTTP thread's SharedPressure). */
export interface PressureGate {
  readonly state: Pressure;
  /** Whether the server should ask `over()` at all. */
  readonly active: boolean;
  over(): boolean;
  engage(): void;
  refuse(): void;
}

/** Lines answered elsewhere and not yet pushed (workers/): counted as held by every watched backend. */
export interface InFlight {
  readonly items: number;
  readonly bytes: number;
}

interface Watched {
  readonly budget: Budget;
  readonly highBytes: number;
  readonly highItems: number;
  readonly lowBytes: number;
  readonly lowItems: number;
}

export class Backpressure implements PressureGate {
  state: Pressure = Pressure.open;
  /** Times reading stopped. */
  pauses = 0;
  /** Times a pause outlasted http.blockTimeoutMs (the server then answered 503). */
  refusals = 0;
  /** Milliseconds spent not open, finished spells only (see `notOpenMs`). */
  private spentMs = 0;
  private since = 0;
  private timer: NodeJS.Timeout | undefined = undefined;
  private readyTimer: NodeJS.Timeout | undefined = undefined;
  /** False from half the block timeout until open again (see the module comment). */
  ready = true;
  private readonly watched: readonly Watched[];
  private inFlight: InFlight | null = null;
  private readonly listeners: ((state: Pressure) => void)[] = [];

  constructor(
    sources: readonly HeldSource[],
    private readonly marks: PressureMarks,
    private readonly changed: (state: Pressure) => void,
  ) {
    const high = marks.backpressureHighPercent / 100;
    const low = marks.backpressureLowPercent / 100;
    this.watched = sources
      .filter((s) => s.whenFull === 'block' && (Number.isFinite(s.held.maxBytes) || Number.isFinite(s.held.maxItems)))
      .map(({ held }) => ({
        budget: held,
        highBytes: Math.floor(held.maxBytes * high),
        highItems: Math.floor(held.maxItems * high),
        lowBytes: Math.floor(held.maxBytes * low),
        lowItems: Math.floor(held.maxItems * low),
      }));
  }

  /** Whether any backend is watched at all (else the server never asks). */
  get active(): boolean {
    return this.watched.length > 0;
  }

  /** Whether a watched backend is at or above its high mark (hot path). */
  over(): boolean {
    const watched = this.watched;
    let items = 0;
    let bytes = 0;
    if (this.inFlight !== null) {
      items = this.inFlight.items;
      bytes = this.inFlight.bytes;
    }
    for (let i = 0; i < watched.length; i++) {
      const w = watched[i]!;
      if (w.budget.bytes + bytes >= w.highBytes || w.budget.items + items >= w.highItems) return true;
    }
    return false;
  }

  /** Also counts these lines as held (workers > 1: what HTTP threads answered and the owner has not pushed yet). */
  countInFlight(inFlight: InFlight): void {
    this.inFlight = inFlight;
  }

  /** Also tell `listener` of every change (workers > 1: the HTTP threads). */
  onChange(listener: (state: Pressure) => void): void {
    this.listeners.push(listener);
  }

  /** open → paused; the timer and the wait for the low marks start. */
  engage(): void {
    if (this.state !== Pressure.open) return;
    this.pauses++;
    this.since = Date.now();
    this.set(Pressure.paused);
    this.timer = setTimeout(() => this.refuse(), this.marks.blockTimeoutMs).unref();
    this.readyTimer = setTimeout(() => (this.ready = false), this.marks.blockTimeoutMs / 2).unref();
    void this.untilLow().then(() => {
      clearTimeout(this.timer);
      clearTimeout(this.readyTimer);
      this.ready = true;
      this.spentMs += Date.now() - this.since;
      this.set(Pressure.open);
    });
  }

  /** paused → refusing: at the block timeout, or at once when the server drains. */
  refuse(): void {
    if (this.state !== Pressure.paused) return;
    clearTimeout(this.timer);
    clearTimeout(this.readyTimer);
    this.ready = false;
    this.refusals++;
    this.set(Pressure.refusing);
  }

  /** Milliseconds spent paused or refusing since start. */
  get notOpenMs(): number {
    return this.spentMs + (this.state === Pressure.open ? 0 : Date.now() - this.since);
  }

  private set(state: Pressure): void {
    this.state = state;
    this.changed(state);
    for (const listener of this.listeners) listener(state);
  }

  /** Each backend's low mark in turn, until all hold at once. */
  private async untilLow(): Promise<void> {
    for (;;) {
      for (const w of this.watched) await w.budget.whenAtMost(w.lowBytes, w.lowItems);
      if (this.watched.every((w) => w.budget.bytes <= w.lowBytes && w.budget.items <= w.lowItems)) return;
    }
  }
}
