/**
 * Socket activation through Debian's systemd-socket-activate: it listens,
 * waits for the first connection, then execs scratchd with the socket as
 * fd 3 (LISTEN_PID/LISTEN_FDS). The connection that woke it is served.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { describe, test } from 'node:test';
import { request } from '../support/http';
import { cliPath, repoRoot } from '../support/paths';
import { hasCommand, needs } from '../support/requires';
import { allLines, tempDir, writeConfig } from '../support/scratchd';

const available = needs('systemd-socket-activate', hasCommand('systemd-socket-activate'), 'apt-get install systemd');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function activate(command: string[]): Promise<void> {
  const dir = tempDir();
  const config = writeConfig(dir, { listen: 'systemd', admin: null });
  const port = await freePort();
  const proc = spawn('systemd-socket-activate', ['-l', `127.0.0.1:${port}`, ...command, 'serve', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  try {
    // systemd-socket-activate binds at once; wait for that, then the first request starts scratchd.
    for (let i = 0; i < 100 && !stderr.includes('Listening on'); i++) await new Promise((r) => setTimeout(r, 20));
    const first = await request(port, 'www.skroutz.gr', '/track?first=1');
    assert.equal(first.status, 200, stderr);
    assert.match(stderr, /http: listening on .*\(systemd socket\)/);
    for (let i = 0; i < 20; i++) assert.equal((await request(port, 'www.alve.com', `/track?n=${i}`)).status, 200);
  } finally {
    proc.kill('SIGTERM');
  }
  assert.equal(await exited, 0, stderr);
  const lines = allLines(dir);
  assert.equal(lines.length, 21);
  assert.ok(lines.some((l) => l.includes('"first":"1"')));
}

describe('systemd socket activation', () => {
  test('node build/src/main.js serve takes fd 3 and serves the connection that woke it', available, async () => {
    await activate([process.execPath, cliPath]);
  });

  test('the bin file itself (#!/usr/bin/env node, executable) is scratchd, not a wrapper', available, async () => {
    await activate([cliPath]);
  });

  test('through npx the socket cannot arrive, and the error says why', available, async () => {
    const dir = tempDir();
    const config = writeConfig(dir, { listen: 'systemd', admin: null });
    const port = await freePort();
    const proc = spawn('systemd-socket-activate', ['-l', `127.0.0.1:${port}`, 'npx', '--no-install', 'scratchd', 'serve', '--config', config], {
      stdio: ['ignore', 'ignore', 'pipe'],
      cwd: repoRoot,
    });
    let stderr = '';
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    for (let i = 0; i < 100 && !stderr.includes('Listening on'); i++) await new Promise((r) => setTimeout(r, 20));
    await request(port, 'www.skroutz.gr', '/track?a=1').catch(() => undefined);
    const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
    assert.notEqual(code, 0);
    assert.match(stderr, /fd 3 is not a socket \(LISTEN_PID=\d+ is a parent: a process in between, such as npx, did not pass fd 3 on/);
  });

  test('listen "systemd" without a passed socket is refused with a clear message', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, { listen: 'systemd', admin: null });
    const proc = spawn(process.execPath, [cliPath, 'serve', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LISTEN_PID: undefined, LISTEN_FDS: undefined } });
    let stderr = '';
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
    assert.equal(code, 1);
    assert.match(stderr, /no socket was passed: LISTEN_PID\/LISTEN_FDS are not set/);
  });
});
