/**
 * The reference for the differential tests: Node's own HTTP server
 * (node:http with insecureHTTPParser: false, i.e. llhttp in strict mode,
 * plus Node's own rule that HTTP/1.1 needs a Host) given the same bytes.
 *
 * The bytes are fed through an in-memory Duplex, so that thousands of cases
 * take a second, and so the pieces arrive exactly as split (TCP would
 * coalesce them). The outcome is about the first request head only.
 */
import * as http from 'node:http';
import { Duplex } from 'node:stream';

export type RefOutcome =
  | { kind: 'accept'; method: string; url: string; host: string | undefined }
  | { kind: 'reject'; code: string }
  | { kind: 'incomplete' };

const server = http.createServer({ insecureHTTPParser: false, requireHostHeader: true });
let current: ((outcome: RefOutcome) => void) | null = null;
const accepted = (req: http.IncomingMessage) => current?.({ kind: 'accept', method: req.method ?? '', url: req.url ?? '', host: req.headers.host });
server.on('request', accepted);
// Heads that Node hands to other events are parsed heads all the same.
server.on('checkContinue', accepted);
server.on('checkExpectation', accepted);
server.on('connect', accepted);
server.on('upgrade', accepted);
server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
  current?.({ kind: 'reject', code: err.code ?? 'ERR' });
  socket.destroy();
});

/** What node:http makes of `pieces`, written one after the other. */
export function reference(pieces: Buffer[]): Promise<RefOutcome> {
  return new Promise((resolve) => {
    let written = '';
    const settle = (outcome: RefOutcome) => {
      if (current === settle) current = null;
      else return;
      socket.destroy();
      resolve(outcome);
    };
    current = settle;
    const socket = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        written += chunk.toString('latin1');
        // Node answers some heads itself (400 for a missing Host) without an event.
        if (/^HTTP\/1\.1 4\d\d/.test(written)) settle({ kind: 'reject', code: written.slice(9, 12) });
        callback();
      },
    });
    Object.assign(socket, { remoteAddress: '127.0.0.1', remotePort: 1, setTimeout: () => socket, setNoDelay: () => socket, setKeepAlive: () => socket });
    server.emit('connection', socket);
    for (const piece of pieces) socket.push(piece);
    // Parsing happens as the pushed data is read: a few turns of the loop.
    setImmediate(() => setImmediate(() => setImmediate(() => settle({ kind: 'incomplete' }))));
  });
}
