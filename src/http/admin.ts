/**
 * The admin listener: its own address (loopback by default), never the
 * public port. node:http is fine here: it is not on the beacon path.
 *
 *   GET /stats    JSON StatsSnapshot (docs/operations.md, "Stats")
 *   GET /metrics  the same numbers in Prometheus text format (prom-client),
 *                 plus prom-client's default process_* and nodejs_* metrics
 *   GET /health   200 while the process serves (liveness)
 *   GET /ready    200 while accepting traffic; 503 while draining, or while beacons
 *                 are refused because a backend is stuck (for HAProxy)
 */
import * as http from 'node:http';
import * as client from 'prom-client';
import { logger } from '../log';
import type { StatsSnapshot } from '../telemetry';

const log = logger('admin');

export interface StatsSource {
  /** Called before /stats and /metrics render: brings what other threads count up to date (workers > 1). */
  refresh?(): Promise<void>;
  snapshot(): StatsSnapshot;
  ready(): boolean;
}

export class AdminServer {
  private readonly server: http.Server;
  private readonly registry: client.Registry;

  constructor(private readonly source: StatsSource) {
    this.registry = buildRegistry(source);
    this.server = http.createServer((req, res) => void this.route(req, res));
    this.server.keepAliveTimeout = 5_000;
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
  }

  listen(host: string, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port }, () => {
        this.server.off('error', reject);
        this.server.on('error', (err) => log.error(err.message));
        const a = this.server.address() as { address: string; port: number; family: string };
        resolve(a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed\n', { Allow: 'GET, HEAD' });
    const path = (req.url ?? '/').split('?', 1)[0];
    switch (path) {
      case '/stats':
        await this.source.refresh?.();
        return send(res, 200, 'application/json', `${JSON.stringify(this.source.snapshot(), null, 2)}\n`);
      case '/metrics':
        try {
          await this.source.refresh?.();
          return send(res, 200, this.registry.contentType, await this.registry.metrics());
        } catch (err) {
          log.error(`metrics: ${(err as Error).message}`);
          return send(res, 500, 'text/plain', 'metrics failed\n');
        }
      case '/health':
        return send(res, 200, 'text/plain', 'ok\n');
      case '/ready':
        return this.source.ready() ? send(res, 200, 'text/plain', 'ready\n') : send(res, 503, 'text/plain', 'not ready\n');
      default:
        return send(res, 404, 'text/plain', 'not found\n');
    }
  }
}

function send(res: http.ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** One registry per server; each metric reads the snapshot taken for the scrape. */
function buildRegistry(source: StatsSource): client.Registry {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  let snap: StatsSnapshot = source.snapshot();
  const fresh = () => (snap = source.snapshot());

  const counter = (name: string, help: string, labelNames: string[], read: (s: StatsSnapshot) => [Record<string, string>, number][]) =>
    new client.Counter({
      name, help, labelNames, registers: [registry],
      collect() {
        this.reset();
        for (const [labels, value] of read(snap)) this.inc(labels, value);
      },
    });
  const gauge = (name: string, help: string, labelNames: string[], read: (s: StatsSnapshot) => [Record<string, string>, number][]) =>
    new client.Gauge({
      name, help, labelNames, registers: [registry],
      collect() {
        this.reset();
        for (const [labels, value] of read(snap)) this.set(labels, value);
      },
    });

  // Registered first, so every metric below reads the same fresh snapshot.
  new client.Gauge({ name: 'scratchd_ready', help: '1 while accepting traffic, 0 while draining', registers: [registry], collect() { fresh(); this.set(snap.ready ? 1 : 0); } });
  counter('scratchd_requests_total', 'Requests on the public port by outcome', ['outcome'], (s) => Object.entries(s.requests).map(([outcome, n]) => [{ outcome }, n]));
  counter('scratchd_tracked_total', 'Beacons persisted, by flavor', ['flavor'], (s) => Object.entries(s.flavors).map(([flavor, f]) => [{ flavor }, f.tracked]));
  gauge('scratchd_connections_open', 'Open connections on the public port', [], (s) => [[{}, s.connections.open]]);
  counter('scratchd_connections_total', 'Connections on the public port, accepted or rejected (http.maxConnections)', ['event'], (s) => [
    [{ event: 'accepted' }, s.connections.accepted],
    [{ event: 'rejected' }, s.connections.rejected],
  ]);
  gauge('scratchd_backpressure_state', 'Public server reading: 0 open, 1 paused (backends above the high mark), 2 refusing (beacons answered 503)', [], (s) => [[{}, ['open', 'paused', 'refusing'].indexOf(s.backpressure.state)]]);
  counter('scratchd_backpressure_pauses_total', 'Times the public server stopped reading because backends held too much', [], (s) => [[{}, s.backpressure.pauses]]);
  counter('scratchd_backpressure_refusals_total', 'Times a pause outlasted http.blockTimeoutMs and beacons were answered 503', [], (s) => [[{}, s.backpressure.refusals]]);
  counter('scratchd_backpressure_seconds_total', 'Time the public server spent not reading (paused) or refusing', [], (s) => [[{}, s.backpressure.not_open_ms / 1000]]);
  const backends = Object.entries(snap.backends);
  gauge('scratchd_backend_queued', 'Lines held in memory by a backend, not yet written', ['backend'], (s) => Object.entries(s.backends).map(([backend, b]) => [{ backend }, b.queued]));
  counter('scratchd_backend_written_total', 'Lines written (file) or acknowledged (Kafka)', ['backend'], (s) => Object.entries(s.backends).map(([backend, b]) => [{ backend }, b.written]));
  counter('scratchd_backend_errors_total', 'Failed I/O attempts (each retried)', ['backend'], (s) => Object.entries(s.backends).map(([backend, b]) => [{ backend }, b.errors]));
  counter('scratchd_backend_dropped_total', 'Lines lost, by reason', ['backend', 'reason'], (s) =>
    Object.entries(s.backends).flatMap(([backend, b]) => Object.entries(b.dropped_by_reason).map(([reason, n]): [Record<string, string>, number] => [{ backend, reason }, n])),
  );
  const detailKeys = new Set(backends.flatMap(([, b]) => Object.keys(b).filter((k) => !['queued', 'written', 'errors', 'dropped', 'dropped_by_reason'].includes(k))));
  for (const key of detailKeys) {
    gauge(`scratchd_backend_${key}`, `Backend detail "${key}" (see docs/operations.md, Stats)`, ['backend'], (s) =>
      Object.entries(s.backends).filter(([, b]) => typeof b[key] === 'number').map(([backend, b]) => [{ backend }, b[key] as number]),
    );
  }
  counter('scratchd_worker_requests_total', 'Requests on the public port by the event loop that answered them (worker 0: the main thread)', ['worker'], (s) =>
    s.workers.requests.map((n, worker): [Record<string, string>, number] => [{ worker: String(worker) }, n]),
  );
  counter('scratchd_workers_forwarded_lines_total', 'Lines the HTTP threads forwarded to the main thread (workers > 1)', [], (s) => [[{}, s.workers.forwarded_lines]]);
  counter('scratchd_workers_not_taken_total', 'Forwarded lines no backend took after their 200 (each also in scratchd_backend_dropped_total)', [], (s) => [[{}, s.workers.not_taken]]);
  counter('scratchd_workers_deaths_total', 'HTTP threads that died, stuck ones terminated included (each is replaced by a new thread)', [], (s) => [[{}, s.workers.deaths]]);
  counter('scratchd_workers_stalls_total', 'HTTP threads found stuck by the watchdog (no heartbeat for http.threadStallMs)', [], (s) => [[{}, s.workers.stalls]]);
  counter('scratchd_workers_restarts_total', 'HTTP threads started in place of dead ones', [], (s) => [[{}, s.workers.restarts]]);
  counter('scratchd_workers_lost_lines_total', 'Lines a dead HTTP thread had answered 200 and never handed to the main thread', [], (s) => [[{}, s.workers.lost_lines]]);
  gauge('scratchd_checks_store_keys', 'Entries in the sanity checks\' TTL store', [], (s) => [[{}, s.checks.store_keys]]);
  counter('scratchd_checks_store_evicted_total', 'Entries evicted from the TTL store because it was full', [], (s) => [[{}, s.checks.store_evicted]]);
  counter('scratchd_graphite_total', 'The Graphite pusher (when configured): pushes and lines sent, pushes dropped, connections', ['event'], (s) =>
    Object.entries(s.graphite ?? {}).map(([event, n]) => [{ event }, n]),
  );
  gauge('scratchd_gc_pauses', 'GC pauses since start', [], (s) => [[{}, s.runtime.gc.count]]);
  gauge('scratchd_gc_pause_max_seconds', 'Longest GC pause since start', [], (s) => [[{}, s.runtime.gc.pause_max_ms / 1000]]);
  gauge('scratchd_gc_pause_total_seconds', 'Total GC pause time since start', [], (s) => [[{}, s.runtime.gc.pause_total_ms / 1000]]);
  gauge('scratchd_event_loop_delay_p99_seconds', 'Event-loop delay, 99th percentile over the last 10 s', [], (s) => [[{}, s.runtime.event_loop_delay_p99_ms / 1000]]);
  return registry;
}
