/**
 * Backpressure as an HTTP thread sees it (workers > 1): the owner thread runs
 * the state machine (http/backpressure.ts) over the backends it owns and
 * publishes its state in shared memory (protocol.ts SHARED.pressure), read
 * here on every check, so a thread pauses or refuses on the very next request
 * after the owner did; the owner's 'pressure' message (`ownerChanged`) makes
 * a thread resume its sockets. The owner also raises SHARED.refusing while a
 * 'block' backend refuses lines (Backend.refusing: Kafka's spool), at once
 * when it refused one of its own or one forwarded: beacons are then answered
 * 503 here, as the owner's push() refusal answers its own. On top of that, a thread pauses on its own
 * while it has too much in flight (answered, not yet pushed by the owner:
 * forwarder.ts), and refuses while it drains, as the owner's server does.
 */
import { Pressure, type PressureGate } from '../http/backpressure';
import type { Forwarder } from './forwarder';
import { SHARED } from './protocol';

export class SharedPressure implements PressureGate {
  readonly active = true;
  /** Times this thread paused because of its own lines in flight. */
  pauses = 0;
  /** This thread's own state: paused for its lines in flight, refusing while draining. */
  private own: Pressure = Pressure.open;

  constructor(
    private readonly shared: Int32Array,
    private readonly forwarder: Forwarder,
    private readonly changed: (state: Pressure) => void,
  ) {}

  get state(): Pressure {
    const owner = Atomics.load(this.shared, SHARED.refusing) === 1 ? Pressure.refusing : (Atomics.load(this.shared, SHARED.pressure) as Pressure);
    return owner > this.own ? owner : this.own;
  }

  /** Asked after each request while open: only this thread's own bound (the owner watches the backends). */
  over(): boolean {
    return this.forwarder.overCap();
  }

  engage(): void {
    if (this.own !== Pressure.open) return;
    this.own = Pressure.paused;
    this.pauses++;
    this.changed(this.state);
    void this.forwarder.whenBelowHalf().then(() => {
      if (this.own !== Pressure.paused) return;
      this.own = Pressure.open;
      this.changed(this.state);
    });
  }

  /** While draining: what is held back is answered 503 rather than cut at the deadline. */
  refuse(): void {
    if (this.state !== Pressure.paused) return;
    this.own = Pressure.refusing;
    this.changed(this.state);
  }

  /** The owner's state changed: pause, or serve what waits (the server's pressureChanged). */
  ownerChanged(): void {
    this.changed(this.state);
  }
}
