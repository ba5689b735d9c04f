/**
 * "A 200 means the line will be saved" (docs/buffering.md), tried on the real
 * CLI as an operator would:
 *
 * - a burst from hundreds of pipelining connections with ~2 KB queries, on a
 *   healthy disk with a small file.queueMaxBytes so that backpressure
 *   engages: only 200 and 503 are answered, every 200 is a line on disk,
 *   tracked equals written equals the lines;
 * - a real full filesystem (a tmpfs mounted by the test; root only):
 *   ~48 KB lines (8 KB of control bytes each) keep arriving, RSS stays
 *   bounded, the server turns to 503 and /ready 503; the operator moves the
 *   day's file away and sends SIGHUP: the deleted inode is let go at once
 *   and writing resumes in a new file; once space returns, every 200 is on
 *   disk and no line is torn;
 * - kill -9 at random moments under load: no torn line, and lost are at
 *   most the lines of the last file.writeIntervalMs (plus the write then in
 *   flight).
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { request } from '../support/http';
import { Load, reconcile } from '../support/load-client';
import { burst } from '../support/pipeline';
import { prng } from '../support/prng';
import { allLines, readLines, startScratchd, tempDir, type Running } from '../support/scratchd';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, condition: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

interface Values {
  run?: string;
  c?: string;
  n?: string;
  id?: string;
}

const valuesOf = (line: string) => (JSON.parse(line) as { values: Values }).values;

function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
}

interface Backpressure {
  state: string;
  pauses: number;
  refusals: number;
}

async function pressureOf(server: Running): Promise<Backpressure> {
  return ((await server.stats()) as unknown as { backpressure: Backpressure }).backpressure;
}

describe('backpressure on the real CLI', () => {
  test('a pipelined burst on a healthy disk: only 200/503, every 200 on disk, tracked = written = lines', { timeout: 90_000 }, async (t) => {
    const server = await startScratchd({ config: { file: { path: 'logs/{flavor}/{date}.log', queueMaxBytes: 256 * 1024 } } });
    try {
      const run = `b${process.pid}`;
      // Beside the burst, a well-behaved client: one beacon every 20 ms on a keep-alive connection.
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const steady: { id: string; status: number; ms: number }[] = [];
      let bursting = true;
      const steadyClient = (async () => {
        for (let n = 0; bursting; n++) {
          const started = performance.now();
          const reply = await request(server.port, 'www.skroutz.gr', `/track?run=${run}&c=steady&n=${n}`, { agent });
          steady.push({ id: `steady-${n}`, status: reply.status, ms: performance.now() - started });
          await sleep(20);
        }
      })();
      const result = await burst({ port: server.port, run, connections: 300, perConnection: 200, queryBytes: 2048 }).finally(() => (bursting = false));
      await steadyClient;
      agent.destroy();
      await until('the queue written', async () => (await server.stats()).backends.file!.queued === 0);
      const stats = await server.stats();
      const pressure = await pressureOf(server);
      assert.equal(await server.stop('SIGTERM'), 0, server.stderr());
      const lines = allLines(server.dir);
      const onDisk = new Set<string>();
      for (const line of lines) {
        const v = valuesOf(line);
        if (v.run === run) onDisk.add(`${v.c}-${v.n}`);
      }
      const steadyMs = steady.map((s) => s.ms).sort((a, b) => a - b);
      t.diagnostic(`${result.statuses.size} answers in ${result.seconds.toFixed(1)} s ${JSON.stringify(result.byStatus)}; ${lines.length} lines; backpressure ${JSON.stringify(pressure)}`);
      t.diagnostic(`steady client: ${steady.length} beacons, latency p50 ${Math.round(steadyMs[Math.floor(steadyMs.length / 2)] ?? 0)} ms, max ${Math.round(steadyMs[steadyMs.length - 1] ?? 0)} ms`);
      assert.ok(steady.length > 0);
      assert.deepEqual(steady.filter((s) => s.status !== 200 || !onDisk.has(s.id)), [], 'every beacon of the steady client is answered 200 and on disk');
      assert.equal(result.statuses.size, 300 * 200);
      assert.deepEqual(Object.keys(result.byStatus).filter((s) => s !== '200' && s !== '503'), [], 'nothing but 200 and 503');
      let missing = 0;
      for (const [id, status] of result.statuses) if (status === 200 && !onDisk.has(id)) missing++;
      assert.equal(missing, 0, 'every 200 is a line on disk');
      assert.equal(onDisk.size, (result.byStatus['200'] ?? 0) + steady.length, 'no line without a 200');
      assert.equal(lines.length, onDisk.size);
      assert.equal(stats.requests.tracked, onDisk.size);
      assert.equal(stats.backends.file!.written, onDisk.size, 'written counts exactly the lines in the file');
      assert.ok(pressure.pauses > 0, 'backpressure engaged');
      assert.equal(stats.backends.file!.dropped, 0);
    } finally {
      await server.stop('SIGKILL');
    }
  });

  test('kill -9 at random moments under load: no torn line, lost at most the last file.writeIntervalMs', { timeout: 60_000 }, async (t) => {
    const random = prng(Number(process.env.SEED ?? Date.now() % 100_000));
    const writeIntervalMs = 10;
    for (let round = 0; round < 3; round++) {
      const server = await startScratchd({ config: { file: { path: 'logs/{flavor}/{date}.log', writeIntervalMs } } });
      const run = `k${process.pid}r${round}`;
      const load = new Load({ port: server.port, run, groups: [{ name: 'k', rate: 2000, connections: 16 }], timeoutMs: 2000 });
      try {
        await sleep(500 + Math.floor(random() * 1500));
        server.proc.kill('SIGKILL');
        await server.exited;
      } finally {
        const report = await load.stop();
        const files = fs.readdirSync(path.join(server.dir, 'logs'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
        for (const entry of files) {
          const text = fs.readFileSync(path.join(entry.parentPath, entry.name), 'utf8');
          assert.ok(text === '' || text.endsWith('\n'), 'the file ends on a whole line');
          for (const line of readLines(path.join(entry.parentPath, entry.name))) JSON.parse(line);
        }
        const lines = reconcile(report.okIds, allLines(server.dir), run);
        const rate = report.ok / report.seconds;
        // What the writer held: up to writeIntervalMs of lines, plus one write in flight; slack for a busy machine.
        const allowed = Math.ceil((rate * (writeIntervalMs + 40)) / 1000) + 20;
        t.diagnostic(`round ${round}: ${report.ok} × 200 at ${Math.round(rate)}/s, ${lines.missing} lost (allowed ${allowed}), ${lines.unanswered} lines without a 200`);
        assert.ok(report.ok > 200, 'the load ran');
        assert.ok(lines.missing <= allowed, `${lines.missing} lost, allowed ${allowed}`);
        assert.equal(lines.duplicates, 0);
      }
    }
  });

  test('a real full disk: RSS bounded under ~48 KB lines, 503 and /ready 503, SIGHUP lets go of the deleted file, every 200 on disk after', {
    timeout: 90_000,
    skip: process.getuid?.() === 0 ? false : 'mounting a tmpfs needs root',
  }, async (t) => {
    const dir = tempDir('scratchd-full-');
    const logs = path.join(dir, 'logs');
    fs.mkdirSync(logs);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', logs]);
    const moved = tempDir('scratchd-moved-');
    let server: Running | null = null;
    try {
      // 20 of 24 MiB taken: about 80 of our lines fit.
      fs.writeFileSync(path.join(logs, 'filler'), Buffer.alloc(20 * 1024 * 1024));
      const queueMaxBytes = 16 * 1024 * 1024;
      server = await startScratchd({
        dir,
        config: {
          file: { path: 'logs/{flavor}/{date}.log', queueMaxBytes, retryMaxDelayMs: 200 },
          http: { maxRequestLineBytes: 32_768, maxHeaderBytes: 65_536, blockTimeoutMs: 1000 },
        },
      });
      const s = server;
      const rssBefore = rssBytes(s.proc.pid!);
      const run = `f${process.pid}`;
      const statuses = new Map<string, number>();
      let stopping = false;
      let rssPeak = rssBefore;
      const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssBytes(s.proc.pid!))), 50);
      // 8 KB of control bytes per beacon: each byte %01 in the query, \u0001 (6 bytes) in the line.
      const fat = '%01'.repeat(8 * 1024);
      const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
      const send = (id: string) =>
        new Promise<number>((resolve, reject) => {
          const req = http.get({ host: '127.0.0.1', port: s.port, agent, path: `/track?run=${run}&id=${id}&x=${fat}`, headers: { Host: 'www.skroutz.gr' } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
        });
      const senders = Array.from({ length: 8 }, async (_, w) => {
        for (let n = 0; !stopping; n++) {
          const id = `w${w}-${n}`;
          statuses.set(id, await send(id));
          if (statuses.get(id) === 503) await sleep(20);
        }
      });
      try {
        // The disk fills, the queue grows to the high mark, reading stops, then 503.
        await until('503 answers', () => [...statuses.values()].includes(503), 30_000).catch(async (err: Error) => {
          throw new Error(`${err.message}: answers ${JSON.stringify([...new Set(statuses.values())])}, stats ${JSON.stringify((await s.stats()).backends)}`);
        });
        const ready = await request(s.adminPort, '127.0.0.1', '/ready');
        assert.equal(ready.status, 503, '/ready turns 503 while beacons are refused');
        await sleep(1000); // more fat lines arrive while refusing: memory must not grow with them
        const stats = await s.stats();
        assert.ok((stats.backends.file?.errors ?? 0) > 0, 'writes failed (ENOSPC)');
        assert.ok((stats.backends.file!.queued_bytes ?? 0) <= queueMaxBytes);

        // The operator moves the day's file to another disk and sends SIGHUP.
        const dayDir = path.join(logs, 'skroutz');
        const [dayFile] = fs.readdirSync(dayDir);
        assert.ok(dayFile !== undefined);
        fs.copyFileSync(path.join(dayDir, dayFile), path.join(moved, dayFile));
        fs.rmSync(path.join(dayDir, dayFile));
        s.proc.kill('SIGHUP');
        const deletedFds = () => fs.readdirSync(`/proc/${s.proc.pid}/fd`).filter((fd) => {
          try {
            return fs.readlinkSync(`/proc/${s.proc.pid}/fd/${fd}`).endsWith('(deleted)');
          } catch {
            return false;
          }
        });
        await until('the deleted file let go of', () => deletedFds().length === 0, 3000);
        await until('writing resumed in a new file', () => fs.existsSync(path.join(dayDir, dayFile)) && fs.statSync(path.join(dayDir, dayFile)).size > 0, 5000);

        // Space returns: everything held is written, the server takes beacons again.
        fs.rmSync(path.join(logs, 'filler'));
        await until('open again', async () => (await pressureOf(s)).state === 'open' && (await request(s.adminPort, '127.0.0.1', '/ready')).status === 200, 20_000);
      } finally {
        stopping = true;
        await Promise.allSettled(senders);
        clearInterval(sampler);
        agent.destroy();
      }
      const stats = await s.stats();
      assert.equal(await s.stop('SIGTERM'), 0, s.stderr());
      const dayFiles = fs.readdirSync(path.join(logs, 'skroutz'));
      const texts = [...dayFiles.map((f) => fs.readFileSync(path.join(logs, 'skroutz', f), 'utf8'))];
      // The copy was taken while a write may have been cut by ENOSPC: its
      // unfinished last line was written whole into the new file.
      const copy = fs.readFileSync(path.join(moved, fs.readdirSync(moved)[0]!), 'utf8');
      const copyLines = copy.split('\n').slice(0, -1);
      const lines: string[] = [...copyLines];
      for (const text of texts) {
        assert.ok(text.endsWith('\n'), 'the new file ends on a whole line');
        lines.push(...text.split('\n').slice(0, -1));
      }
      const ids = new Set<string>();
      for (const line of lines) {
        const v = valuesOf(line); // throws on a torn line
        if (v.run === run) ids.add(v.id!);
      }
      const ok = [...statuses].filter(([, st]) => st === 200).map(([id]) => id);
      const refused = [...statuses].filter(([, st]) => st === 503).map(([id]) => id);
      const missing = ok.filter((id) => !ids.has(id));
      t.diagnostic(
        `${statuses.size} beacons: ${ok.length} × 200, ${refused.length} × 503; RSS ${Math.round(rssBefore / 2 ** 20)} MiB before, peak ${Math.round(rssPeak / 2 ** 20)} MiB ` +
          `(file.queueMaxBytes ${queueMaxBytes / 2 ** 20} MiB); ${lines.length} lines; written ${stats.backends.file!.written}, tracked ${stats.requests.tracked}`,
      );
      assert.deepEqual([...new Set(statuses.values())].sort(), [200, 503], 'only 200 and 503');
      assert.deepEqual(missing, [], 'every 200 is on disk');
      assert.equal(refused.filter((id) => ids.has(id)).length, 0, 'no line for a 503');
      // A bound by configuration: the queue's bytes, a copy of each line in
      // flight on its way to the disk, and what sockets and V8 keep around.
      assert.ok(rssPeak - rssBefore < 2 * queueMaxBytes + 64 * 2 ** 20, `RSS grew ${Math.round((rssPeak - rssBefore) / 2 ** 20)} MiB`);
    } finally {
      await server?.stop('SIGKILL');
      execFileSync('umount', ['-l', logs]);
    }
  });
});
