/**
 * replay's HTTP/1.1 client: a pool of keep-alive connections on node:net.
 *
 * Contract
 * --------
 * - `send(job)` writes the job on an idle connection, opens a new one if
 *   the pool has fewer than `maxConnections`, else queues it in `waiting`
 *   (unbounded here: the scheduler bounds it, see run.ts MAX_WAITING).
 * - Every job sent ends in exactly one event: `answered(job, status, now)`
 *   or `failed(job, reason)`, reason one of refused, reset, closed,
 *   timeout, protocol, aborted, or an errno code.
 * - One request per connection at a time (no pipelining: the service under
 *   test may not support it, and it would blur latencies). A request whose
 *   reused keep-alive connection closes before any answer byte is retried
 *   once on a fresh one, as RFC 9112 §9.3.1 allows for idempotent methods
 *   (the server closed an idle connection just as we sent); nothing else is
 *   retried. A request without a complete answer within `timeoutMs` fails
 *   (checked every SWEEP_MS).
 * - Answers are delimited by the shared ResponseReader
 *   (../http-client/response-reader.ts); bytes after an answer, or an
 *   answer without keep-alive, close the connection.
 */
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Feed, ResponseReader } from '../http-client/response-reader';
import type { ReplayOptions } from './options';
import { Fifo, type Job } from './source';

const SWEEP_MS = 100;

class Connection {
  job: Job | null = null;
  sentAt = 0;
  /** Answers completed on this connection: > 0 means it is a reused keep-alive connection. */
  answers = 0;
  /** Bytes of the current answer arrived (a retry would not be safe). */
  gotBytes = false;
  readonly reader = new ResponseReader();
  /** Why it is being closed (set before destroy; used when 'close' arrives). */
  failure: string | null = null;

  constructor(readonly socket: net.Socket) {}
}

export interface ClientEvents {
  answered(job: Job, status: number, now: number): void;
  failed(job: Job, reason: string): void;
}

export class Client {
  inFlight = 0;
  retries = 0;
  readonly waiting = new Fifo<Job>();
  private readonly idle: Connection[] = [];
  private readonly open = new Set<Connection>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly target: ReplayOptions['target'],
    private readonly maxConnections: number,
    private readonly timeoutMs: number,
    private readonly events: ClientEvents,
  ) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  /** Sends on a free connection, opens one if the pool has room, else queues. */
  send(job: Job): void {
    const connection = this.idle.pop() ?? (this.open.size < this.maxConnections ? this.connect() : undefined);
    if (connection === undefined) this.waiting.push(job);
    else this.write(connection, job);
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const connection of this.open) connection.socket.destroy();
  }

  /** Gives up on everything in flight (second SIGINT). */
  abort(): void {
    // The queue first: failing a connection would otherwise send the next queued job.
    for (let job = this.waiting.shift(); job !== undefined; job = this.waiting.shift()) this.events.failed(job, 'aborted');
    for (const connection of this.open) this.fail(connection, 'aborted');
  }

  private connect(): Connection {
    const socket = net.connect({ host: this.target.host, port: this.target.port, noDelay: true });
    const connection = new Connection(socket);
    this.open.add(connection);
    socket.on('data', (chunk: Buffer) => this.onData(connection, chunk));
    socket.on('end', () => {
      // A read-until-close body ends here; anything else is cut short.
      if (connection.job !== null && connection.reader.closedByPeer()) this.complete(connection, false);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      connection.failure ??= errorReason(err);
    });
    socket.on('close', () => this.onClose(connection));
    return connection;
  }

  private write(connection: Connection, job: Job): void {
    connection.job = job;
    connection.sentAt = performance.now();
    connection.gotBytes = false;
    connection.reader.start(job.head);
    this.inFlight++;
    connection.socket.write(job.bytes);
  }

  private onData(connection: Connection, chunk: Buffer): void {
    if (connection.job === null) return this.fail(connection, 'protocol'); // bytes nobody asked for
    connection.gotBytes = true;
    switch (connection.reader.feed(chunk)) {
      case Feed.more:
        return;
      case Feed.done:
        return this.complete(connection, false);
      case Feed.doneWithExtra:
        return this.complete(connection, true);
      case Feed.invalid:
        return this.fail(connection, 'protocol');
    }
  }

  private complete(connection: Connection, extraBytes: boolean): void {
    const job = connection.job!;
    const now = performance.now();
    connection.job = null;
    connection.answers++;
    this.inFlight--;
    if (extraBytes || !connection.reader.keepAlive) {
      this.open.delete(connection);
      connection.socket.destroy();
      const next = this.waiting.shift();
      if (next !== undefined) this.send(next);
    } else {
      const next = this.waiting.shift();
      if (next !== undefined) this.write(connection, next);
      else this.idle.push(connection);
    }
    this.events.answered(job, connection.reader.status, now);
  }

  private fail(connection: Connection, reason: string): void {
    connection.failure ??= reason;
    connection.socket.destroy();
    this.onClose(connection);
  }

  private onClose(connection: Connection): void {
    if (!this.open.delete(connection)) return; // already handled
    const at = this.idle.indexOf(connection);
    if (at !== -1) this.idle.splice(at, 1);
    const job = connection.job;
    connection.job = null;
    if (job !== null) {
      this.inFlight--;
      const reason = connection.failure ?? 'closed';
      if (connection.answers > 0 && !connection.gotBytes && !job.retried && (reason === 'closed' || reason === 'reset')) {
        job.retried = true;
        this.retries++;
        this.send(job);
      } else {
        this.events.failed(job, reason);
      }
    }
    while (this.waiting.length > 0 && (this.idle.length > 0 || this.open.size < this.maxConnections)) this.send(this.waiting.shift()!);
  }

  private sweep(): void {
    const expired = performance.now() - this.timeoutMs;
    for (const connection of this.open) {
      if (connection.job !== null && connection.sentAt < expired) this.fail(connection, 'timeout');
    }
  }
}

function errorReason(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset';
    case 'ETIMEDOUT':
      return 'timeout';
    default:
      return err.code ?? 'other';
  }
}
