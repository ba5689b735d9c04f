/**
 * What the benchmark needs on the machine, and what the machine is.
 *
 * Contract:
 * - `ensureDebianTools()` makes sure wrk, nginx and taskset are there. As
 *   root with apt-get it installs what is missing (apt-get update first);
 *   otherwise it throws naming exactly the packages and the command. (Not
 *   scripts/debian-deps.sh bench: that profile also brings Java, Maven and
 *   kcat for the Kafka broker, which this run does not start; the Kafka hook
 *   should call it.)
 * - `ensureOha()` returns the path of the oha binary (the open-loop load
 *   generator; load.ts says why oha): in the repo's .cache/oha (git-ignored),
 *   or on PATH, or built into .cache/oha with `cargo install` of a pinned
 *   version from crates.io (Debian's pkg-config and libssl-dev installed
 *   first when root). Without cargo it returns null and `why` says what to
 *   install; the open-loop phase is then skipped, loudly.
 * - `machineInfo()` is what the tables print and the JSON keeps, so two
 *   results files say whether they are comparable at all.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nginxVersion, repoRoot } from './servers';

/** command (or absolute path of a file) → Debian package. */
const DEBIAN_TOOLS: ReadonlyArray<[string, string]> = [
  ['wrk', 'wrk'],
  ['nginx', 'nginx-light'],
  ['taskset', 'util-linux'],
];

/**
 * The open-loop generator, pinned so that results files stay comparable. Built
 * with native-tls (the system OpenSSL) rather than the default rustls, whose
 * aws-lc-rs needs cmake and builds much longer; TLS is never used here.
 */
export const OHA_VERSION = '1.16.0';
const OHA_FEATURES = ['--no-default-features', '--features', 'native-tls'];
/** oha 1.16 declares rust-version 1.88; native-tls builds against Debian's libssl-dev via pkg-config. */
const OHA_BUILD_DEBS: ReadonlyArray<[string, string]> = [
  ['pkg-config', 'pkg-config'],
  ['/usr/include/openssl/ssl.h', 'libssl-dev'],
];

function onPath(command: string): string | null {
  if (command.startsWith('/')) return fs.existsSync(command) ? command : null;
  const r = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

export function ensureDebianTools(log: (m: string) => void, tools: ReadonlyArray<[string, string]> = DEBIAN_TOOLS): void {
  const missing = [...new Set(tools.filter(([command]) => onPath(command) === null).map(([, pkg]) => pkg))];
  if (missing.length === 0) return;
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || onPath('apt-get') === null) {
    throw new Error(`missing Debian packages: ${missing.join(' ')} (install with: sudo apt-get install ${missing.join(' ')})`);
  }
  log(`bench: installing ${missing.join(' ')} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env });
}

export function ensureOha(log: (m: string) => void): { path: string | null; why: string } {
  const cached = path.join(repoRoot, '.cache', 'oha', 'bin', 'oha');
  if (fs.existsSync(cached)) return { path: cached, why: '' };
  const found = onPath('oha');
  if (found !== null) return { path: found, why: '' };
  const home = process.env.HOME ?? '';
  const cargo = onPath('cargo') ?? onPath(path.join(home, '.cargo', 'bin', 'cargo'));
  const install = `cargo install --locked oha --version ${OHA_VERSION} ${OHA_FEATURES.join(' ')} --root .cache/oha`;
  if (cargo === null) {
    return {
      path: null,
      why: `oha (the open-loop load generator) is missing and cargo is not installed: install Rust >= 1.88 (rustup), then rerun (the bench runs "${install}"), or put an oha binary on PATH`,
    };
  }
  ensureDebianTools(log, OHA_BUILD_DEBS);
  log(`bench: building oha ${OHA_VERSION} into .cache/oha (${install}); once, about 6 minutes on 2 cores`);
  const r = spawnSync(cargo, ['install', '--locked', 'oha', '--version', OHA_VERSION, ...OHA_FEATURES, '--root', path.dirname(path.dirname(cached))], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0 || !fs.existsSync(cached)) {
    return { path: null, why: `${install} failed (exit ${r.status}); see above (Rust >= 1.88 is needed)` };
  }
  return { path: cached, why: '' };
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  nginx: string;
  wrk: string;
  oha: string;
  git: string;
  date: string;
  /** 1-minute load average when the run started (it lags: busyPercent is the better signal). */
  loadAverage: number;
  /** % of all cores busy during 2 s before the run: above a few %, something else runs and the numbers are noisy. */
  busyPercent: number;
}

function firstLine(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]?.trim() ?? '';
}

export function machineInfo(oha: string | null, busyPercent: number): MachineInfo {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const gitHead = firstLine('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD']);
  const dirty = spawnSync('git', ['-C', repoRoot, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).stdout?.trim() ?? '';
  return {
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    nginx: nginxVersion().replace(/^nginx version:\s*nginx\//, 'nginx '),
    wrk: firstLine('wrk', ['--version']).replace(/\s+Copyright.*$/, ''),
    oha: oha === null ? 'missing' : firstLine(oha, ['--version']),
    git: gitHead === '' ? 'unknown' : `${gitHead}${dirty === '' ? '' : ' (modified)'}`,
    date: new Date().toISOString(),
    loadAverage: os.loadavg()[0] ?? 0,
    busyPercent,
  };
}
