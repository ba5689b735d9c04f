/**
 * The public beacon listener: a small HTTP/1.1 server on node:net.
 *
 * Why not node:http: its per-request objects (IncomingMessage,
 * ServerResponse, header arrays) cost more than all of scratchd's own work;
 * a beacon needs a fraction of HTTP: a GET/HEAD head in, a prebuilt answer
 * out. What is supported: keep-alive and pipelining (answers in order),
 * HTTP/1.0 and 1.1, absolute-form targets. Heads are read incrementally and
 * strictly (request-head.ts; the rules in docs/http.md); a head that fails
 * is answered 400/414/431/501/505 and the connection closed. POST and
 * OPTIONS go to the BodyHandler (post.ts: bodies, CORS), which reads the
 * body from the following bytes; other requests with a body are answered
 * and the connection closed (a GET beacon has none, and we never read one).
 *
 * Limits, each answered and counted: request line > http.maxRequestLineBytes
 * → 414; head > http.maxHeaderBytes → 431; head not complete within
 * http.headersTimeoutMs → 408; idle keep-alive > http.keepAliveTimeoutMs →
 * closed; more than http.maxConnections → refused at accept; a client that
 * does not read its answers stops being read (backpressure).
 *
 * Backends that hold too much stop all reading (backpressure.ts): every
 * socket is paused, the rest of a chunk already read waits in `pending`,
 * new connections are accepted but not read; while refusing, beacons are
 * answered 503 (Retry-After) without reaching the handler.
 *
 * drain(): accept what is already in the backlog, stop accepting, answer
 * what is in flight (the last request received on a connection with
 * "Connection: close"), give idle keep-alive connections `idleCloseGraceMs`
 * to send one last request, then close them; resolve when all are closed or
 * at the deadline (remaining ones are destroyed).
 */
import * as net from 'node:net';
import type { HttpConfig, ListenConfig } from '../config/types';
import type { ConnectionCounters, RequestCounters } from '../telemetry';
import { logger } from '../log';
import { Backpressure, Pressure, type HeldSource, type PressureGate } from './backpressure';
import type { BodyConnection, PendingBody, PostDoor } from './post';
import { FAILED, HeadError, HeadParser, Method, NEED_MORE } from './request-head';
import { Answer, Persistence, ResponseTable } from './responses';

const log = logger('http');
const SWEEP_MS = 1000;
const MAX_UNSENT_BYTES = 64 * 1024;
const ACCEPT_QUIET_MS = 30;
const ACCEPT_BACKLOG_MAX_MS = 1000;

/** What the server asks of the beacon logic (http/track.ts). */
export interface BeaconHandler {
  /**
   * A GET/HEAD on a beacon path; returns the answer to send. `path` is given
   * only when flavors have different paths (the handler checks the flavor's).
   */
  track(isHead: boolean, query: string, host: string | undefined, client: ClientAddress, path?: string): Answer;
}

/** POST and OPTIONS (post.ts); without one, they are answered 405 like any other method. */
export type BodyHandler = Pick<PostDoor, 'begin' | 'feed' | 'sweep'>;

/** The client's address, computed only when a check needs it. */
export interface ClientAddress {
  address(): string;
}

class Connection implements BodyConnection {
  /** The head being read: its parser keeps its place between chunks. */
  readonly parser: HeadParser;
  /** When the first byte of the head being received arrived (0: none pending). */
  headStartedAt = 0;
  lastActivityAt: number;
  /** No more requests are read; the socket ends after the answers are sent. */
  ending = false;
  forwardedFor: string | undefined = undefined;
  /** A POST whose body is being read (post.ts). */
  body: PendingBody | null = null;
  /** Bytes read but not parsed because reading stopped (backpressure), parsed first on resume. */
  pending: Buffer | null = null;
  /** In PublicServer.waiting (its pending bytes are served in turn). */
  waiting = false;
  private remote: string | undefined;

  constructor(
    readonly socket: net.Socket,
    now: number,
    config: HttpConfig,
  ) {
    this.lastActivityAt = now;
    this.parser = new HeadParser(config.maxRequestLineBytes, config.maxHeaderBytes, config.trustForwardedFor);
  }

  /**
   * The last X-Forwarded-For entry (the one our proxy added), else the peer.
   * An empty last entry (`X-Forwarded-For: 1.2.3.4,`) falls back to the peer
   * address too: clients must not all share the address ''.
   */
  address(): string {
    if (this.forwardedFor !== undefined) {
      const comma = this.forwardedFor.lastIndexOf(',');
      const last = this.forwardedFor.slice(comma + 1).trim();
      if (last !== '') return last;
    }
    return (this.remote ??= this.socket.remoteAddress ?? '');
  }
}

/**
 * http.maxConnections over every event loop (workers > 1; workers/): a count
 * in shared memory instead of net.Server's own, which only sees its loop.
 */
export interface ConnectionLimit {
  /** Counts a new connection; false (not counted) when http.maxConnections are open. */
  open(): boolean;
  close(): void;
}

/** What an event loop shares with the others when workers > 1. */
export interface Sharing<P extends PressureGate> {
  readonly connections: ConnectionLimit;
  /** An HTTP thread's (workers/shared-pressure.ts): the owner's state, read from shared memory. */
  readonly makePressure?: (changed: (state: Pressure) => void) => P;
}

export class PublicServer<P extends PressureGate = Backpressure> {
  readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private readonly responses = new ResponseTable();
  /** While draining: looks ahead for another complete head in a chunk (so only the last answer says "close"). */
  private readonly lookahead: HeadParser;
  private readonly sweeper: NodeJS.Timeout;
  private readonly beaconPath: string;
  /** All beacon paths, when flavors do not all have exactly http.path (null: only beaconPath). */
  private readonly beaconPaths: ReadonlySet<string> | null;
  private bodies: BodyHandler | null = null;
  private readonly limit: ConnectionLimit | null;
  private draining = false;
  /** The listening socket came from systemd, which keeps it open after we close ours. */
  private sharedListener = false;
  private drainStartedAt = 0;
  readonly pressure: P;
  private readonly watchPressure: boolean;
  /** Connections with pending bytes, in the order they stopped: served first come, first served on resume. */
  private waiting: Connection[] = [];
  private waitingHead = 0;

  constructor(
    private readonly config: HttpConfig,
    private readonly handler: BeaconHandler,
    private readonly requests: RequestCounters,
    private readonly connectionCounters: ConnectionCounters,
    /** The backends, for backpressure (their `held` and `whenFull`). */
    backends: readonly HeldSource[] = [],
    paths?: ReadonlySet<string>,
    sharing?: Sharing<P>,
  ) {
    const changed = (state: Pressure) => this.pressureChanged(state);
    const makePressure = sharing?.makePressure;
    this.pressure = makePressure === undefined ? (new Backpressure(backends, config, changed) as PressureGate as P) : makePressure(changed);
    this.limit = sharing?.connections ?? null;
    this.watchPressure = this.pressure.active;
    this.beaconPath = config.path;
    this.beaconPaths = paths === undefined || (paths.size === 1 && paths.has(config.path)) ? null : paths;
    this.lookahead = new HeadParser(config.maxRequestLineBytes, config.maxHeaderBytes, false);
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    if (this.limit === null) this.server.maxConnections = config.maxConnections;
    this.server.on('drop', () => this.refused());
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS).unref();
  }

  /**
   * Listens on an address, or on the socket systemd passed (fd). Resolves with
   * a printable address. `reusePort` (workers > 1): every event loop binds the
   * same address and the kernel spreads connections among them (SO_REUSEPORT).
   */
  listen(listen: ListenConfig, systemdFd?: number, reusePort = false): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const done = () => {
        this.server.off('error', reject);
        this.server.on('error', (err) => log.error(`listener: ${err.message}`));
        const address = this.server.address();
        resolve(typeof address === 'object' && address !== null ? formatAddress(address) : `fd ${systemdFd ?? '?'}`);
      };
      this.sharedListener = listen.kind === 'systemd';
      if (listen.kind === 'systemd') this.server.listen({ fd: systemdFd ?? 3 }, done);
      else this.server.listen({ host: listen.host, port: listen.port, backlog: 4096, reusePort }, done);
    });
  }

  /** Serve POST and OPTIONS with `bodies` (post.ts), which writes its answers and ends connections through `end`. */
  acceptBodies(make: (end: (connection: BodyConnection) => void) => BodyHandler): void {
    this.bodies = make((connection) => this.end(connection as Connection));
  }

  /** Reading stopped by backpressure (a getter: the state changes under calls). */
  private get paused(): boolean {
    return this.pressure.state === Pressure.paused;
  }

  get openConnections(): number {
    return this.connections.size;
  }

  /** See the module comment. */
  async drain(deadline: number, idleGraceMs: number): Promise<void> {
    this.draining = true;
    this.drainStartedAt = Date.now();
    this.pressure.refuse(); // requests held back are answered (503) rather than cut at the deadline
    if (!this.sharedListener) await this.acceptBacklog(deadline);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (idleGraceMs === 0) this.closeIdle();
    while (this.connections.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(20, Math.max(1, idleGraceMs))));
      if (Date.now() - this.drainStartedAt >= idleGraceMs) this.closeIdle();
    }
    for (const connection of this.connections) connection.socket.destroy();
    clearInterval(this.sweeper);
    this.responses.stop();
    await closed;
  }

  /**
   * Closing a listener resets the connections still in its kernel backlog:
   * clients that connected before the signal would see errors. So keep
   * accepting (and answering with "Connection: close") until no connection
   * has arrived for ACCEPT_QUIET_MS. Not needed for a systemd socket: systemd
   * keeps it open, and the backlog waits for the next process.
   */
  private async acceptBacklog(deadline: number): Promise<void> {
    const stopBy = Math.min(deadline, Date.now() + ACCEPT_BACKLOG_MAX_MS);
    let seen = -1;
    while (seen !== this.connectionCounters.accepted && Date.now() < stopBy) {
      seen = this.connectionCounters.accepted;
      await new Promise((r) => setTimeout(r, ACCEPT_QUIET_MS));
    }
  }

  private refused(): void {
    this.connectionCounters.rejected++;
    log.every('drop', 10_000, `refused a connection: http.maxConnections (${this.config.maxConnections}) are open`);
  }

  private accept(socket: net.Socket): void {
    const limit = this.limit;
    if (limit !== null && !limit.open()) {
      socket.destroy(); // as net.Server does with its own maxConnections
      this.refused();
      return;
    }
    const connection = new Connection(socket, Date.now(), this.config);
    this.connections.add(connection);
    this.connectionCounters.accepted++;
    this.connectionCounters.open++;
    socket.on('data', (chunk: Buffer) => this.onData(connection, chunk));
    socket.on('drain', () => {
      // Bytes waiting for pressureChanged's replay: reading resumes there.
      if (this.pressure.state !== Pressure.paused && connection.pending === null) socket.resume();
    });
    if (this.pressure.state === Pressure.paused) socket.pause();
    socket.on('error', () => undefined); // resets are normal; 'close' follows
    socket.on('close', () => {
      connection.pending = null; // nobody to answer: not pushed (the client retries it)
      this.connections.delete(connection);
      this.connectionCounters.open--;
      limit?.close();
    });
  }

  private onData(connection: Connection, chunk: Buffer): void {
    if (connection.ending) return;
    // Paused: read before the pause took effect, kept in order for the resume.
    // Bytes already waiting: this chunk goes behind them, even if the state
    // reads open again. (An HTTP thread reads the owner's state from shared
    // memory, so it can see "open" before pressureChanged has replayed what
    // waits; parsing this chunk first would cut the request stream.)
    if (this.pressure.state === Pressure.paused || connection.pending !== null) {
      this.stash(connection, connection.pending === null ? chunk : Buffer.concat([connection.pending, chunk]));
      connection.socket.pause();
      return;
    }
    const now = Date.now();
    connection.lastActivityAt = now;
    const parser = connection.parser;
    let start = 0;
    while (start < chunk.length && !connection.ending) {
      if (connection.body !== null) {
        start = this.bodies!.feed(connection, chunk, start);
        if (start < 0) break;
        continue;
      }
      const end = parser.execute(chunk, start, chunk.length);
      if (end === NEED_MORE) {
        // Empty lines between requests (a trailing CRLF) are not a head under way.
        if (parser.started && connection.headStartedAt === 0) connection.headStartedAt = now;
        break;
      }
      connection.headStartedAt = 0;
      if (end === FAILED) {
        this.failHead(connection, parser.error);
        break;
      }
      // While draining, answer every request already received; only the
      // last complete one carries "Connection: close".
      const last = !this.draining || !this.completeHeadAt(chunk, end);
      this.handleHead(connection, last);
      parser.reset();
      start = end;
      // One check per request: above the high mark, reading stops here (not
      // while draining: what is in flight is answered, 503 if it cannot be held).
      if (this.watchPressure && !this.draining && this.pressure.state === Pressure.open && this.pressure.over()) this.pressure.engage();
      if (this.paused) {
        if (start < chunk.length && !connection.ending) this.stash(connection, chunk.subarray(start));
        return;
      }
    }
    if (!connection.ending && connection.socket.writableLength > MAX_UNSENT_BYTES) connection.socket.pause();
  }

  /**
   * Whether another head, complete or failed (it will be answered too), follows
   * at buf[from] (draining only: those bytes are read twice).
   */
  private completeHeadAt(buf: Buffer, from: number): boolean {
    this.lookahead.reset();
    return this.lookahead.execute(buf, from, buf.length) !== NEED_MORE;
  }

  private failHead(connection: Connection, error: HeadError): void {
    switch (error) {
      case HeadError.uriTooLong:
        return this.fail(connection, Answer.uriTooLong, 'uri_too_long');
      case HeadError.headerTooLarge:
        return this.fail(connection, Answer.headerTooLarge, 'header_too_large');
      case HeadError.notImplemented:
        return this.fail(connection, Answer.notImplemented, 'bad_request');
      case HeadError.versionNotSupported:
        return this.fail(connection, Answer.versionNotSupported, 'bad_request');
      default:
        return this.fail(connection, Answer.badRequest, 'bad_request');
    }
  }

  private handleHead(connection: Connection, last: boolean): void {
    const head = connection.parser;
    if (head.method > Method.other && this.bodies !== null) {
      connection.forwardedFor = head.forwardedFor;
      this.bodies.begin(connection, head, head.wantsClose || this.draining, this.pressure.state === Pressure.refusing);
      return;
    }
    const close = head.wantsClose || head.hasBody || (this.draining && last);
    const persistence = close ? Persistence.close : head.http10 ? Persistence.keepAlive10 : Persistence.keepAlive;
    let answer: Answer;
    if (head.method === Method.other) {
      this.requests.method++;
      answer = Answer.method;
    } else if (this.beaconPaths === null ? !this.isBeaconPath(head.target) : !this.beaconPaths.has(pathOf(head.target))) {
      this.requests.not_found++;
      answer = Answer.notFound;
    } else if (this.pressure.state === Pressure.refusing) {
      this.requests.unavailable++;
      answer = Answer.unavailable;
    } else {
      const q = head.target.indexOf('?');
      connection.forwardedFor = head.forwardedFor;
      try {
        const path = this.beaconPaths === null ? undefined : pathOf(head.target);
        answer = this.handler.track(head.method === Method.head, q === -1 ? '' : head.target.slice(q + 1), head.host, connection, path);
      } catch (err) {
        // A bug, not the client's fault: answer 500, count it, keep serving.
        log.every('internal', 10_000, `internal error: ${(err as Error).stack ?? String(err)}`);
        this.fail(connection, Answer.internalError, 'internal_error');
        return;
      }
    }
    connection.socket.write(this.responses.get(answer, persistence));
    if (close) this.end(connection);
  }

  /** "/track" or "/track?…" — compared without making a string of the path. */
  private isBeaconPath(target: string): boolean {
    const path = this.beaconPath;
    return target.startsWith(path) && (target.length === path.length || target.charCodeAt(path.length) === 63 /* ? */);
  }

  /** An answer to a head that could not be used: the connection closes (its framing cannot be trusted). */
  private fail(connection: Connection, answer: Answer, outcome: 'header_too_large' | 'uri_too_long' | 'bad_request' | 'timeout' | 'internal_error'): void {
    this.requests[outcome]++;
    connection.socket.write(this.responses.get(answer, Persistence.close));
    this.end(connection);
  }

  private end(connection: Connection): void {
    connection.ending = true;
    connection.socket.end();
    // A peer that never reads would hold the socket open: destroy after a while.
    setTimeout(() => connection.socket.destroy(), this.config.keepAliveTimeoutMs).unref();
  }

  private closeIdle(): void {
    for (const connection of this.connections) {
      if (!connection.ending && !connection.parser.started && connection.body === null && connection.socket.writableLength === 0) this.end(connection);
    }
  }

  /** Reading stops (paused) or starts again (open, refusing): see backpressure.ts. */
  private pressureChanged(state: Pressure): void {
    if (state === Pressure.paused) {
      for (const connection of this.connections) connection.socket.pause();
      log.every('paused', 10_000, 'backends hold more than http.backpressureHighPercent: reading paused');
      return;
    }
    if (state === Pressure.refusing) {
      log.every('refusing', 10_000, `reading paused for http.blockTimeoutMs (${this.config.blockTimeoutMs} ms): answering beacons 503 until the backends catch up`);
    }
    // Bytes already read first, oldest waiter first (a connection that
    // fills the backends again goes to the back of the line).
    while (this.waitingHead < this.waiting.length && !this.paused) {
      const connection = this.waiting[this.waitingHead++]!;
      connection.waiting = false;
      const pending = connection.pending;
      connection.pending = null;
      if (pending !== null) this.onData(connection, pending);
    }
    if (this.waitingHead === this.waiting.length || this.waitingHead > this.waiting.length / 2) {
      // Served ones leave the array (amortized O(1): each is moved at most once per half).
      this.waiting = this.waiting.slice(this.waitingHead);
      this.waitingHead = 0;
    }
    if (this.paused) return; // the pending bytes filled the backends again
    // Waiting was not the clients' fault: their timers start again.
    const now = Date.now();
    for (const connection of this.connections) {
      connection.lastActivityAt = now;
      if (connection.headStartedAt !== 0) connection.headStartedAt = now;
      if (!connection.ending && connection.socket.writableLength <= MAX_UNSENT_BYTES) connection.socket.resume();
    }
  }

  private stash(connection: Connection, bytes: Buffer): void {
    connection.pending = bytes;
    if (!connection.waiting) {
      connection.waiting = true;
      this.waiting.push(connection);
    }
  }

  private sweep(): void {
    if (this.pressure.state === Pressure.paused) return; // nobody is read: no timeout is the client's fault
    const now = Date.now();
    for (const connection of this.connections) {
      if (connection.ending) continue;
      if (connection.body !== null) {
        this.bodies!.sweep(connection, now);
      } else if (connection.headStartedAt !== 0) {
        if (now - connection.headStartedAt > this.config.headersTimeoutMs) this.fail(connection, Answer.timeout, 'timeout');
      } else if (now - connection.lastActivityAt > this.config.keepAliveTimeoutMs) {
        this.end(connection);
      }
    }
  }
}

/** The path of an origin-form target, without its query. */
function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

function formatAddress(address: net.AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

/**
 * Binds host:port without SO_REUSEPORT and lets go: rejects (EADDRINUSE) when
 * something listens there already. Before the first of several SO_REUSEPORT
 * listeners, which would otherwise share a port another process (a second
 * scratchd) serves.
 */
export function assertPortFree(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}
