/**
 * One running scratchd: wires config into flavors, backends, checks, the
 * public server and the admin server; owns the stop order.
 *
 * Backends come from the registry (backends/registry.ts): this file names none.
 *
 * Start: every backend's start() (e.g. Kafka's spool lock) → admin listener →
 * public listener (then the HTTP threads' ones, workers > 1) → ready.
 *
 * workers > 1 (workers/http-threads.ts): this thread is the owner — backends,
 * checks, admin, signals, Graphite — and serves HTTP as one of the workers;
 * the HTTP threads forward their lines here. /stats adds up every thread.
 * Stop (docs/architecture.md, "Stopping"), idempotent: not ready → stop
 * accepting and finish in-flight requests (deadline: shutdown.drainTimeoutMs)
 * → close every backend: flush, fsync / spool (a second deadline of the same
 * length) → close the admin listener.
 */
import { blockingRefusal, type Backend } from './backends/backend';
import { findBackend } from './backends/registry';
import { SanityChecks } from './checks';
import { ScratchError } from './errors';
import type { Config } from './config/types';
import { FlavorTable } from './flavor';
import { GraphitePusher } from './graphite';
import { AdminServer, type StatsSource } from './http/admin';
import { assertPortFree, PublicServer } from './http/server';
import { Pressure, pressureNames } from './http/backpressure';
import { PostDoor } from './http/post';
import { TrackHandler } from './http/track';
import { logger } from './log';
import { takeListenFd } from './systemd';
import { ConnectionCounters, Outcomes, RequestCounters, RuntimeMonitor, type BackendSnapshot, type StatsSnapshot } from './telemetry';
import { VERSION } from './version';
import { HttpThreads } from './workers/http-threads';
import { SharedConnectionLimit } from './workers/protocol';

const log = logger('scratchd');

export interface Addresses {
  listen: string;
  admin: string | null;
}

export class Scratchd implements StatsSource {
  readonly flavors: FlavorTable;
  readonly backends: Backend[] = [];
  readonly requests = new RequestCounters();
  readonly connections = new ConnectionCounters();
  private readonly checks: SanityChecks;
  private readonly handler: TrackHandler;
  private readonly runtime = new RuntimeMonitor();
  private readonly publicServer: PublicServer;
  private readonly admin: AdminServer | null;
  private readonly graphite: GraphitePusher | null;
  /** The HTTP threads (workers > 1 on an address; null: this thread serves alone). */
  private readonly threads: HttpThreads | null = null;
  private readonly startedAt = Date.now();
  private accepting = false;
  private stopping: Promise<void> | null = null;

  constructor(readonly config: Config) {
    this.flavors = new FlavorTable(config.flavors, config.http.path);
    // A previous scratchd still draining may hold a backend's resources for up to its two drain phases.
    const context = { flavors: this.flavors.all, startWaitMs: 2 * config.shutdown.drainTimeoutMs + 1_000 };
    for (const { name, config: section } of config.backends) {
      const descriptor = findBackend(name);
      if (descriptor === undefined) throw new ScratchError('CONFIG_INVALID', `${config.source}: no backend named ${JSON.stringify(name)}`);
      this.backends.push(descriptor.create(section, context));
    }
    this.checks = new SanityChecks(config.checks);
    const handler = new TrackHandler(this.flavors, this.backends, this.checks, this.requests);
    this.handler = handler;
    if (config.workers > 1) {
      this.threads = new HttpThreads(config, handler, this.backends, () => {
        const pressure = this.publicServer.pressure;
        if (pressure.active && pressure.state === Pressure.open && pressure.over()) pressure.engage();
      });
    }
    const threads = this.threads;
    const sharing = threads === null ? undefined : { connections: new SharedConnectionLimit(threads.shared, config.http.maxConnections) };
    this.publicServer = new PublicServer(config.http, handler, this.requests, this.connections, this.backends, this.flavors.paths, sharing);
    this.publicServer.acceptBodies((end) => new PostDoor(config.http, this.flavors, handler, this.requests, end));
    if (threads !== null) {
      this.publicServer.pressure.countInFlight(threads.linesInFlight);
      this.publicServer.pressure.onChange((state) => threads.publish(state));
    }
    // Before the admin server: its /metrics registry is built from a first snapshot, which shows the pusher's counters.
    this.graphite = config.graphite === null ? null : new GraphitePusher(config.graphite, () => this.snapshot());
    this.admin = config.admin === null ? null : new AdminServer(this);
  }

  async start(): Promise<Addresses> {
    const fd = this.config.listen.kind === 'systemd' ? takeListenFd() : undefined;
    await Promise.all(this.backends.map((b) => b.start()));
    const admin = this.admin === null || this.config.admin === null ? null : await this.admin.listen(this.config.admin.host, this.config.admin.port);
    if (admin !== null) logger('admin').info(`listening on ${admin}`);
    const reusePort = this.threads !== null && fd === undefined;
    if (reusePort && this.config.listen.kind === 'address' && this.config.listen.port !== 0) await assertPortFree(this.config.listen.host, this.config.listen.port);
    const listen = await this.publicServer.listen(this.config.listen, fd, reusePort);
    logger('http').info(`listening on ${listen}${fd === undefined ? '' : ' (systemd socket)'}`);
    // Ready as soon as this thread serves; the HTTP threads join it.
    this.accepting = true;
    if (this.threads !== null && fd !== undefined) {
      await this.threads.listenOnSocketOf(this.publicServer.server);
    } else if (this.threads !== null) {
      // Port 0 (tests): the threads bind the port the kernel chose for this thread.
      const bound = this.publicServer.server.address() as { address: string; port: number };
      await this.threads.listen(bound.address, bound.port);
    }
    if (this.threads !== null) logger('http').info(`${this.threads.count + 1} workers serving`);
    this.graphite?.start();
    log.info(
      `serving ${this.flavors.all.map((f) => f.name).join(', ')}; backends: ${this.backends.map((b) => b.name).join(', ') || 'none'}`,
    );
    return { listen, admin };
  }

  /** SIGHUP: re-open log files (after logrotate or an external mover). */
  reopen(): void {
    log.info('SIGHUP: reopening files');
    for (const backend of this.backends) backend.reopen();
  }

  stop(): Promise<void> {
    this.stopping ??= this.runStop();
    return this.stopping;
  }

  /**
   * Not while stopping, nor while the server refuses beacons because a backend
   * is stuck, nor while a 'block' backend refuses lines (docs/buffering.md),
   * nor while an HTTP thread is stuck or dead and not yet replaced (its share
   * of connections is not served meanwhile). With HTTP threads, the refusal
   * flag they read is brought up to date first, so that a 200 here is never
   * followed by a thread's 503 that only waited for the flag's next check.
   */
  ready(): boolean {
    this.threads?.checkRefusals();
    return this.accepting && this.publicServer.pressure.ready && !blockingRefusal(this.backends) && (this.threads?.allServing ?? true);
  }

  /** Before a /stats or /metrics read: the HTTP threads' lines pushed and their counters fresh. */
  refresh(): Promise<void> {
    return this.threads === null ? Promise.resolve() : this.threads.report();
  }

  snapshot(): StatsSnapshot {
    const backends: Record<string, BackendSnapshot> = {};
    for (const backend of this.backends) {
      const c = backend.counters;
      backends[backend.name] = {
        queued: c.queued,
        written: c.written,
        errors: c.errors,
        dropped: c.droppedTotal,
        dropped_by_reason: { ...c.dropped },
        refusing: backend.refusing() ? 1 : 0,
        ...backend.details(),
      };
    }
    const flavors: Record<string, { tracked: number }> = {};
    for (const flavor of this.flavors.all) flavors[flavor.name] = { tracked: flavor.tracked };
    const requests = { ...this.requests };
    // Requests this loop answered: a POST body's lines each count an outcome beside the request's `post`.
    let ownRequests = -this.handler.postLineOutcomes;
    for (const outcome of Outcomes) ownRequests += this.requests[outcome];
    const connections = { open: this.connections.open, accepted: this.connections.accepted, rejected: this.connections.rejected };
    const threads = this.threads;
    if (threads !== null) {
      for (const outcome of Outcomes) {
        // A forwarded line's fate is decided here (TrackHandler.takeForwarded).
        requests[outcome] += outcome === 'tracked' || outcome === 'duplicate' || outcome === 'malicious' ? threads.outcomes[outcome] : threads.total(outcome);
      }
      connections.open += threads.total('connections_open');
      connections.accepted += threads.total('connections_accepted');
      connections.rejected += threads.total('connections_rejected');
    }
    return {
      version: VERSION,
      uptime_s: Math.round((Date.now() - this.startedAt) / 100) / 10,
      ready: this.ready(),
      requests,
      flavors,
      connections,
      workers: {
        count: threads === null ? 1 : threads.count + 1,
        requests: [ownRequests, ...(threads?.requestsPerThread() ?? [])],
        forwarded_lines: threads?.total('lines') ?? 0,
        forwarded_batches: threads?.total('batches') ?? 0,
        not_taken: threads?.notTaken ?? 0,
        in_flight_pauses: threads?.total('in_flight_pauses') ?? 0,
        deaths: threads?.deaths ?? 0,
        stalls: threads?.stalls ?? 0,
        restarts: threads?.restarts ?? 0,
        lost_lines: threads?.lostLines ?? 0,
      },
      backpressure: {
        state: pressureNames[this.publicServer.pressure.state],
        pauses: this.publicServer.pressure.pauses,
        refusals: this.publicServer.pressure.refusals,
        not_open_ms: this.publicServer.pressure.notOpenMs,
      },
      backends,
      checks: { enabled: this.checks.enabled, store_keys: this.checks.store.size, store_evicted: this.checks.store.evicted },
      runtime: this.runtime.stats(),
      ...(this.graphite === null ? {} : { graphite: { ...this.graphite.counters } }),
    };
  }

  private async runStop(): Promise<void> {
    const { drainTimeoutMs, idleCloseGraceMs } = this.config.shutdown;
    this.accepting = false;
    log.info('stopping: finishing requests');
    const deadline = Date.now() + drainTimeoutMs;
    // Every event loop drains at once, under one deadline; the threads' last lines arrive before their 'drained'.
    await Promise.all([this.publicServer.drain(deadline, idleCloseGraceMs), this.threads?.drain(deadline, idleCloseGraceMs)]);
    log.info('stopping: flushing backends');
    await Promise.all(this.backends.map((b) => b.close(Date.now() + drainTimeoutMs)));
    for (const backend of this.backends) {
      const c = backend.counters;
      log.info(`${backend.name}: ${c.written} lines written, ${c.droppedTotal} dropped, ${c.errors} errors`);
    }
    // After the backends: the last push carries the final totals.
    await this.graphite?.stop();
    this.runtime.stop();
    await this.admin?.close();
    log.info('stopped');
  }
}
