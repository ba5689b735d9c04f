/**
 * POST beacons and CORS preflights on the public port: what the server
 * (server.ts) hands over once it has read a POST or OPTIONS head. The GET
 * path never comes here.
 *
 * POST: the path, Host (flavor) and Origin (cors.ts) are checked first, then
 * Content-Type, Content-Encoding, Expect and a Content-Length over the
 * limit: each refusal is answered before a body byte is read, and closes the
 * connection when a body would follow. Otherwise the body is read
 * incrementally (body.ts) as chunks arrive, decompressed with the same
 * limit, and given to the beacon logic (track.ts); the answer is
 * flavors[].postStatus (204 by default). A body not complete within
 * http.bodyTimeoutMs is answered 408. `Expect: 100-continue` gets
 * "100 Continue" just before the body is read; any other expectation 417.
 *
 * Answers to a request with an allowed Origin name it exactly, with
 * Access-Control-Allow-Credentials: true and Vary: Origin (sendBeacon
 * always sends credentials, and browsers refuse "*" then).
 *
 * A request with an Origin the flavor does not allow is answered 403 and
 * counted (forbidden_origin); one without Origin (not from a browser page's
 * script, or an old browser) is accepted, as a GET beacon is.
 */
import type * as net from 'node:net';
import type { HttpConfig } from '../config/types';
import type { Flavor, FlavorTable } from '../flavor';
import { logger } from '../log';
import type { RequestCounters } from '../telemetry';
import { BODY_FAILED, BODY_NEED_MORE, BodyError, BodyReader, Coding, codingOf, decode } from './body';
import { Method, type RequestHead } from './request-head';
import { RETRY_AFTER_S } from './responses';
import type { ClientAddress } from './server';
import { BodyType, bodyTypeOf, PostOutcome, type TrackHandler } from './track';

const log = logger('http');

/** What post.ts needs of a connection (server.ts's Connection). */
export interface BodyConnection extends ClientAddress {
  readonly socket: net.Socket;
  forwardedFor: string | undefined;
  /** A POST whose body is being read; null otherwise (the server checks this first on every chunk). */
  body: PendingBody | null;
}

/** A POST waiting for its body. */
export class PendingBody {
  constructor(
    readonly reader: BodyReader,
    readonly flavor: Flavor,
    readonly query: string,
    readonly type: BodyType,
    readonly coding: Coding,
    readonly origin: string | undefined,
    readonly close: boolean,
    readonly http10: boolean,
    readonly startedAt: number,
  ) {}
}

/** Max-Age of a preflight answer: browsers cap it (Chromium at 2 h), so one day means "as long as allowed". */
const PREFLIGHT_MAX_AGE_S = 86_400;
const ALLOWED_METHODS = 'POST, GET, HEAD';
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');

const STATUS = {
  200: '200 OK',
  204: '204 No Content',
  400: '400 Bad Request',
  403: '403 Forbidden',
  404: '404 Not Found',
  408: '408 Request Timeout',
  413: '413 Content Too Large',
  415: '415 Unsupported Media Type',
  417: '417 Expectation Failed',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
} as const;
type Status = keyof typeof STATUS;

const REASON: Partial<Record<Status, string>> = {
  400: 'bad request\n',
  403: 'origin not allowed\n',
  404: 'not found\n',
  408: 'request timeout\n',
  413: 'content too large\n',
  415: 'unsupported content type or encoding\n',
  417: 'expectation failed\n',
  500: 'internal error\n',
  503: 'cannot store beacons now, retry later\n',
};

export class PostDoor {
  private dateSecond = -1;
  private dateHeader = '';

  constructor(
    private readonly config: HttpConfig,
    private readonly flavors: FlavorTable,
    private readonly handler: TrackHandler,
    private readonly requests: RequestCounters,
    /** Ends the connection after what was written (server.ts end()). */
    private readonly end: (connection: BodyConnection) => void,
  ) {}

  /**
   * A POST or OPTIONS head has been read; `close`: the connection ends after
   * the answer; `refusing`: the server answers beacons 503 (a backend is stuck, docs/buffering.md).
   */
  begin(connection: BodyConnection, head: RequestHead, close: boolean, refusing = false): void {
    const q = head.target.indexOf('?');
    const path = q === -1 ? head.target : head.target.slice(0, q);
    const flavor = head.host === undefined ? undefined : this.flavors.byHost(head.host);
    // A refusal answered before the body closes the connection if a body follows (it is not read).
    const closeUnread = close || head.hasBody;
    if (flavor === undefined || !flavor.paths.has(path)) {
      this.requests[flavor === undefined && this.flavors.paths.has(path) ? 'unknown_flavor' : 'not_found']++;
      return this.answer(connection, 404, undefined, closeUnread, head.http10);
    }
    const origin = head.origin;
    if (origin !== undefined && !flavor.origins.allows(origin)) {
      this.requests.forbidden_origin++;
      return this.answer(connection, 403, undefined, closeUnread, head.http10);
    }
    if (head.method === Method.options) {
      this.requests.preflight++;
      const extra =
        head.preflightMethod === undefined
          ? 'Allow: GET, HEAD, POST, OPTIONS\r\n'
          : `Access-Control-Allow-Methods: ${ALLOWED_METHODS}\r\nAccess-Control-Allow-Headers: Content-Type\r\nAccess-Control-Max-Age: ${PREFLIGHT_MAX_AGE_S}\r\n`;
      return this.answer(connection, 204, origin, closeUnread, head.http10, extra);
    }
    if (refusing) {
      this.requests.unavailable++;
      return this.answer(connection, 503, origin, closeUnread, head.http10, `Retry-After: ${RETRY_AFTER_S}\r\n`);
    }
    const type = bodyTypeOf(head.contentType);
    const coding = codingOf(head.contentEncoding);
    if (type === BodyType.unsupported || coding === Coding.unsupported) {
      this.requests.bad_request++;
      return this.answer(connection, 415, origin, closeUnread, head.http10);
    }
    const expectContinue = head.expect !== undefined && head.expect.toLowerCase() === '100-continue';
    if (head.expect !== undefined && !expectContinue) {
      this.requests.bad_request++;
      return this.answer(connection, 417, origin, closeUnread, head.http10);
    }
    const reader = new BodyReader(this.config.maxBodyBytes);
    if (!reader.begin(head.bodyLength)) {
      this.requests.too_large++;
      return this.answer(connection, 413, origin, true, head.http10);
    }
    const query = q === -1 ? '' : head.target.slice(q + 1);
    const pending = new PendingBody(reader, flavor, query, type, coding, origin, close, head.http10, Date.now());
    if (head.bodyLength === 0) return this.finish(connection, pending);
    // RFC 9110 §10.1.1: the client waits for this before it sends the body.
    if (expectContinue && !head.http10) connection.socket.write(CONTINUE);
    connection.body = pending;
  }

  /**
   * Body bytes in chunk[start…]: returns the index just past the body (the
   * answer is written, the server reads the next request from there), or -1
   * (the chunk is used up, or the connection is ending).
   */
  feed(connection: BodyConnection, chunk: Buffer, start: number): number {
    const pending = connection.body!;
    const at = pending.reader.execute(chunk, start, chunk.length);
    if (at === BODY_NEED_MORE) return -1;
    connection.body = null;
    if (at === BODY_FAILED) {
      const tooLarge = pending.reader.error === BodyError.tooLarge;
      this.requests[tooLarge ? 'too_large' : 'bad_request']++;
      this.answer(connection, tooLarge ? 413 : 400, pending.origin, true, pending.http10);
      return -1;
    }
    this.finish(connection, pending);
    return at;
  }

  /** A body still coming after http.bodyTimeoutMs: 408, closed. Returns whether it was. */
  sweep(connection: BodyConnection, now: number): boolean {
    const pending = connection.body;
    if (pending === null || now - pending.startedAt <= this.config.bodyTimeoutMs) return false;
    connection.body = null;
    this.requests.timeout++;
    this.answer(connection, 408, pending.origin, true, pending.http10);
    return true;
  }

  private finish(connection: BodyConnection, pending: PendingBody): void {
    const decoded = decode(pending.reader.body, pending.coding, this.config.maxBodyBytes);
    if (decoded === BodyError.tooLarge || decoded === BodyError.badRequest) {
      const tooLarge = decoded === BodyError.tooLarge;
      this.requests[tooLarge ? 'too_large' : 'bad_request']++;
      return this.answer(connection, tooLarge ? 413 : 400, pending.origin, pending.close, pending.http10);
    }
    let outcome: PostOutcome;
    try {
      outcome = this.handler.post(pending.flavor, pending.query, pending.type, decoded, this.config.maxBatch, connection);
    } catch (err) {
      log.every('internal', 10_000, `internal error: ${(err as Error).stack ?? String(err)}`);
      this.requests.internal_error++;
      return this.answer(connection, 500, pending.origin, true, pending.http10);
    }
    if (outcome === PostOutcome.unavailable) {
      return this.answer(connection, 503, pending.origin, pending.close, pending.http10, `Retry-After: ${RETRY_AFTER_S}\r\n`);
    }
    const status: Status = outcome === PostOutcome.accepted ? pending.flavor.postStatus : outcome === PostOutcome.tooMany ? 413 : 400;
    this.answer(connection, status, pending.origin, pending.close, pending.http10);
  }

  private answer(connection: BodyConnection, status: Status, origin: string | undefined, close: boolean, http10: boolean, extra = ''): void {
    const body = REASON[status] ?? '';
    let head = `HTTP/1.1 ${STATUS[status]}\r\n`;
    if (status !== 204) head += `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n`;
    head += 'Cache-Control: no-store\r\n';
    // An allowed origin (a refused one never gets here with its origin).
    if (origin !== undefined) head += `Access-Control-Allow-Origin: ${origin}\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n`;
    head += extra + this.date() + (close ? 'Connection: close\r\n' : http10 ? 'Connection: keep-alive\r\n' : '') + '\r\n';
    connection.socket.write(head + body, 'latin1');
    if (close) this.end(connection);
  }

  /** The Date header (RFC 9110 §6.6.1), made once a second. */
  private date(): string {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== this.dateSecond) {
      this.dateSecond = second;
      this.dateHeader = `Date: ${new Date(now).toUTCString()}\r\n`;
    }
    return this.dateHeader;
  }
}
