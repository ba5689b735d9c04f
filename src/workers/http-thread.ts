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
 */
import { parentPort, workerData } from 'node:worker_threads';
import { FlavorTable } from '../flavor';
import { PostDoor } from '../http/post';
import { PublicServer } from '../http/server';
import { TrackHandler } from '../http/track';
import { ConnectionCounters, Outcomes, RequestCounters } from '../telemetry';
import { Forwarder } from './forwarder';
import { COUNTERS_LENGTH, counterAt, REPORT_MS, SharedConnectionLimit, threadName, type FromHttpThread, type HttpThreadInit, type ThreadCounters, type ToHttpThread } from './protocol';
import { SharedPressure } from './shared-pressure';

const port = parentPort!;
const init = workerData as HttpThreadInit;
const { config, worker } = init;
const shared = new Int32Array(init.shared);

const flavors = new FlavorTable(config.flavors, config.http.path);
const requests = new RequestCounters();
const connections = new ConnectionCounters();
const forwarder = new Forwarder(port, shared, worker, config.checks);
const handler = new TrackHandler(flavors, [], null, requests, Date.now, forwarder);
let pressure: SharedPressure | null = null;
const server = new PublicServer(config.http, handler, requests, connections, [], flavors.paths, {
  connections: new SharedConnectionLimit(shared, config.http.maxConnections),
  makePressure: (changed) => (pressure = new SharedPressure(shared, forwarder, changed)),
});
server.acceptBodies((end) => new PostDoor(config.http, flavors, handler, requests, end));

const post = (message: FromHttpThread) => port.postMessage(message);

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
