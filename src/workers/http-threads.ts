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
 * - A thread that dies (an uncaught exception in it — it posts its batch
 *   first, http-thread.ts —, or an exit nobody asked for) is logged and
 *   counted with the lines it leaves unposted (`lostLines`: its THREAD.pending
 *   and what it posted that never arrived, 0 after a clean 'dying'), its
 *   connections are given back to SHARED.connections, and a new thread takes
 *   its slot and listens again (the kernel meanwhile sends new connections to
 *   the others). More than RESTARTS_MAX deaths within RESTARTS_WINDOW_MS, or a
 *   replacement that cannot listen, stops the process in order (SIGTERM: the
 *   other threads drain, the backends flush) with exit status 70, for the
 *   supervisor: something is wrong beyond one thread.
 * - Watchdog: every thread bumps THREAD.heartbeat while its event loop turns;
 *   one whose heartbeat has not moved for http.threadStallMs is stuck: logged,
 *   counted (`stalls`), /ready answers 503 (`allServing`: HAProxy stops
 *   sending to this scratchd). Still stuck at twice that, it is terminated
 *   and replaced as if it had died: a loop that has not turned for seconds
 *   rarely recovers, and meanwhile its listener keeps taking its share of new
 *   connections, which hang unanswered; a terminated thread's listener closes
 *   and the kernel sends them to the others. The first period lets a long
 *   but finite pause (a huge synchronous job) end without losing anything.
 *   A terminated thread's unposted batch (≤ 5 ms of lines answered 200) is
 *   lost and counted.
 */
import { fork } from 'node:child_process';
import type * as net from 'node:net';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { blockingRefusal, type Backend, type RefusalTest } from '../backends/backend';
import type { Config } from '../config/types';
import type { InFlight, Pressure } from '../http/backpressure';
import type { TrackHandler } from '../http/track';
import { readBatch } from '../io/line-batch';
import { answerRefusal } from './answer-refusal';
import { logger } from '../log';
import { Outcomes, RequestCounters, type Outcome } from '../telemetry';
import {
  COUNTERS_LENGTH,
  counterAt,
  NO_COUNTERS,
  SHARED,
  sharedBytes,
  heartbeatMs,
  THREAD,
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
/** More deaths than this within RESTARTS_WINDOW_MS stop the process (see the module comment). */
const RESTARTS_MAX = 5;
const RESTARTS_WINDOW_MS = 60_000;
/** The int32 of a thread's block in shared memory (protocol.ts THREAD). */
const THREAD_BLOCK_LENGTH = 16;

interface Thread {
  worker: Worker;
  readonly index: number;
  /** 0, then one more for each replacement (HttpThreadInit.incarnation). */
  incarnation: number;
  counters: ThreadCounters;
  /** What the previous incarnations in this slot counted (their connections_open aside). */
  before: number[];
  /** Resolvers of the report asked for, by id. */
  waiting: Map<number, () => void>;
  drained: (() => void) | null;
  listening: { resolve: (address: string) => void; reject: (err: Error) => void } | null;
  /** Ended, or asked to (drained, terminated at the drain): its exit is no death. */
  gone: boolean;
  /** Listening; false from its death (or stall) until its replacement listens. */
  serving: boolean;
  stuck: boolean;
  /** Why it ends, when known before its 'exit' (its 'dying' message, an 'error', the watchdog). */
  why: string | null;
  /** The watchdog's last heartbeat seen, and when it moved. */
  beat: number;
  beatAt: number;
}

export class HttpThreads {
  readonly shared: Int32Array;
  /** What became of the forwarded lines on this thread: tracked, duplicate, malicious. */
  readonly outcomes = new RequestCounters();
  /** Forwarded lines no backend took after their 200 (each is counted in its backends' dropped). */
  notTaken = 0;
  /** Threads that died (stuck ones terminated by the watchdog included). */
  deaths = 0;
  /** Threads the watchdog found stuck. */
  stalls = 0;
  /** Threads started in place of dead ones. */
  restarts = 0;
  /** Lines a dead thread had answered 200 and never handed over (see the module comment). */
  lostLines = 0;
  private readonly deathTimes: number[] = [];
  private readonly stallMs: number;
  private readonly watchdog: NodeJS.Timeout;
  /** How a replacement listens: the owner's address, or a descriptor of its own for the systemd socket. */
  private listenWith: ((thread: Thread) => Promise<ToHttpThread>) | null = null;
  /** Every thread listened once (listenAll): from then on a dead one is replaced. */
  private started = false;
  private readonly threads: Thread[] = [];
  /** Descriptors received for the threads (listenOnSocketOf), kept so that they are never closed here. */
  private readonly copies: unknown[] = [];
  private nextReport = 1;
  private stopping = false;
  /** Lines the threads answered and this thread has not pushed yet (the owner's Backpressure counts them). */
  readonly linesInFlight: InFlight;

  /** The 'block' backends, whose refusing() the threads must follow. */
  private readonly refusers: readonly Backend[];
  /** The lines the threads answered 503 and forwarded all the same (answer-refusal.ts): not counted as notTaken. */
  private readonly answered503: RefusalTest | null;
  private refusalCheck: NodeJS.Timeout | null = null;

  constructor(
    private readonly config: Config,
    private readonly handler: TrackHandler,
    backends: readonly Backend[],
    /** Checks the owner's backpressure after a batch (as after a request of the owner's own). */
    private readonly afterBatch: () => void,
    private readonly workerFile = path.join(__dirname, 'http-thread.js'),
  ) {
    this.shared = new Int32Array(new SharedArrayBuffer(sharedBytes(config.workers)));
    this.refusers = backends.filter((b) => b.whenFull === 'block');
    this.answered503 = answerRefusal(config);
    if (this.refusers.length > 0) handler.onBlockRefusal = () => this.checkRefusals();
    const shared = this.shared;
    this.linesInFlight = {
      get items() {
        return Atomics.load(shared, SHARED.inFlightItems);
      },
      get bytes() {
        return Atomics.load(shared, SHARED.inFlightBytes);
      },
    };
    this.stallMs = config.http.threadStallMs;
    for (let index = 1; index < config.workers; index++) {
      const thread = { index, incarnation: 0, before: NO_COUNTERS.slice() } as Thread;
      this.startThread(thread);
      this.threads.push(thread);
    }
    this.watchdog = setInterval(() => this.watch(), heartbeatMs(this.stallMs)).unref();
  }

  /** A new worker in `thread`'s slot (its first, or a replacement): fresh state, not serving yet. */
  private startThread(thread: Thread): void {
    const init: HttpThreadInit = { config: this.config, worker: thread.index, shared: this.shared.buffer as SharedArrayBuffer, incarnation: thread.incarnation };
    const worker = new Worker(this.workerFile, { workerData: init, name: threadName(thread.index) });
    Object.assign(thread, { worker, counters: NO_COUNTERS, waiting: new Map(), drained: null, listening: null, gone: false, serving: false, stuck: false, why: null, beat: 0, beatAt: 0 });
    worker.on('message', (message: FromHttpThread) => this.received(thread, message));
    worker.on('error', (err: Error) => {
      thread.why ??= err.stack ?? err.message;
    });
    // Every message the thread posted has been received by then (Node delivers them before 'exit').
    worker.on('exit', (code) => this.ended(thread, code));
  }

  /** Whether every thread is serving: none stuck, none dead and not yet replaced (Scratchd.ready). */
  get allServing(): boolean {
    return this.threads.every((thread) => !thread.stuck && (thread.serving || thread.incarnation === 0));
  }

  get count(): number {
    return this.threads.length;
  }

  /** Every thread listens on host:port (the owner's own, SO_REUSEPORT). */
  async listen(host: string, port: number): Promise<void> {
    this.listenWith = () => Promise.resolve({ t: 'listen', host, port });
    await this.listenAll(() => ({ t: 'listen', host, port }));
  }

  /**
   * Every thread listens on a descriptor of its own for the socket `server`
   * got from systemd (dup-helper.ts says why and how). The descriptors this
   * thread receives stay here, unused and never closed, so that their numbers
   * belong to the threads that use them; each thread closes its own.
   */
  async listenOnSocketOf(server: net.Server): Promise<void> {
    // A dead thread's descriptor closed with it: its replacement gets a new one.
    this.listenWith = async () => ({ t: 'listen', fd: (await this.descriptors(server, 1))[0]! });
    const fds = await this.descriptors(server, this.threads.length);
    await this.listenAll((i) => ({ t: 'listen', fd: fds[i]! }));
  }

  /** `count` new descriptors for the socket of `server`, through the helper (see listenOnSocketOf). */
  private async descriptors(server: net.Server, count: number): Promise<number[]> {
    const handle = (server as unknown as { _handle: { fd: number } })._handle;
    const helper = fork(path.join(__dirname, 'dup-helper.js'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [] });
    try {
      const fds = await new Promise<number[]>((resolve, reject) => {
        const got: number[] = [];
        helper.on('message', (_message, copy: { fd: number } | undefined) => {
          if (copy === undefined || !(copy.fd > 2)) return reject(new Error('the descriptor helper sent back no socket'));
          this.copies.push(copy);
          got.push(copy.fd);
          if (got.length === count) resolve(got);
        });
        helper.on('error', reject);
        helper.on('exit', (code) => reject(new Error(`the descriptor helper exited (${code})`)));
        for (let i = 0; i < count; i++) helper.send(i, handle as never);
      });
      return fds;
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
    this.started = true;
  }

  /** A thread's 'listening': serving from now on, watched by the watchdog. */
  private serving(thread: Thread): void {
    thread.serving = true;
    thread.beat = Atomics.load(this.shared, threadSlot(thread.index) + THREAD.heartbeat);
    thread.beatAt = Date.now();
  }

  /** Stuck threads: see the module comment. */
  private watch(): void {
    const now = Date.now();
    for (const thread of this.threads) {
      if (!thread.serving || thread.gone) continue;
      const beat = Atomics.load(this.shared, threadSlot(thread.index) + THREAD.heartbeat);
      const name = threadName(thread.index);
      if (beat !== thread.beat) {
        if (thread.stuck) log.info(`${name} turns again after ${now - thread.beatAt} ms`);
        thread.stuck = false;
        thread.beat = beat;
        thread.beatAt = now;
      } else if (!thread.stuck && now - thread.beatAt >= this.stallMs) {
        thread.stuck = true;
        this.stalls++;
        log.error(`${name} is stuck: no heartbeat for ${now - thread.beatAt} ms (http.threadStallMs ${this.stallMs}); /ready answers 503; terminated if still stuck at twice that`);
      } else if (thread.stuck && now - thread.beatAt >= 2 * this.stallMs && thread.why === null) {
        thread.why = `stuck: no heartbeat for ${now - thread.beatAt} ms, terminated`;
        void thread.worker.terminate();
      }
    }
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
    for (const thread of this.threads) sum += thread.before[at]! + thread.counters[at]!;
    return sum;
  }

  /** Requests each thread answered, threads 1 … workers − 1. */
  requestsPerThread(): number[] {
    return this.threads.map((thread) => {
      let sum = 0;
      for (let i = 0; i < Outcomes.length; i++) sum += thread.before[i]! + thread.counters[i]!;
      return sum;
    });
  }

  /** Every thread drains under `deadline` (http/server.ts drain), then sends its last lines and counters, and ends. */
  async drain(deadline: number, idleGraceMs: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.watchdog);
    if (this.refusalCheck !== null) clearInterval(this.refusalCheck);
    await Promise.all(
      this.threads.map((thread) => {
        if (thread.gone) return Promise.resolve();
        if (thread.stuck) {
          thread.gone = true; // it would not answer: terminated below, its batch lost and counted
          return Promise.resolve();
        }
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
        this.serving(thread);
        thread.listening?.resolve(message.address);
        thread.listening = null;
        break;
      case 'dying':
        thread.why = message.error;
        thread.counters = message.counters;
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
      if (outcome !== 'not_taken') outcomes[outcome]++;
      else if (this.answered503 === null || !this.answered503(record, this.config.flavors[flavorIndex]!.name)) this.notTaken++;
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
   * threads answer 503 meanwhile). Asked after every batch, and at once when
   * the owner's own push was refused (TrackHandler.onBlockRefusal): a thread
   * must not answer 200 meanwhile for a line the owner would refuse.
   */
  checkRefusals(): void {
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

  /**
   * A thread's exit: expected (drained, or terminated at the drain), or a
   * death — counted, logged with what it lost, and replaced (see the module
   * comment).
   */
  private ended(thread: Thread, code: number): void {
    const lost = this.release(thread);
    this.lostLines += lost;
    const name = threadName(thread.index);
    const expected = thread.gone;
    thread.gone = true;
    thread.serving = false;
    for (const resolve of thread.waiting.values()) resolve();
    thread.waiting.clear();
    // Stopping: a start still waiting for it stays pending, as the stop wins (no error).
    if (!expected) thread.listening?.reject(new Error(`${name} ended: ${thread.why ?? `exit status ${code}`}`));
    thread.listening = null;
    thread.drained?.();
    thread.drained = null;
    if (expected) {
      if (lost > 0) log.error(`${name} ended with ${lost} lines it had answered 200 not handed over: they are lost`);
      return;
    }
    this.deaths++;
    for (let i = 0; i < COUNTERS_LENGTH; i++) if (i !== counterAt('connections_open')) thread.before[i]! += thread.counters[i]!;
    thread.counters = NO_COUNTERS;
    const now = Date.now();
    this.deathTimes.push(now);
    while (this.deathTimes[0]! < now - RESTARTS_WINDOW_MS) this.deathTimes.shift();
    const what = `${name} died (${thread.why ?? `exited with status ${code}`}): ${lost === 0 ? 'every line it answered 200 was handed over' : `${lost} lines it answered 200 are lost`}; its open connections were dropped`;
    if (this.stopping) {
      log.error(what);
    } else if (!this.started) {
      log.error(what); // while starting: start() fails with the listen rejection above
    } else if (this.deathTimes.length > RESTARTS_MAX) {
      this.fail(`${what}; ${this.deathTimes.length} deaths within ${RESTARTS_WINDOW_MS / 1000} s`);
    } else {
      log.error(`${what}; starting a new one`);
      void this.replace(thread);
    }
  }

  /** Gives back what an ended thread holds in shared memory; returns the lines it answered and never handed over. */
  private release(thread: Thread): number {
    const at = threadSlot(thread.index);
    const shared = this.shared;
    const inFlight = Atomics.load(shared, at + THREAD.inFlightLines);
    Atomics.sub(shared, SHARED.inFlightItems, inFlight);
    Atomics.sub(shared, SHARED.inFlightBytes, Atomics.load(shared, at + THREAD.inFlightBytes));
    Atomics.sub(shared, SHARED.connections, Atomics.load(shared, at + THREAD.connections));
    const pending = Atomics.load(shared, at + THREAD.pending);
    shared.fill(0, at, at + THREAD_BLOCK_LENGTH);
    return inFlight + pending;
  }

  /** A new thread in a dead one's slot, listening as the others do. */
  private async replace(thread: Thread): Promise<void> {
    thread.incarnation++;
    this.restarts++;
    this.startThread(thread);
    try {
      const message = await this.listenWith!(thread);
      const address = await new Promise<string>((resolve, reject) => {
        thread.listening = { resolve, reject };
        this.send(thread, message);
      });
      log.info(`${threadName(thread.index)} serving again (a new thread, ${thread.incarnation} replaced) on ${address}`);
    } catch (err) {
      if (!this.stopping) this.fail(`${threadName(thread.index)} could not be replaced: ${(err as Error).message}`);
    }
  }

  /** Something is wrong beyond one thread: an orderly stop with status 70, for the supervisor. */
  private fail(why: string): void {
    log.error(`${why}; stopping with status ${EXIT_SOFTWARE}`);
    // The exit status says it was not a normal stop (set in 'exit', after main's own).
    process.once('exit', () => {
      process.exitCode = EXIT_SOFTWARE;
    });
    // An orderly stop: the other threads drain and the backends flush.
    if (!this.stopping) process.kill(process.pid, 'SIGTERM');
  }
}
