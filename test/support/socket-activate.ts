/**
 * Debian's systemd-socket-activate for tests: it listens on an address,
 * waits for the first connection, then execs the command with the socket
 * as fd 3 (LISTEN_FDS/LISTEN_PID). It takes only a port number, so the
 * port comes from `onUnusedPort` (./ports.ts): a port someone else holds
 * makes it exit with "Address already in use", and another is tried.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { IN_USE, onUnusedPort } from './ports';

export interface Activator {
  readonly proc: ChildProcess;
  readonly port: number;
  /** Its stderr so far (its own lines and the activated command's). */
  readonly stderr: () => string;
  /** Resolves with the exit status. */
  readonly exited: Promise<number | null>;
}

/**
 * Starts `systemd-socket-activate -l 127.0.0.1:PORT ...command` and resolves
 * once it listens ("Listening on"), within `timeoutMs`; rejects if it exits
 * or stays silent before that.
 */
export function socketActivate(command: string[], options: SpawnOptions = {}, timeoutMs = 10_000): Promise<Activator> {
  return onUnusedPort((port) => startOn(port, command, options, timeoutMs));
}

function startOn(port: number, command: string[], options: SpawnOptions, timeoutMs: number): Promise<Activator | typeof IN_USE> {
  const proc = spawn('systemd-socket-activate', ['-l', `127.0.0.1:${port}`, ...command], { stdio: ['ignore', 'ignore', 'pipe'], ...options });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`systemd-socket-activate: not listening on 127.0.0.1:${port} within ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    proc.stderr!.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
      if (stderr.includes('Listening on')) {
        clearTimeout(timer);
        resolve({ proc, port, stderr: () => stderr, exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      if (stderr.includes('Listening on')) return;
      if (/Address already in use/.test(stderr)) resolve(IN_USE);
      else reject(new Error(`systemd-socket-activate exited (${code}) before listening; stderr:\n${stderr}`));
    });
  });
}
