/**
 * Runs the real CLI as a child process for integration tests: writes a
 * config into a fresh temp folder (listen and admin on port 0), waits for the
 * "listening on" lines on stderr, and hands back the addresses and helpers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after } from 'node:test';
import { request } from './http';
import { cliPath } from './paths';

export const FLAVORS = [
  { name: 'skroutz', hosts: ['www.skroutz.gr', 'skroutz.gr'], timezone: 'Europe/Athens' },
  { name: 'alve', hosts: ['www.alve.com'], timezone: 'Europe/Istanbul' },
  { name: 'scrooge', hosts: ['www.scrooge.co.uk'], timezone: 'Europe/London' },
];

/**
 * A test that fails before stopping its scratchd must not hang its file (a
 * live child keeps the event loop alive): every test file that uses this
 * module gets a root-level hook that kills what is left when it ends.
 */
const running = new Set<ChildProcess>();
after(() => {
  for (const proc of running) proc.kill('SIGKILL');
});

export function tempDir(prefix = 'scratchd-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface Running {
  readonly proc: ChildProcess;
  readonly dir: string;
  readonly configPath: string;
  readonly host: string;
  readonly port: number;
  readonly adminPort: number;
  stderr(): string;
  /** Resolves when stderr has a line matching `pattern`. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends a signal and resolves with the exit code once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
  /** Path of the log file of a flavor for a date (YYYY-MM-DD). */
  logFile(flavor: string, date: string): string;
  stats(): Promise<StatsJson>;
}

/** The parts of /stats the tests read (see docs/operations.md, "Stats"). */
export interface StatsJson {
  requests: Record<string, number>;
  flavors: Record<string, { tracked: number }>;
  connections: Record<string, number>;
  backends: Record<string, Record<string, number> & { dropped_by_reason: Record<string, number> }>;
  checks: Record<string, number | boolean>;
  runtime: Record<string, number> & { gc: Record<string, number> };
  ready: boolean;
  graphite?: Record<string, number>;
}

export interface StartOptions {
  /** Merged over the default test config (three flavors, file backend under the temp dir). */
  config?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** Command to run instead of `node cli` (e.g. systemd-socket-activate …); the CLI arguments follow it. */
  wrap?: string[];
  dir?: string;
}

/**
 * SCRATCHD_TEST_WORKERS=2 runs every scratchd the integration tests start
 * with that many workers (test/run.js runs the integration suites a second
 * time so); a test's own `workers` wins.
 */
export const TEST_WORKERS = process.env.SCRATCHD_TEST_WORKERS === undefined ? 1 : Number(process.env.SCRATCHD_TEST_WORKERS);

export function writeConfig(dir: string, overrides: Record<string, unknown> = {}): string {
  const config = {
    listen: '127.0.0.1:0',
    admin: '127.0.0.1:0',
    ...(TEST_WORKERS === 1 ? {} : { workers: TEST_WORKERS }),
    flavors: FLAVORS,
    file: { path: 'logs/{flavor}/{date}.log' },
    ...overrides,
  };
  const file = path.join(dir, 'scratchd.json');
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

export async function startScratchd(options: StartOptions = {}): Promise<Running> {
  const dir = options.dir ?? tempDir();
  const configPath = writeConfig(dir, options.config);
  const args = [cliPath, 'serve', '--config', configPath];
  const [command, ...prefix] = options.wrap ?? [process.execPath];
  const proc = spawn(command!, [...prefix, ...(options.wrap ? [process.execPath] : []), ...args], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  running.add(proc);
  proc.on('exit', () => running.delete(proc));
  let stderr = '';
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (text: string) => {
    stderr += text;
    for (const waiter of [...waiters]) {
      const line = stderr.split('\n').find((l) => waiter.pattern.test(l));
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const waitForLog = (pattern: RegExp, timeoutMs = 10_000) =>
    new Promise<string>((resolve, reject) => {
      const line = stderr.split('\n').find((l) => pattern.test(l));
      if (line !== undefined) return resolve(line);
      const timer = setTimeout(() => reject(new Error(`no log line ${String(pattern)} within ${timeoutMs} ms; stderr:\n${stderr}`)), timeoutMs);
      waiters.push({ pattern, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`scratchd exited (${code}) before ${String(pattern)}; stderr:\n${stderr}`));
      });
    });

  const listenLine = await waitForLog(/^http: listening on /);
  const port = Number(/listening on \S*:(\d+)/.exec(listenLine)?.[1] ?? 0);
  const adminLine = stderr.split('\n').find((l) => l.startsWith('admin: listening on ')) ?? '';
  const adminPort = Number(/:(\d+)$/.exec(adminLine)?.[1] ?? 0);
  const host = '127.0.0.1';

  return {
    proc,
    dir,
    configPath,
    host,
    port,
    adminPort,
    stderr: () => stderr,
    waitForLog,
    exited,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
    logFile: (flavor, date) => path.join(dir, 'logs', flavor, `${date}.log`),
    async stats() {
      try {
        // A new connection each time: a pooled keep-alive one may have been
        // closed by the server while the test was blocked (spawnSync).
        const reply = await request(adminPort, '127.0.0.1', '/stats');
        return JSON.parse(reply.body.toString('utf8')) as StatsJson;
      } catch (err) {
        throw new Error(`GET /stats failed (${(err as Error).message}); scratchd exit ${proc.exitCode}/${proc.signalCode}; stderr:\n${stderr}`, { cause: err });
      }
    },
  };
}

/** Lines of a file as parsed JSON records (empty list if the file does not exist). */
export function readLines(file: string): string[] {
  if (!fs.existsSync(file)) return [];
  const text = fs.readFileSync(file, 'utf8');
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}

/** All lines of every log file under dir/logs. */
export function allLines(dir: string): string[] {
  const root = path.join(dir, 'logs');
  if (!fs.existsSync(root)) return [];
  const lines: string[] = [];
  for (const flavor of fs.readdirSync(root)) {
    for (const file of fs.readdirSync(path.join(root, flavor))) lines.push(...readLines(path.join(root, flavor, file)));
  }
  return lines;
}
