/**
 * The two servers under test, started the same way: pinned to one core,
 * listening on a free 127.0.0.1 port, writing their logs under a temp dir.
 *
 * - scratchd: the built CLI (`node build/src/main.js serve --config …`) with a
 *   generated config: the three flavors, the file backend on, admin on a free
 *   port (its /stats is read for the correctness check and GC pauses).
 * - nginx: the reference for "answer a pixel, log the query": one worker (two for bench/workers.ts),
 *   `empty_gif` at /track, a JSON access log (`escape=json`, `$args`) written
 *   through a 64 KiB buffer flushed every second — the cheapest way there is
 *   to do this job. `keepalive_requests` is raised so neither server closes
 *   connections the other keeps (nginx's default is 1000 per connection).
 *
 * Contract of ServerUnderTest:
 * - `pids()` are the processes whose CPU and memory count (nginx: master and
 *   workers); `stop()` is graceful and returns once the logs are complete on
 *   disk (scratchd: SIGTERM drains and fsyncs; nginx: SIGQUIT flushes the
 *   log buffer); after it, `logTotals()` is final.
 * - `idle` is memory right after start, before any request.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { HOSTS, BEACON_PATH } from './beacons';
import { childPids, freePort, memory, memorySum, pinThreads, spawnPinned, stopProcess, waitForPort, type Cpus, type Memory, type Pinned } from './procs';

export const repoRoot = path.resolve(__dirname, '..', '..');
export const cliPath = path.join(repoRoot, 'build', 'src', 'main.js');

export interface LogTotals {
  bytes: number;
  lines: number;
}

export interface ServerUnderTest {
  readonly name: 'scratchd' | 'nginx';
  readonly port: number;
  readonly idle: Memory;
  pids(): number[];
  memory(): Memory;
  stop(): Promise<number | null>;
  logTotals(): LogTotals;
  readonly proc: Pinned;
}

export interface ScratchdUnderTest extends ServerUnderTest {
  readonly name: 'scratchd';
  readonly adminPort: number;
  stats(): Promise<ScratchdStats>;
}

/** The parts of scratchd's /stats the benchmark reads (docs/operations.md, "Stats"). */
export interface ScratchdStats {
  requests: Record<string, number>;
  backends: Record<string, Record<string, number>>;
  runtime: { rss: number; gc: { count: number; pause_total_ms: number; pause_max_ms: number }; event_loop_delay_max_ms: number };
}

export const FLAVORS = [
  { name: 'skroutz', hosts: [HOSTS[0]], timezone: 'Europe/Athens' },
  { name: 'alve', hosts: [HOSTS[1]], timezone: 'Europe/Istanbul' },
  { name: 'scrooge', hosts: [HOSTS[2]], timezone: 'Europe/London' },
];

/**
 * "With Kafka too" (BENCH_KAFKA=1): a real single-node broker
 * (test/kafka/broker.sh) in its own state dir under the bench's temp dir (so
 * a broker other work is using is never touched), pinned by default to the
 * load core: in production Kafka runs on other machines, so it must not take
 * the server core from scratchd. Pinned there it takes CPU from the load
 * generator instead; BENCH_KAFKA_BROKER_CPU=0,1 leaves it to the scheduler,
 * to take whichever core has time left (docs/performance.md compares both). Java and Maven come from
 * `scripts/debian-deps.sh bench`. scratchd then writes every line to both
 * its files and Kafka; nginx stays as it is (it has no Kafka), so the ratio
 * shows what the second backend costs.
 */
export interface KafkaHook {
  /** Merged into the generated scratchd config. */
  readonly scratchdConfig: Record<string, unknown>;
  /** The broker's JVM, whose CPU the bench shows beside scratchd's threads (it shares the load core). */
  readonly brokerPid: number | null;
  stop(): Promise<void>;
}

export function startKafka(dir: string, cpus: string, log: (m: string) => void): Promise<KafkaHook> {
  const deps = spawnSync('bash', [path.join(repoRoot, 'scripts', 'debian-deps.sh'), 'bench'], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (deps.status !== 0) return Promise.reject(new Error('BENCH_KAFKA=1: the Kafka broker needs the packages named above'));
  const env = { ...process.env, KAFKA_STATE_DIR: path.join(dir, 'kafka') };
  const broker = path.join(repoRoot, 'test', 'kafka', 'broker.sh');
  log('bench: starting a Kafka broker (test/kafka/broker.sh start; the first time it fetches the jars with Maven)');
  const started = spawnSync('taskset', ['-c', cpus, 'bash', broker, 'start'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const brokers = (started.stdout ?? '').trim().split('\n').pop() ?? '';
  if (started.status !== 0 || !/^[\w.-]+:\d+$/.test(brokers)) {
    return Promise.reject(new Error(`BENCH_KAFKA=1: ${broker} start failed (exit ${started.status}): ${started.stdout ?? ''}`));
  }
  return Promise.resolve({
    // BENCH_KAFKA_THREAD=0: kafka.thread off (the client on the HTTP thread), to compare.
    scratchdConfig: { kafka: { brokers, spool: { path: path.join(dir, 'spool') }, thread: process.env.BENCH_KAFKA_THREAD !== '0' } },
    brokerPid: brokerPid(env.KAFKA_STATE_DIR),
    stop: () => {
      spawnSync('bash', [broker, 'stop'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
      return Promise.resolve();
    },
  });
}

function brokerPid(stateDir: string): number | null {
  try {
    const pid = Number(fs.readFileSync(path.join(stateDir, 'pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * The node flags in the CLI's shebang (`#!/usr/bin/env -S node --max-semi-space-size=4`):
 * the bench runs node explicitly, and must run scratchd as `npx scratchd` and
 * the package do.
 */
function shebangFlags(): string[] {
  const first = fs.readFileSync(cliPath, 'utf8').split('\n', 1)[0] ?? '';
  return first.startsWith('#!') ? first.split(/\s+/).filter((word) => word.startsWith('--')) : [];
}

export interface ScratchdStart {
  dir: string;
  cpu: Cpus;
  /** Extra node flags before the script (e.g. --cpu-prof). */
  nodeArgs?: readonly string[];
  /** Merged over the generated config (e.g. the Kafka section). */
  extraConfig?: Record<string, unknown>;
  /** When set, the Kafka thread and librdkafka's threads are moved to this core once it listens. */
  kafkaThreadsCpu?: number;
}

export async function startScratchd(options: ScratchdStart): Promise<ScratchdUnderTest> {
  const { dir, cpu } = options;
  fs.mkdirSync(dir, { recursive: true });
  const [port, adminPort] = [await freePort(), await freePort()];
  const config = {
    listen: `127.0.0.1:${port}`,
    admin: `127.0.0.1:${adminPort}`,
    flavors: FLAVORS,
    file: { path: path.join(dir, 'logs', '{flavor}', '{date}.log') },
    ...options.extraConfig,
  };
  const configPath = path.join(dir, 'scratchd.json');
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  const proc = spawnPinned(cpu, process.execPath, [...shebangFlags(), ...(options.nodeArgs ?? []), cliPath, 'serve', '--config', configPath]);
  try {
    await waitForPort(port, 15_000, proc.exited, 'scratchd');
    await waitForPort(adminPort, 5_000, proc.exited, 'scratchd admin');
  } catch (err) {
    proc.proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${proc.stderr()}`, { cause: err });
  }
  if (options.kafkaThreadsCpu !== undefined) {
    // Threads librdkafka starts later (per broker) are started by these, and inherit the core.
    const pinned = pinThreads(proc.pid, /^(scratchd-kafka|rdk:)/, options.kafkaThreadsCpu);
    if (!pinned.includes('scratchd-kafka')) throw new Error(`scratchd: no Kafka thread to pin (threads: ${pinned.join(', ')})`);
  }
  const idle = memory(proc.pid);
  return {
    name: 'scratchd',
    port,
    adminPort,
    idle,
    proc,
    pids: () => [proc.pid],
    memory: () => memory(proc.pid),
    stop: () => stopProcess(proc, 'SIGTERM', 30_000),
    logTotals: () => logTotals(path.join(dir, 'logs')),
    async stats() {
      const res = await fetch(`http://127.0.0.1:${adminPort}/stats`);
      return (await res.json()) as ScratchdStats;
    },
  };
}

export function nginxVersion(): string {
  // nginx -v prints on stderr.
  const r = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  return `${r.stderr ?? ''}${r.stdout ?? ''}`.trim() || 'unknown';
}

export function nginxConfig(dir: string, port: number, workers = 1): string {
  const logs = path.join(dir, 'logs');
  const hosts = FLAVORS.map((f) => `    ${f.hosts[0]} ${f.name};`).join('\n');
  return `# generated by bench/servers.ts
${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes ${workers};
worker_rlimit_nofile 16384;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  log_not_found off;
  server_tokens off;
  keepalive_requests 100000000;
  keepalive_timeout 65s;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  # The same record as scratchd's line, minus parsing the query: the flavor from Host, the time, the raw args.
  map $host $flavor {
${hosts}
    default "";
  }
  log_format beacon escape=json '{"flavor":"$flavor","time":"$time_iso8601","values":"$args"}';
  server {
    listen 127.0.0.1:${port} default_server;
    return 404;
  }
  server {
    listen 127.0.0.1:${port};
    server_name ${HOSTS.join(' ')};
    location = ${BEACON_PATH} {
      empty_gif;
      add_header Cache-Control no-store;
      access_log ${logs}/access.log beacon buffer=64k flush=1s;
    }
    location / { return 404; }
  }
}
`;
}

export async function startNginx(dir: string, cpu: Cpus, workers = 1): Promise<ServerUnderTest> {
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const port = await freePort();
  const configPath = path.join(dir, 'nginx.conf');
  fs.writeFileSync(configPath, nginxConfig(dir, port, workers));
  // -e: the error log from the first moment (before the config is read, nginx would use its built-in path).
  const proc = spawnPinned(cpu, 'nginx', ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', configPath]);
  try {
    await waitForPort(port, 10_000, proc.exited, 'nginx');
  } catch (err) {
    proc.proc.kill('SIGKILL');
    const errorLog = fs.existsSync(path.join(dir, 'error.log')) ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8') : '';
    throw new Error(`${(err as Error).message}\n${proc.stderr()}${errorLog}`, { cause: err });
  }
  // The workers are forked after the socket is bound: wait until they are there.
  for (let i = 0; i < 100 && childPids(proc.pid).length < workers; i++) await new Promise((r) => setTimeout(r, 20));
  const pids = () => [proc.pid, ...childPids(proc.pid)];
  return {
    name: 'nginx',
    port,
    idle: memorySum(pids()),
    proc,
    pids,
    memory: () => memorySum(pids()),
    // SIGQUIT: graceful stop; the worker flushes its access-log buffer on the way out.
    stop: () => stopProcess(proc, 'SIGQUIT', 30_000),
    logTotals: () => logTotals(logs(dir)),
  };
}

function logs(dir: string): string {
  return path.join(dir, 'logs');
}

/** Bytes and lines of every file under a folder. */
export function logTotals(root: string): LogTotals {
  const totals = { bytes: 0, lines: 0 };
  if (!fs.existsSync(root)) return totals;
  const walk = (folder: string) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) {
        totals.bytes += fs.statSync(full).size;
        totals.lines += countNewlines(full);
      }
    }
  };
  walk(root);
  return totals;
}

function countNewlines(file: string): number {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  let n = 0;
  try {
    for (;;) {
      const read = fs.readSync(fd, buf, 0, buf.length, null);
      if (read === 0) break;
      for (let at = buf.indexOf(10); at !== -1 && at < read; at = buf.indexOf(10, at + 1)) n++;
    }
  } finally {
    fs.closeSync(fd);
  }
  return n;
}
