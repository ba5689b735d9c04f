/**
 * An HTTP thread's side of forwarding (workers > 1): each beacon it answered
 * becomes a line — the record built here, as the owner would build it — and
 * is appended to a byte batch (io/line-batch.ts) with what the owner's checks
 * need (the client address when a check is on, the query's hash when the
 * duplicate check is on). The batch is transferred to the owner FORWARD_MS
 * after its first line, or at once when full (64 KiB): a postMessage wakes
 * the owner thread, and at a low rate one per event-loop turn would be one
 * per line. The answer does not wait for it; the line reaches the file
 * writer, which itself writes every file.writeIntervalMs (10 ms), a few ms
 * later.
 *
 * In flight (answered here, not yet pushed by the owner) is counted in shared
 * memory (protocol.ts) when a batch is posted; the owner subtracts it once it
 * has pushed the batch, and wakes `whenBelow`. SharedPressure stops this
 * thread's reading above IN_FLIGHT_MAX_* (`overCap`).
 *
 * A line `refuses` finds (answer-refusal.ts: a backend refuses it whatever
 * its state, and that makes the answer a 503) is forwarded all the same, for
 * the owner to push and count as one thread would; forward() returns false
 * so that the thread answers 503.
 *
 * The lines of the batch not yet posted are in shared memory too
 * (THREAD.pending, a plain store per line): if the thread ends without
 * posting them (terminated while stuck), the owner counts them as lost.
 */
import type { MessagePort } from 'node:worker_threads';
import type { RefusalTest } from '../backends/backend';
import { duplicateKey } from '../checks';
import type { ChecksConfig } from '../config/types';
import type { Flavor } from '../flavor';
import type { ClientAddress } from '../http/server';
import type { LineForwarder } from '../http/track';
import { BatchWriter } from '../io/line-batch';
import { buildRecord } from '../record';
import { IN_FLIGHT_MAX_BYTES, IN_FLIGHT_MAX_LINES, SHARED, THREAD, threadSlot, type FromHttpThread } from './protocol';

/** How long a batch may wait for more lines before it goes (see the module comment). */
export const FORWARD_MS = 5;

export class Forwarder implements LineForwarder {
  /** Lines and batches posted. */
  lines = 0;
  batches = 0;
  private readonly writer = new BatchWriter();
  /** Record bytes in the current batch. */
  private batchBytes = 0;
  private scheduled = false;
  private readonly withClient: boolean;
  private readonly withKey: boolean;
  private readonly slot: number;
  private readonly pendingAt: number;
  private readonly postBound = () => this.post();
  private readonly flushBound = () => {
    this.scheduled = false;
    this.post();
  };

  constructor(
    private readonly port: MessagePort,
    private readonly shared: Int32Array,
    worker: number,
    checks: ChecksConfig,
    /** null (the common case): no line is refused before its answer. */
    private readonly refuses: RefusalTest | null = null,
  ) {
    this.withClient = checks.duplicateWindowMs > 0 || checks.maxPerMinute > 0;
    this.withKey = checks.duplicateWindowMs > 0;
    this.slot = threadSlot(worker);
    this.pendingAt = this.slot + THREAD.pending;
  }

  forward(flavor: Flavor, timeMs: number, values: string, client: ClientAddress, checkKey: string): boolean {
    const record = buildRecord(flavor.recordHead, flavor.clock.stamp(timeMs), values);
    const refused = this.refuses !== null && this.refuses(record, flavor.name);
    this.batchBytes += this.writer.append(
      flavor.index,
      timeMs,
      record,
      this.postBound,
      this.withClient ? client.address() : '',
      this.withKey ? duplicateKey(checkKey) : '',
    );
    this.shared[this.pendingAt] = this.writer.lines;
    if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(this.flushBound, FORWARD_MS);
    }
    return !refused;
  }

  /** Hands the current batch to the owner (its buffer is transferred, not copied). */
  post(): void {
    const lines = this.writer.lines;
    if (lines === 0) return;
    const bytes = this.batchBytes;
    const batch = this.writer.take();
    this.batchBytes = 0;
    this.shared[this.pendingAt] = 0;
    this.lines += lines;
    this.batches++;
    Atomics.add(this.shared, this.slot, lines);
    Atomics.add(this.shared, this.slot + 1, bytes);
    Atomics.add(this.shared, SHARED.inFlightItems, lines);
    Atomics.add(this.shared, SHARED.inFlightBytes, bytes);
    this.port.postMessage({ t: 'lines', buffer: batch.buffer, length: batch.length, lines, bytes } satisfies FromHttpThread, [batch.buffer]);
  }

  /** Whether this thread has too much in flight (see the module comment). */
  overCap(): boolean {
    return (
      Atomics.load(this.shared, this.slot) + this.writer.lines >= IN_FLIGHT_MAX_LINES ||
      Atomics.load(this.shared, this.slot + 1) + this.batchBytes >= IN_FLIGHT_MAX_BYTES
    );
  }

  /** Resolves once what this thread has in flight is at most half its cap. */
  async whenBelowHalf(): Promise<void> {
    this.post();
    for (;;) {
      const items = Atomics.load(this.shared, this.slot);
      if (items <= IN_FLIGHT_MAX_LINES / 2 && Atomics.load(this.shared, this.slot + 1) <= IN_FLIGHT_MAX_BYTES / 2) return;
      // The owner notifies the lines slot after each batch it pushed.
      const wait = Atomics.waitAsync(this.shared, this.slot, items);
      if (wait.async) await wait.value;
    }
  }
}
