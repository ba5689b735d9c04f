/**
 * Processes for the benchmark: start pinned to a core, read their CPU time
 * and memory from /proc, wait for ports, stop them.
 *
 * Contract:
 * - `spawnPinned(cpu, cmd, args)` runs `taskset -c <cpu> cmd args`: taskset
 *   execs the command, so the child's pid is the command's pid (what /proc
 *   readings and signals need). Threads and children inherit the affinity.
 * - `cpuTimes(pids)` is utime and stime of every listed process (all its
 *   threads: libuv's pool included), in seconds, from /proc/<pid>/stat;
 *   `cpuSeconds` their sum. A process that has gone counts 0.
 * - `memory(pid)` is VmRSS and VmHWM (peak RSS) in bytes from /proc/<pid>/status.
 * - Everything here is Linux-only, as is the benchmark.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';

/** Clock ticks per second for /proc/<pid>/stat (sysconf(_SC_CLK_TCK)); 100 on every Linux we run on. */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface Pinned {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Everything the process wrote on stderr so far (for error messages). */
  stderr(): string;
  stdout(): string;
  readonly exited: Promise<number | null>;
}

/** A core (0), or a taskset list of cores ("0,1"). */
export type Cpus = number | string;

export function spawnPinned(cpu: Cpus, command: string, args: readonly string[], env?: NodeJS.ProcessEnv): Pinned {
  const proc = spawn('taskset', ['-c', String(cpu), command, ...args], {
    env: env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  proc.stderr.setEncoding('utf8');
  proc.stdout.setEncoding('utf8');
  // Keep only the tail: a long soak must not grow this without bound.
  proc.stderr.on('data', (t: string) => (stderr = (stderr + t).slice(-64 * 1024)));
  proc.stdout.on('data', (t: string) => (stdout = (stdout + t).slice(-4 * 1024 * 1024)));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? (signal === null ? null : 128))));
  if (proc.pid === undefined) throw new Error(`could not start ${command}`);
  return { proc, pid: proc.pid, stderr: () => stderr, stdout: () => stdout, exited };
}

/** Pins an already running process (this one, for the orchestrator) to a core. */
export function pinSelf(cpu: Cpus): void {
  execFileSync('taskset', ['-cp', String(cpu), String(process.pid)], { stdio: 'ignore' });
}

/**
 * Pins the threads of a running process whose name (/proc/<pid>/task/<tid>/comm)
 * matches `name` to a core; threads they start later inherit it. Returns their names.
 */
export function pinThreads(pid: number, name: RegExp, cpu: number): string[] {
  const pinned: string[] = [];
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    let comm: string;
    try {
      comm = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
    } catch {
      continue; // the thread ended meanwhile
    }
    if (!name.test(comm)) continue;
    try {
      execFileSync('taskset', ['-cp', String(cpu), tid], { stdio: 'ignore' });
    } catch (err) {
      if (fs.existsSync(`/proc/${pid}/task/${tid}`)) throw err;
      continue; // the thread ended between reading its name and pinning it
    }
    pinned.push(comm);
  }
  return pinned;
}

export interface CpuTimes {
  user: number;
  sys: number;
}

export function cpuTimes(pids: readonly number[]): CpuTimes {
  let user = 0;
  let sys = 0;
  for (const pid of pids) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 (utime) and 15 (stime) overall are 12 and 13 here (field 3 is index 0).
    user += Number(fields[11]);
    sys += Number(fields[12]);
  }
  return { user: user / CLK_TCK, sys: sys / CLK_TCK };
}

export function cpuSeconds(pids: readonly number[]): number {
  const t = cpuTimes(pids);
  return t.user + t.sys;
}

/** librdkafka's threads in one group (rdk:main, rdk:broker<n>, …: one per broker connection). */
const threadGroup = (comm: string): string => (comm.startsWith('rdk:') ? 'rdk:*' : comm);

/**
 * Calls `each` with every live thread of a process (`self`: this one): its
 * task folder and its /proc/<pid>/task/<tid>/schedstat fields (time on CPU
 * in ns, time waiting to run, times put on a CPU). A thread that ends between
 * the listing and the read is left out, as is a process that is gone.
 */
function forEachThread(pid: number | 'self', each: (taskDir: string, schedstat: number[]) => void): void {
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return;
  }
  for (const tid of tids) {
    const taskDir = `/proc/${pid}/task/${tid}`;
    try {
      each(taskDir, fs.readFileSync(`${taskDir}/schedstat`, 'utf8').split(' ').map(Number));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
}

/**
 * CPU ns so far of every thread of a process (`self`: this one), summed by
 * thread name (librdkafka's together): time on CPU from schedstat.
 */
export function threadCpuNs(pid: number | 'self'): Map<string, number> {
  const out = new Map<string, number>();
  forEachThread(pid, (taskDir, schedstat) => {
    const group = threadGroup(fs.readFileSync(`${taskDir}/comm`, 'utf8').trim());
    out.set(group, (out.get(group) ?? 0) + schedstat[0]!);
  });
  return out;
}

/**
 * How many times the threads of these processes were put on a CPU (the third
 * schedstat field): mostly wake-ups from sleep (an event loop's epoll_wait
 * returning), plus preemptions.
 */
export function timesScheduled(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) forEachThread(pid, (_, schedstat) => (total += schedstat[2]!));
  return total;
}

/** CPU µs per unit of work by thread group between two threadCpuNs() readings (groups under 0.01 µs left out). */
export function threadCpuUsPer(before: Map<string, number>, after: Map<string, number>, units: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [group, ns] of after) {
    const us = (ns - (before.get(group) ?? 0)) / 1000 / units;
    if (us >= 0.01) out[group] = us;
  }
  return out;
}

export interface Memory {
  rssBytes: number;
  peakRssBytes: number;
}

export function memory(pid: number): Memory {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
}

/** Sum over several processes (nginx: master + worker). */
export function memorySum(pids: readonly number[]): Memory {
  let rssBytes = 0;
  let peakRssBytes = 0;
  for (const pid of pids) {
    try {
      const m = memory(pid);
      rssBytes += m.rssBytes;
      peakRssBytes += m.peakRssBytes;
    } catch {
      // gone
    }
  }
  return { rssBytes, peakRssBytes };
}

/** Direct children of a process (nginx's workers), from /proc/<pid>/task/<pid>/children. */
export function childPids(pid: number): number[] {
  try {
    const text = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return text === '' ? [] : text.split(/\s+/).map(Number);
  } catch {
    return [];
  }
}

/** A TCP port free on 127.0.0.1 right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once 127.0.0.1:port accepts a connection; rejects after timeoutMs or if `exited` resolves first. */
export async function waitForPort(port: number, timeoutMs: number, exited?: Promise<number | null>, what = `port ${port}`): Promise<void> {
  let gone = false;
  void exited?.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`${what}: the process exited before listening`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`${what}: nothing listening after ${timeoutMs} ms`);
}

/** Sends `signal` and waits up to timeoutMs for the exit; then SIGKILL. Resolves with the exit code. */
export async function stopProcess(p: Pinned, signal: NodeJS.Signals, timeoutMs: number): Promise<number | null> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return p.exited;
  p.proc.kill(signal);
  const timer = setTimeout(() => p.proc.kill('SIGKILL'), timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  return code;
}

/** Runs a command pinned to a core, resolving with its stdout/stderr and exit code (never rejects on exit status). */
export async function runPinned(cpu: Cpus, command: string, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnPinned(cpu, command, args);
  const code = await p.exited;
  // 'exit' can come before the pipes are drained.
  await Promise.all([streamEnd(p.proc.stdout), streamEnd(p.proc.stderr)]);
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

function streamEnd(stream: NodeJS.ReadableStream | null): Promise<void> {
  if (stream === null) return Promise.resolve();
  return new Promise((resolve) => {
    if ((stream as unknown as { readableEnded?: boolean }).readableEnded === true) return resolve();
    stream.once('end', resolve);
    stream.once('close', resolve);
  });
}

/** Share of all cores' time that was busy (not idle or iowait) over `ms`, from /proc/stat: is anything else running? */
export async function machineBusyPercent(ms: number): Promise<number> {
  const read = () => {
    const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const idle = fields[3]! + fields[4]!;
    return { idle, total: fields.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  await sleep(ms);
  const b = read();
  return b.total === a.total ? 0 : 100 * (1 - (b.idle - a.idle) / (b.total - a.total));
}

/**
 * CPU time (user + nice + system, all cores) of the whole machine so far, in
 * seconds, from /proc/stat. A run compares its delta with the CPU time of
 * the processes it knows (server, generator, itself): the rest is someone
 * else's work on the same cores. (irq and softirq are apart in /proc/stat and
 * not counted: the loopback traffic of the run itself lands there.)
 */
export function machineCpuSeconds(): number {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  return (Number(fields[1]) + Number(fields[2]) + Number(fields[3])) / CLK_TCK;
}
