/**
 * Request smuggling through the shipped HAProxy config
 * (packaging/haproxy/scratchd.cfg): classic desync shapes (CL.TE, TE.CL,
 * obfuscated Transfer-Encoding, a GET with a body) are sent to HAProxy, and
 * a recording proxy between HAProxy and scratchd keeps the bytes HAProxy
 * forwarded. node:http (llhttp, strict) splits those bytes into the requests
 * HAProxy sent; every beacon scratchd wrote must be one of them, each used
 * once: no request hidden in a body is ever recorded. The same shapes sent to
 * scratchd directly must not record a smuggled request either.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import { describe, test } from 'node:test';
import { haproxyAvailable, startHaproxy } from '../support/haproxy';
import { exchange } from '../support/http';
import { allLines, startScratchd, tempDir } from '../support/scratchd';

const HOST = 'www.skroutz.gr';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The attacks: each has an outer beacon (outer=ID) and a request hidden behind it (smuggled=ID). */
function attacks(): { id: string; raw: string }[] {
  const hidden = (id: string) => `GET /track?smuggled=${id} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
  const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n0\r\n\r\n`;
  const list: { id: string; raw: string }[] = [];
  const add = (id: string, fields: string, body: string, method = 'GET') =>
    list.push({ id, raw: `${method} /track?outer=${id} HTTP/1.1\r\nHost: ${HOST}\r\n${fields}\r\n${body}` });
  // CL.TE: a front end that trusts Content-Length forwards the hidden request as body; one that trusts TE ends the body at "0".
  add('cl-te', `Content-Length: ${5 + hidden('cl-te').length}\r\nTransfer-Encoding: chunked\r\n`, `0\r\n\r\n${hidden('cl-te')}`);
  add('cl-te-post', `Content-Length: ${5 + hidden('cl-te-post').length}\r\nTransfer-Encoding: chunked\r\n`, `0\r\n\r\n${hidden('cl-te-post')}`, 'POST');
  // TE.CL: the chunk holds the hidden request; Content-Length says the body ends before it.
  add('te-cl', 'Transfer-Encoding: chunked\r\nContent-Length: 4\r\n', chunk(hidden('te-cl')));
  // Obfuscated Transfer-Encoding, each with a Content-Length that would end the body early.
  const obfuscated: [string, string][] = [
    ['te-xchunked', 'Transfer-Encoding: xchunked'],
    ['te-space-colon', 'Transfer-Encoding : chunked'],
    ['te-tab', 'Transfer-Encoding:\tchunked'],
    ['te-vtab', 'Transfer-Encoding:\x0bchunked'],
    ['te-list', 'Transfer-Encoding: chunked, identity'],
    ['te-identity-chunked', 'Transfer-Encoding: identity, chunked'],
    ['te-twice', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: x'],
    ['te-fold', 'Transfer-Encoding:\r\n chunked'],
    ['te-leading-space', 'X: y\r\n Transfer-Encoding: chunked'],
    ['te-case', 'tRANSFER-eNCODING: cHUNKED'],
    ['te-quoted', 'Transfer-Encoding: "chunked"'],
    ['te-nul', 'Transfer-Encoding: chunked\x00'],
    ['te-cr', 'Transfer-Encoding: chunked\rX: y'],
  ];
  for (const [id, field] of obfuscated) add(id, `${field}\r\nContent-Length: 4\r\n`, chunk(hidden(id)));
  // Two Content-Lengths that disagree.
  add('cl-cl', `Content-Length: 0\r\nContent-Length: ${hidden('cl-cl').length}\r\n`, hidden('cl-cl'));
  // A GET with a body that is a request.
  add('get-body', `Content-Length: ${hidden('get-body').length}\r\n`, hidden('get-body'));
  return list;
}

/** A TCP proxy that keeps, per connection, every byte the client (HAProxy) sent. */
async function recordingProxy(targetPort: number): Promise<{ port: number; streams: Buffer[][]; close(): void }> {
  const streams: Buffer[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const stream: Buffer[] = [];
    streams.push(stream);
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (c: Buffer) => {
      stream.push(c);
      upstream.write(c);
    });
    upstream.on('data', (c: Buffer) => client.write(c));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    streams,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** The requests in a byte stream, as node:http (strict) reads them: "METHOD target" each. */
function requestsIn(stream: Buffer): Promise<string[]> {
  return new Promise((resolve) => {
    const found: string[] = [];
    const server = http.createServer({ insecureHTTPParser: false }, (req, res) => {
      found.push(`${req.method} ${req.url}`);
      req.resume();
      res.end();
    });
    server.on('clientError', (_err, socket: Duplex) => socket.destroy());
    const socket = new Duplex({ read() {}, write: (_c, _e, cb) => cb() });
    Object.assign(socket, { remoteAddress: '127.0.0.1', setTimeout: () => socket, setNoDelay: () => socket, setKeepAlive: () => socket });
    server.emit('connection', socket);
    socket.push(stream);
    setTimeout(() => resolve(found), 50);
  });
}

/** The queries of the beacons written ("outer=cl-te"), from each line's values. */
function writtenQueries(dir: string): string[] {
  return allLines(dir).map((line) => {
    const values = (JSON.parse(line) as { values: Record<string, string> }).values;
    return Object.entries(values).map(([k, v]) => `${k}=${v}`).join('&');
  });
}

describe('request smuggling through the shipped HAProxy config', haproxyAvailable, () => {
  test('every beacon scratchd writes is one HAProxy forwarded as a request; a request hidden in a body is never recorded', { timeout: 60_000 }, async (t) => {
    const app = await startScratchd({ config: { http: { trustForwardedFor: true } } });
    const recorder = await recordingProxy(app.port);
    const dir = tempDir('scratchd-smuggling-');
    const upstream = { port: recorder.port, adminPort: app.adminPort };
    const haproxy = await startHaproxy(dir, upstream, upstream);
    try {
      await haproxy.waitUp('primary');
      const answers: string[] = [];
      for (const attack of attacks()) {
        const reply = await exchange(haproxy.port, attack.raw, 700);
        answers.push(`${attack.id}: ${[...reply.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]).join(',') || '-'}`);
      }
      await sleep(300);
      assert.equal(await app.stop('SIGTERM'), 0, app.stderr());

      const forwarded: string[] = [];
      for (const stream of recorder.streams) forwarded.push(...(await requestsIn(Buffer.concat(stream))));
      // POST beacons are beacons too (their bodies here are empty: the query is all they record).
      const beacons = forwarded.filter((r) => r.startsWith('GET /track?') || r.startsWith('POST /track?'));
      const written = writtenQueries(app.dir);
      t.diagnostic(`answers seen by the client: ${answers.join('; ')}`);
      t.diagnostic(`HAProxy forwarded ${forwarded.length} requests (${beacons.length} beacons); scratchd wrote ${written.length}: ${written.join(', ')}`);

      // Each written beacon is a distinct forwarded request.
      const unused = beacons.map((r) => r.slice(r.indexOf('?') + 1));
      for (const query of written) {
        const at = unused.indexOf(query);
        assert.notEqual(at, -1, `scratchd wrote ${query}, which HAProxy did not forward as a request (forwarded: ${beacons.join(', ')})`);
        unused.splice(at, 1);
      }
      // The attacks did reach scratchd: some outer beacons were forwarded and written.
      assert.ok(written.some((q) => q.startsWith('outer=')), 'at least one outer beacon went through');
      assert.ok(!written.some((q) => q.startsWith('smuggled=') && !beacons.some((r) => r.endsWith(`/track?${q}`))));
    } finally {
      await haproxy.stop();
      recorder.close();
      await app.stop('SIGKILL');
    }
  });

  test('the same shapes sent to scratchd directly: no hidden request is recorded, each refused one closes the connection', { timeout: 30_000 }, async (t) => {
    const app = await startScratchd();
    try {
      const answers: string[] = [];
      for (const attack of attacks()) {
        const reply = await exchange(app.port, attack.raw, 700);
        const statuses = [...reply.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]!);
        answers.push(`${attack.id}: ${statuses.join(',')}`);
        assert.equal(statuses.length, 1, `${attack.id}: one answer, for the outer request only (${statuses.join(',')})`);
        assert.equal(reply.closed, true, `${attack.id}: the connection is closed after a request with a body or a refused head`);
      }
      t.diagnostic(answers.join('; '));
      assert.equal(await app.stop('SIGTERM'), 0, app.stderr());
      const written = writtenQueries(app.dir);
      assert.deepEqual(written.filter((q) => q.startsWith('smuggled=')), []);
      // Only the plain GET with a Content-Length body is a beacon scratchd takes (and then closes).
      assert.deepEqual(written, ['outer=get-body']);
    } finally {
      await app.stop('SIGKILL');
    }
  });
});
