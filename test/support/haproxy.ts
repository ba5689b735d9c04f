/**
 * Debian's haproxy for tests, run with the shipped packaging/haproxy/scratchd.cfg:
 * the file is the template, and `renderConfig` changes only what a test
 * must (addresses, the stats socket path, the daemon settings of "global"),
 * each rule required to match exactly once so the test and the shipped file
 * cannot drift apart unnoticed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { repoRoot } from './paths';
import { listeningSocket } from './ports';
import { hasCommand, needs } from './requires';

export const haproxyAvailable = needs('haproxy', hasCommand('haproxy'), 'apt-get install haproxy');

export const shippedConfig = path.join(repoRoot, 'packaging', 'haproxy', 'scratchd.cfg');

export interface Upstream {
  port: number;
  adminPort: number;
}

export interface TestPorts {
  /** The listening sockets haproxy inherits (`bind fd@N`): the tests hold them, so no port is ever free to be taken. */
  publicFd: number;
  statsFd: number;
  statsSocket: string;
  primary: Upstream;
  backup: Upstream;
}

export function renderConfig(template: string, ports: TestPorts): string {
  const rules: [RegExp, string][] = [
    // Foreground, as this user, logging to stderr (only errors, retries and redispatches: dontlog-normal).
    [/^ {4}log \/dev\/log local0\n/m, '    log stderr format raw local0\n'],
    [/^ {4}chroot .*\n/m, ''],
    [/^ {4}user .*\n/m, ''],
    [/^ {4}group .*\n/m, ''],
    [/^ {4}daemon\n/m, ''],
    // The shipped 20000 needs ~40000 file descriptors; a test shell may allow fewer (ulimit -n).
    [/^ {4}maxconn 20000\n/m, '    maxconn 4000\n'],
    [/^( {4}stats socket )\S+/m, `$1${ports.statsSocket}`],
    [/^( {4}bind ):80$/m, `$1fd@${ports.publicFd}`],
    [/^( {4}bind )127\.0\.0\.1:8404$/m, `$1fd@${ports.statsFd}`],
    [/^( {4}server primary )\S+( check port )\d+/m, `$1127.0.0.1:${ports.primary.port}$2${ports.primary.adminPort}`],
    [/^( {4}server backup +)\S+( check port )\d+( backup)$/m, `$1127.0.0.1:${ports.backup.port}$2${ports.backup.adminPort}$3`],
  ];
  let text = template;
  for (const [pattern, replacement] of rules) {
    const all = new RegExp(pattern.source, `${pattern.flags}g`);
    const count = [...text.matchAll(all)].length;
    if (count !== 1) throw new Error(`${shippedConfig}: ${String(pattern)} matched ${count} times, expected once`);
    text = text.replace(pattern, replacement);
  }
  return text;
}

/** One row of `show stat` (CSV): pxname, svname, status, check_status, stot, wretr, wredis, hrsp_5xx, … */
export type StatRow = Record<string, string>;

export interface RunningHaproxy {
  readonly proc: ChildProcess;
  readonly port: number;
  /** Where the EXTRA_LISTENER socket (fd 5) listens. */
  readonly extraPort: number;
  readonly configPath: string;
  stderr(): string;
  /** Sends a runtime API command on the stats socket and returns the answer. */
  command(line: string): Promise<string>;
  stat(proxy: string, server: string): Promise<StatRow>;
  /** Resolves when the server's last check passed and it is UP. */
  waitUp(server: string, timeoutMs?: number, backend?: string): Promise<void>;
  stop(): Promise<void>;
}

export interface HaproxyOptions {
  /** Another shipped file instead of scratchd.cfg, rendered by the same rules, then by `edit`. */
  template?: string;
  edit?: (text: string) => string;
  /** Further config files, already rendered, loaded after it (haproxy -f … -f …). */
  extra?: string[];
}

/**
 * HAProxy's third listening socket, passed as fd 5 like the other two: a
 * test's extra frontend (the TLS one) binds `fd@5` and reaches it on
 * `RunningHaproxy.extraPort`; unused, it is harmless.
 */
export const EXTRA_LISTENER = 'fd@5';

export async function startHaproxy(dir: string, primary: Upstream, backup: Upstream, options: HaproxyOptions = {}): Promise<RunningHaproxy> {
  // Listening sockets passed as fds 3, 4 and 5 (HAProxy `bind fd@N`), held from
  // before haproxy starts: a port number handed over after closing its socket
  // could be taken in between.
  const publicSocket = await listeningSocket();
  const statsSocket = await listeningSocket();
  const extraSocket = await listeningSocket();
  const ports: TestPorts = { publicFd: 3, statsFd: 4, statsSocket: path.join(dir, 'haproxy.sock'), primary, backup };
  const configPath = path.join(dir, 'haproxy.cfg');
  const text = renderConfig(fs.readFileSync(options.template ?? shippedConfig, 'utf8'), ports);
  fs.writeFileSync(configPath, options.edit?.(text) ?? text);
  const extra = (options.extra ?? []).map((t, i) => (fs.writeFileSync(path.join(dir, `extra-${i}.cfg`), t), path.join(dir, `extra-${i}.cfg`)));
  let proc: ChildProcess;
  try {
    proc = spawn('haproxy', ['-db', '-f', configPath, ...extra.flatMap((f) => ['-f', f])], {
      stdio: ['ignore', 'ignore', 'pipe', publicSocket.fd, statsSocket.fd, extraSocket.fd],
    });
  } finally {
    // haproxy has its own copies now; ours would only keep accepting into a queue nobody reads.
    await Promise.all([publicSocket.close(), statsSocket.close(), extraSocket.close()]);
  }
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));

  const command = (line: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = net.connect(ports.statsSocket);
      let answer = '';
      socket.on('connect', () => socket.end(`${line}\n`));
      socket.on('data', (c: Buffer) => (answer += c.toString()));
      socket.on('end', () => resolve(answer));
      socket.on('error', reject);
    });
  const stat = async (proxy: string, server: string): Promise<StatRow> => {
    const [header, ...rows] = (await command('show stat')).trim().split('\n');
    const names = header!.replace(/^# /, '').split(',');
    for (const row of rows) {
      const values = row.split(',');
      if (values[0] === proxy && values[1] === server) return Object.fromEntries(names.map((n, i) => [n, values[i] ?? '']));
    }
    throw new Error(`show stat: no row ${proxy}/${server}`);
  };
  const running: RunningHaproxy = {
    proc,
    port: publicSocket.port,
    extraPort: extraSocket.port,
    configPath,
    stderr: () => stderr,
    command,
    stat,
    async waitUp(server, timeoutMs = 10_000, backend = 'scratchd') {
      const deadline = Date.now() + timeoutMs;
      let last: StatRow | string = 'no answer';
      while (Date.now() < deadline) {
        try {
          last = await stat(backend, server);
          if (last.status === 'UP' && last.check_status === 'L7OK') return;
        } catch (err) {
          last = (err as Error).message;
        }
        if (proc.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`haproxy: ${backend}/${server} not up: ${JSON.stringify(last)}; stderr:\n${stderr}`);
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
  return running;
}
