/**
 * Graphite push (src/graphite.ts): the rendering and the config section, then
 * the real CLI against a real Carbon (carbon-cache from PyPI, test/support/carbon.ts),
 * values read back from its Whisper files; Carbon down, up, killed and up
 * again: counted reconnects, every number arrives, beacons never wait.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { parseConfig } from '../src/config/load';
import { GraphitePusher, MAX_PENDING_BYTES, render, resolveGraphite } from '../src/graphite';
import { carbonAvailable, startCarbon, type RunningCarbon } from './support/carbon';
import { unusedPortBelowEphemeral } from './support/ports';
import { request } from './support/http';
import { startScratchd, tempDir, type Running } from './support/scratchd';

const FLAVORS = [{ name: 'skroutz', hosts: ['www.skroutz.gr'], timezone: 'Europe/Athens' }];

describe('render: a snapshot as Carbon plaintext lines', () => {
  test('numbers and booleans become paths under the prefix; strings are left out; names are made path-safe', () => {
    const lines = render('p.host', { version: '1.0', ready: true, requests: { tracked: 3 }, backends: { 'file x': { dropped_by_reason: { queue_full: 0 } } }, bad: NaN }, 1700000000);
    assert.deepEqual(lines, ['p.host.ready 1 1700000000', 'p.host.requests.tracked 3 1700000000', 'p.host.backends.file_x.dropped_by_reason.queue_full 0 1700000000']);
  });
});

describe('the graphite config section', () => {
  const parse = (graphite: unknown) => parseConfig({ flavors: FLAVORS, graphite }, '/etc/scratchd/config.json');

  test('absent: null (no push)', () => {
    assert.equal(parseConfig({ flavors: FLAVORS }, '/etc/scratchd/config.json').graphite, null);
  });

  test('defaults: prefix scratchd.{host} with the short host name, every 10 s', () => {
    assert.deepEqual(resolveGraphite({ address: 'carbon.lan:2003', prefix: 'scratchd.{host}', intervalMs: 10_000 }, [], 'web-1.dc.example'), {
      host: 'carbon.lan',
      port: 2003,
      prefix: 'scratchd.web-1',
      intervalMs: 10_000,
    });
    const config = parse({ address: '[::1]:2003' });
    assert.equal(config.graphite?.host, '::1');
    assert.equal(config.graphite?.intervalMs, 10_000);
    assert.match(config.graphite?.prefix ?? '', /^scratchd\.[A-Za-z0-9_-]+$/);
  });

  for (const [graphite, message] of [
    [{}, /graphite\.address: required/],
    [{ address: 'carbon' }, /graphite\.address: "carbon" is not "host:port"/],
    [{ address: 'carbon:0' }, /graphite\.address: "carbon:0" is not "host:port"/],
    [{ address: 'c:2003', prefix: 'a..b' }, /graphite\.prefix/],
    [{ address: 'c:2003', prefix: 'a.{flavor}' }, /graphite\.prefix: unknown placeholder \{flavor\}/],
    [{ address: 'c:2003', intervalMs: 10 }, /graphite\.intervalMs/],
    [{ address: 'c:2003', interval: 10 }, /graphite\.interval: unknown key/],
  ] as const) {
    test(`${JSON.stringify(graphite)} is refused: ${String(message)}`, () => {
      assert.throws(() => parse(graphite), message);
    });
  }
});

describe('a Carbon that accepts but does not read', () => {
  test('pushes stop at MAX_PENDING_BYTES queued, are counted as dropped, and the event loop keeps its pace', { timeout: 30_000 }, async () => {
    // A server that never reads: the kernel buffers fill, then the socket's own queue.
    const sockets: net.Socket[] = [];
    const server = net.createServer((socket) => (socket.pause(), sockets.push(socket)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    // A snapshot of 20,000 numbers: ~0.6 MB a push, so the buffers fill in seconds, not minutes.
    const big = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i]));
    const pusher = new GraphitePusher({ host: '127.0.0.1', port, prefix: 'p', intervalMs: 100 }, () => big);
    let ticks = 0;
    let worstGapMs = 0;
    let last = performance.now();
    const probe = setInterval(() => {
      const now = performance.now();
      worstGapMs = Math.max(worstGapMs, now - last);
      last = now;
      ticks++;
    }, 10);
    try {
      pusher.start();
      const deadline = Date.now() + 20_000;
      while (pusher.counters.dropped_backlog < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const { pushes, dropped_backlog: dropped, connects } = pusher.counters;
      assert.equal(connects, 1);
      assert.ok(dropped >= 3, `pushes dropped while Carbon did not read (${dropped}; ${pushes} written)`);
      assert.ok(pushes >= 2, `pushes were written until the queue passed ${MAX_PENDING_BYTES} bytes (${pushes})`);
      // Rendering 20,000 lines takes a few ms; a push that waited for the socket would stall this 10 ms timer for seconds.
      assert.ok(worstGapMs < 1_000, `the event loop was never held (worst timer gap ${Math.round(worstGapMs)} ms over ${ticks} ticks)`);
    } finally {
      clearInterval(probe);
      await pusher.stop();
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });
});

const PREFIX = 'test.scratchd';

async function beacons(server: Running, count: number, agent: http.Agent, tag: string): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const reply = await request(server.port, 'www.skroutz.gr', `/track?run=${tag}&i=${i}`, { agent });
    latencies.push(performance.now() - started);
    assert.equal(reply.status, 200);
  }
  return latencies;
}

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.floor(sorted.length * 0.99)]! * 100) / 100;
}

describe('pushing to a real Carbon (carbon-cache, Whisper files)', carbonAvailable, () => {
  test('every interval, the /stats numbers arrive under the prefix', { timeout: 60_000 }, async () => {
    const dir = tempDir('scratchd-graphite-');
    const carbon = await startCarbon(path.join(dir, 'carbon'));
    let server: Running | null = null;
    const agent = new http.Agent({ keepAlive: true });
    try {
      server = await startScratchd({ config: { flavors: FLAVORS, graphite: { address: `127.0.0.1:${carbon.port}`, prefix: PREFIX, intervalMs: 200 } } });
      await beacons(server, 30, agent, 'a');
      for (let i = 0; i < 4; i++) assert.equal((await request(server.port, 'nobody.example', '/track?x=1')).status, 404);
      await carbon.waitFor(`${PREFIX}.requests.tracked`, (v) => v === 30);
      await carbon.waitFor(`${PREFIX}.backends.file.written`, (v) => v === 30);
      const stats = await server.stats();
      assert.equal(carbon.latest(`${PREFIX}.requests.unknown_flavor`), stats.requests.unknown_flavor);
      assert.equal(stats.requests.unknown_flavor, 4);
      assert.equal(carbon.latest(`${PREFIX}.flavors.skroutz.tracked`), 30);
      assert.equal(carbon.latest(`${PREFIX}.ready`), 1);
      assert.ok((carbon.latest(`${PREFIX}.runtime.rss`) ?? 0) > 1e6, 'runtime gauges too');
      assert.equal(carbon.latest(`${PREFIX}.graphite.connects`), 1);
      assert.equal(carbon.latest(`${PREFIX}.graphite.connect_failures`), 0);
      assert.ok((carbon.latest(`${PREFIX}.graphite.pushes`) ?? 0) >= 2);
      // The pusher's counters are in /stats and /metrics too.
      assert.equal(stats.graphite?.connects, 1);
      assert.ok((stats.graphite?.pushes ?? 0) >= 2, JSON.stringify(stats.graphite));
      const metrics = (await request(server.adminPort, '127.0.0.1', '/metrics')).body.toString('utf8');
      assert.match(metrics, /^scratchd_graphite_total\{event="connects"\} 1$/m);
      assert.match(metrics, /^scratchd_graphite_total\{event="dropped_backlog"\} 0$/m);
    } finally {
      agent.destroy();
      await server?.stop('SIGTERM');
      await carbon.stop();
    }
  });

  test('Carbon down, up, killed, up again: reconnects are counted, numbers arrive, beacons do not wait', { timeout: 60_000 }, async (t) => {
    const dir = tempDir('scratchd-graphite-');
    const port = await unusedPortBelowEphemeral();
    let carbon: RunningCarbon | null = null;
    let server: Running | null = null;
    const agent = new http.Agent({ keepAlive: true });
    try {
      server = await startScratchd({ config: { flavors: FLAVORS, graphite: { address: `127.0.0.1:${port}`, prefix: PREFIX, intervalMs: 200 } } });
      // Carbon down: connections refused; the pushes are dropped and counted.
      const baseline = await beacons(server, 200, agent, 'down');
      await server.waitForLog(/^graphite: warning: cannot connect to 127\.0\.0\.1:\d+ failed \(connect ECONNREFUSED/);
      carbon = await startCarbon(path.join(dir, 'carbon'), port);
      await carbon.waitFor(`${PREFIX}.requests.tracked`, (v) => v === 200);
      const failures = await carbon.waitFor(`${PREFIX}.graphite.connect_failures`, (v) => v >= 2);
      assert.ok((carbon.latest(`${PREFIX}.graphite.dropped_disconnected`) ?? 0) >= 2, 'pushes while Carbon was down were dropped, counted');
      await server.waitForLog(/^graphite: connected to 127\.0\.0\.1:\d+ after \d+ failed attempts/);

      // Carbon killed (kill -9) while connected, beacons go on, Carbon comes back on the same storage.
      await carbon.stop();
      const meanwhile = await beacons(server, 200, agent, 'killed');
      carbon = await startCarbon(path.join(dir, 'carbon'), port);
      await carbon.waitFor(`${PREFIX}.requests.tracked`, (v) => v === 400);
      await carbon.waitFor(`${PREFIX}.graphite.disconnects`, (v) => v >= 1);
      assert.equal(carbon.latest(`${PREFIX}.graphite.connects`), 2);
      t.diagnostic(`connect failures while down: ${failures}; beacon p99 ${p99(baseline)} ms while Carbon refused, ${p99(meanwhile)} ms after it was killed`);
      // A push that blocked the event loop (a synchronous connect, a wait for
      // Carbon) would show here as a beacon waiting for it; on a busy shared
      // CPU single beacons can still take tens of ms, hence the loose bound.
      for (const [name, latencies] of [['down', baseline], ['killed', meanwhile]] as const) {
        assert.ok(Math.max(...latencies) < 500, `no beacon waited for Carbon (${name}: max ${Math.round(Math.max(...latencies))} ms)`);
      }
      assert.equal((await server.stats()).requests.tracked, 400);
    } finally {
      agent.destroy();
      await server?.stop('SIGTERM');
      await carbon?.stop();
    }
  });
});
