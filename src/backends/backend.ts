/**
 * The backend contract, and the descriptor a backend plug-in exports
 * (docs/architecture.md, "Backends").
 *
 * A running backend:
 * - `start()` acquires what the backend needs before traffic (Kafka: its spool
 *   lock, then a background connect). It resolves before the listeners open;
 *   a backend whose start needs nothing resolves at once.
 * - `push(line)` is called on the HTTP path: synchronous, O(1), never blocks,
 *   never throws. It returns true when the backend took the line (it will be
 *   written, or spooled), false when it did not: then the line is counted in
 *   `counters` as dropped with a reason — never silently lost. Lines pushed
 *   while closing count as dropped('shutdown') unless the backend still saves
 *   them (Kafka spools them). The HTTP path answers 200 only for a line that
 *   some backend took and that no backend with `whenFull: 'block'` refused
 *   (docs/buffering.md).
 *   `answered` (workers > 1): the line was forwarded by an HTTP thread that
 *   has already answered 200 for it. A backend whose `whenFull` is 'block'
 *   then takes it past its bounds rather than break that promise (the
 *   overshoot is bounded by what the HTTP threads may have in flight,
 *   docs/buffering.md, "More than one worker"); a 'drop_newest' one drops as
 *   usual, counted.
 * - `held` is what the backend holds in memory (lines and bytes) and its
 *   bounds. For a backend whose `whenFull` is 'block', the public server stops
 *   reading its sockets while `held` is above a high-water mark of its bounds
 *   and resumes below a low-water mark (`held.whenAtMost`). A budget without
 *   bounds (Kafka's in-flight memory, which overflows to its disk spool) never
 *   stops the server.
 * - `whenFull` is what a refused line means for the client: 'block' — the
 *   server holds answers back and, once stuck past http.blockTimeoutMs or
 *   when this backend refuses a line, answers 503; 'drop_newest' — the drop is
 *   counted and the answer is 200 if another backend took the line.
 * - Backends are independent: none may wait on another, and a failing one
 *   must not slow the HTTP path (its I/O happens after push returns).
 * - `refusing()` is true while push() refuses lines for a reason `held` does
 *   not show (Kafka: its disk spool is full). While a 'block' backend
 *   refuses, /ready answers 503, so a load balancer sends traffic elsewhere
 *   rather than collect 503s (docs/buffering.md).
 * - `reopen()` (SIGHUP) re-opens whatever external resource may have been
 *   moved underneath (log files); it must not lose or split a line.
 * - `close(deadline)` flushes everything held, makes it durable (fsync, or
 *   Kafka's spool), and resolves by `deadline` (ms since epoch) at the latest;
 *   what it could not save by then is counted as dropped('shutdown').
 */
import type { Flavor } from '../flavor';
import type { FlavorConfig } from '../config/types';
import type { Line } from '../line';
import type { Budget } from '../io/bounded-queue';

/** A backend's policy when it cannot take a line (modelled on Vector's buffer `when_full`). */
export const WhenFull = { block: 'block', drop_newest: 'drop_newest' } as const;
export type WhenFull = (typeof WhenFull)[keyof typeof WhenFull];

/** The `whenFull` key every backend's schema carries (its section in docs/configuration.md). */
export const whenFullKey = (description: string) =>
  ({ type: 'string', enum: Object.values(WhenFull), default: WhenFull.block, description }) as const;

export interface Backend {
  readonly name: string;
  readonly counters: BackendCounters<string>;
  readonly held: Budget;
  readonly whenFull: WhenFull;
  start(): Promise<void>;
  /** True when the line was taken (see the module comment). */
  push(line: Line, answered?: boolean): boolean;
  /**
   * See the module comment: refusal that backpressure on `held` cannot see.
   * With workers > 1 the owner thread also publishes it to the HTTP threads,
   * which then answer beacons 503 (docs/buffering.md, "More than one worker").
   */
  refusing(): boolean;
  reopen(): void;
  close(deadline: number): Promise<void>;
  /** Backend-specific gauges and counters for /stats and /metrics (numbers only). */
  details(): Record<string, number>;
}

/** Whether a backend whose `whenFull` is 'block' refuses lines now (/ready, and the HTTP threads' 503s). */
export function blockingRefusal(backends: readonly Backend[]): boolean {
  return backends.some((b) => b.whenFull === WhenFull.block && b.refusing());
}

/**
 * Drop reasons every backend counts; a plug-in declares its own beside them
 * (BackendDescriptor.dropReasons). /stats and /metrics show each at 0 from
 * the start.
 */
export const commonDropReasons = {
  queue_full: 'the bounded in-memory queue was full when the line arrived',
  shutdown: 'the process was stopping: the line arrived while closing, or was still unsaved at the stop deadline',
} as const;
export type CommonDropReason = keyof typeof commonDropReasons;

/** The counters every backend keeps; /stats and /metrics render them. `R`: the backend's own drop reasons. */
export class BackendCounters<R extends string = never> {
  /** Lines accepted by push() and not yet written (a gauge). */
  queued = 0;
  /** Lines durably handed over (written to the file; acknowledged by Kafka). */
  written = 0;
  /** Failed I/O attempts (each retried), not lines. */
  errors = 0;
  readonly dropped: Record<CommonDropReason | R, number>;

  constructor(ownReasons: Readonly<Record<R, string>> = {} as Record<R, string>) {
    const dropped: Record<string, number> = {};
    for (const reason of [...Object.keys(commonDropReasons), ...Object.keys(ownReasons)]) dropped[reason] = 0;
    this.dropped = dropped;
  }

  get droppedTotal(): number {
    let total = 0;
    for (const n of Object.values<number>(this.dropped)) total += n;
    return total;
  }
}

/**
 * The JSON Schema of a backend's config section: an object with every key
 * described and every optional key's default next to it (ajv fills them in).
 * `patternReason` says in words what a `pattern` demands (config error messages).
 */
export interface BackendSchema {
  readonly type: 'object';
  readonly additionalProperties: false;
  readonly required?: readonly string[];
  readonly description: string;
  readonly properties: Readonly<Record<string, object>>;
}

/** What a plug-in's resolve() may look at besides its own section. */
export interface ResolveContext {
  /** The config file's folder: relative paths resolve against it. */
  readonly baseDir: string;
  readonly flavors: readonly FlavorConfig[];
  /** Push one "<key path>: <reason>" per problem found (the key path starts with the backend's name). */
  readonly problems: string[];
  /** Whether HTTP threads answer lines before the owner pushes them (`workers` > 1 or "auto"). */
  readonly forwarding: boolean;
}

/** What a backend is built with besides its own config. */
export interface BackendContext {
  readonly flavors: readonly Flavor[];
  /**
   * How long start() may wait for a resource a previous scratchd still holds
   * while it drains (e.g. Kafka's spool lock).
   */
  readonly startWaitMs: number;
}

/** What refusalBeforeAnswer() may look at besides the backend's own config. */
export interface AnswerContext {
  readonly flavors: readonly FlavorConfig[];
  /** No other backend is enabled: a line this one refuses is taken by none (a 503). */
  readonly alone: boolean;
  /** The longest record an HTTP thread can build under this config's http limits, in UTF-8 bytes. */
  readonly longestRecordBytes: number;
}

/** A line's record and its flavor's name → whether push() would refuse it whatever the backend's state. */
export type RefusalTest = (record: string, flavorName: string) => boolean;

/**
 * A backend plug-in: everything the core knows about it. `C` is its config as
 * resolve() returns it. Registered in one line in backends/registry.ts.
 */
export interface BackendDescriptor<C = unknown> {
  /** Its key in the config file, and its name in /stats, /metrics and logs. */
  readonly name: string;
  readonly schema: BackendSchema;
  /** Its own drop reasons (besides commonDropReasons), each with one line saying when it happens. */
  readonly dropReasons: Readonly<Record<string, string>>;
  /**
   * After the schema passed (defaults filled in): semantic checks, pushed to
   * context.problems, and path resolution. Returns the config as the backend
   * uses it; it is frozen afterwards. May load what it needs to check strictly
   * (Kafka builds a librdkafka producer, without connecting, to have it check
   * its settings).
   */
  resolve(section: unknown, context: ResolveContext): C;
  /** Where it writes, for check-config's summary ("/var/log/{flavor}.log", "kafka1:9092"). */
  summary(config: C): string;
  create(config: C, context: BackendContext): Backend;
  /**
   * With workers > 1 an HTTP thread answers a beacon before the owner pushes
   * its line (workers/answer-refusal.ts): the test of the lines push() would
   * refuse whatever its state (too large for it) when that refusal makes the
   * answer a 503 (whenFull 'block', or `alone`), so that the thread answers
   * as one thread would. Null when no line that can arrive is refused so.
   * Asked once per HTTP thread at start-up; absent: never refuses so.
   */
  refusalBeforeAnswer?(config: C, context: AnswerContext): RefusalTest | null;
}
