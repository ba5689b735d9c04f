/**
 * The real CLI as a child process: beacons in over real sockets, lines read
 * back from the files it wrote, stats from its admin port.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { queryToJson } from '../../src/query';
import { EMPTY_GIF } from '../../src/http/responses';
import { exchange, beaconHead, request, statuses } from '../support/http';
import { allLines, readLines, startScratchd, type Running } from '../support/scratchd';

/** Local date and offset of an instant in a timezone, computed independently of src/clock.ts. */
function localDate(ms: number, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(ms);
}

describe('serve: tracking beacons into files', () => {
  let app: Running;
  before(async () => {
    app = await startScratchd();
  });
  after(async () => {
    await app.stop();
  });

  test('a beacon per flavor lands in its flavor/date file with the legacy JSON', async () => {
    const cases = [
      { host: 'www.skroutz.gr', flavor: 'skroutz', tz: 'Europe/Athens', query: 'foo=bar&a[]=1&a[]=2&b[c]=d' },
      { host: 'WWW.ALVE.COM:8080', flavor: 'alve', tz: 'Europe/Istanbul', query: 'b=1&2=x&page=https%3A%2F%2Fwww.alve.com%2F%3Fq%3D1' },
      { host: 'www.scrooge.co.uk', flavor: 'scrooge', tz: 'Europe/London', query: 'items[][id]=1&items[][qty]=2&items[][id]=3&flag' },
    ];
    for (const c of cases) {
      const before = Date.now();
      const reply = await request(app.port, c.host, `/track?${c.query}`);
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['content-type'], 'image/gif');
      assert.equal(reply.headers['cache-control'], 'no-store');
      assert.deepEqual(reply.body, EMPTY_GIF);
      await waitFor(() => readLines(app.logFile(c.flavor, localDate(before, c.tz))).length > 0);
      const [line] = readLines(app.logFile(c.flavor, localDate(before, c.tz)));
      const match = /^\{"flavor":"(\w+)","time":"([^"]+)","values":(.*)\}$/.exec(line!);
      assert.ok(match, line);
      assert.equal(match[1], c.flavor);
      assert.equal(match[3], queryToJson(c.query));
      assert.match(match[2]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$/);
      const stamped = Date.parse(match[2]!);
      assert.ok(stamped >= before - 1 && stamped <= Date.now() + 1, `time ${match[2]} is the receive time`);
      assert.equal(match[2]!.slice(0, 10), localDate(stamped, c.tz));
    }
  });

  test('the process is named scratchd (top, ps -C), not MainThread as Node 24 names it', { skip: process.platform !== 'linux' }, () => {
    assert.equal(fs.readFileSync(`/proc/${app.proc.pid}/comm`, 'utf8'), 'scratchd\n');
  });

  test('HEAD answers the GIF headers and records nothing', async () => {
    await settled(app);
    const lines = allLines(app.dir).length;
    const reply = await request(app.port, 'www.skroutz.gr', '/track?head=1', { method: 'HEAD' });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['content-length'], '43');
    assert.equal(reply.headers['content-type'], 'image/gif');
    await settled(app);
    assert.equal(allLines(app.dir).length, lines);
    assert.ok(!allLines(app.dir).some((l) => l.includes('"head"')));
  });

  test('bad input gets a clear status, is counted, and writes nothing', async () => {
    await settled(app);
    const before = await app.stats();
    const lines = allLines(app.dir).length;
    assert.equal((await request(app.port, 'evil.example', '/track?a=1')).status, 404);
    assert.equal((await request(app.port, 'www.skroutz.gr', '/track?a=1&a[]=2')).status, 400);
    assert.equal((await request(app.port, 'www.skroutz.gr', '/track?a=%zz')).status, 400);
    assert.equal((await request(app.port, 'www.skroutz.gr', '/track?a=%ff')).status, 400);
    const put = await request(app.port, 'www.skroutz.gr', '/track?a=1', { method: 'PUT' });
    assert.equal(put.status, 405);
    assert.equal(put.headers.allow, 'GET, HEAD, POST, OPTIONS');
    assert.equal((await request(app.port, 'www.skroutz.gr', '/other?a=1')).status, 404);
    assert.equal((await request(app.port, 'www.skroutz.gr', '/trackx?a=1')).status, 404);
    const long = await exchange(app.port, beaconHead('www.skroutz.gr', `a=${'x'.repeat(9000)}`));
    assert.deepEqual(statuses(long.text), ['414']);
    assert.ok(long.closed);
    const noHost = await exchange(app.port, 'GET /track?a=1 HTTP/1.1\r\n\r\n');
    assert.deepEqual(statuses(noHost.text), ['400']);
    const garbage = await exchange(app.port, 'hello there\r\n\r\n');
    assert.deepEqual(statuses(garbage.text), ['400']);
    await settled(app);
    const stats = await app.stats();
    const delta = (key: string) => stats.requests[key]! - before.requests[key]!;
    assert.equal(delta('unknown_flavor'), 1);
    assert.equal(delta('malformed'), 3);
    assert.equal(delta('method'), 1);
    assert.equal(delta('not_found'), 2);
    assert.equal(delta('uri_too_long'), 1);
    assert.equal(delta('bad_request'), 2);
    assert.equal(delta('tracked'), 0);
    assert.equal(allLines(app.dir).length, lines);
  });

  test('keep-alive and pipelined requests are answered in order on one connection', async () => {
    const heads = ['q=1', 'q=2', 'q=%zz', 'q=4'].map((q) => beaconHead('www.skroutz.gr', q)).join('');
    const result = await exchange(app.port, heads, 500);
    assert.deepEqual(statuses(result.text), ['200', '200', '400', '200']);
    assert.equal(result.closed, false, 'keep-alive connection stays open');
    const http10 = await exchange(app.port, 'GET /track?q=10 HTTP/1.0\r\nHost: www.skroutz.gr\r\n\r\n');
    assert.deepEqual(statuses(http10.text), ['200']);
    assert.ok(http10.closed, 'HTTP/1.0 without keep-alive is closed');
    // A head split across packets is reassembled.
    const split = await new Promise<string>((resolve) => {
      const socket = net.connect(app.port, '127.0.0.1', () => {
        const head = beaconHead('www.skroutz.gr', 'split=1', 'Connection: close\r\n');
        socket.write(head.slice(0, 10));
        setTimeout(() => socket.write(head.slice(10, 30)), 50);
        setTimeout(() => socket.write(head.slice(30)), 100);
      });
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
      socket.on('end', () => resolve(text));
    });
    assert.deepEqual(statuses(split), ['200']);
    await waitFor(() => allLines(app.dir).some((l) => l.includes('"split":"1"')));
  });

  test('/stats, /metrics, /health and /ready on the admin port only', async () => {
    const stats = await app.stats();
    for (const key of ['tracked', 'malformed', 'unknown_flavor', 'method', 'duplicate', 'malicious']) assert.equal(typeof stats.requests[key], 'number', key);
    for (const key of ['queued', 'written', 'errors', 'dropped']) assert.equal(typeof stats.backends.file![key], 'number', key);
    assert.ok(stats.backends.file!.written! >= 3);
    for (const key of ['rss', 'heap_used', 'event_loop_delay_p99_ms']) assert.equal(typeof stats.runtime[key], 'number', key);
    for (const key of ['count', 'pause_total_ms', 'pause_max_ms']) assert.equal(typeof stats.runtime.gc[key], 'number', key);
    assert.equal(stats.ready, true);
    const metrics = await (await fetch(`http://127.0.0.1:${app.adminPort}/metrics`)).text();
    assert.match(metrics, /^scratchd_requests_total\{outcome="tracked"\} \d+$/m);
    assert.match(metrics, new RegExp(`^scratchd_backend_written_total\\{backend="file"\\} ${stats.backends.file!.written}$`, 'm'));
    assert.match(metrics, /^scratchd_tracked_total\{flavor="skroutz"\} \d+$/m);
    assert.match(metrics, /^process_resident_memory_bytes \d+/m);
    assert.equal((await fetch(`http://127.0.0.1:${app.adminPort}/health`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${app.adminPort}/ready`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${app.adminPort}/nope`)).status, 404);
    // The public port does not serve admin paths.
    assert.equal((await request(app.port, 'www.skroutz.gr', '/stats')).status, 404);
  });
});

describe('serve: limits and timeouts', () => {
  test('stalled heads get 408, idle keep-alive is closed, connections are bounded', async () => {
    const app = await startScratchd({ config: { http: { headersTimeoutMs: 300, keepAliveTimeoutMs: 300, maxConnections: 4 } } });
    try {
      const stalled = await exchange(app.port, 'GET /track?a=1 HTTP/1.1\r\nHost: www.sk', 3000);
      assert.deepEqual(statuses(stalled.text), ['408']);
      assert.ok(stalled.closed);
      const idle = await exchange(app.port, beaconHead('www.skroutz.gr', 'a=1'), 3000);
      assert.deepEqual(statuses(idle.text), ['200']);
      assert.ok(idle.closed, 'idle keep-alive connection closed by the server');

      const sockets = await Promise.all(Array.from({ length: 8 }, () => openSocket(app.port)));
      await sleep(200);
      const alive = sockets.filter((s) => !s.destroyed && s.readyState === 'open');
      const stats = await app.stats();
      assert.equal(stats.connections.rejected, 4);
      assert.ok(alive.length <= 8);
      for (const s of sockets) s.destroy();
      assert.equal(stats.requests.timeout, 1);
    } finally {
      await app.stop();
    }
  });
});

describe('serve: sanity checks', () => {
  test('duplicates within the window and clients over the rate are answered, counted, not persisted', async () => {
    const app = await startScratchd({ config: { checks: { duplicateWindowMs: 60_000, maxPerMinute: 5 } } });
    try {
      assert.equal((await request(app.port, 'www.skroutz.gr', '/track?page=1')).status, 200);
      assert.equal((await request(app.port, 'www.skroutz.gr', '/track?page=1')).status, 200); // duplicate
      assert.equal((await request(app.port, 'www.alve.com', '/track?page=1')).status, 200); // other flavor: not a duplicate
      for (let i = 2; i <= 6; i++) assert.equal((await request(app.port, 'www.skroutz.gr', `/track?page=${i}`)).status, 200);
      const stats = await app.stats();
      // skroutz: 7 requests from one client; the 6th and 7th are over 5 per minute.
      assert.equal(stats.requests.duplicate, 1);
      assert.equal(stats.requests.malicious, 2);
      assert.equal(stats.requests.tracked, 5);
      assert.equal(stats.checks.enabled, true);
      await waitFor(() => allLines(app.dir).length === 5);
    } finally {
      await app.stop();
    }
  });
});

describe('serve: config errors', () => {
  test('a bad config is refused before anything listens', async () => {
    // startScratchd resolves at "http: listening on": a rejection carrying exit 78,
    // with no such line in the stderr it quotes, is a refusal before listening.
    await assert.rejects(
      startScratchd({ config: { listen: '127.0.0.1:0', flavors: [{ name: 'x', hosts: ['x.com'], timezone: 'Mars/Olympus' }] } }),
      (err: Error) => {
        assert.match(err.message, /flavors\[0\]\.timezone: unknown timezone "Mars\/Olympus"[\s\S]*exited \(78\)|exited \(78\)[\s\S]*Mars/);
        assert.doesNotMatch(err.message, /^(?:http|admin): listening on /m);
        return true;
      },
    );
  });
});

describe('serve: stop and reopen without losing a line', () => {
  test('SIGTERM with requests in flight: every answered beacon is on disk, exit 0', async () => {
    const app = await startScratchd();
    const connections = 20;
    const perConnection = 100;
    // Every request is on the wire (connected, written) before the signal.
    const sockets = await Promise.all(Array.from({ length: connections }, () => openSocket(app.port)));
    const replies = sockets.map((socket, c) => {
      const heads = Array.from({ length: perConnection }, (_, i) => beaconHead('www.skroutz.gr', `c=${c}&i=${i}`)).join('');
      return collect(socket, heads);
    });
    await Promise.all(replies.map((r) => r.written));
    app.proc.kill('SIGTERM');
    const texts = await Promise.all(replies.map((r) => r.text));
    const code = await app.exited;
    assert.equal(code, 0, app.stderr());
    const answered = texts.reduce((n, text) => n + statuses(text).filter((s) => s === '200').length, 0);
    const lines = allLines(app.dir);
    assert.equal(lines.length, answered, 'one line per 200');
    assert.equal(answered, connections * perConnection, 'every request already sent was answered');
    assert.equal(new Set(lines).size, lines.length);
    assert.match(app.stderr(), /file: \d+ lines written, 0 dropped/);
  });

  test('/ready answers 503 while draining, /health stays 200', async () => {
    const app = await startScratchd({ config: { shutdown: { idleCloseGraceMs: 1500, drainTimeoutMs: 5000 } } });
    const idle = await openSocket(app.port); // an idle keep-alive connection keeps the drain going
    assert.equal((await fetch(`http://127.0.0.1:${app.adminPort}/ready`)).status, 200);
    app.proc.kill('SIGTERM');
    await app.waitForLog(/stopping: finishing requests/);
    assert.equal((await fetch(`http://127.0.0.1:${app.adminPort}/ready`)).status, 503);
    assert.equal((await fetch(`http://127.0.0.1:${app.adminPort}/health`)).status, 200);
    assert.equal(await app.exited, 0);
    assert.ok(idle.destroyed || idle.readableEnded || (await new Promise((r) => idle.on('close', r))) !== undefined);
  });

  test('SIGHUP reopens files that were moved away', async () => {
    const app = await startScratchd();
    try {
      const date = localDate(Date.now(), 'Europe/Athens');
      const file = app.logFile('skroutz', date);
      for (let i = 0; i < 5; i++) assert.equal((await request(app.port, 'www.skroutz.gr', `/track?before=${i}`)).status, 200);
      await waitFor(() => readLines(file).length === 5);
      fs.renameSync(file, `${file}.1`);
      app.proc.kill('SIGHUP');
      await app.waitForLog(/reopened .*skroutz/);
      for (let i = 0; i < 7; i++) assert.equal((await request(app.port, 'www.skroutz.gr', `/track?after=${i}`)).status, 200);
      await waitFor(() => readLines(file).length === 7);
      assert.equal(readLines(`${file}.1`).length, 5);
      assert.ok(readLines(file).every((l) => l.includes('"after"')));
    } finally {
      assert.equal(await app.stop(), 0);
    }
  });
});

function openSocket(port: number): Promise<net.Socket> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', () => resolve(socket));
  });
}

/** Writes `data` and collects what comes back until the server closes. */
function collect(socket: net.Socket, data: string): { written: Promise<void>; text: Promise<string> } {
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  return {
    written: new Promise((resolve) => socket.write(data, () => resolve())),
    text: new Promise((resolve) => socket.on('close', () => resolve(text))),
  };
}

/** Until the file backend holds nothing (file.writeIntervalMs delays writes a little). */
async function settled(app: Running): Promise<void> {
  for (let i = 0; i < 250 && (await app.stats()).backends.file!.queued !== 0; i++) await sleep(20);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}
