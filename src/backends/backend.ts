/**
 * The backend contract, and the descriptor a backend plug-in exports
 * (docs/architecture.md, "Backends").
 *
 * A running backend:
 * - `start()` acquires what the backend needs before traffic (Kafka: its spool
 *   lock, then a background connect). It resolves before the listeners open;
 *   a backend whose start needs nothing resolves at once.
 * - `push(line)` is called on the HTTP path: synchronous, O(1), never blocks,
 *   never throws. A line it cannot hold is counted in `counters` as dropped
 *   with a reason — never silently lost. Lines pushed while closing count as
 *   dropped('shutdown') unless the backend still saves them (Kafka spools them).
 * - Backends are independent: none may wait on another, and a failing one
 *   must not slow the HTTP path (its I/O happens after push returns).
 * - `reopen()` (SIGHUP) re-opens whatever external resource may have been
 *   moved underneath (log files); it must not lose or split a line.
 * - `close(deadline)` flushes everything held, makes it durable (fsync, or
 *   Kafka's spool), and resolves by `deadline` (ms since epoch) at the latest;
 *   what it could not save by then is counted as dropped('shutdown').
 */
import type { Flavor } from '../flavor';
import type { FlavorConfig } from '../config/types';
import type { Line } from '../line';

export interface Backend {
  readonly name: string;
  readonly counters: BackendCounters<string>;
  start(): Promise<void>;
  push(line: Line): void;
  reopen(): void;
  close(deadline: number): Promise<void>;
  /** Backend-specific gauges and counters for /stats and /metrics (numbers only). */
  details(): Record<string, number>;
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
}
