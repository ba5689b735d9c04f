/**
 * An HTTP thread (workers > 1; docs/architecture.md, "Threads"): a
 * worker_thread running the same public server as the owner thread
 * (http/server.ts, the parser, TrackHandler, POST), listening on the same
 * address (SO_REUSEPORT). It builds each line itself and forwards it
 * (forwarder.ts); it owns no backend, no checks, no admin port, no signal.
 *
 * Messages (protocol.ts): 'listen' → 'listening' or 'failed'; 'pressure' →
 * the owner's state changed; 'report' → the pending batch, then the counters
 * (so that a /stats read after an answer sees its line); 'drain' → the
 * server's drain (the owner's deadline), the last batch, 'drained' with the
 * final counters, and the thread ends. Counters also go every REPORT_MS
 * while they change (Graphite reads them without asking).
 *
 * An uncaught exception here (or an unhandled rejection, which Node turns
 * into one) posts the pending batch at once, synchronously, says 'dying'
 * with the error, and ends the thread: every line it answered 200 reaches
 * the owner, which restarts the thread (http-threads.ts). The heartbeat in
 * shared memory (THREAD.heartbeat) moves while the event loop turns: the
 * owner's watchdog sees a thread that is stuck.
 *
 * Fault injection, for the tests only: SCRATCHD_TEST_HTTP_THREAD_FAULT set to
 * "crash:N", "hang:N" or "pause:N" makes thread 1's first incarnation throw,
 * loop forever, or loop for 1.5 × http.threadStallMs, right after the N-th
 * line it forwarded (in a setImmediate, once the answer is written);
 * "crash-always:N" makes every incarnation of thread 1 throw so. An environment variable, not a config key: nothing
 * on the network or in a config file can reach it, and it is read once at
 * start-up (no cost on the path when unset). See docs/development.md.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { FlavorTable } from '../flavor';
import { PostDoor } from '../http/post';
import { PublicServer } from '../http/server';
import { TrackHandler } from '../http/track';
import { ConnectionCounters, Outcomes, RequestCounters } from '../telemetry';
import { answerRefusal } from './answer-refusal';
import { Forwarder } from './forwarder';
import {
  COUNTERS_LENGTH,
  counterAt,
  heartbeatMs,
  REPORT_MS,
  SharedConnectionLimit,
  THREAD,
  threadName,
  threadSlot,
  type FromHttpThread,
  type HttpThreadInit,
  type ThreadCounters,
  type ToHttpThread,
} from './protocol';
import { SharedPressure } from './shared-pressure';

const port = parentPort!;
const init = workerData as HttpThreadInit;
const { config, worker } = init;
const shared = new Int32Array(init.shared);
/** The exit status of a thread that ends on an uncaught exception (as the process's on an internal error). */
const EXIT_SOFTWARE = 70;

const flavors = new FlavorTable(config.flavors, config.http.path);
const requests = new RequestCounters();
const connections = new ConnectionCounters();
const forwarder = new Forwarder(port, shared, worker, config.checks, answerRefusal(config));
const handler = new TrackHandler(flavors, [], null, requests, Date.now, forwarder);
let pressure: SharedPressure | null = null;
const server = new PublicServer(config.http, handler, requests, connections, [], flavors.paths, {
  connections: new SharedConnectionLimit(shared, config.http.maxConnections, worker),
  makePressure: (changed) => (pressure = new SharedPressure(shared, forwarder, changed)),
});
server.acceptBodies((end) => new PostDoor(config.http, flavors, handler, requests, end));

const post = (message: FromHttpThread) => port.postMessage(message);

process.on('uncaughtException', (err: Error) => {
  // Synchronous, before anything else can fail: the answered lines first.
  try {
    forwarder.post();
  } catch {
    // What stays unposted is in THREAD.pending: the owner counts it as lost.
  }
  post({ t: 'dying', error: err.stack ?? String(err), counters: counters() });
  process.exit(EXIT_SOFTWARE); // messages already posted are delivered before the owner's 'exit'
});

const heartbeatAt = threadSlot(worker) + THREAD.heartbeat;
setInterval(() => Atomics.add(shared, heartbeatAt, 1), heartbeatMs(config.http.threadStallMs)).unref();

injectFault(process.env.SCRATCHD_TEST_HTTP_THREAD_FAULT);

/** The tests' fault injection (see the module comment). */
function injectFault(fault: string | undefined): void {
  const match = fault === undefined ? null : /^(crash|hang|pause|crash-always):(\d+)$/.exec(fault);
  if (match === null || worker !== 1 || (init.incarnation !== 0 && match[1] !== 'crash-always')) return;
  const after = Number(match[2]);
  const forward = forwarder.forward.bind(forwarder);
  let seen = 0;
  forwarder.forward = (...args) => {
    const answerable = forward(...args);
    if (++seen !== after) return answerable;
    setImmediate(() => {
      if (match[1]!.startsWith('crash')) throw new Error(`SCRATCHD_TEST_HTTP_THREAD_FAULT: crash after ${after} lines`);
      // hang: for ever; pause: 1.5 × http.threadStallMs, then on as if nothing happened.
      const until = match[1] === 'hang' ? Infinity : Date.now() + 1.5 * config.http.threadStallMs;
      while (Date.now() < until);
    });
    return answerable;
  };
}

function counters(): ThreadCounters {
  const out = new Array<number>(COUNTERS_LENGTH).fill(0);
  for (let i = 0; i < Outcomes.length; i++) out[i] = requests[Outcomes[i]!];
  out[counterAt('connections_open')] = connections.open;
  out[counterAt('connections_accepted')] = connections.accepted;
  out[counterAt('connections_rejected')] = connections.rejected;
  out[counterAt('lines')] = forwarder.lines;
  out[counterAt('batches')] = forwarder.batches;
  out[counterAt('in_flight_pauses')] = pressure?.pauses ?? 0;
  return out;
}

let sent: ThreadCounters = [];
const reporter = setInterval(() => {
  const now = counters();
  if (now.every((v, i) => v === sent[i])) return;
  sent = now;
  post({ t: 'counters', id: 0, counters: now });
}, REPORT_MS).unref();

port.on('message', (message: ToHttpThread) => {
  switch (message.t) {
    case 'listen':
      ('fd' in message ? server.listen({ kind: 'systemd' }, message.fd) : server.listen({ kind: 'address', host: message.host, port: message.port }, undefined, true)).then(
        (address) => post({ t: 'listening', address }),
        (err: unknown) => post({ t: 'failed', message: `${threadName(worker)}: ${(err as Error).message}` }),
      );
      break;
    case 'pressure':
      pressure?.ownerChanged();
      break;
    case 'report':
      forwarder.post();
      post({ t: 'counters', id: message.id, counters: counters() });
      break;
    case 'drain':
      void server.drain(message.deadline, message.idleGraceMs).then(() => {
        clearInterval(reporter);
        forwarder.post();
        post({ t: 'drained', counters: counters() });
        port.close(); // nothing else holds the thread: it ends
      });
      break;
  }
});
