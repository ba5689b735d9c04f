/**
 * The Kafka backend: every line to its flavor's topic through librdkafka,
 * with a disk spool so that an outage of any length loses nothing.
 *
 * Paths of a line:
 *   push ─► memory queue ─(next tick, batched)─► producer.produce ─► delivery report ─► written
 *             │ Kafka down / queue full / librdkafka full          │ failed (timed out, …)
 *             └────────────────────────► spool (disk) ◄────────────┘
 *   spool ─(Kafka up, paced: spool.drainRatePerSec, one batch in flight)─► produce ─► written ("drained")
 *
 * - push() is synchronous and O(1); librdkafka is called after the HTTP
 *   answer, once per event-loop turn for the lines of that turn.
 * - A line counts as written only on its delivery report. `queued` counts
 *   lines not yet safe: in memory, in flight, or on their way into the spool.
 * - State: "up" after a successful connect or delivery; "down" when
 *   librdkafka says all brokers are down, on a failed delivery, or when nothing in flight
 *   was acknowledged for `downAfterMs`. While down, new lines go straight to
 *   the spool and a metadata probe runs every second; the first successful
 *   probe or delivery brings it back up, and the spool drains.
 * - Delivery is at-least-once. Duplicates in Kafka can arise only from lines
 *   that may have reached the broker before failing (a timed-out delivery,
 *   in flight at the stop deadline, or drained from the spool but not
 *   committed before a crash); those are marked and counted as
 *   `possible_duplicates` when delivered again.
 * - close(): flush memory and librdkafka until the deadline; whatever is
 *   still undelivered goes to the spool (marked possibly-delivered), the rest
 *   of a drain batch cut short too when the spool has room for it, and that
 *   batch is committed with the spool's close (fsynced); without the room
 *   the batch stays whole in its segment, its possible duplicates counted.
 * - A drained line that the full spool will not take back (its delivery
 *   failed) is not dropped: its batch is committed only up to it, the rest
 *   stays in its segment and is read again by a later drain, which skips
 *   what the first pass delivered or re-spooled (SettledAhead); what a stop
 *   leaves to be sent again is counted as possible duplicates (keepInSegment).
 */
import type * as KafkaTypes from '@confluentinc/kafka-javascript';
import type { Flavor } from '../../flavor';
import type { Line } from '../../line';
import { logger } from '../../log';
import { BackendCounters, type Backend, type WhenFull } from '../backend';
import { kafkaClient } from './client';
import { keyFromRecord } from './message-key';
import { MessageSizeLimit } from './message-size';
import { kafkaDropReasons } from './options';
import { producerSettings } from './settings';
import type { KafkaConfig } from './types';
import { InFlight as InFlightTracker, reportFits } from './in-flight';
import { OffsetWatch } from './offset-watch';
import { partitionFor, StickyPartition } from './partitioner';
import { formatEntry, Spool, type SpoolBatch, type SpoolEntry } from './spool';
import type { Budget } from '../../io/bounded-queue';
import { Signal } from '../../io/signal';

const log = logger('kafka');
const PROBE_MS = 1_000;
/**
 * Spooled lines read and produced per drain batch. One batch is in flight at a
 * time and takes at least linger.ms to be acknowledged, so the batch bounds
 * the drain rate (500 gave ~8k lines/s at linger.ms=50); it is produced in
 * slices of DRAIN_SLICE with a turn of the event loop between, so live
 * requests are not held up behind it.
 */
const DRAIN_BATCH = 5_000;
const DRAIN_SLICE = 250;
/** Metadata for partition counts every 30 upkeep ticks (30 s). */
const PARTITION_REFRESH_TICKS = 30;
const ALL_BROKERS_DOWN = /all broker connections are down|brokers are down/i;

type State = 'starting' | 'up' | 'down';

/** One message handed to librdkafka, identified in its delivery report by `opaque`. */
interface InFlight {
  flavor: Flavor;
  timeMs: number;
  key: string | null;
  record: string;
  /** The record's length in UTF-8 bytes (what Kafka gets and reports as its size), known from the batch: not counted again per line. */
  bytes: number;
  maybeDelivered: boolean;
  seq: string;
  /** Set for spool entries being drained, with the entry's place in its batch. */
  batch: DrainBatch | null;
  index: number;
  /**
   * Under the Kafka thread: the record's bytes while the HTTP thread still
   * counts the line as held (0 once settled: delivered, spooled or dropped;
   * always 0 inline and for spooled entries).
   */
  liveBytes: number;
}

interface DrainBatch {
  spool: SpoolBatch;
  /** Entries produced and not yet reported. */
  remaining: number;
  /** Entries handed on so far (produced, re-spooled or dropped), in order: close() hands on the rest. */
  next: number;
  /**
   * The first entry that could not be sent and that the (full) spool refused
   * back (Infinity: none): it is still in its segment only, so the batch is
   * committed only up to it (keepInSegment).
   */
  unspooled: number;
  /** Every entry the full spool refused back (`unspooled` is the first): the ones a later pass must send again. */
  refused: Set<number>;
}

/**
 * The entries of a rewound drain batch that were delivered or re-spooled
 * (settled) past the line the spool refused: still in their segment, so the
 * next pass over it reads them again, and skips them instead of sending
 * them to Kafka a second time (keepInSegment).
 */
interface SettledAhead {
  segment: number;
  seqs: Set<string>;
}

interface FlavorRoute {
  topic: string;
  /** The `flavor` header (its value as bytes: the binding takes them as they are) and the shared `seq` header. */
  headers: KafkaTypes.MessageHeader[];
  /** From metadata, once every partition has a leader; 0 until then (lines wait: routesKnown). */
  partitions: number;
  sticky: StickyPartition;
}

export class KafkaBackend implements Backend {
  readonly name = 'kafka';
  readonly counters = new BackendCounters(kafkaDropReasons);
  /** Applies to the spool: memory beyond kafka.queue overflows to it and never blocks. */
  get whenFull(): WhenFull {
    return this.config.whenFull;
  }
  state: State = 'starting';
  /** Lines written to the spool (ever). */
  spooled = 0;
  /** Spooled lines later delivered. */
  drained = 0;
  possibleDuplicates = 0;
  /**
   * Lines (and their record bytes) pushed with pushRecord() that have been
   * settled since start: delivered, handed to the spool, or dropped. The
   * Kafka thread reports them so that the HTTP thread's `held` falls.
   */
  settledLines = 0;
  settledBytes = 0;

  private readonly producer: KafkaTypes.Producer;
  private readonly spool: Spool;
  private readonly routes: FlavorRoute[];
  private readonly byName: Map<string, Flavor>;
  /** Lines waiting to be produced (the next turn, or until Kafka and the topics are known), and their records' bytes. */
  private memory: InFlight[] = [];
  private memoryBytes = 0;
  /** This process's part of every `seq` header (restore orders by it). */
  private readonly boot = Date.now().toString(36);
  private nextSeq = 0;
  /** The `seq` header of the message being produced (produce() sets it; every route's headers hold this object). */
  private readonly seqHeader = { seq: '' };
  private flushScheduled = false;
  private readonly inFlight = new InFlightTracker<InFlight>(
    (message, report) => reportFits(message.bytes, report),
    (message) => message.bytes,
  );
  /** Notified when a delivery report or the end of a drain may have met what close()/drain() wait for. */
  private readonly progress = new Signal();
  private lastAckAt = Date.now();
  private readonly offsets = new OffsetWatch();
  private readonly sizeLimit: MessageSizeLimit;
  private readonly upkeep: NodeJS.Timeout;
  private probing = false;
  /** Every route's partition count is known (refreshPartitions): until then lines wait in memory, then in the spool. */
  private routesKnown = false;
  /** Metadata calls of refreshPartitions() still to answer. */
  private refreshing = 0;
  /** Client calls with a callback still to come (connect, metadata). */
  private calls = 0;
  private ticks = 0;
  private draining = false;
  /** The drain batch taken and not yet committed: close() settles and commits it. */
  private drainBatch: DrainBatch | null = null;
  /** Set by a rewind, used up by the next pass over the rest of the batch; what a stop leaves of it is counted in possible_duplicates. */
  private settledAhead: SettledAhead | null = null;
  private closing = false;
  /** The size of the last entry the spool refused, until it has room for one as big (refusing()). */
  private refusedEntryBytes = 0;
  /** Set once start() opened (and locked) the spool; close() without it has no spool to close. */
  private spoolOpened = false;
  /** Set when the spool closes: from then on a pushed line has nowhere to go (dropped as shutdown). */
  private spoolClosed = false;
  /** Until close(): never. Waits inside the drain loop end there. */
  private closeDeadline = Infinity;
  /** From librdkafka's statistics (every statistics.interval.ms); zero until the first. */
  private stats: Record<string, number> = {
    librdkafka_msg_cnt: 0,
    librdkafka_msg_size: 0,
    librdkafka_txmsgs: 0,
    librdkafka_brokers_up: 0,
    librdkafka_rtt_p99_us: 0,
  };
  private readonly errorCodes: typeof KafkaTypes.CODES.ERRORS;

  constructor(
    private readonly config: KafkaConfig,
    flavors: readonly Flavor[],
    /** How long start() waits for a previous scratchd to let go of the spool. */
    private readonly lockWaitMs: number,
  ) {
    const Kafka = kafkaClient();
    this.errorCodes = Kafka.CODES.ERRORS;
    this.routes = flavors.map((f) => ({ topic: config.topic.replaceAll('{flavor}', f.name), headers: [{ flavor: Buffer.from(f.name) }, this.seqHeader], partitions: 0, sticky: new StickyPartition() }));
    this.byName = new Map(flavors.map((f) => [f.name, f]));
    this.sizeLimit = new MessageSizeLimit(config, Math.max(...flavors.map((f) => f.name.length)));
    this.spool = new Spool(
      config.spool.path,
      config.spool.maxBytes,
      new Set(this.byName.keys()),
      {
        persisted: (lines) => {
          this.counters.queued -= lines;
          this.spooled += lines;
        },
        failed: (operation, err) => {
          this.counters.errors++;
          log.every(`${operation}:${err.code ?? ''}`, 10_000, `${operation} failed, will retry: ${err.message}`);
        },
        lost: (lines) => {
          this.counters.queued -= lines;
          this.counters.dropped.spool_write += lines;
        },
      },
      log,
    );
    // No second (topic config) argument: given one, even {}, the binding makes it
    // librdkafka's default topic config, which drops the topic-level settings of
    // the first (message.timeout.ms, acks, ...) for librdkafka's defaults.
    this.producer = new Kafka.Producer({ ...producerSettings(config), dr_cb: true });
    this.producer.on('delivery-report', (err, report) => this.delivered(err, report));
    this.producer.on('event.error', (err) => this.onError(err));
    this.producer.on('event.stats', (event: { message: string }) => this.onStats(event.message));
    this.upkeep = setInterval(() => this.maintain(), PROBE_MS).unref();
  }

  /**
   * Opens the spool (waiting up to `lockWaitMs` for a previous process to let
   * go of it), then connects in the background; lines wait in memory (bounded)
   * until the connection is decided.
   */
  async start(): Promise<void> {
    await this.spool.open(this.lockWaitMs);
    this.spoolOpened = true;
    this.probing = true;
    this.connect((err) => {
      this.probing = false;
      if (err) {
        log.warn(`cannot reach ${this.config.brokers} (${err.message}): spooling until it answers`);
        this.goDown();
      } else {
        this.goUp('connected');
      }
    });
  }

  private connect(done: (err: { message: string } | null) => void): void {
    this.calls++;
    this.producer.connect({ timeout: 5_000 }, (err) => {
      if (!err) {
        this.callDone();
        this.producer.setPollInBackground(true);
        if (!this.closing) done(null);
        return;
      }
      // The binding registers its delivery-report (and event) callback at
      // every connect(), and only disconnect() takes it off: without this,
      // after N failed connects every report would arrive N + 1 times. The
      // client's disconnect, not the producer's: that one flushes first,
      // which throws when not connected.
      const clientDisconnect = (Object.getPrototypeOf(Object.getPrototypeOf(this.producer)) as { disconnect: (cb: () => void) => void }).disconnect;
      clientDisconnect.call(this.producer, () => {
        this.callDone();
        if (!this.closing) done(err);
      });
    });
  }

  push(line: Line): boolean {
    return this.pushRecord(line.flavor, line.timeMs, line.record, Buffer.byteLength(line.record), false);
  }

  /**
   * push() by parts, with the record's UTF-8 length. `live`: count the line in
   * settledLines/settledBytes once it is safe (the Kafka thread's lines).
   */
  pushRecord(flavor: Flavor, timeMs: number, record: string, bytes: number, live: boolean): boolean {
    const liveBytes = live ? bytes : 0;
    const refused = this.spoolClosed ? 'shutdown' : this.sizeLimit.fits(record, flavor.name) ? null : 'too_large';
    if (refused !== null) {
      this.counters.dropped[refused]++;
      if (refused === 'too_large') this.sizeLimit.logRefusal(record, flavor.name);
      if (liveBytes > 0) {
        this.settledLines++;
        this.settledBytes += liveBytes;
      }
      return false;
    }
    const message: InFlight = {
      flavor,
      timeMs,
      key: this.config.key === null ? null : keyFromRecord(record, this.config.key),
      record,
      bytes,
      maybeDelivered: false,
      seq: `${this.boot}-${this.nextSeq++}`,
      batch: null,
      index: -1,
      liveBytes,
    };
    // Memory and in flight are both counted in record bytes (UTF-8), together under kafka.queueMaxBytes.
    if (this.state === 'down' || this.closing || this.memory.length + this.inFlight.size >= this.config.queue || this.memoryBytes + this.inFlight.held.bytes >= this.config.queueMaxBytes) {
      return this.toSpool(message);
    }
    this.memory.push(message);
    this.memoryBytes += bytes;
    this.counters.queued++;
    if (!this.flushScheduled && this.state === 'up' && this.routesKnown) {
      this.flushScheduled = true;
      setImmediate(() => this.flushMemory());
    }
    return true;
  }

  /**
   * Since the spool last refused an entry, it has had no room for one of that
   * size: true until a drain makes room (a spool refusing for its memory
   * bound while its disk fails is not seen here).
   */
  refusing(): boolean {
    if (this.refusedEntryBytes === 0) return false;
    if (this.spool.bytes + this.refusedEntryBytes > this.config.spool.maxBytes) return true;
    this.refusedEntryBytes = 0;
    return false;
  }

  reopen(): void {
    // Nothing to reopen: the spool's segments are opened per use.
  }

  async close(deadline: number): Promise<void> {
    this.closing = true;
    this.closeDeadline = deadline;
    this.progress.notify(); // waiters re-arm their timers with the deadline
    clearInterval(this.upkeep);
    if (this.state === 'up') this.flushMemory();
    await this.until(() => this.inFlight.size === 0 && !this.draining, () => deadline);
    // Still undelivered at the deadline (or Kafka down): to the spool.
    const unsent = this.memory.length;
    for (const message of this.takeMemory()) {
      this.counters.queued--;
      this.toSpool(message);
    }
    // Never sent: Kafka was not reached since the start (or is down). Said, so that a stop that spools is not silent.
    if (unsent > 0) log.warn(`${unsent} lines never sent (Kafka ${this.state === 'starting' ? 'not reached since the start' : this.state}): spooled for the next start`);
    // A drain batch cut short (docs/kafka.md, "Nothing lost: the spool"). If
    // the spool has room for what is left of it (the entries not yet
    // produced, and the unconfirmed ones, marked maybe-delivered), they go
    // back to the spool and the batch is committed with the spool's close:
    // the next start drains only those. Otherwise the batch stays in its
    // segment, nothing of it re-spooled (and nothing dropped), and the next
    // start drains all of it again: every entry handed on before the stop
    // may then reach Kafka twice, and is counted so (possible_duplicates).
    const drain = this.drainBatch;
    const unconfirmed = this.inFlight.takeAll();
    let handBack = false;
    if (drain !== null) {
      const rest = drain.spool.entries.slice(drain.next);
      handBack = this.spool.hasRoomFor([...rest, ...unconfirmed.map((m) => this.spoolEntry(m, true))]);
    }
    if (drain !== null && handBack) {
      while (drain.next < drain.spool.entries.length) this.sendSpooled(drain, drain.next++);
    }
    let spooled = 0;
    for (const m of unconfirmed) {
      this.counters.queued--;
      // Left in the segment with its batch (drained entries only): read again at the next start.
      if (m.batch !== null && m.batch === drain && !handBack) continue;
      this.toSpool(m, true);
      spooled++;
    }
    if (unconfirmed.length > 0) log.warn(`${unconfirmed.length} lines unconfirmed at the deadline: ${spooled} spooled, ${unconfirmed.length - spooled} left in the spool segment they were drained from (may be in Kafka too)`);
    this.spoolClosed = true;
    // An entry of the batch refused by the spool, before the stop or since the
    // decision (its memory bound while its disk fails): the batch stays
    // uncommitted, its entries safe in their segment.
    const commit = drain !== null && handBack && drain.unspooled === Infinity ? drain.spool : null;
    // Not started (a start that failed, e.g. on the spool lock): nothing was spooled, and the lock is not ours.
    const lost = this.spoolOpened ? await this.spool.close(Math.max(deadline, Date.now() + 2_000), commit) : 0;
    if (lost > 0) {
      this.counters.dropped.shutdown += lost;
      this.counters.queued -= lost;
      log.error(`${lost} lines could not be written to the spool`);
    }
    if (drain !== null && (commit === null || lost > 0)) this.keepInSegment(drain, 0, 'cut short by the stop');
    // A rewound batch's settled entries not passed over again yet: the next start sends them again.
    if (this.settledAhead !== null) this.possibleDuplicates += this.settledAhead.seqs.size;
    this.settledAhead = null;
    // A connect or metadata call still running finishes first (each has its own
    // timeout, ≤ 5 s): on the Kafka thread, the thread ends after close(), and
    // a binding callback arriving after that would find no JavaScript to run.
    const callsDeadline = Date.now() + 6_000;
    await this.until(() => this.calls === 0, () => callsDeadline);
    if (this.producer.isConnected()) await new Promise<void>((resolve) => this.producer.disconnect(2_000, () => resolve()));
  }

  /** Lines and bytes held in memory in flight to Kafka (bounded by kafka.queue and kafka.queueMaxBytes). */
  get held(): Budget {
    return this.inFlight.held;
  }

  details(): Record<string, number> {
    return {
      up: this.state === 'up' ? 1 : 0,
      topics_waiting: this.routes.filter((r) => r.partitions === 0).length,
      in_flight: this.inFlight.size,
      in_flight_bytes: this.inFlight.held.bytes,
      delivery_report_mismatches: this.inFlight.mismatches,
      delivery_reports_reordered: this.inFlight.reordered,
      delivery_offset_repeats: this.offsets.repeats,
      spooled: this.spooled,
      spool_bytes: this.spool.bytes,
      drained: this.drained,
      possible_duplicates: this.possibleDuplicates + this.spool.replayedAfterCrash,
      spool_corrupt: this.spool.corrupt,
      spool_truncated: this.spool.truncated,
      ...this.stats,
    };
  }

  private flushMemory(): void {
    this.flushScheduled = false;
    const messages = this.takeMemory();
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i]!;
      if (!this.produce(message)) {
        this.counters.queued--;
        this.toSpool(message);
      }
    }
  }

  /** Hands one message to librdkafka; false when it refused (queue full, not connected). */
  private produce(message: InFlight): boolean {
    const route = this.routes[message.flavor.index]!;
    // Only at a stop can a line meet a topic not known yet (routesKnown): it goes to the spool.
    if (route.partitions === 0) return false;
    const partition = partitionFor(message.key, route.partitions, route.sticky);
    const id = this.inFlight.nextId();
    // The binding copies headers (and the payload) during the call: one headers array per route, its seq set per message.
    this.seqHeader.seq = message.seq;
    try {
      this.producer.produce(route.topic, partition, Buffer.from(message.record), message.key, message.timeMs, id, route.headers);
    } catch (err) {
      const code = (err as KafkaTypes.LibrdKafkaError).code;
      if (code !== this.errorCodes.ERR__QUEUE_FULL) log.every('produce', 10_000, `produce failed: ${(err as Error).message}`);
      return false;
    }
    this.inFlight.addRouted(message, route.topic, partition, id);
    return true;
  }

  /**
   * Partition counts of our topics, for partitionFor(); asked every second
   * until all are known, then every PARTITION_REFRESH_TICKS. Asked for the
   * topic alone (`allTopics: false`): that request makes the broker create a
   * missing topic (when it allows auto-creation), a request for all does not.
   * A topic counts only once every partition has a leader: nothing is produced
   * to a topic still being created, where librdkafka can reset a partition's
   * idempotence sequence and the broker then acknowledges lines as duplicates
   * without keeping them (docs/kafka.md, "New topics").
   */
  private refreshPartitions(): void {
    if (this.refreshing > 0) return;
    for (const route of this.routes) {
      this.calls++;
      this.refreshing++;
      this.producer.getMetadata({ topic: route.topic, allTopics: false, timeout: 5_000 }, (err, metadata) => {
        this.callDone();
        this.refreshing--;
        if (err) return;
        const partitions = metadata.topics.find((t) => t.name === route.topic)?.partitions ?? [];
        const ready = partitions.length > 0 && partitions.every((p) => p.leader >= 0);
        // Only ever grows (Kafka cannot remove partitions); 0 means "not there yet".
        if (ready && partitions.length > route.partitions) route.partitions = partitions.length;
        if (!this.routesKnown && this.routes.every((r) => r.partitions > 0)) this.onRoutesKnown();
      });
    }
  }

  /** Every topic is known: the lines that waited in memory go, and the spool drains. */
  private onRoutesKnown(): void {
    this.routesKnown = true;
    if (this.closing || this.state !== 'up') return;
    if (this.memory.length > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flushMemory());
    }
    void this.drain();
  }

  private delivered(err: KafkaTypes.LibrdKafkaError | null, report: KafkaTypes.DeliveryReport): void {
    const mismatches = this.inFlight.mismatches;
    const message = this.inFlight.take(report);
    if (message === undefined) {
      // Already spooled at the close deadline, or (counted) a report for no line in flight.
      if (this.inFlight.mismatches !== mismatches) log.every('mismatch', 10_000, `delivery report for ${report.topic} [${report.partition}] (time ${report.timestamp}, ${report.size} bytes) is for no line in flight there: delivery tracking is off`);
      return;
    }
    if (this.inFlight.mismatches !== mismatches) {
      log.every('mismatch', 10_000, `delivery report for ${report.topic} [${report.partition}] (time ${report.timestamp}, ${report.size} bytes) does not match its line (seq ${message.seq}, time ${message.timeMs}): delivery tracking is off`);
    }
    this.counters.queued--;
    if (err) {
      this.counters.errors++;
      log.every(`delivery:${err.code}`, 10_000, `delivery failed, spooling: ${err.message}`);
      const mayBeThere = err.code === this.errorCodes.ERR__MSG_TIMED_OUT || err.code === this.errorCodes.ERR__PURGE_INFLIGHT;
      this.toSpool(message, mayBeThere);
      this.goDown();
    } else {
      this.counters.written++;
      this.checkOffset(report, message);
      this.settle(message);
      this.lastAckAt = Date.now();
      if (message.maybeDelivered) this.possibleDuplicates++;
      if (message.batch !== null) this.drained++;
      if (this.state !== 'up') this.goUp('delivered');
    }
    if (message.batch !== null) message.batch.remaining--;
    this.progress.notify();
  }

  /** A successful report at an offset its partition reported already: the broker may not have kept this line (offset-watch.ts). */
  private checkOffset(report: KafkaTypes.DeliveryReport, message: InFlight): void {
    if (this.offsets.advanced(report.topic, report.partition, report.offset)) return;
    log.every('offset-repeat', 10_000, `delivery report for ${report.topic} [${report.partition}] at offset ${report.offset}, an offset reported before (seq ${message.seq}): Kafka may hold an earlier message there instead of this line`);
  }

  /** A line's spool entry; `maybeDelivered` added to what the message knew. */
  private spoolEntry(m: InFlight, maybeDelivered: boolean): SpoolEntry {
    return { timeMs: m.timeMs, flavor: m.flavor.name, key: m.key, maybeDelivered: m.maybeDelivered || maybeDelivered, seq: m.seq, record: m.record };
  }

  /**
   * A drain batch left in its segment from entry `from` on, uncommitted
   * (docs/kafka.md, "Nothing lost: the spool"): that part is read and sent
   * again (by a later drain, or the next start), so every entry of it handed
   * on so far may reach Kafka twice, but for the `skipped` ones a later pass
   * of this process will know as settled (SettledAhead).
   */
  private keepInSegment(drain: DrainBatch, from: number, why: string, skipped = 0): void {
    const again = Math.max(0, drain.next - from - skipped);
    this.possibleDuplicates += again;
    log.every(`kept:${why}`, 10_000, `a spool drain batch ${why} stays in its segment${from > 0 ? ` from its entry ${from} on` : ''}: ${again} entries of it handed on so far may reach Kafka twice (possible_duplicates)`);
  }

  /**
   * Into the spool; `maybeDelivered` marks a line Kafka may hold already
   * (added to what the message knew). A drained line the spool refuses is
   * not dropped: it is still in its segment, and its batch is not committed.
   */
  private toSpool(m: InFlight, maybeDelivered = false): boolean {
    this.settle(m);
    const entry = this.spoolEntry(m, maybeDelivered);
    if (this.spool.append(entry)) {
      this.counters.queued++;
      return true;
    }
    this.refusedEntryBytes = Buffer.byteLength(formatEntry(entry)) + 1;
    if (m.batch !== null) {
      m.batch.unspooled = Math.min(m.batch.unspooled, m.index);
      m.batch.refused.add(m.index);
      return false;
    }
    this.counters.dropped.spool_full++;
    log.every('spool-full', 10_000, `spool is full (kafka.spool.maxBytes=${this.config.spool.maxBytes}): dropping lines`);
    return false;
  }

  /** A pushed line is safe (or counted as dropped): the HTTP thread may stop counting it as held. */
  private settle(m: InFlight): void {
    if (m.liveBytes === 0) return;
    this.settledLines++;
    this.settledBytes += m.liveBytes;
    m.liveBytes = 0;
  }

  private onError(err: KafkaTypes.LibrdKafkaError): void {
    // The binding passes librdkafka's error events on as a message only (code
    // -1), so ERR__ALL_BROKERS_DOWN is recognised by its text.
    if (ALL_BROKERS_DOWN.test(err.message)) this.goDown();
    log.every(`error:${err.message.slice(0, 40)}`, 30_000, err.message);
  }

  private onStats(json: string): void {
    try {
      const s = JSON.parse(json) as { msg_cnt?: number; msg_size?: number; txmsgs?: number; txmsg_bytes?: number; brokers?: Record<string, { state?: string; rtt?: { p99?: number } }> };
      const brokers = Object.values(s.brokers ?? {}).filter((b) => b.state !== undefined);
      this.stats = {
        librdkafka_msg_cnt: s.msg_cnt ?? 0,
        librdkafka_msg_size: s.msg_size ?? 0,
        librdkafka_txmsgs: s.txmsgs ?? 0,
        librdkafka_brokers_up: brokers.filter((b) => b.state === 'UP').length,
        librdkafka_rtt_p99_us: Math.max(0, ...brokers.map((b) => b.rtt?.p99 ?? 0)),
      };
    } catch {
      // A statistics blob we cannot read is not worth a log line.
    }
  }

  private goUp(why: string): void {
    if (this.closing || this.state === 'up') return;
    const was = this.state;
    this.state = 'up';
    this.refreshPartitions();
    this.lastAckAt = Date.now();
    if (was === 'down') log.info(`up again (${why})${this.spool.isEmpty ? '' : `: draining ${this.spool.bytes} spooled bytes`}`);
    if (this.routesKnown) this.onRoutesKnown();
  }

  private goDown(): void {
    if (this.state === 'down') return;
    if (this.state === 'up') log.warn(`down: spooling to ${this.config.spool.path}`);
    this.state = 'down';
    for (const message of this.takeMemory()) {
      this.counters.queued--;
      this.toSpool(message);
    }
  }

  private maintain(): void {
    const now = Date.now();
    if (this.state === 'up' && (!this.routesKnown || ++this.ticks % PARTITION_REFRESH_TICKS === 0)) this.refreshPartitions();
    if (this.state === 'up' && !this.routesKnown) {
      const waiting = this.routes.filter((r) => r.partitions === 0).map((r) => r.topic);
      log.every('topics', 10_000, `waiting for topic ${waiting.join(', ')} to have a leader for every partition (does it exist, or may the broker create it?): ${this.memory.length} lines wait, then the spool takes them`);
    }
    if (this.state === 'up' && this.inFlight.size > 0 && now - this.lastAckAt > this.config.downAfterMs) {
      log.warn(`nothing acknowledged for ${now - this.lastAckAt} ms with ${this.inFlight.size} in flight`);
      this.goDown();
    }
    if (this.state === 'down' && !this.probing) this.probe();
    if (this.state === 'up' && this.routesKnown && !this.spool.isEmpty) void this.drain();
  }

  /** While down: does the cluster answer (metadata, or a first connect)? */
  private probe(): void {
    this.probing = true;
    const answered = (err: { message: string } | null) => {
      this.probing = false;
      if (!err) this.goUp('the cluster answers');
    };
    if (this.producer.isConnected()) {
      this.calls++;
      this.producer.getMetadata({ timeout: PROBE_MS }, (err) => {
        this.callDone();
        answered(err ?? null);
      });
    }
    else this.connect(answered);
  }

  /** Drains the spool while up: one batch in flight, paced, yielding to live traffic. */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.state === 'up' && this.routesKnown && !this.closing && !this.spool.isEmpty) {
        const started = Date.now();
        const batch = await this.spool.take(DRAIN_BATCH);
        // A take that close() overtook hands out nothing: batch is null then.
        if (batch === null) break;
        const drain: DrainBatch = { spool: batch, remaining: 0, next: 0, unspooled: Infinity, refused: new Set() };
        this.drainBatch = drain;
        // `next` is shared with close(): once closing, close() decides what becomes of the rest.
        // Once an entry is refused by the spool the batch is sent again later: the rest waits for that.
        while (drain.next < batch.entries.length && !this.closing && drain.unspooled === Infinity) {
          this.sendSpooled(drain, drain.next++);
          if (drain.next % DRAIN_SLICE === 0) await new Promise((r) => setImmediate(r));
        }
        await this.until(() => drain.remaining === 0, () => this.closeDeadline);
        await this.spool.headSettled();
        if (drain.unspooled !== Infinity && drain.remaining === 0 && !this.spoolClosed) {
          // A line neither delivered nor taken back by the full spool: the
          // batch is committed up to it (which makes room in the spool), the
          // rest stays in its segment, read and sent again by a later drain
          // (or the next start: entries a stop left unsent are in that rest).
          await this.spool.rewind(batch, drain.unspooled);
          this.drainBatch = null;
          const seqs = new Set<string>();
          for (let i = drain.unspooled + 1; i < drain.next; i++) if (!drain.refused.has(i)) seqs.add(batch.entries[i]!.seq);
          const settledThisPass = seqs.size;
          // A pass cut short before it reached all of an earlier pass's settled lines: those stay known too.
          if (this.settledAhead?.segment === batch.segment) for (const seq of this.settledAhead.seqs) seqs.add(seq);
          this.settledAhead = { segment: batch.segment, seqs };
          this.keepInSegment(drain, drain.unspooled, 'with a line the full spool could not take back', settledThisPass);
          break;
        }
        // Closing with entries unsent or unconfirmed (or one the spool refused): close() decides what becomes of the batch.
        if (drain.remaining > 0 || this.spoolClosed || drain.next < batch.entries.length || drain.unspooled !== Infinity) break;
        await this.spool.commit(batch);
        this.drainBatch = null;
        this.settledAhead = null;
        const minMs = (batch.entries.length * 1000) / this.config.spool.drainRatePerSec;
        const wait = minMs - (Date.now() - started);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    } catch (err) {
      this.counters.errors++;
      log.error(`spool drain: ${(err as Error).message}`);
    } finally {
      this.draining = false;
      this.progress.notify();
    }
  }

  /** The batch's entry number `index`: produced, or back to the spool. */
  private sendSpooled(batch: DrainBatch, index: number): void {
    const entry = batch.spool.entries[index]!;
    // Delivered or re-spooled by an earlier pass over this batch (a rewind): already settled.
    if (this.settledAhead !== null && this.settledAhead.segment === batch.spool.segment && this.settledAhead.seqs.delete(entry.seq)) return;
    const flavor = this.byName.get(entry.flavor)!;
    // Spooled under a larger message.max.bytes: it would come back at every drain; its batch's commit lets it go.
    if (!this.sizeLimit.fits(entry.record, flavor.name, entry.key)) {
      this.counters.dropped.too_large++;
      this.sizeLimit.logRefusal(entry.record, flavor.name, entry.key);
      return;
    }
    const message: InFlight = { flavor, timeMs: entry.timeMs, key: entry.key, record: entry.record, bytes: Buffer.byteLength(entry.record), maybeDelivered: entry.maybeDelivered, seq: entry.seq, batch, index, liveBytes: 0 };
    this.counters.queued++;
    if (this.state === 'up' && !this.closing && this.produce(message)) {
      batch.remaining++;
      return;
    }
    this.counters.queued--;
    this.toSpool(message);
  }

  /** Every line waiting in memory, which is empty afterwards. */
  private takeMemory(): InFlight[] {
    const messages = this.memory;
    this.memory = [];
    this.memoryBytes = 0;
    return messages;
  }

  private callDone(): void {
    this.calls--;
    this.progress.notify();
  }

  private async until(condition: () => boolean, deadline: () => number): Promise<void> {
    await this.progress.until(condition, deadline);
  }
}
