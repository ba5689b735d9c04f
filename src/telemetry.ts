/**
 * Named counters and gauges (docs/architecture.md, "Telemetry"). Hot-path counters are
 * plain fields bumped in place; rare events go through a method that counts
 * and logs. /stats and /metrics only render what is here (http/admin.ts).
 */
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

/** How a request on the public port ended. The keys are the /stats names. */
export const Outcomes = [
  'tracked',
  'head',
  'duplicate',
  'malicious',
  'malformed',
  'unknown_flavor',
  'method',
  'not_found',
  'uri_too_long',
  'header_too_large',
  'bad_request',
  'timeout',
  'internal_error',
  'unavailable',
  'post',
  'preflight',
  'too_large',
  'forbidden_origin',
] as const;
export type Outcome = (typeof Outcomes)[number];

export class RequestCounters implements Record<Outcome, number> {
  tracked = 0;
  head = 0;
  duplicate = 0;
  malicious = 0;
  malformed = 0;
  unknown_flavor = 0;
  method = 0;
  not_found = 0;
  uri_too_long = 0;
  header_too_large = 0;
  bad_request = 0;
  timeout = 0;
  /** The handler threw (a bug): answered 500, logged. */
  internal_error = 0;
  /** Answered 503 (Retry-After): a backend could not hold the line, or the server was refusing (docs/buffering.md). */
  unavailable = 0;
  /** POST beacons accepted (their lines are also counted in `tracked`). */
  post = 0;
  /** CORS preflights (and other OPTIONS) answered 204. */
  preflight = 0;
  /** Bodies over http.maxBodyBytes (on the wire or decompressed), or batches over http.maxBatch: 413. */
  too_large = 0;
  /** A POST or preflight whose Origin the flavor does not allow: 403. */
  forbidden_origin = 0;
}

export class ConnectionCounters {
  open = 0;
  accepted = 0;
  /** Refused because http.maxConnections were open. */
  rejected = 0;
}

export interface RuntimeStats {
  /** The Node.js that runs scratchd, e.g. "v24.22.3". */
  node: string;
  rss: number;
  heap_used: number;
  heap_total: number;
  external: number;
  gc: { count: number; pause_total_ms: number; pause_max_ms: number };
  event_loop_delay_p99_ms: number;
  event_loop_delay_max_ms: number;
}

/**
 * GC pauses from PerformanceObserver and event-loop delay from
 * monitorEventLoopDelay. The delay histogram covers the last full window
 * (10 s) so that p99 tells about now, not about start-up.
 */
export class RuntimeMonitor {
  private gcCount = 0;
  private gcTotalMs = 0;
  private gcMaxMs = 0;
  private readonly observer: PerformanceObserver;
  private readonly delay: ReturnType<typeof monitorEventLoopDelay>;
  private readonly window: NodeJS.Timeout;
  private lastP99Ms = 0;
  private lastMaxMs = 0;

  constructor(windowMs = 10_000) {
    this.observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        this.gcCount++;
        this.gcTotalMs += entry.duration;
        if (entry.duration > this.gcMaxMs) this.gcMaxMs = entry.duration;
      }
    });
    this.observer.observe({ entryTypes: ['gc'] });
    this.delay = monitorEventLoopDelay({ resolution: 10 });
    this.delay.enable();
    this.window = setInterval(() => {
      this.lastP99Ms = this.delay.percentile(99) / 1e6;
      this.lastMaxMs = this.delay.max / 1e6;
      this.delay.reset();
    }, windowMs).unref();
  }

  stats(): RuntimeStats {
    const mem = memoryUsage();
    const current = this.delay.count > 0 ? this.delay.percentile(99) / 1e6 : 0;
    return {
      node: process.version,
      rss: mem.rss,
      heap_used: mem.heapUsed,
      heap_total: mem.heapTotal,
      external: mem.external,
      gc: { count: this.gcCount, pause_total_ms: round(this.gcTotalMs), pause_max_ms: round(this.gcMaxMs) },
      event_loop_delay_p99_ms: round(Math.max(this.lastP99Ms, current)),
      event_loop_delay_max_ms: round(Math.max(this.lastMaxMs, this.delay.count > 0 ? this.delay.max / 1e6 : 0)),
    };
  }

  stop(): void {
    this.observer.disconnect();
    this.delay.disable();
    clearInterval(this.window);
  }
}

/** process.memoryUsage(), or zeros where it cannot be read (no /proc, as in a bare chroot). */
function memoryUsage(): { rss: number; heapUsed: number; heapTotal: number; external: number } {
  try {
    return process.memoryUsage();
  } catch {
    const heap = getHeapStatistics();
    return { rss: 0, heapUsed: heap.used_heap_size, heapTotal: heap.total_heap_size, external: heap.external_memory };
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export interface BackendSnapshot {
  queued: number;
  written: number;
  errors: number;
  dropped: number;
  dropped_by_reason: Record<string, number>;
  [detail: string]: number | Record<string, number>;
}

/** What GET /stats answers (docs/operations.md, "Stats"); /metrics renders the same numbers. */
export interface StatsSnapshot {
  version: string;
  uptime_s: number;
  ready: boolean;
  requests: Record<Outcome, number>;
  flavors: Record<string, { tracked: number }>;
  connections: { open: number; accepted: number; rejected: number };
  /**
   * The event loops serving the public port (`workers`): requests each
   * answered (the main thread first; a POST once, whatever its lines), lines the HTTP threads forwarded and
   * in how many batches, forwarded lines no backend took after their 200
   * (each counted in its backends' dropped), pauses of a thread whose lines
   * in flight reached their bound, threads that died (stuck ones terminated
   * included), found stuck, and started in their place, and the lines a dead
   * thread had answered 200 and never handed over.
   */
  workers: {
    count: number;
    requests: number[];
    forwarded_lines: number;
    forwarded_batches: number;
    not_taken: number;
    in_flight_pauses: number;
    deaths: number;
    stalls: number;
    restarts: number;
    lost_lines: number;
  };
  /** The public server's reading (http/backpressure.ts): state now, pauses and refusals since start, time not open. */
  backpressure: { state: 'open' | 'paused' | 'refusing'; pauses: number; refusals: number; not_open_ms: number };
  backends: Record<string, BackendSnapshot>;
  checks: { enabled: boolean; store_keys: number; store_evicted: number };
  runtime: RuntimeStats;
  /** The Graphite pusher's own counters (graphite.ts), when `graphite` is configured. */
  graphite?: Record<string, number>;
}
