/**
 * The public listener on real sockets, with a recording beacon handler: what
 * reaches the handler (host, query, client address) and what goes back on the
 * wire for the heads the parser refuses: every error answer closes the
 * connection, the same bytes get the same status however they arrive, and
 * empty lines between requests are not a head under way.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import type { HttpConfig } from '../../src/config/types';
import { PublicServer, type BeaconHandler, type ClientAddress } from '../../src/http/server';
import { Pressure } from '../../src/http/backpressure';
import { Answer } from '../../src/http/responses';
import { ConnectionCounters, RequestCounters } from '../../src/telemetry';
import { exchange, statuses } from '../support/http';

interface Call {
  isHead: boolean;
  query: string;
  host: string | undefined;
  address: string;
}

const BASE: HttpConfig = {
  path: '/track',
  maxConnections: 100,
  headersTimeoutMs: 300,
  keepAliveTimeoutMs: 3000,
  maxRequestLineBytes: 200,
  maxHeaderBytes: 1000,
  maxBodyBytes: 65_536,
  maxBatch: 100,
  bodyTimeoutMs: 10_000,
  trustForwardedFor: true,
  backpressureHighPercent: 50,
  backpressureLowPercent: 25,
  blockTimeoutMs: 5_000,
  threadStallMs: 3_000,
};

async function startServer(config: Partial<HttpConfig> = {}) {
  const calls: Call[] = [];
  const handler: BeaconHandler = {
    track(isHead: boolean, query: string, host: string | undefined, client: ClientAddress) {
      calls.push({ isHead, query, host, address: client.address() });
      return Answer.gif;
    },
  };
  const requests = new RequestCounters();
  const server = new PublicServer({ ...BASE, ...config }, handler, requests, new ConnectionCounters());
  const address = await server.listen({ kind: 'address', host: '127.0.0.1', port: 0 });
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  return { server, port, calls, requests, stop: () => server.drain(Date.now() + 1000, 0) };
}

/** Writes `pieces` one by one (each its own write after the previous was flushed and a pause), then collects until close or idle. */
function exchangePieces(port: number, pieces: (string | Buffer)[], idleMs = 800): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    let text = '';
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(false), idleMs);
    };
    const writeAll = async () => {
      for (const piece of pieces) {
        if (socket.destroyed) break;
        await new Promise<void>((r) => socket.write(piece, () => setTimeout(r, 2)));
      }
      arm();
    };
    socket.on('connect', () => void writeAll());
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      arm();
    });
    socket.on('end', () => finish(true));
    socket.on('error', (err) => (text !== '' ? finish(true) : reject(err)));
  });
}

const head = (target: string, fields = 'Host: www.skroutz.gr\r\n') => `GET ${target} HTTP/1.1\r\n${fields}\r\n`;

describe('PublicServer: what the handler sees', () => {
  let s: Awaited<ReturnType<typeof startServer>>;
  before(async () => (s = await startServer()));
  after(() => s.stop());

  test('an absolute-form target: the host and query come from the target (RFC 9112 §3.2.2)', async () => {
    s.calls.length = 0;
    const reply = await exchange(s.port, head('http://www.skroutz.gr/track?a=1', 'Host: other.example\r\nConnection: close\r\n'));
    assert.deepEqual(statuses(reply.text), ['200']);
    assert.deepEqual(s.calls.map((c) => [c.host, c.query]), [['www.skroutz.gr', 'a=1']]);
  });

  test('X-Forwarded-For: the last entry; an empty last entry falls back to the peer address', async () => {
    s.calls.length = 0;
    const reply = await exchange(
      s.port,
      head('/track?a=1', 'Host: h\r\nX-Forwarded-For: 203.0.113.7\r\n') +
        head('/track?a=2', 'Host: h\r\nX-Forwarded-For: 203.0.113.7,\r\n') +
        head('/track?a=3', 'Host: h\r\nX-Forwarded-For: 198.51.100.1\r\nX-Forwarded-For:\r\nConnection: close\r\n'),
    );
    assert.deepEqual(statuses(reply.text), ['200', '200', '200']);
    assert.deepEqual(s.calls.map((c) => c.address), ['203.0.113.7', '127.0.0.1', '127.0.0.1']);
  });
});

describe('PublicServer: refused heads are answered and the connection closed', () => {
  let s: Awaited<ReturnType<typeof startServer>>;
  before(async () => (s = await startServer()));
  after(() => s.stop());

  const cases: [why: string, raw: string, status: string][] = [
    ['HTTP/1.1 without Host', 'GET /track?a=1 HTTP/1.1\r\n\r\n', '400'],
    ['two Hosts', head('/track', 'Host: a\r\nHost: a\r\n'), '400'],
    ['Host: a:xyz', head('/track', 'Host: a:xyz\r\n'), '400'],
    ['NUL in the target', head('/track?a=\x00'), '400'],
    ['bare CR in a field name', head('/track', 'Host: a\r\nX\rForwarded\rFor: 1\r\n'), '400'],
    ['two Content-Lengths', head('/track', 'Host: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n'), '400'],
    ['Content-Length with Transfer-Encoding', head('/track', 'Host: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n'), '400'],
    ['a 23-digit Content-Length', head('/track', 'Host: a\r\nContent-Length: 12345678901234567890123\r\n'), '400'],
    ['Transfer-Encoding: xchunked', head('/track', 'Host: a\r\nTransfer-Encoding: xchunked\r\n'), '501'],
    ['HTTP/2.0', 'GET /track HTTP/2.0\r\nHost: a\r\n\r\n', '505'],
    ['a request line over the limit', head(`/track?${'a'.repeat(300)}`), '414'],
    ['a head over the limit', head('/track', `Host: a\r\nCookie: ${'c'.repeat(1200)}\r\n`), '431'],
  ];
  for (const [why, raw, status] of cases) {
    test(`${why} → ${status}, closed; the request behind it is not read`, async () => {
      const before = s.calls.length;
      const reply = await exchange(s.port, raw + head('/track?after=1'));
      assert.deepEqual(statuses(reply.text), [status]);
      assert.match(reply.text, /\r\nConnection: close\r\n/);
      assert.equal(reply.closed, true);
      assert.equal(s.calls.length, before, 'nothing reached the handler');
    });
  }

  test('the same oversized request line gets the same status in one write and in 10-byte pieces', async () => {
    const raw = head(`/track?${'a'.repeat(300)}`);
    const whole = await exchange(s.port, raw);
    const pieces: string[] = [];
    for (let at = 0; at < raw.length; at += 10) pieces.push(raw.slice(at, at + 10));
    const split = await exchangePieces(s.port, pieces);
    assert.deepEqual(statuses(whole.text), ['414']);
    assert.deepEqual(statuses(split.text), ['414']);
    assert.equal(split.closed, true);
  });
});

describe('PublicServer: empty lines and slow heads', () => {
  test('a trailing CRLF after a request is not a head under way: no 408, the keep-alive timeout applies', async () => {
    const s = await startServer({ headersTimeoutMs: 100, keepAliveTimeoutMs: 2500 });
    try {
      // The sweeper looks once a second: 1.6 s is well past headersTimeoutMs, short of keepAliveTimeoutMs.
      const reply = await exchange(s.port, `${head('/track?a=1')}\r\n`, 1600);
      assert.deepEqual(statuses(reply.text), ['200']);
      assert.equal(reply.closed, false, 'still open: idle, not timed out');
      assert.equal(s.requests.timeout, 0);
    } finally {
      await s.stop();
    }
  });

  test('a head that stops half-way gets 408 after headersTimeoutMs', async () => {
    const s = await startServer({ headersTimeoutMs: 100, keepAliveTimeoutMs: 5000 });
    try {
      const reply = await exchange(s.port, 'GET /track?a=1 HTTP/1.1\r\nHo', 3000);
      assert.deepEqual(statuses(reply.text), ['408']);
      assert.equal(reply.closed, true);
      assert.equal(s.requests.timeout, 1);
    } finally {
      await s.stop();
    }
  });

  test('a head in 10-byte pieces, pipelined behind a complete one, is answered in order', async () => {
    const s = await startServer();
    try {
      const raw = head('/track?a=1') + head('/track?a=2', 'Host: www.skroutz.gr\r\nUser-Agent: x\r\nConnection: close\r\n');
      const pieces: string[] = [];
      for (let at = 0; at < raw.length; at += 10) pieces.push(raw.slice(at, at + 10));
      const reply = await exchangePieces(s.port, pieces);
      assert.deepEqual(statuses(reply.text), ['200', '200']);
      assert.equal(reply.closed, true);
      assert.deepEqual(s.calls.map((c) => c.query), ['a=1', 'a=2']);
    } finally {
      await s.stop();
    }
  });
});

describe('PublicServer: draining', () => {
  /** Opens a connection, starts drain(), then writes `raw` in one write; resolves with what came back. */
  async function whileDraining(raw: string): Promise<{ text: string; closed: boolean }> {
    const s = await startServer();
    const socket = net.connect(s.port, '127.0.0.1');
    await new Promise<void>((r) => socket.once('connect', () => r()));
    await new Promise((r) => setTimeout(r, 50));
    const drained = s.server.drain(Date.now() + 3000, 2000);
    await new Promise((r) => setTimeout(r, 20));
    const result = await new Promise<{ text: string; closed: boolean }>((resolve) => {
      let text = '';
      const timer = setTimeout(() => resolve({ text, closed: false }), 2500);
      socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
      socket.on('end', () => {
        clearTimeout(timer);
        resolve({ text, closed: true });
      });
      socket.write(raw);
    });
    socket.destroy();
    await drained;
    return result;
  }

  test('pipelined requests received while draining are all answered; only the last says "Connection: close"', async () => {
    const reply = await whileDraining(head('/track?a=1') + head('/track?a=2'));
    assert.deepEqual(statuses(reply.text), ['200', '200']);
    const answers = reply.text.split('HTTP/1.1 ').slice(1);
    assert.doesNotMatch(answers[0]!, /Connection: close/);
    assert.match(answers[1]!, /Connection: close/);
    assert.equal(reply.closed, true);
  });

  test('a refused head behind a good one while draining: both answered, the refusal closes', async () => {
    const reply = await whileDraining(head('/track?a=1') + head('/track', 'Host: a:xyz\r\n'));
    assert.deepEqual(statuses(reply.text), ['200', '400']);
    const answers = reply.text.split('HTTP/1.1 ').slice(1);
    assert.doesNotMatch(answers[0]!, /Connection: close/);
    assert.match(answers[1]!, /Connection: close/);
    assert.equal(reply.closed, true);
  });
});

describe('a pressure state read from elsewhere (an HTTP thread reads the owner\'s from shared memory)', () => {
  test('bytes held back by a pause are answered before bytes read after it, even when the state reads open before the server is told', async () => {
    let changed: (state: Pressure) => void = () => undefined;
    let pauseAfterFirst = true;
    // A gate like workers/shared-pressure.ts: its state can change without a call to the server.
    const gate = {
      state: Pressure.open as Pressure,
      active: true,
      over: () => pauseAfterFirst,
      engage() {
        pauseAfterFirst = false;
        gate.state = Pressure.paused;
        changed(Pressure.paused);
      },
      refuse: () => undefined,
    };
    const handler: BeaconHandler = { track: () => Answer.gif };
    const server = new PublicServer(BASE, handler, new RequestCounters(), new ConnectionCounters(), [], undefined, {
      connections: { open: () => true, close: () => undefined },
      makePressure: (c) => ((changed = c), gate),
    });
    const accepted = new Promise<net.Socket>((resolve) => server.server.once('connection', resolve));
    const address = await server.listen({ kind: 'address', host: '127.0.0.1', port: 0 });
    const client = net.connect({ port: Number(address.slice(address.lastIndexOf(':') + 1)), host: '127.0.0.1', noDelay: true });
    let text = '';
    client.on('data', (c: Buffer) => (text += c.toString('latin1')));
    try {
      const serverSide = await accepted;
      // /track?a is answered, then the gate pauses: /track?b waits in the server, read but not parsed.
      client.write(head('/track?a') + head('/track?b'));
      const deadline = Date.now() + 5000;
      while (statuses(text).length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      // The state reads open, the server is not told yet, and the socket is read again (as its 'drain' handler does).
      gate.state = Pressure.open;
      serverSide.resume();
      client.write(head('/nothing-here'));
      await new Promise((r) => setTimeout(r, 100));
      changed(Pressure.open);
      while (statuses(text).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      // In request order: /track?b before the later 404 (and no 400 from a request stream cut apart).
      assert.deepEqual(statuses(text), ['200', '200', '404']);
    } finally {
      client.destroy();
      await server.drain(Date.now() + 1000, 0);
    }
  });
});
