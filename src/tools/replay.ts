/**
 * `scratchd replay --target http://HOST:PORT [options] FILE|-`: sends the
 * GET/HEAD requests of an access log (formats: request-log.ts) to a target,
 * to compare two services fed the same traffic (then `scratchd diff`).
 *
 * Contract
 * --------
 * - Each replayable line is sent once, as `METHOD TARGET HTTP/1.1` with the
 *   line's Host and no other header; the target's bytes are the logged ones
 *   (request-log.ts). The URL only says where to connect.
 * - Open loop (`--rate N`): request i has the intended send time
 *   start + i/N, and its latency is measured from that time, not from when
 *   it was written, so a slow target shows up as latency instead of silently
 *   lowering the rate ("coordinated omission", Gil Tene). Requests due while
 *   all `--connections` are busy wait in a queue (bounded: MAX_WAITING; when
 *   full, scheduling pauses, and the late ones show it in their latency).
 * - Closed loop (no --rate): `--connections` requests in flight at all times,
 *   latency from the actual send.
 * - One request per connection at a time (no pipelining: the service under
 *   test may not support it, and it would blur latencies). A request whose
 *   reused keep-alive connection closes before any answer byte is retried
 *   once on a fresh one, as RFC 9112 §9.3.1 allows for idempotent methods
 *   (the server closed an idle connection just as we sent); nothing else is
 *   retried. A request with no complete answer within --timeout-ms fails.
 * - Why raw node:net and not node:http: the Agent and the per-request
 *   ClientRequest/IncomingMessage objects cost more than everything else
 *   here, and we need only a status code and the end of each answer. The
 *   small parser below handles Content-Length, chunked and read-until-close
 *   bodies, HEAD/204/304, 1xx and "Connection: close".
 * - Report on stdout at the end (--json: one JSON object); unparseable lines
 *   are reported on stderr (the first MAX_REPORTED, escaped); a progress bar
 *   on stderr only when it is a terminal.
 * - Exit status (ReplayExit): 0 every request sent got an answer (any
 *   status; skipped lines do not count); 1 some requests failed (refused,
 *   reset, closed, timeout, bad answer) or --max-errors stopped the run;
 *   2 the input could not be read; 130 interrupted by SIGINT (the report is
 *   still printed; a second SIGINT abandons the requests in flight).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { ScratchError } from '../errors';
import { processIo, startProgress, type Progress, type ToolIo } from './progress';
import { escapeBytes, LineReader, parseRequestLine, requestBytes, type ParseOptions } from './request-log';

export const ReplayExit = { ok: 0, failed: 1, input: 2, interrupted: 130 } as const;

const USAGE = `usage: scratchd replay --target http://HOST:PORT [options] FILE|-

Sends the GET and HEAD requests of an access log (FILE, or - for stdin) to
the target, each with its logged path (byte for byte) and Host.

Input lines: nginx/Apache combined or common (Host from --host, or from an
extra first field), HAProxy httplog (Host from the first {captured} header,
or --host), or "HOST /path?query". Blank lines and # comments are ignored.

options:
  --target URL         http://host:port to connect to (required)
  --host HOST          Host header for lines that carry none
  --rate N             open loop: N requests per second, latency measured
                       from each request's scheduled time
                       (without --rate: as fast as --connections allow)
  --connections N      connection pool size / requests in flight (default ${64})
  --duration SECONDS   stop sending after this long (also 500ms, 2m)
  --limit N            send at most N requests
  --timeout-ms MS      a request without a complete answer fails (default 10000)
  --max-errors N       stop after N failed requests (default: never)
  --keep-escapes       send paths as logged, without undoing the logger's
                       \\xHH (nginx) or #HH (HAProxy) escapes
  --json               print the report as JSON
  -h, --help           this text

exit status: 0 all sent requests answered (any status); 1 some failed
(connection refused/reset/closed, timeout, bad answer) or --max-errors;
2 input unreadable; 64 usage; 130 interrupted.`;

const DEFAULT_CONNECTIONS = 64;
const DEFAULT_TIMEOUT_MS = 10_000;
/** Unparseable lines printed on stderr; the rest are only counted. */
const MAX_REPORTED = 10;
/** Parsed requests read ahead of the sender (bounded read-ahead of the input). */
const READ_AHEAD = 8192;
/** Open loop: due requests waiting for a free connection before scheduling pauses. */
const MAX_WAITING = 100_000;
/** Longest input line kept; longer ones are counted malformed. */
const MAX_LINE_BYTES = 1024 * 1024;
/** Longest answer head (status line and headers) accepted. */
const MAX_ANSWER_HEAD_BYTES = 64 * 1024;
const SWEEP_MS = 100;

export interface ReplayOptions {
  file: string;
  target: { host: string; port: number; url: string };
  defaultHost: string | undefined;
  /** Requests per second, or undefined for the closed loop. */
  rate: number | undefined;
  connections: number;
  durationMs: number | undefined;
  limit: number | undefined;
  timeoutMs: number;
  maxErrors: number | undefined;
  keepEscapes: boolean;
  json: boolean;
}

export async function replayCommand(args: string[], io: ToolIo = processIo): Promise<number> {
  const options = parseReplayArgs(args);
  if (options === 'help') {
    io.stdout.write(`${USAGE}\n`);
    return ReplayExit.ok;
  }
  let input: { stream: Readable; size: number | undefined; close(): void };
  try {
    input = await openInput(options.file, io);
  } catch (err) {
    io.stderr.write(`replay: cannot read ${JSON.stringify(options.file)}: ${(err as Error).message}\n`);
    return ReplayExit.input;
  }
  try {
    const report = await new Replay(options, input, io).run();
    io.stdout.write(options.json ? `${JSON.stringify(report)}\n` : formatReport(report));
    if (report.input_error !== null) return ReplayExit.input;
    if (report.interrupted) return ReplayExit.interrupted;
    return report.failed > 0 || report.stopped_by_errors ? ReplayExit.failed : ReplayExit.ok;
  } finally {
    input.close();
  }
}

function usage(message: string): never {
  // ScratchError adds "usage: "; main.ts prints the message and exits 64.
  throw new ScratchError('USAGE', `${USAGE.slice('usage: '.length, USAGE.indexOf('\n'))}\nscratchd replay: ${message} (see scratchd replay --help)`);
}

export function parseReplayArgs(args: string[]): ReplayOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        target: { type: 'string' },
        host: { type: 'string' },
        rate: { type: 'string' },
        connections: { type: 'string' },
        duration: { type: 'string' },
        limit: { type: 'string' },
        'timeout-ms': { type: 'string' },
        'max-errors': { type: 'string' },
        'keep-escapes': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) return 'help';
  if (positionals.length !== 1) usage(positionals.length === 0 ? 'no input FILE (use - for stdin)' : 'one input FILE only');
  if (values.target === undefined) usage('--target is required');
  const host = values.host;
  if (host !== undefined && !/^[\x21-\x7e]+$/.test(host)) usage(`--host ${JSON.stringify(host)} is not a valid Host header value`);
  return {
    file: positionals[0]!,
    target: parseTarget(values.target),
    defaultHost: host,
    rate: values.rate === undefined ? undefined : positive('--rate', values.rate, false),
    connections: values.connections === undefined ? DEFAULT_CONNECTIONS : positive('--connections', values.connections, true),
    durationMs: values.duration === undefined ? undefined : parseDuration(values.duration),
    limit: values.limit === undefined ? undefined : positive('--limit', values.limit, true),
    timeoutMs: values['timeout-ms'] === undefined ? DEFAULT_TIMEOUT_MS : positive('--timeout-ms', values['timeout-ms'], true),
    maxErrors: values['max-errors'] === undefined ? undefined : positive('--max-errors', values['max-errors'], true),
    keepEscapes: values['keep-escapes'] === true,
    json: values.json === true,
  };
}

function parseTarget(text: string): ReplayOptions['target'] {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return usage(`--target ${JSON.stringify(text)} is not a URL (http://host:port)`);
  }
  if (url.protocol !== 'http:') usage(`--target ${JSON.stringify(text)}: only http:// is supported`);
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '') {
    usage(`--target ${JSON.stringify(text)}: give only http://host:port; paths come from the input lines`);
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port: url.port === '' ? 80 : Number(url.port), url: `http://${url.host}` };
}

function positive(name: string, text: string, integer: boolean): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    usage(`${name} ${JSON.stringify(text)}: expected a positive ${integer ? 'integer' : 'number'}`);
  }
  return n;
}

/** "30" (seconds), "30s", "500ms", "2m", "1h" → milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (match === null || Number(match[1]) <= 0) return usage(`--duration ${JSON.stringify(text)}: expected seconds, or a number with ms, s, m or h`);
  const unit = match[2] ?? 's';
  return Number(match[1]) * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000);
}

async function openInput(file: string, io: ToolIo): Promise<{ stream: Readable; size: number | undefined; close(): void }> {
  if (file === '-') return { stream: io.stdin, size: undefined, close: () => io.stdin.pause() };
  const handle = await fs.promises.open(file, 'r');
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) throw new Error('is a directory');
    const stream = handle.createReadStream({ highWaterMark: 256 * 1024 });
    return { stream, size: stat.isFile() ? stat.size : undefined, close: () => stream.destroy() };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

// ---------------------------------------------------------------------------
// The report

export interface ReplayReport {
  target: string;
  mode: 'rate' | 'closed';
  target_rate: number | null;
  connections: number;
  /** Input lines read (including blank, comments, skipped). */
  lines: number;
  /** Requests sent (each counted once, retries apart). */
  sent: number;
  answered: number;
  /** Answers by status code. */
  status: Record<string, number>;
  /** Sent requests without an answer. */
  failed: number;
  /** Failed requests by reason: refused, reset, closed, timeout, protocol, aborted, or an errno code. */
  errors: Record<string, number>;
  retries: number;
  skipped: { malformed: number; method: number };
  duration_s: number;
  /** Requests sent per second over duration_s. */
  rate: number;
  latency_ms: { p50: number; p90: number; p99: number; p99_9: number; max: number; mean: number };
  interrupted: boolean;
  stopped_by_errors: boolean;
  input_error: string | null;
}

export function formatReport(r: ReplayReport): string {
  const count = (m: Record<string, number>) =>
    Object.entries(m)
      .map(([k, v]) => `${k}: ${v}`)
      .join('  ');
  const ms = (v: number) => `${v.toFixed(v < 10 ? 3 : 1)} ms`;
  const l = r.latency_ms;
  const lines = [
    `replay: ${r.sent} requests to ${r.target} in ${r.duration_s.toFixed(3)} s, ${Math.round(r.rate)} req/s ` +
      `(${r.mode === 'rate' ? `target ${r.target_rate} req/s, open loop` : 'closed loop'}, ${r.connections} connections)`,
    `  answered  ${r.answered}${r.answered > 0 ? `   ${count(r.status)}` : ''}`,
    `  failed    ${r.failed}${r.failed > 0 ? `   ${count(r.errors)}` : ''}${r.retries > 0 ? `   (retried on a fresh connection: ${r.retries})` : ''}`,
    `  skipped   ${r.skipped.malformed + r.skipped.method}   malformed: ${r.skipped.malformed}  method: ${r.skipped.method}   (of ${r.lines} lines)`,
    `  latency   p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  p99.9 ${ms(l.p99_9)}  max ${ms(l.max)}`,
  ];
  if (r.interrupted) lines.push('  interrupted (SIGINT)');
  if (r.stopped_by_errors) lines.push('  stopped: --max-errors reached');
  if (r.input_error !== null) lines.push(`  input error: ${r.input_error}`);
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------
// Reading ahead: parsed requests, bounded

interface Job {
  readonly bytes: Buffer;
  readonly head: boolean;
  /** performance.now() of the intended send: latency starts here. */
  intended: number;
  retried: boolean;
}

/** A FIFO with O(1) shift (Array#shift is O(n) on large arrays). */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private first = 0;

  get length(): number {
    return this.items.length - this.first;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.first >= this.items.length) return undefined;
    const item = this.items[this.first];
    this.items[this.first++] = undefined;
    if (this.first >= 1024 && this.first * 2 >= this.items.length) {
      this.items = this.items.slice(this.first);
      this.first = 0;
    }
    return item;
  }
}

/**
 * Reads and parses input lines into Jobs ahead of the sender, at most
 * READ_AHEAD of them (the reader waits for room), so memory does not depend
 * on the input size. `take()` is synchronous; when it finds nothing, the
 * sender sets `onReady` and is called once more jobs (or the end) arrive.
 */
class RequestSource {
  lines = 0;
  malformed = 0;
  method = 0;
  ended = false;
  error: Error | null = null;
  onReady: (() => void) | null = null;
  private readonly ready = new Fifo<Job>();
  private taken = 0;
  private room: (() => void) | null = null;

  constructor(
    readonly reader: LineReader,
    private readonly parse: ParseOptions,
    private readonly limit: number,
    private readonly reportMalformed: (line: number, reason: string, text: string | null) => void,
  ) {}

  async read(): Promise<void> {
    try {
      while (this.taken + this.ready.length < this.limit) {
        if (this.ready.length >= READ_AHEAD) await new Promise<void>((resolve) => (this.room = resolve));
        const batch = await this.reader.next();
        if (batch === null) break;
        this.add(batch.firstLine, batch.lines);
        this.notify();
      }
    } catch (err) {
      this.error = err as Error;
    }
    this.ended = true;
    this.notify();
  }

  private add(firstLine: number, lines: (string | null)[]): void {
    for (let i = 0; i < lines.length; i++) {
      this.lines++;
      const text = lines[i]!;
      if (text === null) {
        this.malformed++;
        this.reportMalformed(firstLine + i, `line longer than ${MAX_LINE_BYTES} bytes`, null);
        continue;
      }
      const parsed = parseRequestLine(text, this.parse);
      if (parsed.kind === 'request') {
        // Past the limit, lines of this batch are left unread (and uncounted).
        if (this.taken + this.ready.length >= this.limit) {
          this.lines--;
          return;
        }
        this.ready.push({ bytes: requestBytes(parsed.method, parsed.target, parsed.host), head: parsed.method === 'HEAD', intended: 0, retried: false });
      } else if (parsed.kind === 'malformed') {
        this.malformed++;
        this.reportMalformed(firstLine + i, parsed.reason, text);
      } else if (parsed.kind === 'skip') {
        this.method++;
      }
    }
  }

  private notify(): void {
    const ready = this.onReady;
    this.onReady = null;
    ready?.();
  }

  /** Parsed requests not taken yet. */
  get pending(): number {
    return this.ready.length;
  }

  take(): Job | undefined {
    const job = this.ready.shift();
    if (job !== undefined) this.taken++;
    if (this.room !== null && this.ready.length <= READ_AHEAD / 2) {
      const room = this.room;
      this.room = null;
      room();
    }
    return job;
  }

  /** Lets a pending read() finish after the sender stopped early. */
  release(): void {
    this.room?.();
    this.room = null;
  }
}

// ---------------------------------------------------------------------------
// The HTTP/1.1 client: a pool of keep-alive connections on node:net

/** Where a connection is in reading an answer. */
const Read = { head: 0, length: 1, chunkSize: 2, chunkData: 3, chunkEnd: 4, trailer: 5, untilClose: 6 } as const;
type Read = (typeof Read)[keyof typeof Read];

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');

class Connection {
  job: Job | null = null;
  sentAt = 0;
  /** Answers completed on this connection: > 0 means it is a reused keep-alive connection. */
  answers = 0;
  /** Bytes of the current answer arrived (a retry would not be safe). */
  gotBytes = false;
  state: Read = Read.head;
  remaining = 0;
  partial: Buffer | null = null;
  keepAlive = true;
  status = 0;
  /** Why it is being closed (set before destroy; used when 'close' arrives). */
  failure: string | null = null;

  constructor(readonly socket: net.Socket) {}
}

interface ClientEvents {
  answered(job: Job, status: number, now: number): void;
  failed(job: Job, reason: string): void;
}

class Client {
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
      if (connection.job !== null && connection.state === Read.untilClose) this.complete(connection, false);
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
    connection.state = Read.head;
    connection.remaining = 0;
    this.inFlight++;
    connection.socket.write(job.bytes);
  }

  private onData(connection: Connection, chunk: Buffer): void {
    if (connection.job === null) return this.fail(connection, 'protocol'); // bytes nobody asked for
    connection.gotBytes = true;
    let buf = chunk;
    if (connection.partial !== null) {
      buf = Buffer.concat([connection.partial, chunk]);
      connection.partial = null;
    }
    let pos = 0;
    while (pos < buf.length) {
      switch (connection.state) {
        case Read.head: {
          const end = buf.indexOf(CRLFCRLF, pos);
          if (end === -1) return this.keepPartial(connection, buf, pos, MAX_ANSWER_HEAD_BYTES);
          if (!this.parseHead(connection, buf, pos, end)) return this.fail(connection, 'protocol');
          pos = end + 4;
          if (connection.remaining === -1) return this.complete(connection, pos < buf.length);
          break;
        }
        case Read.length: {
          const take = Math.min(connection.remaining, buf.length - pos);
          connection.remaining -= take;
          pos += take;
          if (connection.remaining === 0) return this.complete(connection, pos < buf.length);
          break;
        }
        case Read.chunkSize: {
          const eol = buf.indexOf(CRLF, pos);
          if (eol === -1) return this.keepPartial(connection, buf, pos, 4096);
          const size = parseChunkSize(buf, pos, eol);
          if (size < 0) return this.fail(connection, 'protocol');
          pos = eol + 2;
          connection.remaining = size;
          connection.state = size === 0 ? Read.trailer : Read.chunkData;
          break;
        }
        case Read.chunkData: {
          const take = Math.min(connection.remaining, buf.length - pos);
          connection.remaining -= take;
          pos += take;
          if (connection.remaining === 0) {
            connection.state = Read.chunkEnd;
            connection.remaining = 2;
          }
          break;
        }
        case Read.chunkEnd: {
          const take = Math.min(connection.remaining, buf.length - pos);
          connection.remaining -= take;
          pos += take;
          if (connection.remaining === 0) connection.state = Read.chunkSize;
          break;
        }
        case Read.trailer: {
          const eol = buf.indexOf(CRLF, pos);
          if (eol === -1) return this.keepPartial(connection, buf, pos, MAX_ANSWER_HEAD_BYTES);
          const empty = eol === pos;
          pos = eol + 2;
          if (empty) return this.complete(connection, pos < buf.length);
          break;
        }
        case Read.untilClose:
          pos = buf.length;
          break;
      }
    }
  }

  private keepPartial(connection: Connection, buf: Buffer, pos: number, max: number): void {
    if (buf.length - pos > max) return this.fail(connection, 'protocol');
    // Copy: a view would pin the whole chunk.
    connection.partial = Buffer.from(buf.subarray(pos));
  }

  /**
   * Status line and the three headers that delimit the body (RFC 9112 §6.3).
   * Sets connection.state and remaining; remaining = -1: no body follows.
   */
  private parseHead(connection: Connection, buf: Buffer, start: number, end: number): boolean {
    connection.remaining = 0; // never a value left from the previous answer
    const head = buf.toString('latin1', start, end);
    if (!head.startsWith('HTTP/1.') || head.charCodeAt(8) !== 32) return false;
    const status = Number(head.slice(9, 12));
    if (!Number.isInteger(status) || status < 100 || status > 999) return false;
    const http10 = head.charCodeAt(7) === 48;
    let close = false;
    let keepAlive = false;
    let length = -1;
    let chunked = false;
    for (let at = head.indexOf('\r\n') + 2; at > 1 && at < head.length; ) {
      const eol = head.indexOf('\r\n', at);
      const lineEnd = eol === -1 ? head.length : eol;
      const colon = head.indexOf(':', at);
      if (colon > at && colon < lineEnd) {
        const nameLength = colon - at;
        if (nameLength === 10 || nameLength === 14 || nameLength === 17) {
          const name = head.slice(at, colon).toLowerCase();
          const value = head.slice(colon + 1, lineEnd).trim().toLowerCase();
          if (name === 'content-length') {
            if (!/^\d+$/.test(value)) return false;
            length = Number(value);
          } else if (name === 'transfer-encoding') {
            chunked = value.endsWith('chunked');
          } else if (name === 'connection') {
            for (const token of value.split(',')) {
              const option = token.trim();
              if (option === 'close') close = true;
              else if (option === 'keep-alive') keepAlive = true;
            }
          }
        }
      }
      if (eol === -1) break;
      at = eol + 2;
    }
    if (status < 200) {
      if (status === 101) return false; // we never ask to switch protocols
      connection.state = Read.head; // 1xx: the real answer follows
      return true;
    }
    connection.status = status;
    connection.keepAlive = !close && (!http10 || keepAlive);
    if (connection.job!.head || status === 204 || status === 304) connection.remaining = -1;
    else if (chunked) connection.state = Read.chunkSize;
    else if (length >= 0) {
      connection.state = Read.length;
      connection.remaining = length === 0 ? -1 : length;
    } else {
      connection.state = Read.untilClose;
      connection.keepAlive = false;
    }
    return true;
  }

  private complete(connection: Connection, extraBytes: boolean): void {
    const job = connection.job!;
    const now = performance.now();
    connection.job = null;
    connection.partial = null;
    connection.answers++;
    this.inFlight--;
    if (extraBytes || !connection.keepAlive) {
      this.open.delete(connection);
      connection.socket.destroy();
      const next = this.waiting.shift();
      if (next !== undefined) this.send(next);
    } else {
      const next = this.waiting.shift();
      if (next !== undefined) this.write(connection, next);
      else this.idle.push(connection);
    }
    this.events.answered(job, connection.status, now);
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

/** Hex size before an optional ";extension" (RFC 9112 §7.1); -1 if not one. */
function parseChunkSize(buf: Buffer, start: number, end: number): number {
  let size = 0;
  let digits = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    const v = c >= 48 && c <= 57 ? c - 48 : (c | 0x20) >= 97 && (c | 0x20) <= 102 ? (c | 0x20) - 87 : -1;
    if (v === -1) {
      if (c === 59 /* ; */ || c === 32 || c === 9) break;
      return -1;
    }
    size = size * 16 + v;
    if (++digits > 12) return -1;
  }
  return digits === 0 ? -1 : size;
}

// ---------------------------------------------------------------------------
// The run: schedule, count, report

class Replay {
  private readonly source: RequestSource;
  private readonly client: Client;
  private readonly histogram: RecordableHistogram = createHistogram();
  private readonly status = new Map<number, number>();
  private readonly errors = new Map<string, number>();
  private sent = 0;
  private answered = 0;
  private failed = 0;
  private reported = 0;
  private startAt = 0;
  private finishedAt = 0;
  private scheduled = 0;
  private readonly interval: number;
  private stopping = false;
  private interrupted = false;
  private stoppedByErrors = false;
  private paused = false;
  private timer: NodeJS.Timeout | undefined;
  private done: () => void = () => undefined;
  private progress: Progress | undefined;

  constructor(
    private readonly options: ReplayOptions,
    private readonly input: { stream: Readable; size: number | undefined },
    private readonly io: ToolIo,
  ) {
    this.interval = options.rate === undefined ? 0 : 1000 / options.rate;
    const reader = new LineReader(input.stream, { stripCR: true, maxLineBytes: MAX_LINE_BYTES });
    this.source = new RequestSource(
      reader,
      { defaultHost: options.defaultHost, keepEscapes: options.keepEscapes },
      options.limit ?? Infinity,
      (line, reason, text) => this.reportMalformed(line, reason, text),
    );
    this.client = new Client(options.target, options.connections, options.timeoutMs, {
      answered: (job, status, now) => this.onAnswered(job, status, now),
      failed: (_job, reason) => this.onFailed(reason),
    });
  }

  async run(): Promise<ReplayReport> {
    const finished = new Promise<void>((resolve) => (this.done = resolve));
    const onSigint = () => {
      if (this.interrupted) this.client.abort();
      this.interrupted = true;
      this.stop();
    };
    process.on('SIGINT', onSigint);
    void this.source.read();
    // The clock starts with the first request ready: opening and reading the
    // input is not the target's latency.
    // (A SIGINT while stdin has nothing yet ends the wait too.)
    const firstReady = new Promise<void>((resolve) => (this.source.pending > 0 || this.source.ended ? resolve() : (this.source.onReady = resolve)));
    await Promise.race([firstReady, finished]);
    this.startProgress();
    this.startAt = performance.now();
    let durationTimer: NodeJS.Timeout | undefined;
    if (this.options.durationMs !== undefined) durationTimer = setTimeout(() => this.stop(), this.options.durationMs);
    if (this.options.rate === undefined) this.fill();
    else this.pump();
    try {
      await finished;
    } finally {
      const endedAt = performance.now();
      process.off('SIGINT', onSigint);
      clearTimeout(durationTimer);
      clearTimeout(this.timer);
      this.progress?.stop();
      this.client.close();
      this.source.release();
      this.finishedAt = endedAt;
    }
    return this.report();
  }

  /** Stops sending new requests; those in flight or already due still get their answers. */
  private stop(): void {
    this.stopping = true;
    clearTimeout(this.timer);
    this.checkDone();
  }

  /** Open loop: sends every request whose intended time has come, then sleeps until the next one. */
  private readonly pump = (): void => {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopping) return this.checkDone();
    const now = performance.now();
    const due = Math.floor((now - this.startAt) / this.interval) + 1;
    while (this.scheduled < due) {
      if (this.client.waiting.length >= MAX_WAITING) {
        this.paused = true; // resumed by onAnswered/onFailed
        return;
      }
      const job = this.source.take();
      if (job === undefined) {
        if (this.source.ended) return this.checkDone();
        this.source.onReady = this.pump;
        return;
      }
      job.intended = this.startAt + this.scheduled * this.interval;
      this.scheduled++;
      this.sent++;
      this.client.send(job);
    }
    // setTimeout has ~1 ms resolution: at high rates a tick sends a small
    // burst, each request still timed from its own intended moment.
    this.timer = setTimeout(this.pump, Math.max(0, this.startAt + this.scheduled * this.interval - performance.now()));
  };

  /** Closed loop: keeps --connections requests in flight. */
  private readonly fill = (): void => {
    while (!this.stopping && this.client.inFlight + this.client.waiting.length < this.options.connections) {
      const job = this.source.take();
      if (job === undefined) {
        if (!this.source.ended) this.source.onReady = this.fill;
        break;
      }
      job.intended = performance.now();
      this.sent++;
      this.client.send(job);
    }
    this.checkDone();
  };

  private onAnswered(job: Job, status: number, now: number): void {
    this.answered++;
    this.status.set(status, (this.status.get(status) ?? 0) + 1);
    this.histogram.record(Math.max(1, Math.round((now - job.intended) * 1e6)));
    this.next();
  }

  private onFailed(reason: string): void {
    this.failed++;
    this.errors.set(reason, (this.errors.get(reason) ?? 0) + 1);
    if (this.options.maxErrors !== undefined && this.failed >= this.options.maxErrors && !this.stopping) {
      this.stoppedByErrors = true;
      this.stop();
    }
    this.next();
  }

  private next(): void {
    if (this.options.rate === undefined) return this.fill();
    if (this.paused && this.client.waiting.length < MAX_WAITING / 2) {
      this.paused = false;
      this.pump();
    }
    this.checkDone();
  }

  private checkDone(): void {
    const idle = this.client.inFlight === 0 && this.client.waiting.length === 0;
    if (idle && (this.stopping || (this.source.ended && this.source.pending === 0))) this.done();
  }

  private reportMalformed(line: number, reason: string, text: string | null): void {
    if (this.reported >= MAX_REPORTED) return;
    this.reported++;
    const shown = text === null ? '' : `: ${escapeBytes(text)}`;
    const more = this.reported === MAX_REPORTED ? ' (further malformed lines are only counted)' : '';
    this.print(`replay: line ${line}: ${reason}${shown}${more}\n`);
  }

  private print(text: string): void {
    if (this.progress !== undefined) this.progress.print(text);
    else this.io.stderr.write(text);
  }

  private startProgress(): void {
    let lastAt = performance.now();
    let lastSent = 0;
    let rate = 0;
    this.progress = startProgress(this.io.stderr, () => {
      const now = performance.now();
      if (now - lastAt >= 500) {
        rate = ((this.sent - lastSent) * 1000) / (now - lastAt);
        lastAt = now;
        lastSent = this.sent;
      }
      const { limit } = this.options;
      const fraction =
        limit !== undefined ? this.sent / limit : this.input.size !== undefined && this.input.size > 0 ? this.source.reader.bytesRead / this.input.size : undefined;
      return {
        fraction,
        label: `sent ${this.sent}${limit !== undefined ? `/${limit}` : ''} · ${Math.round(rate)} req/s · answered ${this.answered} · errors ${this.failed}`,
      };
    });
  }

  private report(): ReplayReport {
    const seconds = Math.max(1e-9, (this.finishedAt - this.startAt) / 1000);
    const h = this.histogram;
    const ms = (ns: number) => (h.count === 0 ? 0 : Math.round(ns / 1e3) / 1e3);
    const sorted = <T>(m: Map<T, number>) => Object.fromEntries([...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([k, v]) => [String(k), v]));
    return {
      target: this.options.target.url,
      mode: this.options.rate === undefined ? 'closed' : 'rate',
      target_rate: this.options.rate ?? null,
      connections: this.options.connections,
      lines: this.source.lines,
      sent: this.sent,
      answered: this.answered,
      status: sorted(this.status),
      failed: this.failed,
      errors: sorted(this.errors),
      retries: this.client.retries,
      skipped: { malformed: this.source.malformed, method: this.source.method },
      duration_s: Math.round(seconds * 1e6) / 1e6,
      rate: Math.round((this.sent / seconds) * 10) / 10,
      latency_ms: {
        p50: ms(h.percentile(50)),
        p90: ms(h.percentile(90)),
        p99: ms(h.percentile(99)),
        p99_9: ms(h.percentile(99.9)),
        max: ms(h.max),
        mean: ms(h.mean),
      },
      interrupted: this.interrupted,
      stopped_by_errors: this.stoppedByErrors,
      input_error: this.source.error === null ? null : this.source.error.message,
    };
  }
}
