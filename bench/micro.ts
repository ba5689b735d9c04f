/**
 * Micro-benchmarks of the pieces of the request path alone, so that a change
 * in the load table can be traced to its cause: query → JSON, the time stamp,
 * the line, the request-head parser, the whole beacon handler without I/O,
 * a POST beacon beside a GET one (bench/post.ts), and the file writer appending 1M lines to a real temp file.
 *
 * Contract:
 * - Imports the compiled code (build/src/...) at run time, the same code the
 *   server runs.
 * - Each case: a warm-up until the JIT settles, then `rounds` timed rounds of
 *   `roundMs`; the table shows the median ns/op and the spread (min..max) of
 *   the rounds. Never passes or fails: numbers are compared between runs.
 * - Run by the orchestrator as its own process, pinned to the server core:
 *     node build/bench/micro.js --json [roundMs] [rounds]
 *   prints one JSON array (MicroResult[]) on stdout. Without --json it prints
 *   the table (for running it alone).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ZonedClock } from '../src/clock';
import { Flavor, FlavorTable } from '../src/flavor';
import { makeLine } from '../src/line';
import { queryToJson } from '../src/query';
import { HeadParser } from '../src/http/request-head';
import { TrackHandler } from '../src/http/track';
import { FileWriter } from '../src/io/file-writer';
import { BATCH_BYTES, BatchWriter, readBatch } from '../src/io/line-batch';
import { Forwarder } from '../src/workers/forwarder';
import { sharedBytes } from '../src/workers/protocol';
import { Worker, type MessagePort } from 'node:worker_threads';
import { realFileOps } from '../src/io/file-ops';
import { RequestCounters } from '../src/telemetry';
import type { Logger } from '../src/log';
import { countingBackend } from './counting-backend';
import { makeBeacons, requestHead } from './beacons';
import { postVsGet } from './post';
import { FLAVORS } from './servers';
import { bigHead } from './split-head';
import { median } from './stats';
import { fmt, renderTable } from './table';

export interface MicroResult {
  name: string;
  nsPerOp: number;
  minNs: number;
  maxNs: number;
  /** What one op is, and anything needed to read the number. */
  note: string;
}

let sink = 0;

/** Runs `op(i)` in batches; returns ns per call for each round. */
export function time(op: (i: number) => number, roundMs: number, rounds: number): number[] {
  const warmUntil = Date.now() + Math.max(100, roundMs);
  let i = 0;
  while (Date.now() < warmUntil) for (let k = 0; k < 1000; k++) sink += op(i++);
  const results: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint();
    const stop = start + BigInt(roundMs) * 1_000_000n;
    let ops = 0;
    let now = start;
    while (now < stop) {
      for (let k = 0; k < 1000; k++) sink += op(i++);
      ops += 1000;
      now = process.hrtime.bigint();
    }
    results.push(Number(now - start) / ops);
  }
  return results;
}

export function summarize(name: string, samples: number[], note: string): MicroResult {
  return { name, nsPerOp: median(samples), minNs: Math.min(...samples), maxNs: Math.max(...samples), note };
}

const silentLog: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined, every: () => undefined };

/** Appends `lines` records, `perTurn` per event-loop turn (as requests arrive), until all are written. */
async function writerRun(lines: number, perTurn: number, records: readonly string[]): Promise<{ nsPerLine: number; bytes: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scratchd-micro-'));
  try {
    let written = 0;
    let bytes = 0;
    let done: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const writer = new FileWriter(
      path.join(dir, 'x.log'),
      // file.writeIntervalMs at its default: lines of several turns share a write.
      { mode: 0o640, maxBatchBytes: 1024 * 1024, retryMaxDelayMs: 5000, writeIntervalMs: 10 },
      realFileOps,
      {
        written: (n, b) => {
          written += n;
          bytes += b;
          if (written >= lines) done();
        },
        failed: (op, err) => {
          throw new Error(`micro: writer ${op} failed: ${err.message}`);
        },
      },
      silentLog,
    );
    const start = process.hrtime.bigint();
    for (let sent = 0; sent < lines; ) {
      const n = Math.min(perTurn, lines - sent);
      for (let k = 0; k < n; k++) writer.append(records[(sent + k) % records.length]!);
      sent += n;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await finished;
    const ns = Number(process.hrtime.bigint() - start);
    await writer.close(Date.now() + 10_000);
    return { nsPerLine: ns / lines, bytes };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function runMicro(roundMs: number, rounds: number, writerLines = 1_000_000): Promise<MicroResult[]> {
  const beacons = makeBeacons(4096);
  const queries = beacons.map((b) => b.query);
  const mask = queries.length - 1; // 4096: a power of two
  const results: MicroResult[] = [];
  const avgQuery = Math.round(queries.reduce((a, q) => a + q.length, 0) / queries.length);

  results.push(summarize('queryToJson', time((i) => queryToJson(queries[i & mask]!).length, roundMs, rounds), `${queries.length} load beacons in turn, ~${avgQuery} B`));

  const jsons = queries.map((q) => queryToJson(q));
  const base = Date.UTC(2026, 10, 29, 20, 0, 0);
  const clock = new ZonedClock('Europe/Athens');
  results.push(summarize('ZonedClock.stamp, 20 per ms', time((i) => clock.stamp(base + ((i / 20) | 0)).length, roundMs, rounds), '20k req/s: most calls reuse the last stamp'));
  const clock2 = new ZonedClock('Europe/Athens');
  results.push(summarize('ZonedClock.stamp, new ms', time((i) => clock2.stamp(base + i).length, roundMs, rounds), 'a new millisecond each call; the zone lookup once per minute'));
  const clock3 = new ZonedClock('Europe/Athens');
  results.push(summarize('ZonedClock.stamp, new minute', time((i) => clock3.stamp(base + i * 60_000).length, roundMs, rounds), 'worst case: the per-minute zone lookup every call'));

  const flavor = new Flavor('skroutz', 0, 'Europe/Athens', ['www.skroutz.gr']);
  results.push(summarize('makeLine', time((i) => makeLine(flavor, base + ((i / 20) | 0), jsons[i & mask]!).record.length, roundMs, rounds), 'stamp + concatenation of a ready values JSON'));

  // The Kafka backend's cost on the HTTP thread with kafka.thread (docs/kafka.md):
  // the line appended to the batch, and one transferred postMessage per 64 KB
  // to a real worker thread (which only receives).
  const kafkaRecords = jsons.map((j, i) => makeLine(flavor, base + i, j).record);
  const receiver = new Worker("require('node:worker_threads').parentPort.on('message', () => {})", { eval: true });
  const batch = new BatchWriter();
  const post = () => {
    const taken = batch.take();
    receiver.postMessage({ t: 'lines', buffer: taken.buffer, length: taken.length }, [taken.buffer]);
  };
  const avgRecord = Math.round(kafkaRecords.reduce((a, r) => a + Buffer.byteLength(r), 0) / kafkaRecords.length);
  results.push(summarize('Kafka thread: push (batch append + post)', time((i) => batch.append(0, base + i, kafkaRecords[i & mask]!, post), roundMs, rounds), `~${avgRecord} B records; a postMessage transferring the batch every ${BATCH_BYTES / 1024} KB`));
  await receiver.terminate();

  results.push(...(await forwardingCost(flavor, jsons, queries, base, roundMs, rounds)));

  const heads = beacons.map((b) => Buffer.from(requestHead(b), 'latin1'));
  const parser = new HeadParser(8192, 16384, false);
  const avgHead = Math.round(heads.reduce((a, h) => a + h.length, 0) / heads.length);
  results.push(
    summarize(
      'HeadParser, one write',
      time((i) => {
        const h = heads[i & mask]!;
        parser.reset();
        return parser.execute(h, 0, h.length) + parser.target.length;
      }, roundMs, rounds),
      `~${avgHead} B browser-like head: request line, Host and 4 more headers`,
    ),
  );
  // The split-head cost: a ~16 KB head read in one chunk, and in 10-byte chunks
  // (a slow client). The parser keeps its place, so the two should cost about the same.
  const big = Buffer.from(bigHead(16_000), 'latin1');
  const pieces: Buffer[] = [];
  for (let at = 0; at < big.length; at += 10) pieces.push(big.subarray(at, at + 10));
  const splitNote = `${big.length} B head (${pieces.length} pieces of 10 B)`;
  results.push(summarize('HeadParser, 16 KB head, one write', time(() => {
    parser.reset();
    return parser.execute(big, 0, big.length);
  }, roundMs, rounds), splitNote));
  results.push(summarize('HeadParser, 16 KB head, 10 B pieces', time(() => {
    parser.reset();
    let r = 0;
    for (let k = 0; k < pieces.length; k++) r = parser.execute(pieces[k]!, 0, pieces[k]!.length);
    return r;
  }, roundMs, rounds), splitNote));

  // The whole beacon logic without I/O: Host → flavor, query → JSON, stamp, line, push to a counting backend.
  const table = new FlavorTable(FLAVORS);
  const counting = countingBackend((length) => (sink += length));
  let now = base;
  const handler = new TrackHandler(table, [counting], null, new RequestCounters(), () => now);
  const client = { address: () => '127.0.0.1' };
  const hosts = beacons.map((b) => b.host);
  results.push(
    summarize(
      'TrackHandler.track (no I/O)',
      time((i) => {
        if ((i & 15) === 0) now++;
        return handler.track(false, queries[i & mask]!, hosts[i & mask], client);
      }, roundMs, rounds),
      'Host lookup + queryToJson + makeLine + push',
    ),
  );

  // POST beside GET (bench/post.ts): the same beacons with the head parsed, as form and JSON bodies.
  results.push(...postVsGet(roundMs, rounds));

  const records = beacons.map((b, i) => makeLine(table.byHost(b.host)!, base + i, jsons[i]!).record);
  const writerRuns = Math.max(1, Math.min(3, rounds));
  const runs: number[] = [];
  let bytes = 0;
  for (let r = 0; r < writerRuns; r++) {
    const run = await writerRun(writerLines, 500, records);
    runs.push(run.nsPerLine);
    bytes = run.bytes;
  }
  const mbPerS = bytes / writerLines / (median(runs) / 1e9) / 1e6;
  results.push(
    summarize(
      `FileWriter ${fmt(writerLines)} lines`,
      runs,
      `500 appends per event-loop turn until written (${fmt(bytes / writerLines)} B/line, ${fmt(mbPerS)} MB/s); median of ${writerRuns}`,
    ),
  );
  // The other end: one line per event-loop turn, as at a low request rate, where nothing batches and
  // every line costs a write() on libuv's thread pool.
  const singleLines = Math.max(1000, Math.round(writerLines / 50));
  const singles: number[] = [];
  for (let r = 0; r < writerRuns; r++) singles.push((await writerRun(singleLines, 1, records)).nsPerLine);
  results.push(summarize(`FileWriter ${fmt(singleLines)} lines, 1 per turn`, singles, `one append per event-loop turn (file.writeIntervalMs groups them into writes); median of ${writerRuns}`));
  if (sink === 0) console.error('(sink)');
  return results;
}

/**
 * workers > 1 (docs/performance.md, "More than one core"): what forwarding a
 * line costs on each side. HTTP thread: the record (built anyway with one
 * worker), appended to the batch, a transferred postMessage per 64 KB to a
 * real thread; with the checks on, the client address and the query's hash
 * too. Owner: reading a batch and taking each line (checks off: the stamp for
 * its date and a push to a counting backend), per line.
 */
async function forwardingCost(flavor: Flavor, jsons: readonly string[], queries: readonly string[], base: number, roundMs: number, rounds: number): Promise<MicroResult[]> {
  const mask = jsons.length - 1;
  const out: MicroResult[] = [];
  const receiver = new Worker("require('node:worker_threads').parentPort.on('message', () => {})", { eval: true });
  const client = { address: () => '203.0.113.7' };
  for (const checks of [{ duplicateWindowMs: 0, maxPerMinute: 0, maxKeys: 1 }, { duplicateWindowMs: 60_000, maxPerMinute: 0, maxKeys: 1 }]) {
    const shared = new Int32Array(new SharedArrayBuffer(sharedBytes(2)));
    const forwarder = new Forwarder(receiver as unknown as MessagePort, shared, 1, checks);
    const samples = time((i) => {
      forwarder.forward(flavor, base + ((i / 20) | 0), jsons[i & mask]!, client, queries[i & mask]!);
      if ((i & 1023) === 0) shared.fill(0); // nobody takes them here: keep the in-flight counts small
      return 1;
    }, roundMs, rounds);
    const what = checks.duplicateWindowMs > 0 ? 'duplicate check on: + client address + query hash' : 'checks off';
    out.push(summarize(`workers: forward, HTTP thread (${checks.duplicateWindowMs > 0 ? 'checks on' : 'checks off'})`, samples, `record built (as with 1 worker) + batch append + a transferred postMessage per 64 KB; ${what}`));
  }
  await receiver.terminate();

  // The owner's side, per line: a 64 KB batch of real records read and taken.
  const table = new FlavorTable(FLAVORS);
  const handler = new TrackHandler(table, [countingBackend((length) => (sink += length))], null, new RequestCounters());
  const writer = new BatchWriter();
  let batch: ReturnType<BatchWriter['take']> | null = null;
  for (let i = 0; batch === null; i++) {
    const record = makeLine(table.all[i % table.all.length]!, base + i, jsons[i & mask]!).record;
    writer.append(i % table.all.length, base + i, record, () => (batch = writer.take()));
  }
  const taken = batch as ReturnType<BatchWriter['take']>;
  const samples = time(() => {
    let n = 0;
    readBatch(taken.buffer, taken.length, (index, timeMs, record, _bytes, address, key) => {
      if (handler.takeForwarded(index, timeMs, record, address, key) === 'tracked') n++;
    });
    return n;
  }, roundMs, rounds).map((ns) => ns / taken.lines);
  out.push(summarize('workers: take, main thread (per line)', samples, `a ${taken.lines}-line batch read, each line stamped for its date and pushed (a counting backend), checks off`));
  return out;
}

export function microTable(results: readonly MicroResult[]): string {
  return renderTable(
    'Micro-benchmarks (ns/op, median of rounds; pinned to the server core)',
    ['piece', 'ns/op', 'min', 'max', 'what'],
    results.map((r) => [r.name, fmt(r.nsPerOp), fmt(r.minNs), fmt(r.maxNs), r.note]),
  );
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const json = args[0] === '--json';
  const [roundMs, rounds, lines] = (json ? args.slice(1) : args).map(Number);
  runMicro(roundMs || 200, rounds || 7, lines || 1_000_000).then(
    (results) => console.log(json ? JSON.stringify(results) : microTable(results)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
