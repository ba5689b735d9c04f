/**
 * `workers` on this machine (BENCH_ONLY=workers, and in the full run;
 * docs/performance.md, "More than one core"). A 2-core machine cannot show
 * scaling past one core when the load generator needs one, so two honest
 * comparisons instead:
 *
 * (a) Scaling beside nginx: nginx with 1 and with 2 worker processes and
 *     scratchd with `workers` 1 and 2, all four in one run, each pinned to
 *     both cores together with wrk (1 thread, the first connection count):
 *     the four share the same 2 cores with their load. scratchd's ratio to
 *     nginx with 2 workers must not fall below its ratio with 1.
 * (b) Cost: CPU seconds per 100k beacons at a fixed open-loop rate (oha,
 *     pinned to the load core; the server on both cores) with workers 2
 *     beside workers 1 (the issue asks within 15%), and nginx with 2 worker
 *     processes beside 1 at the same rates, as the reference: what a second
 *     event loop costs a server that forwards nothing.
 *
 * Rounds flip the order of the servers; medians of `runs`.
 */
import * as path from 'node:path';
import { runOha, runWrk } from './load';
import type { BenchOptions } from './options';
import { cpuTimes, sleep, timesScheduled, type Cpus } from './procs';
import { startNginx, startScratchd, type ServerUnderTest } from './servers';
import { median } from './stats';
import { fmt, ratio, renderTable, type Row } from './table';

export interface WorkersClosed {
  server: 'scratchd' | 'nginx';
  workers: number;
  requestsPerSecond: number;
  serverCpuSeconds: number;
  seconds: number;
}

export interface WorkersOpen {
  server: 'scratchd' | 'nginx';
  workers: number;
  rate: number;
  achievedRate: number;
  requests: number;
  serverCpuSeconds: number;
  /** The server's threads' times on a CPU during the run (procs.ts timesScheduled): its wake-ups. */
  wakeups: number;
  p99Ms: number;
  failed: number;
}

export interface WorkersResult {
  cores: string;
  connections: number;
  closed: WorkersClosed[];
  open: WorkersOpen[];
  /** Lines on disk = scratchd's tracked, per scratchd. */
  checks: { name: string; ok: boolean; detail: string }[];
}

interface Named {
  server: ServerUnderTest;
  name: 'scratchd' | 'nginx';
  workers: number;
}

/**
 * The rates of (b): the open-loop rates from 10k/s up (10k and 20k/s by
 * default; BENCH_RATES adds more), or the two highest when none is that
 * high. Below saturation a second event loop wakes up for fewer events each
 * time, so its fixed cost per wake-up weighs more the lower the rate.
 */
export function workersRates(options: BenchOptions): number[] {
  const sorted = [...options.rates].sort((a, b) => a - b);
  const high = sorted.filter((rate) => rate >= 10_000);
  return high.length > 0 ? high : sorted.slice(-2);
}

export async function workersPhase(
  options: BenchOptions,
  dir: string,
  wrkScript: string,
  oha: { path: string | null; urlsFile: string },
  log: (m: string) => void,
): Promise<WorkersResult> {
  const cores: Cpus = `${options.serverCpu},${options.loadCpu}`;
  const connections = options.connections[0] ?? 50;
  const result: WorkersResult = { cores, connections, closed: [], open: [], checks: [] };
  const servers: Named[] = [];
  try {
    for (const workers of [1, 2]) {
      servers.push({ name: 'nginx', workers, server: await startNginx(path.join(dir, `nginx-w${workers}`), cores, workers) });
      const scratchd = await startScratchd({ dir: path.join(dir, `scratchd-w${workers}`), cpu: cores, extraConfig: { workers } });
      servers.push({ name: 'scratchd', workers, server: scratchd });
    }
    for (const s of servers) {
      log(`bench: workers: warm-up ${s.name} ×${s.workers}`);
      await runWrk(cores, wrkScript, s.server.port, connections, options.warmupSeconds);
    }
    // (a) every server and wrk on the same two cores.
    for (let round = 1; round <= options.runs; round++) {
      const order = round % 2 === 1 ? servers : [...servers].reverse();
      for (const s of order) {
        await sleep(500);
        const cpu0 = cpuTimes(s.server.pids());
        const wrk = await runWrk(cores, wrkScript, s.server.port, connections, options.seconds);
        const cpu1 = cpuTimes(s.server.pids());
        const serverCpuSeconds = cpu1.user + cpu1.sys - cpu0.user - cpu0.sys;
        result.closed.push({ server: s.name, workers: s.workers, requestsPerSecond: wrk.requestsPerSecond, serverCpuSeconds, seconds: wrk.seconds });
        log(`bench: workers: ${s.name} ×${s.workers} round ${round}: ${fmt(wrk.requestsPerSecond)} req/s, server CPU ${fmt((100 * serverCpuSeconds) / wrk.seconds)}%`);
      }
    }
    // (b) every server at each fixed rate, oha on the load core.
    for (const rate of oha.path === null ? [] : workersRates(options)) {
      for (let round = 1; round <= options.runs; round++) {
        for (const s of round % 2 === 1 ? servers : [...servers].reverse()) {
          await sleep(500);
          const cpu0 = cpuTimes(s.server.pids());
          const scheduled0 = timesScheduled(s.server.pids());
          const load = await runOha(oha.path!, options.loadCpu, oha.urlsFile, s.server.port, rate, options.seconds, 100, dir);
          const wakeups = timesScheduled(s.server.pids()) - scheduled0;
          const cpu1 = cpuTimes(s.server.pids());
          const serverCpuSeconds = cpu1.user + cpu1.sys - cpu0.user - cpu0.sys;
          result.open.push({ server: s.name, workers: s.workers, rate, achievedRate: load.achievedRate, requests: load.requests, serverCpuSeconds, wakeups, p99Ms: load.p99Ms, failed: load.failed });
          log(
            `bench: workers: ${s.name} ×${s.workers} at ${fmt(rate)}/s: ${fmt((1e5 * serverCpuSeconds) / load.requests, 2)} CPU s / 100k, ` +
              `${fmt(wakeups / load.requests, 2)} wake-ups / beacon, p99 ${fmt(load.p99Ms, 2)} ms`,
          );
        }
      }
    }
    for (const s of servers.filter((x) => x.name === 'scratchd')) {
      const stats = (await (s.server as Awaited<ReturnType<typeof startScratchd>>).stats()) as unknown as { requests: { tracked: number } };
      const code = await s.server.stop();
      const lines = s.server.logTotals().lines;
      result.checks.push({
        name: `workers: scratchd ×${s.workers}: exit 0, lines on disk = tracked`,
        ok: code === 0 && lines === stats.requests.tracked,
        detail: `exit ${code}, ${lines} lines, tracked ${stats.requests.tracked}`,
      });
    }
  } finally {
    await Promise.all(servers.map((s) => s.server.stop()));
  }
  return result;
}

export function workersTable(r: WorkersResult): string {
  const closed = (name: 'scratchd' | 'nginx', workers: number) => {
    const runs = r.closed.filter((x) => x.server === name && x.workers === workers);
    return runs.length === 0 ? undefined : median(runs.map((x) => x.requestsPerSecond));
  };
  const rows: Row[] = [];
  rows.push([`(a) closed loop: wrk 1 thread, ${r.connections} connections; servers and wrk pinned to cores ${r.cores}; median req/s`]);
  for (const workers of [1, 2]) {
    const s = closed('scratchd', workers);
    const n = closed('nginx', workers);
    rows.push([`  ${workers} worker${workers === 1 ? '' : 's'}`, fmt(s), fmt(n), ratio(s, n)]);
  }
  const s1 = closed('scratchd', 1);
  const s2 = closed('scratchd', 2);
  const n1 = closed('nginx', 1);
  const n2 = closed('nginx', 2);
  if (s1 !== undefined && s2 !== undefined && n1 !== undefined && n2 !== undefined) {
    rows.push(['  2 workers / 1 worker', `${fmt(s2 / s1, 2)}×`, `${fmt(n2 / n1, 2)}×`, (s2 / n2) >= (s1 / n1) ? 'ratio held' : 'RATIO FELL']);
  }
  const rates = [...new Set(r.open.map((x) => x.rate))];
  if (rates.length > 0) rows.push([`(b) open loop (oha on core ${r.cores.split(',')[1]}, servers on ${r.cores}): CPU s / 100k beacons and p99 ms, medians; columns: workers 1, workers 2, change`]);
  for (const rate of rates) {
    for (const server of ['scratchd', 'nginx'] as const) {
      const med = (workers: number, f: (x: WorkersOpen) => number) => {
        const runs = r.open.filter((x) => x.server === server && x.workers === workers && x.rate === rate);
        return runs.length === 0 ? undefined : median(runs.map(f));
      };
      const c1 = med(1, (x) => (1e5 * x.serverCpuSeconds) / x.requests);
      const c2 = med(2, (x) => (1e5 * x.serverCpuSeconds) / x.requests);
      if (c1 === undefined || c2 === undefined) continue;
      const change = `${c2 >= c1 ? '+' : ''}${fmt((100 * (c2 - c1)) / c1, 1)}%${server === 'scratchd' ? (c2 <= c1 * 1.15 ? ' (within 15%)' : ' (MORE THAN 15%)') : ''}`;
      rows.push([`  ${server} ${fmt(rate)}/s: CPU s / 100k`, fmt(c1, 2), fmt(c2, 2), change]);
      const w1 = med(1, (x) => x.wakeups / x.requests);
      const w2 = med(2, (x) => x.wakeups / x.requests);
      rows.push([`  ${server} ${fmt(rate)}/s: wake-ups / beacon`, fmt(w1, 2), fmt(w2, 2), w1 === undefined || w2 === undefined ? '' : `${fmt(w2 / w1, 2)}×`]);
      rows.push([`  ${server} ${fmt(rate)}/s: p99 ms`, fmt(med(1, (x) => x.p99Ms), 2), fmt(med(2, (x) => x.p99Ms), 2), '']);
    }
  }
  return renderTable('More than one core: workers 1 and 2 (bench/workers.ts)', ['', 'scratchd', 'nginx', 'scratchd / nginx'], rows);
}
