/**
 * The Kafka thread (docs/kafka.md, "Threads"): a worker_thread that owns the
 * librdkafka producer, its delivery reports, the in-flight tracker and the
 * spool — the whole KafkaBackend — so that none of it costs the thread that
 * answers HTTP. Lines come in batches (io/line-batch.ts); the counters go back in a
 * report every REPORT_MS while anything changed, and once more at close.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Flavor } from '../../flavor';
import { readBatch } from '../../io/line-batch';
import { KafkaBackend } from './kafka-backend';
import { makeReport, type FromWorker, type Report, type ToWorker, type WorkerInit } from './thread-protocol';

/** How often the counters go back at most: the HTTP thread's `held` falls this late at worst. */
const REPORT_MS = 20;

const port = parentPort!;
const init = workerData as WorkerInit;
const flavors = init.flavors.map((f) => new Flavor(f.name, f.index, f.timezone, f.hosts));
/** Null when the client could not be loaded here: start() then fails with the reason (as it would on the HTTP thread). */
let backend: KafkaBackend | null = null;
let unavailable: Error | null = null;
try {
  backend = new KafkaBackend(init.config, flavors, init.lockWaitMs);
} catch (err) {
  unavailable = err as Error;
}
let received = 0;

const post = (message: FromWorker) => port.postMessage(message);

function report(): Report {
  return backend === null ? makeReport(received, 0, 0, null, {}) : makeReport(received, backend.settledLines, backend.settledBytes, backend.counters, backend.details());
}

// Posted only when something changed: an idle scratchd does not wake the HTTP thread.
let sent: Report = [];
const reporter = setInterval(() => {
  const now = report();
  if (now.every((v, i) => v === sent[i])) return;
  sent = now;
  post({ t: 'report', report: now });
}, REPORT_MS);

port.on('message', (message: ToWorker) => {
  switch (message.t) {
    case 'lines':
      // No backend (its start failed): the HTTP thread counts what was never received.
      if (backend === null) break;
      readBatch(message.buffer, message.length, (index, timeMs, record, bytes) => {
        received++;
        backend.pushRecord(flavors[index]!, timeMs, record, bytes, true);
      });
      break;
    case 'start':
      if (backend === null) {
        fail(unavailable);
        break;
      }
      backend.start().then(
        () => post({ t: 'started' }),
        (err: unknown) => fail(err),
      );
      break;
    case 'close':
      void (backend === null ? Promise.resolve() : backend.close(message.deadline)).then(() => {
        clearInterval(reporter);
        post({ t: 'closed', report: report() });
      });
      break;
  }
});

function fail(err: unknown): void {
  const code = (err as { code?: unknown } | null)?.code;
  post({ t: 'failed', code: typeof code === 'string' ? code : '', message: err instanceof Error ? err.message : String(err) });
}
