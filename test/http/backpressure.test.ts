/**
 * The public server's backpressure (src/http/backpressure.ts) over real
 * sockets, with a backend budget the test fills and empties: above the high
 * mark nothing is read (answers wait, on old and new connections alike),
 * below the low mark everything waiting is answered in order; paused past
 * http.blockTimeoutMs, beacons are answered 503 with Retry-After.
 */
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { describe, test } from 'node:test';
import type { WhenFull } from '../../src/backends/backend';
import type { HttpConfig } from '../../src/config/types';
import { Budget } from '../../src/io/bounded-queue';
import { Backpressure, Pressure } from '../../src/http/backpressure';
import { Answer } from '../../src/http/responses';
import { PublicServer } from '../../src/http/server';
import { ConnectionCounters, RequestCounters } from '../../src/telemetry';

const CONFIG: HttpConfig = {
  path: '/track',
  maxConnections: 100,
  headersTimeoutMs: 300,
  keepAliveTimeoutMs: 400,
  maxRequestLineBytes: 8192,
  maxHeaderBytes: 16384,
  maxBodyBytes: 65_536,
  maxBatch: 100,
  bodyTimeoutMs: 10_000,
  trustForwardedFor: false,
  backpressureHighPercent: 50,
  backpressureLowPercent: 25,
  blockTimeoutMs: 60_000,
  threadStallMs: 3_000,
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A backend's budget of 1000 bytes; each beacon the handler sees charges 100 of it. */
async function start(config: Partial<HttpConfig> = {}, whenFull: WhenFull = 'block') {
  const held = new Budget(Infinity, 1000);
  const seen: string[] = [];
  const requests = new RequestCounters();
  const server = new PublicServer(
    { ...CONFIG, ...config },
    {
      track(_isHead, query) {
        seen.push(query);
        held.charge(1, 100);
        return Answer.gif;
      },
    },
    requests,
    new ConnectionCounters(),
    [{ held, whenFull }],
  );
  const address = await server.listen({ kind: 'address', host: '127.0.0.1', port: 0 });
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  return { server, port, held, seen, requests, stop: () => server.drain(Date.now() + 1000, 0) };
}

/** A connection that collects every status line it receives. */
function client(port: number) {
  const socket = net.connect({ port, host: '127.0.0.1' });
  const statuses: number[] = [];
  let text = '';
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    statuses.length = 0;
    for (const m of text.matchAll(/HTTP\/1\.1 (\d{3}) /g)) statuses.push(Number(m[1]));
  });
  socket.on('error', () => undefined);
  const send = (...queries: string[]) => socket.write(queries.map((q) => `GET /track?${q} HTTP/1.1\r\nHost: a\r\n\r\n`).join(''));
  return { socket, statuses, send };
}

async function until(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('backpressure in the public server', () => {
  test('above the high mark nothing is read; below the low mark everything waiting is answered, in order', async () => {
    const s = await start();
    const a = client(s.port);
    try {
      // 8 pipelined beacons in one write: the 5th reaches 500 bytes (50 %), so reading stops after it.
      a.send(...Array.from({ length: 8 }, (_, i) => `a=${i}`));
      await until(() => a.statuses.length === 5);
      assert.equal(s.server.pressure.state, Pressure.paused);
      assert.equal(s.server.pressure.ready, true, 'ready until half the block timeout');
      // A new connection is accepted but not read.
      const b = client(s.port);
      b.send('b=0');
      await sleep(300); // past headersTimeoutMs and keepAliveTimeoutMs: waiting is not the client's fault
      assert.deepEqual(s.seen, ['a=0', 'a=1', 'a=2', 'a=3', 'a=4']);
      assert.equal(a.statuses.length, 5);
      assert.equal(b.statuses.length, 0);
      // Down to 300 bytes: still above the low mark (250).
      s.held.release(2, 200);
      await sleep(50);
      assert.equal(s.seen.length, 5);
      // Down to 0: reading starts again, the rest of a's chunk first (then 400 bytes: below the high mark).
      s.held.release(3, 300);
      await until(() => a.statuses.length === 8 && b.statuses.length === 1);
      assert.deepEqual(s.seen.slice(0, 8), ['a=0', 'a=1', 'a=2', 'a=3', 'a=4', 'a=5', 'a=6', 'a=7']);
      assert.deepEqual([...a.statuses, ...b.statuses], Array(9).fill(200));
      assert.equal(s.server.pressure.pauses >= 1, true);
      b.socket.destroy();
    } finally {
      a.socket.destroy();
      await s.stop();
    }
  });

  test('paused past http.blockTimeoutMs: beacons are answered 503 with Retry-After, unread by the handler; open again below the low mark', async () => {
    const s = await start({ blockTimeoutMs: 200 });
    const a = client(s.port);
    try {
      a.send(...Array.from({ length: 7 }, (_, i) => `a=${i}`));
      await until(() => a.statuses.length === 7, 3000);
      assert.equal(s.server.pressure.state, Pressure.refusing);
      assert.equal(s.server.pressure.ready, false);
      assert.deepEqual(a.statuses, [200, 200, 200, 200, 200, 503, 503]);
      assert.equal(s.seen.length, 5, 'the refused beacons never reached the handler');
      assert.equal(s.requests.unavailable, 2);
      assert.equal(s.server.pressure.refusals, 1);
      const answer = await rawExchange(s.port, 'GET /track?x=1 HTTP/1.1\r\nHost: a\r\n\r\n');
      assert.match(answer, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
      assert.match(answer, /\r\nRetry-After: \d+\r\n/);
      s.held.release(5, 500);
      await until(() => s.server.pressure.state === Pressure.open);
      assert.equal(s.server.pressure.ready, true);
      a.send('a=7');
      await until(() => a.statuses.length === 8);
      assert.equal(a.statuses[7], 200);
    } finally {
      a.socket.destroy();
      await s.stop();
    }
  });

  test('a backend configured to drop (whenFull "drop_newest") never stops reading', async () => {
    const s = await start({}, 'drop_newest');
    const a = client(s.port);
    try {
      a.send(...Array.from({ length: 20 }, (_, i) => `a=${i}`));
      await until(() => a.statuses.length === 20);
      assert.equal(s.server.pressure.pauses, 0);
    } finally {
      a.socket.destroy();
      await s.stop();
    }
  });

  test('draining while paused answers what waits (503) instead of cutting it at the deadline', async () => {
    const s = await start();
    const a = client(s.port);
    a.send(...Array.from({ length: 7 }, (_, i) => `a=${i}`));
    await until(() => a.statuses.length === 5);
    const drained = s.server.drain(Date.now() + 2000, 0);
    await until(() => a.statuses.length === 7);
    assert.deepEqual(a.statuses.slice(5), [503, 503]);
    await drained;
    a.socket.destroy();
  });
});

function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' }, () => socket.write(text));
    let answer = '';
    socket.on('data', (c: Buffer) => {
      answer += c.toString('latin1');
      if (answer.includes('\r\n\r\n')) {
        socket.destroy();
        resolve(answer);
      }
    });
    socket.on('error', reject);
  });
}

describe('Backpressure with workers > 1 (the main thread)', () => {
  test('lines the HTTP threads have in flight count as held by every watched backend; listeners hear every change', async () => {
    const held = new Budget(Infinity, 1000);
    const seen: Pressure[] = [];
    const pressure = new Backpressure([{ held, whenFull: 'block' }], CONFIG, () => undefined);
    const inFlight = { items: 0, bytes: 0 };
    pressure.countInFlight(inFlight);
    pressure.onChange((state) => seen.push(state));
    held.charge(1, 300);
    assert.equal(pressure.over(), false, '300 of 1000: below the high mark (500)');
    inFlight.bytes = 200;
    assert.equal(pressure.over(), true, '300 held + 200 in flight reach the high mark');
    pressure.engage();
    held.release(1, 300);
    inFlight.bytes = 0;
    // The low mark is awaited on the budgets (event-driven): the release above resolves it.
    for (let i = 0; i < 50 && pressure.state !== Pressure.open; i++) await sleep(5);
    assert.equal(pressure.state, Pressure.open);
    assert.deepEqual(seen, [Pressure.paused, Pressure.open]);
  });
});
