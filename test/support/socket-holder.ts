/**
 * A listening socket held the way systemd holds a .socket unit's, with
 * scratchd processes started on it one after another (or overlapping): see
 * socket-holder.py for why the holder is a Python process.
 *
 *   const holder = await SocketHolder.open([process.execPath, cliPath, 'serve', '--config', file], dir);
 *   const first = await holder.start();   // LISTEN_FDS=1, LISTEN_PID=<its pid>, the socket as fd 3
 *   await first.waitForLog(/^http: listening on /);
 *   first.kill('SIGTERM'); await first.exited;
 *   const second = await holder.start();   // same socket: nothing was refused meanwhile
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { testFile } from './paths';
import { hasCommand, needs } from './requires';

export const holderAvailable = needs('python3 (the socket holder)', hasCommand('python3'), 'apt-get install python3');

/** One process started on the held socket. */
export interface Generation {
  readonly pid: number;
  readonly index: number;
  /** Where its stdout and stderr go. */
  readonly logPath: string;
  /** Resolves with the exit status (-N: killed by signal N). */
  readonly exited: Promise<number>;
  stderr(): string;
  /** Resolves with the first line of its stderr matching `pattern`. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  kill(signal: NodeJS.Signals): void;
  /** The admin port from its "admin: listening on" line (0 when there is none yet). */
  adminPort(): number;
}

export class SocketHolder {
  private readonly exits = new Map<number, (code: number) => void>();
  private readonly exitCodes = new Map<number, number>();
  private readonly startWaiters: ((pid: number) => void)[] = [];
  private count = 0;
  private holderStderr = '';

  private constructor(
    private readonly proc: ChildProcess,
    readonly port: number,
    private readonly dir: string,
    lines: readline.Interface,
  ) {
    lines.on('line', (line) => {
      const [verb, a, b] = line.split(' ');
      if (verb === 'started') this.startWaiters.shift()?.(Number(a));
      if (verb === 'exited') {
        const pid = Number(a);
        this.exitCodes.set(pid, Number(b));
        this.exits.get(pid)?.(Number(b));
      }
    });
    proc.stderr!.on('data', (c: Buffer) => (this.holderStderr += c.toString()));
  }

  /** Binds 127.0.0.1:port (0: any free port) with systemd's default backlog, SOMAXCONN. */
  static async open(command: string[], dir: string, options: { port?: number; backlog?: number } = {}): Promise<SocketHolder> {
    const proc = spawn('python3', [testFile('support', 'socket-holder.py'), '127.0.0.1', String(options.port ?? 0), String(options.backlog ?? 4096), '--', ...command], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const lines = readline.createInterface({ input: proc.stdout });
    let stderr = '';
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const port = await new Promise<number>((resolve, reject) => {
      lines.once('line', (line) => {
        const m = /^listening (\d+)$/.exec(line);
        if (m === null) reject(new Error(`socket-holder: unexpected "${line}"; stderr: ${stderr}`));
        else resolve(Number(m[1]));
      });
      proc.once('exit', (code) => reject(new Error(`socket-holder exited (${code}): ${stderr}`)));
    });
    return new SocketHolder(proc, port, dir, lines);
  }

  /** Starts the command on the socket; does not wait for it to be ready. */
  async start(): Promise<Generation> {
    const index = this.count++;
    const logPath = path.join(this.dir, `generation-${index}.log`);
    fs.writeFileSync(logPath, '');
    const started = new Promise<number>((resolve) => this.startWaiters.push(resolve));
    this.proc.stdin!.write(`start ${logPath}\n`);
    const pid = await started;
    const exited = new Promise<number>((resolve) => {
      const known = this.exitCodes.get(pid);
      if (known !== undefined) resolve(known);
      else this.exits.set(pid, resolve);
    });
    let done = false;
    void exited.then(() => (done = true));
    const stderr = () => fs.readFileSync(logPath, 'utf8');
    return {
      pid,
      index,
      logPath,
      exited,
      stderr,
      kill: (signal) => {
        if (!done) process.kill(pid, signal);
      },
      adminPort: () => Number(/^admin: listening on \S*:(\d+)$/m.exec(stderr())?.[1] ?? 0),
      async waitForLog(pattern, timeoutMs = 10_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const line = stderr().split('\n').find((l) => pattern.test(l));
          if (line !== undefined) return line;
          if (done || Date.now() > deadline) {
            throw new Error(`generation ${index} (pid ${pid}): no log line ${String(pattern)} (${done ? 'it exited' : `${timeoutMs} ms`}); output:\n${stderr()}`);
          }
          await new Promise((r) => setTimeout(r, 10));
        }
      },
    };
  }

  /** Ends the holder: its children get SIGTERM, the socket closes. */
  async close(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    this.proc.stdin!.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }

  stderr(): string {
    return this.holderStderr;
  }
}
