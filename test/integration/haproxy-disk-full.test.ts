/**
 * The shipped HAProxy config (packaging/haproxy/scratchd.cfg) with the
 * primary's disk full: a real tmpfs mounted by the test (root only), filled
 * while the load runs. The primary's queue reaches the high mark, reading
 * stops, and after http.blockTimeoutMs it answers 503 and /ready 503;
 * HAProxy retries the 503 on the backup (retry-on 503, observe layer7) and
 * moves traffic there. Once space returns, the primary writes what it held.
 * Every beacon the client saw answered 200 is on one of the two servers'
 * disks, and no line is torn.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { haproxyAvailable, startHaproxy, type RunningHaproxy } from '../support/haproxy';
import { request } from '../support/http';
import { Load, reconcile } from '../support/load-client';
import { allLines, startScratchd, tempDir, type Running } from '../support/scratchd';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const root = process.getuid?.() === 0;

describe('HAProxy: the primary\'s disk is full (packaging/haproxy/scratchd.cfg)', haproxyAvailable, () => {
  test('503 and /ready 503 move traffic to the backup; every 200 is on one of the two disks', { timeout: 90_000, skip: root ? false : 'mounting a tmpfs needs root' }, async (t) => {
    const dir = tempDir('scratchd-haproxy-full-');
    const primaryDir = path.join(dir, 'primary');
    const logs = path.join(primaryDir, 'logs');
    fs.mkdirSync(logs, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', logs]);
    let primary: Running | null = null;
    let backup: Running | null = null;
    let haproxy: RunningHaproxy | null = null;
    let load: Load | null = null;
    try {
      const http = { trustForwardedFor: true };
      primary = await startScratchd({ dir: primaryDir, config: { http, file: { path: 'logs/{flavor}/{date}.log', queueMaxBytes: 512 * 1024, retryMaxDelayMs: 200 } } });
      backup = await startScratchd({ config: { http } });
      haproxy = await startHaproxy(dir, primary, backup);
      await haproxy.waitUp('primary');
      await haproxy.waitUp('backup');
      const run = `d${process.pid}`;
      load = new Load({ port: haproxy.port, run, groups: [{ name: 'k', rate: 1000, connections: 16 }, { name: 'f', rate: 300, connections: 8, fresh: true }] });
      await sleep(1500);
      // The disk fills up under the primary.
      fs.writeFileSync(path.join(logs, 'filler'), Buffer.alloc(0));
      try {
        const filler = fs.openSync(path.join(logs, 'filler'), 'a');
        try {
          const block = Buffer.alloc(64 * 1024, 1);
          for (;;) fs.writeSync(filler, block);
        } finally {
          fs.closeSync(filler);
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
      const p = primary;
      const deadline = Date.now() + 15_000;
      while ((await request(p.adminPort, '127.0.0.1', '/ready')).status !== 503) {
        if (Date.now() > deadline) throw new Error(`the primary's /ready never turned 503: ${JSON.stringify(await p.stats())}`);
        await sleep(50);
      }
      await sleep(3000);
      const primaryRow = await haproxy.stat('scratchd', 'primary');
      const backupTrackedWhileFull = (await backup.stats()).requests.tracked ?? 0;
      // Space returns: the primary writes what it held, and takes traffic back.
      fs.rmSync(path.join(logs, 'filler'));
      await haproxy.waitUp('primary', 20_000);
      await sleep(1000);
      const report = await load.stop();
      load = null;
      const primaryStats = await primary.stats();
      assert.equal(await primary.stop('SIGTERM'), 0, primary.stderr());
      assert.equal(await backup.stop('SIGTERM'), 0, backup.stderr());
      const lines = [...allLines(primary.dir), ...allLines(backup.dir)];
      for (const line of lines) JSON.parse(line); // no torn line
      const result = reconcile(report.okIds, lines, run);
      t.diagnostic(
        `${report.requests} requests, ${report.ok} × 200, failures ${JSON.stringify(report.failures)}; primary while full: ${primaryRow.status}, ${primaryRow.hrsp_5xx} 5xx, ${primaryRow.wretr} retries, ${primaryRow.wredis} redispatches; ` +
          `primary 503s ${primaryStats.requests.unavailable}, backup tracked ${backupTrackedWhileFull} while full; lines ${JSON.stringify(result)}`,
      );
      assert.ok(report.ok > 3000, 'the load ran');
      assert.ok((primaryStats.requests.unavailable ?? 0) > 0, 'the primary answered 503');
      assert.ok(backupTrackedWhileFull > 500, 'the backup took the traffic');
      assert.equal(result.missing, 0, 'every 200 is on one of the two disks');
      assert.equal(result.unanswered, 0, 'no line for a beacon not answered 200');
      assert.deepEqual(report.failures, {}, `HAProxy retried every 503 on the backup; first failures:\n${report.samples.join('\n')}`);
    } finally {
      await load?.stop();
      await haproxy?.stop();
      await Promise.all([primary?.stop('SIGKILL'), backup?.stop('SIGKILL')]);
      execFileSync('umount', ['-l', logs]);
    }
  });
});
