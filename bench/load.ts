/**
 * The load generators, each run pinned to the load core, each reporting the
 * CPU time it used itself (so a table can tell when the generator, not the
 * server, was the limit).
 *
 * - Closed loop, wrk (`runWrk`): N connections, one thread; each connection
 *   sends its next request when the answer arrives. This gives the most
 *   requests/s a server can answer. Its latencies suffer from coordinated
 *   omission (a stalled server also stalls the clock), so they are kept in
 *   the JSON but not used for the latency rows.
 * - Open loop, oha (`runOha`): `-q RATE --latency-correction`: requests are
 *   scheduled at a fixed rate whatever the answers do, and a request's
 *   latency counts from its scheduled time, so time spent queued behind a
 *   stalled server is measured (wrk2's method). `-c` connections carry them.
 *   `-w` waits for the requests in flight at the end, so the client's count
 *   of 200s matches the server's lines.
 *
 *   Why oha and not vegeta: on one core vegeta could not hold the rates
 *   (measured here: at 10k/s it fell to ~2.9k/s sent with most requests
 *   failing, as it spawned workers and connections; capped at 50 workers it
 *   reached 16k of 20k/s with a ~1.5–2 ms latency floor of its own). oha
 *   (Rust, tokio + hyper) sends 20k/s using under half of its core.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import { runPinned, type Cpus } from './procs';
import { BEACON_HEADERS, HOSTS } from './beacons';

export interface Measured {
  code: number | null;
  stdout: string;
  stderr: string;
  /** user+sys CPU seconds of the load generator itself. */
  cpuSeconds: number;
  /** Its user part alone. */
  userSeconds: number;
}

/**
 * Runs a command pinned to a core under bash, whose `times` builtin then
 * prints the children's user and sys time: the generator's own CPU cost,
 * without needing GNU time installed.
 */
export async function runMeasured(cpu: Cpus, command: string, args: readonly string[]): Promise<Measured> {
  const script = 'taskset -c "$0" "$@"; code=$?; times >&2; exit $code';
  const r = await runPinned(cpu, 'bash', ['-c', script, String(cpu), command, ...args]);
  const lines = r.stderr.trimEnd().split('\n');
  const children = lines[lines.length - 1] ?? '';
  // "0m1.210s 0m1.640s": user, then sys.
  const [user = 0, sys = 0] = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return { code: r.code, stdout: r.stdout, stderr: lines.slice(0, -2).join('\n'), cpuSeconds: user + sys, userSeconds: user };
}

export interface WrkResult {
  connections: number;
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  /** Answers that were not 2xx/3xx. */
  non2xx: number;
  /** connect/read/write errors and timeouts. */
  socketErrors: number;
  /** Closed-loop latencies (with coordinated omission: see the module comment). */
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  generatorCpuSeconds: number;
}

export async function runWrk(cpu: Cpus, script: string, port: number, connections: number, seconds: number): Promise<WrkResult> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '-s', script, `http://127.0.0.1:${port}/`];
  const r = await runMeasured(cpu, 'wrk', args);
  const line = r.stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (r.code !== 0 || line === undefined) throw new Error(`wrk ${args.join(' ')} failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
  const j = JSON.parse(line.slice('WRK_JSON '.length)) as Record<string, number>;
  const secondsRun = j.duration_us! / 1e6;
  return {
    connections,
    requests: j.requests!,
    seconds: secondsRun,
    requestsPerSecond: j.requests! / secondsRun,
    non2xx: j.status!,
    socketErrors: j.connect! + j.read! + j.write! + j.timeout!,
    p50Ms: j.p50_us! / 1000,
    p99Ms: j.p99_us! / 1000,
    p999Ms: j.p999_us! / 1000,
    generatorCpuSeconds: r.cpuSeconds,
  };
}

export interface OpenLoopResult {
  rate: number;
  connections: number;
  requests: number;
  seconds: number;
  /** Requests per second actually completed (all answers / wall time). */
  achievedRate: number;
  ok: number;
  /** Answers that were not 200, and transport errors. */
  failed: number;
  errors: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  generatorCpuSeconds: number;
}

/** oha's --output-format json, the parts read here (latencies in seconds). */
interface OhaJson {
  summary: { total: number; slowest: number; requestsPerSec: number };
  latencyPercentiles: Record<string, number>;
  statusCodeDistribution: Record<string, number>;
  errorDistribution: Record<string, number>;
}

export async function runOha(
  oha: string,
  cpu: Cpus,
  urlsFile: string,
  port: number,
  rate: number,
  seconds: number,
  connections: number,
  workDir: string,
): Promise<OpenLoopResult> {
  const output = path.join(workDir, `oha-${port}-${rate}.json`);
  const args = [
    '--no-tui',
    '--output-format', 'json',
    '-o', output,
    '-z', `${seconds}s`,
    '-q', String(rate),
    '--latency-correction',
    '-c', String(connections),
    '-w',
    // One runtime thread: the process is pinned to one core.
    '--worker-threads', '1',
    '-t', '10s',
    '--urls-from-file', urlsFile,
    ...HOSTS.flatMap((host) => ['--connect-to', `${host}:80:127.0.0.1:${port}`]),
    ...BEACON_HEADERS.flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
  ];
  const r = await runMeasured(cpu, oha, args);
  if (r.code !== 0 || !fs.existsSync(output)) throw new Error(`oha ${args.join(' ')} failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
  const j = JSON.parse(fs.readFileSync(output, 'utf8')) as OhaJson;
  fs.rmSync(output, { force: true });
  const codes = j.statusCodeDistribution;
  const answers = Object.values(codes).reduce((a, b) => a + b, 0);
  const errors = Object.values(j.errorDistribution).reduce((a, b) => a + b, 0);
  const ok = codes['200'] ?? 0;
  const p = j.latencyPercentiles;
  return {
    rate,
    connections,
    requests: answers + errors,
    seconds: j.summary.total,
    achievedRate: answers / j.summary.total,
    ok,
    failed: answers - ok + errors,
    errors: j.errorDistribution,
    p50Ms: (p.p50 ?? Number.NaN) * 1000,
    p99Ms: (p.p99 ?? Number.NaN) * 1000,
    p999Ms: (p['p99.9'] ?? Number.NaN) * 1000,
    maxMs: j.summary.slowest * 1000,
    generatorCpuSeconds: r.cpuSeconds,
  };
}
