/**
 * `npm run bench`: scratchd against nginx on the same machine in the same
 * run, then the pieces of scratchd alone.
 *
 * Contract:
 * - Knobs are environment variables (options.ts). Nothing passes or fails on
 *   a time: the output is tables with ratios (docs/performance.md). The
 *   exit status is non-zero only when the benchmark itself could not run, or
 *   when a correctness check failed (lines lost or invented), since then the
 *   numbers mean nothing.
 * - Fair by construction: both servers run at the same time, each pinned to
 *   the server core (an idle server costs nothing), the load generators and
 *   this orchestrator to the other core; runs alternate between the servers
 *   and their order flips each round, so drift on a shared machine hurts
 *   both alike. Both get the same beacons (beacons.ts) after a warm-up.
 * - A shared machine is watched, not trusted: each run measures the CPU that
 *   other processes used meanwhile; a run above DISTURBED_PERCENT is marked,
 *   repeated after waiting for quiet (BENCH_RETRIES), and left out of the
 *   medians when undisturbed runs exist.
 * - Prints one table (scratchd | nginx | scratchd/nginx), then the
 *   micro-benchmarks, the CPU profile and the soak when asked, and writes
 *   everything as JSON to bench/results/<timestamp>.json (git-ignored).
 *
 * Phases: setup (tools, machine) → closed loop (wrk) → open loop (oha) →
 * memory and log totals, correctness → [profile] → [soak] → micro.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeBeacons, writeOhaUrls, writeWrkScript } from './beacons';
import { runMeasured, runOha, runWrk, type OpenLoopResult, type WrkResult } from './load';
import type { MicroResult } from './micro';
import { microTable } from './micro';
import { burstTable, runBursts, type BurstRow } from './burst';
import { hostileRequestsTable, runHostileRequests, type HostileRequestRun } from './hostile-requests';
import { benchOptions, type BenchOptions } from './options';
import { cpuTimes, machineBusyPercent, machineCpuSeconds, pinSelf, runPinned, sleep, threadCpuNs, threadCpuUsPer, type Memory } from './procs';
import { profileTable, readCpuProfile, summarizeCpuProfile, type ProfileRow } from './profile';
import { ensureDebianTools, ensureOha, machineInfo, type MachineInfo } from './setup';
import {
  repoRoot,
  startKafka,
  startNginx,
  startScratchd,
  type LogTotals,
  type ScratchdStats,
  type ScratchdUnderTest,
  type ServerUnderTest,
} from './servers';
import { runSoak, type SoakResult } from './soak';
import { workersPhase, workersTable, type WorkersResult } from './workers';
import { median } from './stats';
import { fmt, mib, ratio, renderTable, type Row } from './table';

const log = (m: string) => process.stderr.write(`${m}\n`);

/**
 * Someone else's CPU time during a run, in % of one core, above which the run
 * is marked disturbed: the machine is shared (other builds and tests), and a
 * disturbed run says more about them than about the servers. Closed-loop
 * medians use the undisturbed runs when there are any.
 */
const DISTURBED_PERCENT = 10;

/** oha connections for the open-loop rates: enough that a GC pause queues at the client, where it is measured. */
const OPEN_LOOP_CONNECTIONS = 100;

type Name = 'scratchd' | 'nginx';

interface ClosedRun {
  server: Name;
  round: number;
  wrk: WrkResult;
  serverCpuSeconds: number;
  /** The kernel's share of serverCpuSeconds (syscalls, and the loopback TCP work done in them). */
  serverSysSeconds: number;
  /** CPU of other processes during the run, % of one core: above DISTURBED_PERCENT the run does not count. */
  othersCpuPercent: number;
  /** scratchd: CPU µs per request by thread (procs.ts threadCpuNs), and the Kafka broker's (`broker`) when it runs. */
  threadsUsPerRequest?: Record<string, number>;
}

interface OpenRun {
  server: Name;
  load: OpenLoopResult;
  serverCpuSeconds: number;
  othersCpuPercent: number;
}

interface ServerSummary {
  idle: Memory;
  peak: Memory;
  logs: LogTotals;
  /** 200 answers the load generators counted (warm-up included). */
  client200: number;
  /** Requests possibly answered but not counted by the client (wrk's in-flight at its end). */
  inFlightSlack: number;
}

interface Results {
  machine: MachineInfo;
  options: BenchOptions;
  closed: ClosedRun[];
  open: OpenRun[];
  openLoopSkipped?: string;
  servers: Partial<Record<Name, ServerSummary>>;
  scratchdStats?: ScratchdStats;
  checks: { name: string; ok: boolean; detail: string }[];
  profile?: { requestsPerSecond: number; rows: ProfileRow[]; totalMs: number; file: string };
  soak?: SoakResult;
  micro?: MicroResult[];
  queryBench?: string;
  /** bench/burst.ts: latency under a pipelined burst, with and without backpressure. */
  burst?: BurstRow[];
  /** bench/split-head.ts: a 16 KB head in one write vs 10-byte pieces (its table). */
  splitHead?: string;
  microOthersCpuPercent?: number;
  /** bench/workers.ts: workers 1 and 2 beside nginx with 1 and 2 workers. */
  workers?: WorkersResult;
  /** bench/hostile-requests.ts: the worst queries as whole requests, beside the realistic beacon. */
  hostileRequests?: HostileRequestRun[];
}

/** Before a measured run: wait (up to maxMs) until the machine is quiet, so that a retry has a chance. */
async function waitQuiet(maxMs: number): Promise<void> {
  const until = Date.now() + maxMs;
  let busy = await machineBusyPercent(500);
  if (busy <= 5) return;
  log(`bench: machine ${fmt(busy)}% busy: waiting up to ${fmt(maxMs / 1000)} s for quiet`);
  while (busy > 5 && Date.now() < until) busy = await machineBusyPercent(1000);
}

/**
 * Runs a measurement, and again (after waiting for quiet) while it was
 * disturbed, at most options.retries more times. Every attempt is returned:
 * the JSON keeps them all, the table uses the undisturbed ones.
 */
async function withRetries<T extends { othersCpuPercent: number }>(retries: number, what: string, run: () => Promise<T>): Promise<T[]> {
  const attempts: T[] = [];
  for (let attempt = 0; attempt <= retries; attempt++) {
    await waitQuiet(30_000);
    const result = await run();
    attempts.push(result);
    if (result.othersCpuPercent <= DISTURBED_PERCENT) break;
    if (attempt < retries) log(`bench: ${what}: disturbed, again`);
  }
  return attempts;
}

/** Measures the CPU time of other processes while `run` runs (see DISTURBED_PERCENT). */
async function watchOthers<T>(run: () => Promise<T>, known: (result: T) => number): Promise<{ result: T; othersCpuPercent: number }> {
  const machine0 = machineCpuSeconds();
  const self0 = process.cpuUsage();
  const wall0 = Date.now();
  const result = await run();
  const self = process.cpuUsage(self0);
  const others = machineCpuSeconds() - machine0 - (self.user + self.system) / 1e6 - known(result);
  return { result, othersCpuPercent: (100 * Math.max(0, others)) / Math.max(0.001, (Date.now() - wall0) / 1000) };
}

async function main(): Promise<number> {
  const parsed = benchOptions(process.env);
  const problems = parsed.problems;
  let options = parsed.options;
  if (problems.length > 0) {
    for (const p of problems) log(`bench: ${p}`);
    return 64;
  }
  if (process.platform !== 'linux') {
    log('bench: Linux only (taskset, /proc)');
    return 1;
  }
  if (!fs.existsSync(path.join(repoRoot, 'build', 'src', 'main.js'))) {
    log('bench: build/src/main.js is missing: run `npm run build` first (npm run bench does)');
    return 1;
  }
  if (os.cpus().length < 2 && options.serverCpu !== options.loadCpu) {
    log(`bench: only ${os.cpus().length} core: server and load generator share core 0; the numbers are not comparable with a 2-core run`);
    options = { ...options, loadCpu: 0, serverCpu: 0 };
  }

  ensureDebianTools(log);
  let kafkaConfig: Record<string, unknown> | undefined;
  let brokerPid: number | null = null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scratchd-bench-'));
  let kafkaStop: (() => Promise<void>) | undefined;
  try {
    if (options.kafka) {
      const kafka = await startKafka(dir, options.brokerCpus, log);
      kafkaConfig = kafka.scratchdConfig;
      brokerPid = kafka.brokerPid;
      kafkaStop = () => kafka.stop();
    }
    // This process only waits while the load runs; keep it off the server core.
    pinSelf(options.loadCpu);
    const oha = options.only === 'micro' || options.only === 'burst' ? { path: null, why: `BENCH_ONLY=${options.only}` } : ensureOha(log);
    const busy = await machineBusyPercent(2000);
    const results: Results = { machine: machineInfo(oha.path, busy), options, closed: [], open: [], servers: {}, checks: [] };
    log(`bench: ${machineLine(results.machine)}`);
    if (busy > 5) log(`bench: WARNING: the machine was ${busy.toFixed(0)}% busy before starting: other processes run; the numbers will be noisy`);
    log(`bench: work dir ${dir}`);

    if (options.only === 'all' || options.only === 'load') await loadPhases(options, results, dir, oha, kafkaConfig, brokerPid);
    if (options.only === 'soak') {
      const urlsFile = path.join(dir, 'beacons.urls');
      writeOhaUrls(urlsFile, makeBeacons(options.beacons));
      await soakPhase(options, results, dir, oha, urlsFile);
    }
    if (options.only === 'all' || options.only === 'burst') await burstPhase(options, results, dir);
    if (options.only === 'all' || options.only === 'workers') {
      const beacons = makeBeacons(options.beacons);
      const wrkScript = path.join(dir, 'workers.lua');
      const urlsFile = path.join(dir, 'workers.urls');
      writeWrkScript(wrkScript, beacons);
      writeOhaUrls(urlsFile, beacons);
      await waitQuiet(30_000);
      results.workers = await workersPhase(options, dir, wrkScript, { path: oha.path, urlsFile }, log);
      results.checks.push(...results.workers.checks);
    }
    if (options.only === 'all' || options.only === 'hostile') {
      await waitQuiet(30_000);
      results.hostileRequests = await runHostileRequests(options, log);
      for (const run of results.hostileRequests) {
        results.checks.push({ name: `hostile request ${run.name}: every answer 200`, ok: run.failed === 0 && run.requests > 0, detail: `${run.requests} answers, ${run.failed} not 200 or failed` });
      }
    }
    if (options.only === 'all' || options.only === 'micro') await microPhase(options, results);

    const text = report(results);
    console.log(text);
    const out = writeResults(results);
    console.log(`\nresults: ${path.relative(process.cwd(), out)}`);
    return results.checks.every((c) => c.ok) ? 0 : 1;
  } finally {
    await kafkaStop?.();
    if (process.env.BENCH_KEEP === '1') log(`bench: kept ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function loadPhases(
  options: BenchOptions,
  results: Results,
  dir: string,
  oha: { path: string | null; why: string },
  kafkaConfig: Record<string, unknown> | undefined,
  brokerPid: number | null,
): Promise<void> {
  const beacons = makeBeacons(options.beacons);
  const wrkScript = path.join(dir, 'beacons.lua');
  const urlsFile = path.join(dir, 'beacons.urls');
  writeWrkScript(wrkScript, beacons);
  writeOhaUrls(urlsFile, beacons);
  const avg = beacons.reduce((a, b) => a + b.query.length, 0) / beacons.length;
  log(`bench: ${beacons.length} distinct beacons, query ${fmt(avg)} bytes on average`);

  const kafkaThreadsCpu = kafkaConfig !== undefined && options.kafkaOwnCore ? options.loadCpu : undefined;
  const scratchd = await startScratchd({ dir: path.join(dir, 'scratchd'), cpu: options.serverCpu, extraConfig: kafkaConfig, kafkaThreadsCpu });
  let nginx: ServerUnderTest;
  try {
    nginx = await startNginx(path.join(dir, 'nginx'), options.serverCpu);
  } catch (err) {
    await scratchd.stop();
    throw err;
  }
  const servers: [ScratchdUnderTest, ServerUnderTest] = [scratchd, nginx];
  // scratchd's threads, and the broker (it shares the load core with wrk and, with BENCH_KAFKA_CORE, the Kafka threads).
  const threadsOf = (server: ServerUnderTest): Map<string, number> => {
    if (server.name !== 'scratchd') return new Map();
    const threads = threadCpuNs(server.pids()[0]!);
    if (brokerPid !== null) {
      const broker = cpuTimes([brokerPid]);
      threads.set('broker', (broker.user + broker.sys) * 1e9);
    }
    return threads;
  };
  const counted: Record<Name, { ok: number; slack: number }> = { scratchd: { ok: 0, slack: 0 }, nginx: { ok: 0, slack: 0 } };
  const countWrk = (name: Name, w: WrkResult) => {
    counted[name].ok += w.requests - w.non2xx;
    counted[name].slack += w.connections;
  };

  try {
    for (const server of servers) {
      log(`bench: warm-up ${server.name} (${options.warmupSeconds} s, 50 connections)`);
      countWrk(server.name, await runWrk(options.loadCpu, wrkScript, server.port, 50, options.warmupSeconds));
    }

    for (let round = 1; round <= options.runs; round++) {
      for (const connections of options.connections) {
        // Flip the order every round: whatever drifts on a shared machine falls on both.
        const order = round % 2 === 1 ? servers : [...servers].reverse();
        for (const server of order) {
          const attempts = await withRetries(options.retries, `closed ${server.name} round ${round} ${connections} conns`, async () => {
            await sleep(500);
            const cpu0 = cpuTimes(server.pids());
            let cpu1 = cpu0;
            const threads0 = threadsOf(server);
            let threads1 = threads0;
            const { result: wrk, othersCpuPercent } = await watchOthers(
              async () => {
                const w = await runWrk(options.loadCpu, wrkScript, server.port, connections, options.seconds);
                cpu1 = cpuTimes(server.pids());
                threads1 = threadsOf(server);
                return w;
              },
              (w) => w.generatorCpuSeconds + cpu1.user + cpu1.sys - cpu0.user - cpu0.sys,
            );
            const serverSysSeconds = cpu1.sys - cpu0.sys;
            const serverCpuSeconds = cpu1.user - cpu0.user + serverSysSeconds;
            countWrk(server.name, wrk);
            log(
              `bench: closed ${server.name} round ${round} ${connections} conns: ${fmt(wrk.requestsPerSecond)} req/s, ` +
                `server CPU ${fmt((100 * serverCpuSeconds) / wrk.seconds)}%, wrk CPU ${fmt((100 * wrk.generatorCpuSeconds) / wrk.seconds)}%` +
                (wrk.non2xx + wrk.socketErrors > 0 ? `, ${wrk.non2xx} non-2xx, ${wrk.socketErrors} socket errors` : '') +
                (othersCpuPercent > DISTURBED_PERCENT ? `; DISTURBED: other processes used ${fmt(othersCpuPercent)}% of a core` : ''),
            );
            const threadsUsPerRequest = server.name === 'scratchd' ? threadCpuUsPer(threads0, threads1, wrk.requests) : undefined;
            return { server: server.name, round, wrk, serverCpuSeconds, serverSysSeconds, othersCpuPercent, threadsUsPerRequest };
          });
          results.closed.push(...attempts);
        }
      }
    }

    if (oha.path === null) {
      results.openLoopSkipped = oha.why;
      log(`bench: open loop SKIPPED: ${oha.why}`);
    } else {
      for (const [i, rate] of options.rates.entries()) {
        const order = i % 2 === 0 ? servers : [...servers].reverse();
        for (const server of order) {
          const attempts = await withRetries(options.retries, `open ${server.name} ${fmt(rate)}/s`, async () => {
            await sleep(500);
            const cpu0 = cpuTimes(server.pids());
            let cpu1 = cpu0;
            const { result: load, othersCpuPercent } = await watchOthers(
              async () => {
                const l = await runOha(oha.path!, options.loadCpu, urlsFile, server.port, rate, options.seconds, OPEN_LOOP_CONNECTIONS, dir);
                cpu1 = cpuTimes(server.pids());
                return l;
              },
              (l) => l.generatorCpuSeconds + cpu1.user + cpu1.sys - cpu0.user - cpu0.sys,
            );
            const serverCpuSeconds = cpu1.user + cpu1.sys - cpu0.user - cpu0.sys;
            counted[server.name].ok += load.ok;
            log(
              `bench: open ${server.name} ${fmt(rate)}/s: achieved ${fmt(load.achievedRate)}/s, p50 ${fmt(load.p50Ms, 2)} ms, ` +
                `p99 ${fmt(load.p99Ms, 2)} ms, p99.9 ${fmt(load.p999Ms, 2)} ms, oha CPU ${fmt((100 * load.generatorCpuSeconds) / load.seconds)}%` +
                (load.failed > 0 ? `, ${load.failed} failed ${JSON.stringify(load.errors)}` : '') +
                (othersCpuPercent > DISTURBED_PERCENT ? `; DISTURBED: other processes used ${fmt(othersCpuPercent)}% of a core` : ''),
            );
            return { server: server.name, load, serverCpuSeconds, othersCpuPercent };
          });
          results.open.push(...attempts);
        }
      }
    }

    // Memory high-water marks before stopping; then wait for scratchd's file queue to drain, read /stats.
    const peaks = { scratchd: scratchd.memory(), nginx: nginx.memory() };
    let stats = await scratchd.stats();
    const queued = (st: ScratchdStats) => Object.values(st.backends).reduce((sum, b) => sum + (b.queued ?? 0), 0);
    for (let i = 0; i < 300 && queued(stats) > 0; i++) {
      await sleep(100);
      stats = await scratchd.stats();
    }
    results.scratchdStats = stats;
    const codes = await Promise.all(servers.map((s) => s.stop()));
    servers.forEach((s, i) => {
      if (codes[i] !== 0) results.checks.push({ name: `${s.name} exit`, ok: false, detail: `exit ${codes[i]}: ${s.proc.stderr().slice(-2000)}` });
    });
    for (const server of servers) {
      results.servers[server.name] = {
        idle: server.idle,
        peak: peaks[server.name],
        logs: server.logTotals(),
        client200: counted[server.name].ok,
        inFlightSlack: counted[server.name].slack,
      };
    }
    correctness(results, stats);
  } finally {
    // Idempotent: a no-op for servers already stopped.
    await Promise.all(servers.map((s) => s.stop()));
  }

  if (options.profile) await profilePhase(options, results, dir, wrkScript);
  if (options.soakSeconds > 0) await soakPhase(options, results, dir, oha, urlsFile);
}

async function soakPhase(options: BenchOptions, results: Results, dir: string, oha: { path: string | null; why: string }, urlsFile: string): Promise<void> {
  if (oha.path === null) {
    log(`bench: soak SKIPPED: ${oha.why}`);
    return;
  }
  log(`bench: soak: ${options.soakSeconds} s at ${fmt(options.soakRate)}/s`);
  results.soak = await runSoak({
    oha: oha.path,
    urlsFile,
    dir,
    serverCpu: options.serverCpu,
    loadCpu: options.loadCpu,
    seconds: options.soakSeconds,
    rate: options.soakRate,
    connections: OPEN_LOOP_CONNECTIONS,
    sampleMs: 5000,
    log,
  });
}

/**
 * Lines written must equal the beacons answered 200: scratchd's own counters
 * (requests.tracked, backends.file.written), the lines in its files, and the
 * client's count (which can be lower by the requests in flight when wrk stopped).
 */
function correctness(results: Results, stats: ScratchdStats): void {
  const s = results.servers.scratchd!;
  const n = results.servers.nginx!;
  const tracked = stats.requests.tracked ?? 0;
  const file = stats.backends.file ?? {};
  const written = file.written ?? 0;
  const dropped = file.dropped ?? 0;
  const otherOutcomes = Object.entries(stats.requests).filter(([k, v]) => k !== 'tracked' && v > 0);
  results.checks.push({
    name: 'scratchd lines = tracked = file.written',
    ok: s.logs.lines === tracked && tracked === written && dropped === 0,
    detail: `lines ${fmt(s.logs.lines)}, requests.tracked ${fmt(tracked)}, backends.file.written ${fmt(written)}, dropped ${fmt(dropped)}`,
  });
  const kafka = stats.backends.kafka;
  if (kafka !== undefined) {
    results.checks.push({
      name: 'scratchd kafka.written = tracked',
      ok: kafka.written === tracked && (kafka.dropped ?? 0) === 0,
      detail: `backends.kafka.written ${fmt(kafka.written)}, dropped ${fmt(kafka.dropped)}, tracked ${fmt(tracked)}`,
    });
  }
  results.checks.push({
    name: 'scratchd answers: all tracked',
    ok: otherOutcomes.length === 0,
    detail: otherOutcomes.length === 0 ? 'no other outcome' : otherOutcomes.map(([k, v]) => `${k} ${v}`).join(', '),
  });
  for (const [name, summary] of [['scratchd', s], ['nginx', n]] as const) {
    const extra = summary.logs.lines - summary.client200;
    results.checks.push({
      name: `${name} lines vs client 200s`,
      ok: extra >= 0 && extra <= summary.inFlightSlack,
      detail: `lines ${fmt(summary.logs.lines)}, client 200s ${fmt(summary.client200)} (lines may exceed by up to ${fmt(summary.inFlightSlack)} in flight at wrk's stop; +${fmt(extra)})`,
    });
  }
}

async function profilePhase(options: BenchOptions, results: Results, dir: string, wrkScript: string): Promise<void> {
  const profDir = path.join(dir, 'profile');
  fs.mkdirSync(profDir, { recursive: true });
  const connections = options.connections[0] ?? 50;
  await waitQuiet(30_000);
  log(`bench: profile: scratchd --cpu-prof under ${connections} connections for ${options.seconds} s`);
  const server = await startScratchd({
    dir: path.join(dir, 'profile-run'),
    cpu: options.serverCpu,
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`],
  });
  let wrk: WrkResult;
  try {
    await runWrk(options.loadCpu, wrkScript, server.port, connections, options.warmupSeconds);
    wrk = await runWrk(options.loadCpu, wrkScript, server.port, connections, options.seconds);
  } finally {
    await server.stop();
  }
  const file = fs.readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) {
    log('bench: profile: no .cpuprofile written (did scratchd exit cleanly on SIGTERM?)');
    return;
  }
  // Keep the profile next to the results JSON: it opens in Chrome DevTools or speedscope.
  const keep = path.join(repoRoot, 'bench', 'results', `${stamp(results.machine.date)}.cpuprofile`);
  fs.mkdirSync(path.dirname(keep), { recursive: true });
  fs.copyFileSync(path.join(profDir, file), keep);
  const summary = summarizeCpuProfile(readCpuProfile(keep), 15, repoRoot);
  results.profile = { requestsPerSecond: wrk.requestsPerSecond, ...summary, file: path.relative(repoRoot, keep) };
}

async function microPhase(options: BenchOptions, results: Results): Promise<void> {
  await waitQuiet(30_000);
  log('bench: micro-benchmarks (pinned to the server core)');
  const lines = options.quick ? 200_000 : 1_000_000;
  const { result: micro, othersCpuPercent } = await watchOthers(
    () => runMeasured(options.serverCpu, process.execPath, [path.join(__dirname, 'micro.js'), '--json', String(options.microRoundMs), String(options.microRounds), String(lines)]),
    (m) => m.cpuSeconds,
  );
  if (micro.code !== 0) throw new Error(`micro-benchmarks failed (exit ${micro.code}):\n${micro.stderr}`);
  results.micro = JSON.parse(micro.stdout) as MicroResult[];
  results.microOthersCpuPercent = othersCpuPercent;
  // The query engineer's own cases (bench/query.bench.ts), run as they are, for the detail by input shape.
  const queryBench = path.join(__dirname, 'query.bench.js');
  if (fs.existsSync(queryBench)) {
    const q = await runPinned(options.serverCpu, process.execPath, [queryBench, String(options.quick ? 200 : 1000)]);
    results.queryBench = q.code === 0 ? q.stdout.trimEnd() : `query.bench.js failed (exit ${q.code}): ${q.stderr}`;
  }
  // The split-head cost over TCP (server and clients share the server core: it is the server's CPU that is counted).
  const split = await runPinned(options.serverCpu, process.execPath, [path.join(__dirname, 'split-head.js'), String(options.quick ? 10 : 40)]);
  results.splitHead = split.code === 0 ? split.stdout.trimEnd() : `split-head.js failed (exit ${split.code}): ${split.stderr}`;
}

/** Latency under a pipelined burst; a 200 without its line fails the bench. */
async function burstPhase(options: BenchOptions, results: Results, dir: string): Promise<void> {
  results.burst = await runBursts(options, dir, log);
  for (const row of results.burst) {
    results.checks.push({ name: `burst ${row.name}: every 200 is a line`, ok: row.lines === row.ok, detail: `${row.ok} × 200, ${row.lines} lines` });
  }
}

function machineLine(m: MachineInfo): string {
  return (
    `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}; node ${m.node}, ${m.nginx}, ${m.wrk}, ${m.oha}; ` +
    `git ${m.git}; busy before start ${m.busyPercent.toFixed(0)}% (load average ${m.loadAverage.toFixed(2)})`
  );
}

function report(r: Results): string {
  const o = r.options;
  const parts: string[] = [];
  if (o.only === 'all' || o.only === 'load') parts.push(mainTable(r));
  if (r.profile !== undefined) {
    parts.push(
      profileTable(
        `scratchd CPU profile, top 15 by self time, under ${o.connections[0] ?? 50} connections (${fmt(r.profile.requestsPerSecond)} req/s while profiled; ${r.profile.file})`,
        r.profile,
      ),
    );
  }
  if (r.soak !== undefined) parts.push(soakTable(r.soak));
  if (r.burst !== undefined) parts.push(burstTable(r.burst));
  if (r.workers !== undefined) parts.push(workersTable(r.workers));
  if (r.micro !== undefined) {
    const others = r.microOthersCpuPercent ?? 0;
    parts.push(microTable(r.micro));
    if (others > DISTURBED_PERCENT) parts.push(`(DISTURBED: other processes used ${fmt(others)}% of a core while these ran)`);
  }
  if (r.hostileRequests !== undefined) parts.push(hostileRequestsTable(r.hostileRequests));
  if (r.splitHead !== undefined) parts.push(r.splitHead);
  if (r.queryBench !== undefined) parts.push(`queryToJson by input shape (bench/query.bench.ts, best of 10 rounds)\n${r.queryBench}`);
  return `\n${parts.join('\n\n')}`;
}

function mainTable(r: Results): string {
  const o = r.options;
  const rows: Row[] = [];
  const pair = (label: string, f: (name: Name) => number | undefined, decimals = 0, ratioOf = true): Row => {
    const s = f('scratchd');
    const n = f('nginx');
    return [label, fmt(s, decimals), fmt(n, decimals), ratioOf ? ratio(s, n) : ''];
  };
  // The undisturbed runs when there are any (see DISTURBED_PERCENT), else all of them.
  const closed = (name: Name, c: number) => {
    const all = r.closed.filter((x) => x.server === name && x.wrk.connections === c);
    const calm = all.filter((x) => x.othersCpuPercent <= DISTURBED_PERCENT);
    return calm.length > 0 ? calm : all;
  };
  const calmCount = (c: number) =>
    (['scratchd', 'nginx'] as const).map((n) => `${n} ${closed(n, c).filter((x) => x.othersCpuPercent <= DISTURBED_PERCENT).length}`).join(', ');
  const med = (runs: ClosedRun[], f: (x: ClosedRun) => number) => (runs.length === 0 ? undefined : median(runs.map(f)));

  rows.push([`closed loop: wrk, 1 thread, ${o.seconds} s, median of ${o.runs}`]);
  for (const c of o.connections) {
    rows.push([`  ${c} connections: undisturbed runs (of ${o.runs}, up to ${o.retries} retries each): ${calmCount(c)}`]);
    rows.push(pair(`  requests/s, ${c} conns`, (n) => med(closed(n, c), (x) => x.wrk.requestsPerSecond)));
    // Over every attempt: a disturbance only ever lowers throughput.
    rows.push(pair(`  requests/s best, ${c} conns`, (n) => {
      const runs = r.closed.filter((x) => x.server === n && x.wrk.connections === c);
      return runs.length === 0 ? undefined : Math.max(...runs.map((x) => x.wrk.requestsPerSecond));
    }));
    rows.push(pair(`  server CPU %, ${c} conns`, (n) => med(closed(n, c), (x) => (100 * x.serverCpuSeconds) / x.wrk.seconds)));
    rows.push(pair(`  CPU s / 100k req, ${c} conns`, (n) => med(closed(n, c), (x) => (1e5 * x.serverCpuSeconds) / x.wrk.requests), 2));
    rows.push(pair(`    of which kernel (sys)`, (n) => med(closed(n, c), (x) => (1e5 * x.serverSysSeconds) / x.wrk.requests), 2));
    rows.push(pair(`  wrk CPU %, ${c} conns`, (n) => med(closed(n, c), (x) => (100 * x.wrk.generatorCpuSeconds) / x.wrk.seconds), 0, false));
    // Where scratchd's CPU goes, thread by thread (and the broker's, with Kafka): which core is the limit.
    const threadRuns = closed('scratchd', c).filter((x) => x.threadsUsPerRequest !== undefined);
    const groups = [...new Set(threadRuns.flatMap((x) => Object.keys(x.threadsUsPerRequest!)))].sort();
    for (const group of groups) {
      const us = median(threadRuns.map((x) => x.threadsUsPerRequest![group] ?? 0));
      if (us >= 0.1) rows.push([`    µs CPU / req, ${group}`, fmt(us, 2), '', '']);
    }
  }
  if (r.openLoopSkipped !== undefined) {
    rows.push([`open loop: SKIPPED: ${r.openLoopSkipped}`]);
  } else if (r.open.length > 0) {
    rows.push([`open loop: oha -q RATE --latency-correction, ${OPEN_LOOP_CONNECTIONS} conns, ${o.seconds} s; latency in ms from the scheduled send`]);
    for (const rate of o.rates) {
      // The last undisturbed attempt, else the last one.
      const one = (n: Name) => {
        const all = r.open.filter((x) => x.server === n && x.load.rate === rate);
        return all.filter((x) => x.othersCpuPercent <= DISTURBED_PERCENT).pop() ?? all.pop();
      };
      const disturbed = (['scratchd', 'nginx'] as const).some((n) => (one(n)?.othersCpuPercent ?? 0) > DISTURBED_PERCENT);
      const k = (rate >= 1000 ? `${rate / 1000}k/s` : `${rate}/s`) + (disturbed ? ' DISTURBED' : '');
      rows.push(pair(`  p50 ms @ ${k}`, (n) => one(n)?.load.p50Ms, 3));
      rows.push(pair(`  p99 ms @ ${k}`, (n) => one(n)?.load.p99Ms, 3));
      rows.push(pair(`  p99.9 ms @ ${k}`, (n) => one(n)?.load.p999Ms, 3));
      rows.push(pair(`  CPU s / 100k req @ ${k}`, (n) => {
        const x = one(n);
        return x === undefined ? undefined : (1e5 * x.serverCpuSeconds) / Math.max(1, x.load.requests);
      }, 2));
      const off = (['scratchd', 'nginx'] as const).filter((n) => {
        const x = one(n);
        return x !== undefined && (x.load.achievedRate < rate * 0.97 || x.load.failed > 0);
      });
      if (off.length > 0) rows.push(pair(`  ! achieved req/s @ ${k}`, (n) => one(n)?.load.achievedRate));
      rows.push(pair(`  oha CPU % @ ${k}`, (n) => {
        const x = one(n);
        return x === undefined ? undefined : (100 * x.load.generatorCpuSeconds) / x.load.seconds;
      }, 0, false));
    }
  }
  rows.push(['resources']);
  const sv = (n: Name) => r.servers[n];
  rows.push(['  idle RSS MiB (after start)', mib(sv('scratchd')?.idle.rssBytes), mib(sv('nginx')?.idle.rssBytes), ratio(sv('scratchd')?.idle.rssBytes, sv('nginx')?.idle.rssBytes)]);
  rows.push(['  peak RSS MiB (VmHWM)', mib(sv('scratchd')?.peak.peakRssBytes), mib(sv('nginx')?.peak.peakRssBytes), ratio(sv('scratchd')?.peak.peakRssBytes, sv('nginx')?.peak.peakRssBytes)]);
  rows.push(pair('  bytes written / request', (n) => {
    const s = sv(n);
    return s === undefined || s.logs.lines === 0 ? undefined : s.logs.bytes / s.logs.lines;
  }, 1));
  rows.push(pair('  requests answered, all phases', (n) => sv(n)?.logs.lines, 0, false));
  const gc = r.scratchdStats?.runtime.gc;
  if (gc !== undefined) rows.push(['  GC pause max ms / count (/stats)', `${fmt(gc.pause_max_ms, 1)} / ${fmt(gc.count)}`, '-', '']);
  const checks = r.checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
  return [
    renderTable(
      `scratchd${o.kafka ? ' (files + Kafka)' : ''} vs nginx (empty_gif + JSON access log, buffer=64k flush=1s); ratio = scratchd/nginx: above 1x is better for requests/s, worse for everything else`,
      ['metric', 'scratchd', 'nginx', 'ratio'],
      rows,
    ),
    `machine: ${machineLine(r.machine)}`,
    `pinning: servers on core ${o.serverCpu}, load generators on core ${o.loadCpu} (nginx: 1 worker; CPU and RSS are master + worker)` +
      (o.kafka && o.kafkaOwnCore ? `; scratchd's Kafka thread and librdkafka's threads on core ${o.loadCpu} (BENCH_KAFKA_CORE=1), their CPU counted in scratchd's` : '') +
      (o.kafka ? `; the Kafka broker on core(s) ${o.brokerCpus} (BENCH_KAFKA_BROKER_CPU)` : ''),
    `disturbed: a run during which other processes used more than ${DISTURBED_PERCENT}% of a core (user+system time in /proc/stat beyond the server's, the generator's and the bench's)`,
    'reading: server CPU % well under 100 = that server was not the limit in the row (compare CPU s / 100k req); wrk/oha CPU % near 100 = the generator was',
    'correctness:',
    ...checks,
  ].join('\n');
}

function soakTable(s: SoakResult): string {
  const rows: Row[] = [
    ['RSS MiB at start / peak (VmHWM) / end', `${mib(s.startRssBytes)} / ${mib(s.peakRssBytes)} / ${mib(s.endRssBytes)}`],
    ['RSS slope MiB/min, all / second half', `${fmt(s.slopeMiBPerMin, 3)} / ${fmt(s.secondHalfSlopeMiBPerMin, 3)}`],
    ['GC pause max ms / GCs', `${fmt(s.gcPauseMaxMs, 1)} / ${fmt(s.gcCount)}`],
    ['event-loop delay max ms (/stats, sampled)', fmt(s.eventLoopDelayMaxMs, 1)],
    ['latency p50 / p99 / p99.9 / max ms', `${fmt(s.load.p50Ms, 3)} / ${fmt(s.load.p99Ms, 3)} / ${fmt(s.load.p999Ms, 3)} / ${fmt(s.load.maxMs, 1)}`],
    ['achieved req/s, failed', `${fmt(s.load.achievedRate)}, ${fmt(s.load.failed)}`],
    ['tracked / written / dropped', `${fmt(s.tracked)} / ${fmt(s.written)} / ${fmt(s.dropped)}`],
    ['other processes, % of a core', `${fmt(s.othersCpuPercent)}${s.othersCpuPercent > DISTURBED_PERCENT ? ' (DISTURBED: latencies say more about them)' : ''}`],
  ];
  return renderTable(`scratchd memory soak: ${fmt(s.seconds)} s at ${fmt(s.rate)}/s, RSS sampled every 5 s`, ['', 'value'], rows);
}

function stamp(iso: string): string {
  return iso.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
}

function writeResults(r: Results): string {
  const folder = path.join(repoRoot, 'bench', 'results');
  fs.mkdirSync(folder, { recursive: true });
  const file = path.join(folder, `${stamp(r.machine.date)}.json`);
  fs.writeFileSync(file, `${JSON.stringify(r, null, 2)}\n`);
  return file;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // The message names what is missing or what failed; the stack only helps when debugging the bench itself.
    const e = err instanceof Error ? err : new Error(String(err));
    log(`bench: ${process.env.BENCH_DEBUG === '1' ? (e.stack ?? e.message) : e.message}`);
    process.exitCode = 1;
  },
);
