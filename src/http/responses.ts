/**
 * Every answer the public port can give, prebuilt as whole Buffers (status
 * line, headers, body) so that answering is one socket.write of a ready
 * Buffer. The Date header (RFC 9110 §6.6.1: an origin server with a clock
 * must send it) is refreshed once a second by rebuilding the table.
 */

/** The 43-byte transparent 1×1 GIF89a, the same bytes as nginx's empty_gif. */
export const EMPTY_GIF = Buffer.from(
  '47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b',
  'hex',
);

export const Answer = {
  gif: 0,
  gifHead: 1,
  badRequest: 2,
  notFound: 3,
  unknownHost: 4,
  /** A transfer coding other than chunked (RFC 9112 §6.1). */
  notImplemented: 11,
  /** An HTTP version other than 1.0 and 1.1 (RFC 9110 §15.6.6). */
  versionNotSupported: 12,
  malformedQuery: 5,
  method: 6,
  timeout: 7,
  uriTooLong: 8,
  headerTooLarge: 9,
  internalError: 10,
  /** The line cannot be held now: retry later or elsewhere (RFC 9110 §15.6.4, Retry-After §10.2.3). */
  unavailable: 13,
} as const;
export type Answer = (typeof Answer)[keyof typeof Answer];

/** How the connection goes on after the answer. */
export const Persistence = {
  /** HTTP/1.1 keep-alive: no Connection header needed. */
  keepAlive: 0,
  /** HTTP/1.0 client that asked for keep-alive. */
  keepAlive10: 1,
  close: 2,
} as const;
export type Persistence = (typeof Persistence)[keyof typeof Persistence];

interface Spec {
  status: string;
  type: string;
  body: Buffer;
  /** HEAD: headers of the body, without it. */
  headOnly?: boolean;
  extra?: string;
}

/** Retry-After of a 503: a load balancer retries elsewhere at once; a client on its own waits this long. */
export const RETRY_AFTER_S = 5;
const text = (s: string) => Buffer.from(`${s}\n`);
const TEXT = 'text/plain; charset=utf-8';

const SPECS: Record<Answer, Spec> = {
  [Answer.gif]: { status: '200 OK', type: 'image/gif', body: EMPTY_GIF },
  [Answer.gifHead]: { status: '200 OK', type: 'image/gif', body: EMPTY_GIF, headOnly: true },
  [Answer.badRequest]: { status: '400 Bad Request', type: TEXT, body: text('bad request') },
  [Answer.notFound]: { status: '404 Not Found', type: TEXT, body: text('not found') },
  [Answer.unknownHost]: { status: '404 Not Found', type: TEXT, body: text('unknown host') },
  [Answer.notImplemented]: { status: '501 Not Implemented', type: TEXT, body: text('transfer coding not implemented') },
  [Answer.versionNotSupported]: { status: '505 HTTP Version Not Supported', type: TEXT, body: text('HTTP version not supported') },
  [Answer.malformedQuery]: { status: '400 Bad Request', type: TEXT, body: text('malformed query string') },
  [Answer.method]: { status: '405 Method Not Allowed', type: TEXT, body: text('method not allowed'), extra: 'Allow: GET, HEAD, POST, OPTIONS\r\n' },
  [Answer.timeout]: { status: '408 Request Timeout', type: TEXT, body: text('request timeout') },
  [Answer.uriTooLong]: { status: '414 URI Too Long', type: TEXT, body: text('request line too long') },
  [Answer.headerTooLarge]: { status: '431 Request Header Fields Too Large', type: TEXT, body: text('request head too large') },
  [Answer.internalError]: { status: '500 Internal Server Error', type: TEXT, body: text('internal error') },
  [Answer.unavailable]: { status: '503 Service Unavailable', type: TEXT, body: text('cannot store beacons now, retry later'), extra: `Retry-After: ${RETRY_AFTER_S}\r\n` },
};

const CONNECTION = ['', 'Connection: keep-alive\r\n', 'Connection: close\r\n'] as const;
/** Answers are numbered sparsely; the table has a slot for every number up to the largest. */
const ANSWERS = Math.max(...Object.values(Answer)) + 1;

export class ResponseTable {
  private table: Buffer[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.rebuild();
    this.timer = setInterval(() => this.rebuild(), 1000).unref();
  }

  get(answer: Answer, persistence: Persistence): Buffer {
    return this.table[answer * 3 + persistence]!;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private rebuild(): void {
    const date = `Date: ${new Date().toUTCString()}\r\n`;
    const table: Buffer[] = new Array<Buffer>(ANSWERS * 3);
    for (const answer of Object.values(Answer)) {
      const spec = SPECS[answer];
      for (let persistence = 0; persistence < 3; persistence++) {
        const head =
          `HTTP/1.1 ${spec.status}\r\n` +
          `Content-Type: ${spec.type}\r\n` +
          `Content-Length: ${spec.body.length}\r\n` +
          'Cache-Control: no-store\r\n' +
          (spec.extra ?? '') +
          date +
          CONNECTION[persistence]! +
          '\r\n';
        table[answer * 3 + persistence] = spec.headOnly ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), spec.body]);
      }
    }
    this.table = table;
  }
}
