/**
 * Socket activation through Debian's systemd-socket-activate: it listens,
 * waits for the first connection, then execs scratchd with the socket as
 * fd 3 (LISTEN_PID/LISTEN_FDS). The connection that woke it is served.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { request } from '../support/http';
import { cliPath, repoRoot } from '../support/paths';
import { hasCommand, needs } from '../support/requires';
import { allLines, tempDir, writeConfig } from '../support/scratchd';
import { socketActivate } from '../support/socket-activate';

const available = needs('systemd-socket-activate', hasCommand('systemd-socket-activate'), 'apt-get install systemd');

/** Resolves with the exit status, or rejects after `ms`: no test waits on a child forever. */
function exitWithin(exited: Promise<number | null>, ms: number, what: () => string): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no exit within ${ms} ms; stderr:\n${what()}`)), ms);
  });
  return Promise.race([exited, timeout]).finally(() => clearTimeout(timer));
}

async function activate(command: string[]): Promise<void> {
  const dir = tempDir();
  const config = writeConfig(dir, { listen: 'systemd', admin: null });
  // Resolves once systemd-socket-activate listens; the first request starts scratchd.
  const { proc, port, stderr, exited } = await socketActivate([...command, 'serve', '--config', config]);
  try {
    const first = await request(port, 'www.skroutz.gr', '/track?first=1');
    assert.equal(first.status, 200, stderr());
    assert.match(stderr(), /http: listening on .*\(systemd socket\)/);
    for (let i = 0; i < 20; i++) assert.equal((await request(port, 'www.alve.com', `/track?n=${i}`)).status, 200);
  } finally {
    proc.kill('SIGTERM');
  }
  assert.equal(await exitWithin(exited, 15_000, stderr), 0, stderr());
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
    const { proc, port, stderr, exited } = await socketActivate(['npx', '--no-install', 'scratchd', 'serve', '--config', config], { cwd: repoRoot });
    await request(port, 'www.skroutz.gr', '/track?a=1').catch(() => undefined);
    const code = await exitWithin(exited, 30_000, stderr).finally(() => proc.kill('SIGKILL'));
    assert.notEqual(code, 0);
    assert.match(stderr(), /fd 3 is not a socket \(LISTEN_PID=\d+ is a parent: a process in between, such as npx, did not pass fd 3 on/);
  });

  test('listen "systemd" without a passed socket is refused with a clear message', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, { listen: 'systemd', admin: null });
    const proc = spawn(process.execPath, [cliPath, 'serve', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LISTEN_PID: undefined, LISTEN_FDS: undefined } });
    let stderr = '';
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', resolve));
    const code = await exitWithin(exited, 15_000, () => stderr).finally(() => proc.kill('SIGKILL'));
    assert.equal(code, 1);
    assert.match(stderr, /no socket was passed: LISTEN_PID\/LISTEN_FDS are not set/);
  });
});
