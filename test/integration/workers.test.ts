/**
 * `workers: 2` on the real CLI: the HTTP thread and the main thread both
 * serve (the kernel spreads connections over their listeners); every line
 * lands whole in one file per flavor and day, whichever thread answered it;
 * the duplicate check sees both threads' beacons; /stats adds both up right
 * after the answers; the same holds on a systemd socket; SIGTERM drains both.
 * A thread that crashes hands over every line it answered, is counted and
 * replaced (on a new descriptor for a systemd socket); one that keeps dying
 * stops scratchd with status 70; one that is stuck turns /ready 503, is
 * terminated and replaced, and what it held is counted as lost; one that
 * turns again loses nothing (faults injected for real through
 * SCRATCHD_TEST_HTTP_THREAD_FAULT, workers/http-thread.ts). The main
 * thread's own refusal (Kafka's spool) reaches the threads at once, and
 * workers.requests counts requests, not lines, on every loop.
 * (The other integration suites run with 2 workers too: test/run.js.)
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { request } from '../support/http';
import { cliPath } from '../support/paths';
import { hasCommand, needs } from '../support/requires';
import { allLines, FLAVORS, startScratchd, tempDir, writeConfig } from '../support/scratchd';
import { socketActivate } from '../support/socket-activate';

const WORKERS = { workers: 2 };

/** Sends `count` beacons, each on a connection of its own, `parallel` at a time; resolves with their statuses. */
async function beacons(port: number, count: number, query: (i: number) => string, parallel = 16): Promise<number[]> {
  const statuses: number[] = new Array<number>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        const i = next++;
        const flavor = FLAVORS[i % FLAVORS.length]!;
        statuses[i] = (await request(port, flavor.hosts[0]!, `/track?${query(i)}`)).status;
      }
    }),
  );
  return statuses;
}

interface WorkersStats {
  workers: {
    count: number;
    requests: number[];
    forwarded_lines: number;
    not_taken: number;
    deaths: number;
    stalls: number;
    restarts: number;
    lost_lines: number;
  };
}

/**
 * Like beacons(), for a server that loses a thread meanwhile: a connection
 * the dying thread held fails instead of being answered (null). Beacon i
 * carries n = first + i.
 */
async function beaconsOrFailures(port: number, count: number, first: number, parallel = 8): Promise<(number | null)[]> {
  const statuses: (number | null)[] = new Array<number | null>(count).fill(null);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        const i = next++;
        const n = first + i;
        const flavor = FLAVORS[n % FLAVORS.length]!;
        try {
          statuses[i] = (await request(port, flavor.hosts[0]!, `/track?n=${n}`, { timeoutMs: 10_000 })).status;
        } catch {
          statuses[i] = null;
        }
      }
    }),
  );
  return statuses;
}

/** The `n` of every line on disk. */
function numbersOnDisk(dir: string): Set<number> {
  return new Set(allLines(dir).map((line) => Number((JSON.parse(line) as { values: { n: string } }).values.n)));
}

const answered = (statuses: (number | null)[], first: number): number[] =>
  statuses.flatMap((status, i) => (status === 200 ? [first + i] : []));

describe('workers: 2', () => {
  test('both threads answer; /stats right after the answers counts every beacon; each line whole, in one file per flavor and day', async () => {
    const app = await startScratchd({ config: WORKERS });
    try {
      await app.waitForLog(/^http: 2 workers serving$/);
      const count = 600;
      const statuses = await beacons(app.port, count, (i) => `n=${i}&pad=${encodeURIComponent('é'.repeat(i % 40))}`);
      assert.ok(statuses.every((s) => s === 200), 'every answer 200');
      // No wait: the threads' lines are pushed and counted before /stats renders.
      const stats = await app.stats();
      const workers = ((stats as unknown as WorkersStats).workers);
      assert.equal(workers.count, 2);
      assert.ok(workers.requests.every((n) => n > 0), `both threads answered: ${JSON.stringify(workers.requests)}`);
      assert.equal(workers.requests[0]! + workers.requests[1]!, count);
      assert.equal(workers.forwarded_lines, workers.requests[1]);
      assert.equal(stats.requests.tracked, count);
      assert.equal(stats.connections.accepted, count);
      for (const flavor of FLAVORS) assert.equal(stats.flavors[flavor.name]!.tracked, count / FLAVORS.length);
    } finally {
      assert.equal(await app.stop(), 0, app.stderr());
    }
    const dates = new Set<string>();
    for (const flavor of FLAVORS) {
      const files = fs.readdirSync(path.join(app.dir, 'logs', flavor.name));
      assert.ok(files.length === 1 || (files.length === 2 && new Date().getUTCHours() <= 1), `${flavor.name}: ${files.join(', ')}`);
      for (const file of files) dates.add(file);
    }
    const lines = allLines(app.dir);
    assert.equal(lines.length, 600);
    const seen = new Set<number>();
    for (const line of lines) {
      const record = JSON.parse(line) as { flavor: string; values: { n: string; pad: string } };
      const n = Number(record.values.n);
      assert.equal(record.flavor, FLAVORS[n % FLAVORS.length]!.name);
      assert.equal(record.values.pad, 'é'.repeat(n % 40));
      seen.add(n);
    }
    assert.equal(seen.size, 600, 'every beacon once');
  });

  test('the duplicate and rate checks see the beacons of both threads', async () => {
    const app = await startScratchd({ config: { ...WORKERS, checks: { duplicateWindowMs: 60_000 } } });
    try {
      await app.waitForLog(/^http: 2 workers serving$/);
      // The same beacon 40 times from one client, over 40 connections: both threads take some.
      const statuses = await beacons(app.port, 40, () => 'same=1', 8);
      assert.ok(statuses.every((s) => s === 200));
      const stats = await app.stats();
      const workers = (stats as unknown as WorkersStats).workers;
      assert.ok(workers.requests.every((n) => n > 0), `both threads answered: ${JSON.stringify(workers.requests)}`);
      // One per flavor (the check is per flavor); every other one a duplicate, whichever thread took it.
      assert.equal(stats.requests.tracked, FLAVORS.length);
      assert.equal(stats.requests.duplicate, 40 - FLAVORS.length);
    } finally {
      assert.equal(await app.stop(), 0, app.stderr());
    }
    assert.equal(allLines(app.dir).length, FLAVORS.length);

    const limited = await startScratchd({ config: { ...WORKERS, checks: { maxPerMinute: 10 } } });
    try {
      await limited.waitForLog(/^http: 2 workers serving$/);
      // 25 per flavor from 127.0.0.1, over both threads: 10 per flavor and minute are kept
      // (20 if the minute turned meanwhile: 25 split over two minutes still exceeds 10 in one).
      const statuses = await beacons(limited.port, 75, (i) => `i=${i}`, 8);
      assert.ok(statuses.every((s) => s === 200));
      const stats = await limited.stats();
      assert.ok((stats as unknown as WorkersStats).workers.requests.every((n) => n > 0));
      assert.equal(stats.requests.tracked! + stats.requests.malicious!, 75);
      assert.ok(stats.requests.tracked! >= 30 && stats.requests.tracked! <= 60, JSON.stringify(stats.requests));
    } finally {
      assert.equal(await limited.stop(), 0, limited.stderr());
    }
  });

  test('/metrics: totals and requests per worker', async () => {
    const app = await startScratchd({ config: WORKERS });
    try {
      await app.waitForLog(/^http: 2 workers serving$/);
      await beacons(app.port, 60, (i) => `m=${i}`);
      const metrics = (await request(app.adminPort, '127.0.0.1', '/metrics')).body.toString();
      assert.match(metrics, /^scratchd_requests_total\{outcome="tracked"\} 60$/m);
      const perWorker = [...metrics.matchAll(/^scratchd_worker_requests_total\{worker="(\d)"\} (\d+)$/gm)].map((m) => Number(m[2]));
      assert.equal(perWorker.length, 2);
      assert.equal(perWorker[0]! + perWorker[1]!, 60);
      assert.match(metrics, /^scratchd_workers_deaths_total 0$/m);
    } finally {
      assert.equal(await app.stop(), 0, app.stderr());
    }
  });

  test('workers.requests counts requests on every loop, a POST of several lines as one (as its `post`)', async () => {
    const app = await startScratchd({ config: WORKERS });
    try {
      await app.waitForLog(/^http: 2 workers serving$/);
      const linesPerPost = 5;
      const post = (i: number) =>
        new Promise<number>((resolve, reject) => {
          const body = JSON.stringify(Array.from({ length: linesPerPost }, (_, j) => ({ p: i, j })));
          const req = http.request(
            { host: '127.0.0.1', port: app.port, path: '/track', method: 'POST', agent: false, headers: { Host: FLAVORS[0]!.hosts[0]!, 'Content-Type': 'application/json' } },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', reject);
          req.end(body);
        });
      const posts = 40;
      const statuses = await Promise.all(Array.from({ length: posts }, (_, i) => post(i)));
      assert.ok(statuses.every((s) => s === 204), JSON.stringify(statuses));
      const gets = await beacons(app.port, 40, (i) => `g=${i}`, 8);
      assert.ok(gets.every((s) => s === 200));
      const stats = await app.stats();
      const workers = (stats as unknown as WorkersStats).workers;
      assert.ok(workers.requests.every((n) => n > 0), `both threads answered: ${JSON.stringify(workers.requests)}`);
      assert.equal(workers.requests[0]! + workers.requests[1]!, posts + 40, JSON.stringify(workers.requests));
      assert.equal(stats.requests.post, posts);
      assert.equal(stats.requests.tracked, posts * linesPerPost + 40);
    } finally {
      assert.equal(await app.stop(), 0, app.stderr());
    }
  });

  test('a second scratchd on the same address fails (EADDRINUSE), as with 1 worker, instead of sharing the port through SO_REUSEPORT', async () => {
    const app = await startScratchd({ config: WORKERS });
    try {
      const dir = tempDir('scratchd-workers-');
      const config = writeConfig(dir, { ...WORKERS, listen: `127.0.0.1:${app.port}` });
      const second = spawnSync(process.execPath, [cliPath, 'serve', '--config', config], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(second.status, 1, second.stderr);
      assert.match(second.stderr, /EADDRINUSE/);
      assert.equal((await request(app.port, FLAVORS[0]!.hosts[0]!, '/track?still=1')).status, 200);
    } finally {
      assert.equal(await app.stop(), 0, app.stderr());
    }
  });

  const available = needs('systemd-socket-activate', hasCommand('systemd-socket-activate'), 'apt-get install systemd');
  test('on a systemd socket both threads serve, each through its own descriptor; SIGTERM: every 200 on disk, exit 0', available, async () => {
    const dir = tempDir();
    const config = writeConfig(dir, { listen: 'systemd', ...WORKERS });
    const { proc, port, stderr, exited } = await socketActivate([process.execPath, cliPath, 'serve', '--config', config]);
    try {
      assert.equal((await request(port, 'www.skroutz.gr', '/track?first=1')).status, 200);
      const deadline = Date.now() + 10_000;
      while (!/http: 2 workers serving/.test(stderr()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const statuses = await beacons(port, 200, (i) => `s=${i}`);
      assert.ok(statuses.every((s) => s === 200), stderr());
      const admin = Number(/admin: listening on \S+:(\d+)/.exec(stderr())?.[1]);
      const stats = JSON.parse((await request(admin, '127.0.0.1', '/stats')).body.toString()) as WorkersStats;
      assert.ok(stats.workers.requests.every((n) => n > 0), `both threads answered: ${JSON.stringify(stats.workers.requests)}`);
    } finally {
      proc.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr());
    assert.equal(allLines(dir).length, 201);
  });

  test('on a systemd socket, a thread that crashes is replaced on a new descriptor of its own; every 200 on disk', available, async () => {
    const dir = tempDir();
    const config = writeConfig(dir, { listen: 'systemd', ...WORKERS });
    // systemd-socket-activate passes on only what -E names.
    const fault = ['-E', 'SCRATCHD_TEST_HTTP_THREAD_FAULT=crash:5'];
    const { proc, port, stderr, exited } = await socketActivate([...fault, process.execPath, cliPath, 'serve', '--config', config]);
    let ok: number[];
    try {
      assert.equal((await request(port, FLAVORS[0]!.hosts[0]!, '/track?n=1000')).status, 200);
      const until = async (pattern: RegExp) => {
        const deadline = Date.now() + 10_000;
        while (!pattern.test(stderr()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        assert.match(stderr(), pattern);
      };
      await until(/http: 2 workers serving/);
      const first = await beaconsOrFailures(port, 300, 0);
      await until(/scratchd-http-1 serving again/);
      const second = await beaconsOrFailures(port, 200, 300);
      assert.ok(second.every((s) => s === 200), stderr());
      const admin = Number(/admin: listening on \S+:(\d+)/.exec(stderr())?.[1]);
      const stats = JSON.parse((await request(admin, '127.0.0.1', '/stats')).body.toString()) as WorkersStats;
      assert.equal(stats.workers.restarts, 1);
      assert.equal(stats.workers.lost_lines, 0);
      ok = [1000, ...answered(first, 0), ...answered(second, 300)];
    } finally {
      proc.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr());
    const onDisk = numbersOnDisk(dir);
    assert.deepEqual(ok.filter((n) => !onDisk.has(n)), [], 'every beacon answered 200 is on disk');
  });

  test('a thread that crashes posts what it answered before it ends: every 200 on disk; the death is logged and counted, a new thread serves', async () => {
    const app = await startScratchd({ config: WORKERS, env: { SCRATCHD_TEST_HTTP_THREAD_FAULT: 'crash:5' } });
    let ok: number[];
    try {
      await app.waitForLog(/^http: 2 workers serving$/);
      const first = await beaconsOrFailures(app.port, 300, 0);
      await app.waitForLog(/scratchd-http-1 died .*SCRATCHD_TEST_HTTP_THREAD_FAULT: crash after 5 lines/);
      await app.waitForLog(/scratchd-http-1 serving again/);
      assert.match(app.stderr(), /every line it answered 200 was handed over/);
      const before = ((await app.stats()) as unknown as WorkersStats).workers;
      assert.ok(before.requests[1]! >= 5, JSON.stringify(before));
      // The new thread serves its share again, and /ready is back to 200.
      const second = await beaconsOrFailures(app.port, 200, 300);
      assert.ok(second.every((s) => s === 200), JSON.stringify(second));
      assert.equal((await request(app.adminPort, '127.0.0.1', '/ready')).status, 200);
      const workers = ((await app.stats()) as unknown as WorkersStats).workers;
      assert.ok(workers.requests[1]! > before.requests[1]!, `the new thread answered: ${JSON.stringify(workers.requests)}`);
      assert.equal(workers.deaths, 1);
      assert.equal(workers.restarts, 1);
      assert.equal(workers.stalls, 0);
      assert.equal(workers.lost_lines, 0);
      ok = [...answered(first, 0), ...answered(second, 300)];
      const metrics = (await request(app.adminPort, '127.0.0.1', '/metrics')).body.toString();
      assert.match(metrics, /^scratchd_workers_deaths_total 1$/m);
      assert.match(metrics, /^scratchd_workers_restarts_total 1$/m);
      assert.match(metrics, /^scratchd_workers_lost_lines_total 0$/m);
    } finally {
      assert.equal(await app.stop(), 0, app.stderr());
    }
    const onDisk = numbersOnDisk(app.dir);
    const missing = ok.filter((n) => !onDisk.has(n));
    assert.deepEqual(missing, [], 'every beacon answered 200 is on disk');
  });

  test('a thread that keeps dying (more than 5 deaths a minute): scratchd stops in order with status 70, every 200 on disk', async () => {
    const app = await startScratchd({ config: WORKERS, env: { SCRATCHD_TEST_HTTP_THREAD_FAULT: 'crash-always:2' } });
    await app.waitForLog(/^http: 2 workers serving$/);
    const answeredOk: number[] = [];
    let exited = false;
    void app.exited.then(() => (exited = true));
    // Beacons until scratchd has stopped: each incarnation of thread 1 dies after its 2nd line.
    for (let n = 0; !exited; n += 20) {
      assert.ok(n < 20_000, `still running after ${n} beacons: ${app.stderr()}`);
      answeredOk.push(...answered(await beaconsOrFailures(app.port, 20, n), n));
    }
    assert.equal(await app.exited, 70, app.stderr());
    assert.match(app.stderr(), /; 6 deaths within 60 s; stopping with status 70$/m);
    const onDisk = numbersOnDisk(app.dir);
    assert.deepEqual(answeredOk.filter((i) => !onDisk.has(i)), [], 'every beacon answered 200 is on disk');
  });

  test('a stuck thread: /ready 503 after http.threadStallMs, terminated and replaced at twice that; the lines it held are counted as lost', async () => {
    const app = await startScratchd({ config: { ...WORKERS, http: { threadStallMs: 1_000 } }, env: { SCRATCHD_TEST_HTTP_THREAD_FAULT: 'hang:5' } });
    let ok: number[];
    let lost: number;
    try {
      await app.waitForLog(/^http: 2 workers serving$/);
      const sending = beaconsOrFailures(app.port, 300, 0);
      await app.waitForLog(/scratchd-http-1 is stuck: no heartbeat/);
      const ready = await request(app.adminPort, '127.0.0.1', '/ready');
      assert.equal(ready.status, 503, 'not ready while a thread is stuck');
      await app.waitForLog(/scratchd-http-1 died \(stuck: no heartbeat for \d+ ms, terminated\)/);
      await app.waitForLog(/scratchd-http-1 serving again/);
      const first = await sending;
      assert.equal((await request(app.adminPort, '127.0.0.1', '/ready')).status, 200);
      const second = await beaconsOrFailures(app.port, 100, 300);
      assert.ok(second.every((s) => s === 200), JSON.stringify(second));
      const workers = ((await app.stats()) as unknown as WorkersStats).workers;
      assert.equal(workers.stalls, 1);
      assert.equal(workers.deaths, 1);
      assert.equal(workers.restarts, 1);
      // It hung right after its 5th line, before its batch could go: at least that one is lost.
      assert.ok(workers.lost_lines >= 1 && workers.lost_lines <= 5, JSON.stringify(workers));
      assert.match(app.stderr(), new RegExp(`${workers.lost_lines} lines it answered 200 are lost`));
      ok = [...answered(first, 0), ...answered(second, 300)];
      lost = workers.lost_lines;
    } finally {
      assert.equal(await app.stop(), 0, app.stderr());
    }
    const onDisk = numbersOnDisk(app.dir);
    const missing = ok.filter((n) => !onDisk.has(n));
    // Only what the stuck thread held is missing, and no more than it counted.
    assert.ok(missing.length <= lost, `missing ${JSON.stringify(missing)}`);
  });

  test('a thread stuck for a while that turns again: /ready 503 meanwhile, then 200; not terminated, nothing lost', async () => {
    const app = await startScratchd({ config: { ...WORKERS, http: { threadStallMs: 1_000 } }, env: { SCRATCHD_TEST_HTTP_THREAD_FAULT: 'pause:5' } });
    let ok: number[];
    try {
      await app.waitForLog(/^http: 2 workers serving$/);
      const sending = beaconsOrFailures(app.port, 300, 0);
      await app.waitForLog(/scratchd-http-1 is stuck: no heartbeat/);
      assert.equal((await request(app.adminPort, '127.0.0.1', '/ready')).status, 503, 'not ready while a thread is stuck');
      await app.waitForLog(/scratchd-http-1 turns again after \d+ ms/);
      const first = await sending;
      assert.ok(first.every((s) => s === 200), 'the connections it held waited, then were answered');
      assert.equal((await request(app.adminPort, '127.0.0.1', '/ready')).status, 200);
      const workers = ((await app.stats()) as unknown as WorkersStats).workers;
      assert.equal(workers.stalls, 1);
      assert.equal(workers.deaths, 0);
      assert.equal(workers.restarts, 0);
      assert.equal(workers.lost_lines, 0);
      ok = answered(first, 0);
    } finally {
      assert.equal(await app.stop(), 0, app.stderr());
    }
    const onDisk = numbersOnDisk(app.dir);
    assert.deepEqual(ok.filter((n) => !onDisk.has(n)), [], 'every beacon answered 200 is on disk');
  });

  test("the main thread's own refusal (Kafka's spool) reaches the HTTP threads at once: their next beacon is answered 503, not 200", async () => {
    // Kafka unreachable (nothing listens on port 1): every line goes to the spool, 20 kB of it.
    const kafka = { brokers: '127.0.0.1:1', topic: 'workers.{flavor}', downAfterMs: 500, spool: { path: 'spool', maxBytes: 20_000 } };
    const app = await startScratchd({ config: { ...WORKERS, kafka } });
    const agents: http.Agent[] = [];
    try {
      await app.waitForLog(/^http: 2 workers serving$/);
      await app.waitForLog(/kafka: warning: cannot reach/, 20_000);
      // One keep-alive connection on each thread: which one took it shows in workers.requests.
      const onThread: (http.Agent | undefined)[] = [undefined, undefined];
      let n = 0;
      while (onThread[0] === undefined || onThread[1] === undefined) {
        assert.ok(agents.length < 40, 'the kernel spread 40 connections over both threads');
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        agents.push(agent);
        const before = ((await app.stats()) as unknown as WorkersStats).workers.requests;
        assert.equal((await request(app.port, FLAVORS[0]!.hosts[0]!, `/track?n=${n++}`, { agent })).status, 200);
        const after = ((await app.stats()) as unknown as WorkersStats).workers.requests;
        onThread[after[0]! > before[0]! ? 0 : 1] ??= agent;
      }
      // Fill the spool through the main thread until it refuses its own beacon. No line of the
      // HTTP thread is on its way meanwhile: only the main thread's refusal can tell it.
      const pad = 'x'.repeat(400);
      let status = 200;
      while (status === 200) {
        assert.ok(n < 500, 'the spool refused a beacon');
        status = (await request(app.port, FLAVORS[0]!.hosts[0]!, `/track?n=${n++}&pad=${pad}`, { agent: onThread[0] })).status;
      }
      assert.equal(status, 503);
      // A beacon as long as the refused one, which the main thread would refuse too.
      const thread = await request(app.port, FLAVORS[0]!.hosts[0]!, `/track?n=${n++}&pad=${pad}`, { agent: onThread[1] });
      assert.equal(thread.status, 503, 'the HTTP thread answers as the main thread now does');
    } finally {
      for (const agent of agents) agent.destroy();
      assert.equal(await app.stop(), 0, app.stderr());
    }
  });
});
