/**
 * A real Graphite Carbon (carbon-cache from PyPI) for tests, and its Whisper
 * files read back with the `whisper` Python module.
 *
 * The first use creates a Python venv in .cache/graphite and installs the
 * pinned test/support/graphite-requirements.txt from PyPI (about 30 s); later
 * runs reuse it. Without python3's venv or PyPI the tests that need it skip,
 * and fail under CI=true (test/support/requires.ts).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { unusedPortBelowEphemeral } from './ports';
import { repoRoot, testFile } from './paths';
import { needs } from './requires';

const venv = path.join(repoRoot, '.cache', 'graphite');
const python = path.join(venv, 'bin', 'python');
const requirements = testFile('support', 'graphite-requirements.txt');
const stamp = path.join(venv, 'requirements.txt');

function installed(): boolean {
  return (
    fs.existsSync(stamp) &&
    fs.readFileSync(stamp, 'utf8') === fs.readFileSync(requirements, 'utf8') &&
    spawnSync(python, ['-c', 'import carbon, whisper, twisted'], { stdio: 'ignore' }).status === 0
  );
}

/** Creates or updates the venv; returns why it failed, or null. */
function install(): string | null {
  if (installed()) return null;
  if (!fs.existsSync(python)) {
    const made = spawnSync('python3', ['-m', 'venv', venv], { encoding: 'utf8' });
    if (made.status !== 0) return `python3 -m venv failed: ${made.stderr || made.error?.message}`;
  }
  const pip = spawnSync(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', requirements], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (pip.status !== 0) return `pip install -r ${requirements} failed: ${pip.stderr || pip.error?.message}`;
  fs.copyFileSync(requirements, stamp);
  return installed() ? null : 'carbon and whisper still not importable after pip install';
}

const problem = install();
export const carbonAvailable = needs('Graphite carbon (PyPI) in .cache/graphite', problem === null, problem ?? '');

export interface RunningCarbon {
  readonly port: number;
  readonly dir: string;
  readonly proc: ChildProcess;
  log(): string;
  /** The newest non-null value of a metric ("a.b.c"), or null when it has no Whisper file or no point yet. */
  latest(metric: string): number | null;
  /** Polls `latest` until `accept` holds; returns the value. */
  waitFor(metric: string, accept: (v: number) => boolean, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Starts carbon-cache in the foreground with its plaintext receiver on
 * 127.0.0.1:`port` (a free one unless given), storage under `dir` (kept
 * across restarts on the same dir), one-second retention.
 */
export async function startCarbon(dir: string, port?: number): Promise<RunningCarbon> {
  const linePort = port ?? (await unusedPortBelowEphemeral());
  const conf = path.join(dir, 'conf');
  const storage = path.join(dir, 'storage');
  fs.mkdirSync(conf, { recursive: true });
  fs.mkdirSync(path.join(storage, 'log'), { recursive: true });
  // Carbon limits new Whisper files to 50 a minute by default; a test creates ~60 at once.
  fs.writeFileSync(
    path.join(conf, 'carbon.conf'),
    `[cache]
STORAGE_DIR = ${storage}
LOCAL_DATA_DIR = ${path.join(storage, 'whisper')}
WHITELISTS_DIR = ${path.join(storage, 'lists')}
LOG_DIR = ${path.join(storage, 'log')}
PID_DIR = ${storage}
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = ${linePort}
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = 0
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = 0
LOG_LISTENER_CONN_SUCCESS = False
`,
  );
  fs.writeFileSync(path.join(conf, 'storage-schemas.conf'), '[all]\npattern = .*\nretentions = 1s:1h\n');
  fs.rmSync(path.join(storage, 'carbon-cache-a.pid'), { force: true });
  const proc = spawn(python, [path.join(venv, 'bin', 'carbon-cache.py'), `--config=${path.join(conf, 'carbon.conf')}`, '--nodaemon', '--debug', 'start'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (c: Buffer) => (output += c.toString());
  proc.stdout.on('data', collect);
  proc.stderr.on('data', collect);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const deadline = Date.now() + 20_000;
  while (!output.includes(`CarbonReceiverFactory starting on ${linePort}`)) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`carbon-cache did not start on ${linePort}:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const whisperDir = path.join(storage, 'whisper');
  const latest = (metric: string): number | null => {
    const file = path.join(whisperDir, ...metric.split('.')) + '.wsp';
    if (!fs.existsSync(file)) return null;
    const read = spawnSync(
      python,
      ['-c', 'import sys, time, whisper\n(_, _, step), values = whisper.fetch(sys.argv[1], time.time() - 600)\nprint([v for v in values if v is not None][-1:])', file],
      { encoding: 'utf8' },
    );
    if (read.status !== 0) throw new Error(`whisper.fetch ${file}: ${read.stderr}`);
    const found = /^\[([^\]]+)\]$/.exec(read.stdout.trim());
    return found ? Number(found[1]) : null;
  };
  return {
    port: linePort,
    dir,
    proc,
    log: () => output,
    latest,
    async waitFor(metric, accept, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      let value: number | null = null;
      while (Date.now() < until) {
        value = latest(metric);
        if (value !== null && accept(value)) return value;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`carbon: ${metric} is ${value} after ${timeoutMs} ms; carbon log:\n${output.slice(-3000)}`);
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}
