/**
 * The owner thread's side of `workers` > 1 (docs/architecture.md, "Threads";
 * docs/performance.md, "More than one core"): starts the workers − 1 HTTP
 * threads (http-thread.ts), takes the lines they forward, and stands for them
 * in /stats, stop and failure.
 *
 * - Lines: each batch is read in order; every line goes through the owner's
 *   TrackHandler.takeForwarded — the sanity checks (one store for all
 *   threads), then every backend, as answered (Backend.push) — and is counted
 *   by outcome. Then its lines leave the shared in-flight count (the thread
 *   waiting on it is woken), and the owner's backpressure is checked, as
 *   after a request of its own.
 * - Pressure: every change of the owner's state is in shared memory at once
 *   (SHARED.pressure) and announced by a 'pressure' message.
 * - /stats: `report()` asks each thread for its batch and counters and
 *   resolves when all have answered (or after REPORT_WAIT_MS): messages keep
 *   their order, so every line a thread answered before the question has been
 *   pushed and counted by then.
 * - Stop: `drain()` has every thread drain under the owner's deadline and
 *   resolves when all have sent their last batch and counters.
 * - A thread that dies (an exception in it, or an exit nobody asked for) is
 *   logged and counted, and the process stops in order (SIGTERM: the other
 *   threads drain, the backends flush) with exit status 70, for the
 *   supervisor to restart it, as when the Kafka thread dies.
 */
import { fork } from 'node:child_process';
import type * as net from 'node:net';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { blockingRefusal, type Backend } from '../backends/backend';
import type { Config } from '../config/types';
import type { InFlight, Pressure } from '../http/backpressure';
import type { TrackHandler } from '../http/track';
import { readBatch } from '../io/line-batch';
import { logger } from '../log';
import { Outcomes, RequestCounters, type Outcome } from '../telemetry';
import {
  counterAt,
  NO_COUNTERS,
  SHARED,
  sharedBytes,
  threadName,
  threadSlot,
  type CounterKey,
  type FromHttpThread,
  type HttpThreadInit,
  type ThreadCounters,
  type ToHttpThread,
} from './protocol';

const log = logger('http');
/** How long /stats waits for a thread's counters before it shows the last ones. */
const REPORT_WAIT_MS = 1_000;
/** Beyond the drain deadline, how long a thread may take to send its last batch. */
const DRAIN_GRACE_MS = 2_000;
const EXIT_SOFTWARE = 70;
const REFUSAL_CHECK_MS = 50;

interface Thread {
  readonly worker: Worker;
  readonly index: number;
  counters: ThreadCounters;
  /** Resolvers of the report asked for, by id. */
  waiting: Map<number, () => void>;
  drained: (() => void) | null;
  listening: { resolve: (address: string) => void; reject: (err: Error) => void } | null;
  gone: boolean;
}

export class HttpThreads {
  readonly shared: Int32Array;
  /** What became of the forwarded lines on this thread: tracked, duplicate, malicious. */
  readonly outcomes = new RequestCounters();
  /** Forwarded lines no backend took after their 200 (each is counted in its backends' dropped). */
  notTaken = 0;
  /** Threads that died. */
  deaths = 0;
  private readonly threads: Thread[] = [];
  /** Descriptors received for the threads (listenOnSocketOf), kept so that they are never closed here. */
  private readonly copies: unknown[] = [];
  private nextReport = 1;
  private stopping = false;
  /** Lines the threads answered and this thread has not pushed yet (the owner's Backpressure counts them). */
  readonly linesInFlight: InFlight;

  /** The 'block' backends, whose refusing() the threads must follow. */
  private readonly refusers: readonly Backend[];
  private refusalCheck: NodeJS.Timeout | null = null;

  constructor(
    config: Config,
    private readonly handler: TrackHandler,
    backends: readonly Backend[],
    /** Checks the owner's backpressure after a batch (as after a request of the owner's own). */
    private readonly afterBatch: () => void,
    workerFile = path.join(__dirname, 'http-thread.js'),
  ) {
    this.shared = new Int32Array(new SharedArrayBuffer(sharedBytes(config.workers)));
    this.refusers = backends.filter((b) => b.whenFull === 'block');
    const shared = this.shared;
    this.linesInFlight = {
      get items() {
        return Atomics.load(shared, SHARED.inFlightItems);
      },
      get bytes() {
        return Atomics.load(shared, SHARED.inFlightBytes);
      },
    };
    for (let index = 1; index < config.workers; index++) {
      const init: HttpThreadInit = { config, worker: index, shared: this.shared.buffer as SharedArrayBuffer };
      const worker = new Worker(workerFile, { workerData: init, name: threadName(index) });
      const thread: Thread = { worker, index, counters: NO_COUNTERS, waiting: new Map(), drained: null, listening: null, gone: false };
      worker.on('message', (message: FromHttpThread) => this.received(thread, message));
      worker.on('error', (err: Error) => this.died(thread, err.stack ?? err.message));
      worker.on('exit', (code) => this.died(thread, `exited with status ${code}`));
      this.threads.push(thread);
    }
  }

  get count(): number {
    return this.threads.length;
  }

  /** Every thread listens on host:port (the owner's own, SO_REUSEPORT). */
  async listen(host: string, port: number): Promise<void> {
    await this.listenAll(() => ({ t: 'listen', host, port }));
  }

  /**
   * Every thread listens on a descriptor of its own for the socket `server`
   * got from systemd (dup-helper.ts says why and how). The descriptors this
   * thread receives stay here, unused and never closed, so that their numbers
   * belong to the threads that use them; each thread closes its own.
   */
  async listenOnSocketOf(server: net.Server): Promise<void> {
    const handle = (server as unknown as { _handle: { fd: number } })._handle;
    const helper = fork(path.join(__dirname, 'dup-helper.js'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [] });
    try {
      const fds = await new Promise<number[]>((resolve, reject) => {
        const got: number[] = [];
        helper.on('message', (_message, copy: { fd: number } | undefined) => {
          if (copy === undefined || !(copy.fd > 2)) return reject(new Error('the descriptor helper sent back no socket'));
          this.copies.push(copy);
          got.push(copy.fd);
          if (got.length === this.threads.length) resolve(got);
        });
        helper.on('error', reject);
        helper.on('exit', (code) => reject(new Error(`the descriptor helper exited (${code})`)));
        for (let i = 0; i < this.threads.length; i++) helper.send(i, handle as never);
      });
      await this.listenAll((i) => ({ t: 'listen', fd: fds[i]! }));
    } finally {
      helper.disconnect();
    }
  }

  private async listenAll(message: (i: number) => ToHttpThread): Promise<void> {
    await Promise.all(
      this.threads.map(
        (thread, i) =>
          new Promise<string>((resolve, reject) => {
            thread.listening = { resolve, reject };
            this.send(thread, message(i));
          }),
      ),
    );
  }

  /** The owner's pressure changed: in shared memory now, and a message so that threads resume their sockets. */
  publish(state: Pressure): void {
    Atomics.store(this.shared, SHARED.pressure, state);
    for (const thread of this.threads) this.send(thread, { t: 'pressure' });
  }

  /** Fresh counters from every thread, their pending lines pushed first (see the module comment). */
  report(): Promise<void> {
    const id = this.nextReport++;
    return Promise.all(
      this.threads.map((thread) => {
        if (thread.gone) return Promise.resolve();
        return new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            thread.waiting.delete(id);
            resolve();
          }, REPORT_WAIT_MS);
          thread.waiting.set(id, () => {
            clearTimeout(timer);
            resolve();
          });
          this.send(thread, { t: 'report', id });
        });
      }),
    ).then(() => undefined);
  }

  /** A thread's counter, summed over the threads. */
  total(key: CounterKey | Outcome): number {
    const at = (Outcomes as readonly string[]).includes(key) ? Outcomes.indexOf(key as Outcome) : counterAt(key as CounterKey);
    let sum = 0;
    for (const thread of this.threads) sum += thread.counters[at]!;
    return sum;
  }

  /** Requests each thread answered, threads 1 … workers − 1. */
  requestsPerThread(): number[] {
    return this.threads.map((thread) => {
      let sum = 0;
      for (let i = 0; i < Outcomes.length; i++) sum += thread.counters[i]!;
      return sum;
    });
  }

  /** Every thread drains under `deadline` (http/server.ts drain), then sends its last lines and counters, and ends. */
  async drain(deadline: number, idleGraceMs: number): Promise<void> {
    this.stopping = true;
    if (this.refusalCheck !== null) clearInterval(this.refusalCheck);
    await Promise.all(
      this.threads.map((thread) => {
        if (thread.gone) return Promise.resolve();
        return new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            thread.gone = true; // terminated below: not a death
            log.error(`${threadName(thread.index)} did not finish draining in time: its last lines are lost`);
            resolve();
          }, Math.max(0, deadline - Date.now()) + DRAIN_GRACE_MS);
          thread.drained = () => {
            clearTimeout(timer);
            resolve();
          };
          this.send(thread, { t: 'drain', deadline, idleGraceMs });
        });
      }),
    );
    await Promise.all(this.threads.map((thread) => thread.worker.terminate()));
  }

  private send(thread: Thread, message: ToHttpThread): void {
    if (!thread.gone) thread.worker.postMessage(message);
  }

  private received(thread: Thread, message: FromHttpThread): void {
    switch (message.t) {
      case 'lines':
        this.take(thread, message.buffer, message.length, message.lines, message.bytes);
        break;
      case 'counters':
        thread.counters = message.counters;
        thread.waiting.get(message.id)?.();
        thread.waiting.delete(message.id);
        break;
      case 'drained':
        thread.counters = message.counters;
        thread.gone = true; // its exit is expected now
        thread.drained?.();
        break;
      case 'listening':
        thread.listening?.resolve(message.address);
        thread.listening = null;
        break;
      case 'failed':
        thread.listening?.reject(new Error(message.message));
        thread.listening = null;
        break;
    }
  }

  private take(thread: Thread, buffer: ArrayBuffer, length: number, lines: number, bytes: number): void {
    const outcomes = this.outcomes;
    readBatch(buffer, length, (flavorIndex, timeMs, record, _bytes, client, key) => {
      const outcome = this.handler.takeForwarded(flavorIndex, timeMs, record, client, key);
      if (outcome === 'not_taken') this.notTaken++;
      else outcomes[outcome]++;
    });
    const slot = threadSlot(thread.index);
    Atomics.sub(this.shared, slot, lines);
    Atomics.sub(this.shared, slot + 1, bytes);
    Atomics.sub(this.shared, SHARED.inFlightItems, lines);
    Atomics.sub(this.shared, SHARED.inFlightBytes, bytes);
    Atomics.notify(this.shared, slot);
    this.afterBatch();
    if (this.refusers.length > 0) this.checkRefusals();
  }

  /**
   * Raises or lowers SHARED.refusing from the backends' own verdict; while
   * raised, asks again every REFUSAL_CHECK_MS (no batch may come to ask: the
   * threads answer 503 meanwhile).
   */
  private checkRefusals(): void {
    const refusing = blockingRefusal(this.refusers);
    Atomics.store(this.shared, SHARED.refusing, refusing ? 1 : 0);
    if (refusing && this.refusalCheck === null) {
      this.refusalCheck = setInterval(() => {
        this.checkRefusals();
        if (Atomics.load(this.shared, SHARED.refusing) === 0 && this.refusalCheck !== null) {
          clearInterval(this.refusalCheck);
          this.refusalCheck = null;
        }
      }, REFUSAL_CHECK_MS).unref();
    }
  }

  private died(thread: Thread, why: string): void {
    if (thread.gone) return;
    thread.gone = true;
    this.deaths++;
    for (const resolve of thread.waiting.values()) resolve();
    thread.waiting.clear();
    thread.listening?.reject(new Error(`${threadName(thread.index)} died: ${why}`));
    thread.listening = null;
    thread.drained?.();
    log.error(`${threadName(thread.index)} died (${why}): its open connections are lost; stopping with status ${EXIT_SOFTWARE}`);
    // The exit status says it was not a normal stop (set in 'exit', after main's own).
    process.once('exit', () => {
      process.exitCode = EXIT_SOFTWARE;
    });
    // An orderly stop: the other threads drain and the backends flush.
    if (!this.stopping) process.kill(process.pid, 'SIGTERM');
  }
}
