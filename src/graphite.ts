/**
 * Graphite: pushes the numbers of /stats and /metrics to Carbon in its
 * plaintext protocol ("<path> <value> <unix seconds>\n", one TCP connection;
 * Graphite's docs, "Feeding In Your Data"), every `graphite.intervalMs`.
 *
 * Why a push from the daemon and not a cron job that scrapes /stats: the
 * daemon knows its own numbers, needs no admin port reachable from a cron
 * host, and can push every 10 s (cron: every minute at best).
 *
 * Never in the way of a beacon (docs/architecture.md, "the HTTP path never
 * waits"): rendering is one snapshot per interval, writes are asynchronous,
 * and nothing is buffered beyond the socket's own queue, which is bounded
 * (MAX_PENDING_BYTES). A push that cannot be sent (Carbon down, or not
 * reading) is dropped and counted, not kept: every value is a running total or
 * a current level, so the next push carries everything a missed one would
 * have, and Graphite shows a gap, not a wrong number. The connection is
 * re-opened with a backoff doubling from `intervalMs` up to MAX_BACKOFF_MS.
 *
 * The pusher's own counters are pushed too, under `<prefix>.graphite.*`, and
 * failures are logged at most once a minute.
 */
import * as net from 'node:net';
import * as os from 'node:os';
import { logger } from './log';

const log = logger('graphite');

/** The `graphite` section of the config file (schema fragment; defaults beside their keys). */
export const graphiteSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['address'],
  description: 'Push the /metrics numbers to Graphite (Carbon plaintext protocol); omit to turn it off.',
  properties: {
    address: { type: 'string', minLength: 1, description: 'Carbon\'s plaintext receiver, "host:port" (Carbon\'s default port is 2003).' },
    prefix: {
      type: 'string',
      pattern: '^[A-Za-z0-9_{}-]+(\\.[A-Za-z0-9_{}-]+)*$',
      default: 'scratchd.{host}',
      description: 'Path prefix of every metric; {host} is this machine\'s short host name.',
    },
    intervalMs: { type: 'integer', minimum: 100, maximum: 3_600_000, default: 10_000, description: 'Push every this many ms (match the finest retention of Carbon\'s storage-schemas.conf).' },
  },
} as const;

export interface GraphiteConfig {
  readonly host: string;
  readonly port: number;
  /** With {host} resolved. */
  readonly prefix: string;
  readonly intervalMs: number;
}

/** The section as ajv hands it back (defaults filled in). */
export interface RawGraphiteConfig {
  address: string;
  prefix: string;
  intervalMs: number;
}

/** Validates and resolves the section; problems are "graphite.<key>: reason" (config/load.ts). */
export function resolveGraphite(raw: RawGraphiteConfig | undefined, problems: string[], hostname = os.hostname()): GraphiteConfig | null {
  if (raw === undefined) return null;
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(raw.address);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65535) problems.push(`graphite.address: ${JSON.stringify(raw.address)} is not "host:port"`);
  const unknown = raw.prefix.match(/\{[^}]*\}/g)?.filter((p) => p !== '{host}') ?? [];
  if (unknown.length > 0) problems.push(`graphite.prefix: unknown placeholder ${unknown[0]} (only {host})`);
  const shortHost = metricName(hostname.split('.')[0] || 'unknown');
  return { host: match?.[1] ?? match?.[2] ?? '', port, prefix: raw.prefix.replaceAll('{host}', shortHost), intervalMs: raw.intervalMs };
}

/** Bytes queued on the socket beyond which a push is dropped (Carbon not reading). */
export const MAX_PENDING_BYTES = 1024 * 1024;
export const MAX_BACKOFF_MS = 60_000;

export class GraphiteCounters {
  /** Pushes written to the socket, and their lines. */
  pushes = 0;
  lines = 0;
  /** Pushes not sent: no connection, or the socket's queue was full. */
  dropped_disconnected = 0;
  dropped_backlog = 0;
  /** Connections opened, attempts that failed, established ones that closed. */
  connects = 0;
  connect_failures = 0;
  disconnects = 0;
}

/** A nested object of numbers (a stats snapshot) as Graphite paths; strings are left out, booleans are 1/0. */
export function render(prefix: string, values: object, unixSeconds: number): string[] {
  const lines: string[] = [];
  const walk = (path: string, value: unknown): void => {
    if (typeof value === 'number') {
      if (Number.isFinite(value)) lines.push(`${path} ${value} ${unixSeconds}`);
    } else if (typeof value === 'boolean') {
      lines.push(`${path} ${value ? 1 : 0} ${unixSeconds}`);
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, child] of Object.entries(value)) walk(`${path}.${metricName(key)}`, child);
    }
  };
  walk(prefix, values);
  return lines;
}

/** One path component: Graphite splits on ".", and whitespace would end the line. */
function metricName(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, '_');
}

export class GraphitePusher {
  readonly counters = new GraphiteCounters();
  private socket: net.Socket | null = null;
  private connected = false;
  private failures = 0;
  private timer: NodeJS.Timeout | null = null;
  private retry: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly config: GraphiteConfig,
    /** What to push: called once per interval (Scratchd.snapshot). */
    private readonly source: () => object,
  ) {}

  start(): void {
    log.info(`pushing to ${this.config.host}:${this.config.port} every ${this.config.intervalMs} ms as ${this.config.prefix}.*`);
    this.connect();
    this.timer = setInterval(() => this.push(), this.config.intervalMs).unref();
  }

  /** Sends one last push if connected (the totals at exit), then closes. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    if (this.retry !== null) clearTimeout(this.retry);
    const socket = this.socket;
    if (socket === null) return;
    if (this.connected) this.push();
    await new Promise<void>((resolve) => {
      const deadline = setTimeout(() => socket.destroy(), 1_000).unref();
      socket.once('close', () => (clearTimeout(deadline), resolve()));
      socket.end();
    });
  }

  /** One push: rendered now, written if there is a connection with room, else counted as dropped. */
  push(): void {
    const socket = this.socket;
    if (socket === null || !this.connected) {
      this.counters.dropped_disconnected++;
      return;
    }
    if (socket.writableLength > MAX_PENDING_BYTES) {
      this.counters.dropped_backlog++;
      log.every('backlog', 60_000, `Carbon at ${this.config.host}:${this.config.port} is not reading: ${socket.writableLength} bytes queued, push dropped`);
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    // The snapshot carries these counters too (/stats): pushed below, once, with this push counted.
    const { graphite: _own, ...values } = this.source() as { graphite?: unknown };
    const lines = render(this.config.prefix, values, now);
    this.counters.pushes++;
    this.counters.lines += lines.length;
    // The pusher's own numbers last, so they include this push.
    lines.push(...render(`${this.config.prefix}.graphite`, this.counters, now));
    socket.write(`${lines.join('\n')}\n`);
  }

  private connect(): void {
    this.retry = null;
    if (this.stopped) return;
    const socket = net.connect({ host: this.config.host, port: this.config.port });
    this.socket = socket;
    socket.setNoDelay(true);
    // A host that drops SYNs would otherwise keep the attempt pending for minutes.
    socket.setTimeout(Math.max(this.config.intervalMs, 1_000), () => {
      if (!this.connected) socket.destroy(new Error('connect timed out'));
    });
    let lastError = '';
    socket.once('connect', () => {
      this.connected = true;
      this.counters.connects++;
      if (this.failures > 0) log.info(`connected to ${this.config.host}:${this.config.port} after ${this.failures} failed attempts`);
      this.failures = 0;
      socket.setTimeout(0);
    });
    // Carbon never answers on this protocol; read (and discard) so the socket can see the peer close.
    socket.on('data', () => {});
    socket.on('error', (err) => (lastError = err.message));
    socket.once('close', () => {
      const wasConnected = this.connected;
      this.connected = false;
      if (this.socket === socket) this.socket = null;
      if (this.stopped) return;
      if (wasConnected) this.counters.disconnects++;
      else this.counters.connect_failures++;
      this.failures = wasConnected ? 0 : this.failures + 1;
      const delay = Math.min(this.config.intervalMs * 2 ** Math.max(0, this.failures - 1), MAX_BACKOFF_MS);
      log.every(
        'down',
        60_000,
        `${wasConnected ? 'connection to' : 'cannot connect to'} ${this.config.host}:${this.config.port} ${wasConnected ? 'closed' : 'failed'}` +
          `${lastError === '' ? '' : ` (${lastError})`}; retrying in ${delay} ms`,
      );
      this.retry = setTimeout(() => this.connect(), delay).unref();
    });
  }
}
