/**
 * The hostile-input budget, whole requests (BENCH_ONLY=hostile, or part of
 * `all`): what the worst queries a request line allows cost the real
 * scratchd per request — the HTTP head, query → JSON, the record, the file
 * backend's queue and write — beside the realistic beacon that
 * bench/query.bench.ts measures the parser alone on (docs/query.md, "The
 * budget, whole requests").
 *
 * For each query: a fresh scratchd (files only, its logs on tmpfs so that a
 * ~30 KB line per request is not a disk benchmark), wrk with that one
 * request on the load core, 10 connections, closed loop; the server's CPU
 * seconds over the run divided by the requests it answered. Closed loop,
 * because at saturation a request costs what it costs, not its share of the
 * event loop's idle wake-ups. Rounds rotate the order; medians of `runs`.
 * Every answer must be a 200, with no socket error (the shapes fit the
 * default request line). The last column, CPU per byte of request head,
 * says what a client buys per byte it sends; the budget is per request.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hostileShapes } from '../test/support/query-hostile';
import { REALISTIC_BEACON_QUERY, requestHead, writeWrkScript, type Beacon } from './beacons';
import { runWrk } from './load';
import type { BenchOptions } from './options';
import { cpuTimes, sleep } from './procs';
import { startScratchd } from './servers';
import { median } from './stats';
import { fmt, renderTable, type Row } from './table';

/** The shapes measured: the two worst for the parser alone, the worst of the older list, and distinct flat keys. */
const SHAPES = ['<i in base 62> (shortest distinct keys)', '<i in base 62>[]', 'a[<i%50>][x<i>]=1', 'k<i>=v (distinct flat keys)'];

export interface HostileRequestRun {
  name: string;
  queryBytes: number;
  /** The whole request head, browser-like headers included (beacons.ts requestHead). */
  requestBytes: number;
  requests: number;
  requestsPerSecond: number;
  cpuUsPerRequest: number;
  /** Answers other than 200, and connect, read, write and timeout errors. */
  failed: number;
}

export async function runHostileRequests(options: BenchOptions, log: (m: string) => void): Promise<HostileRequestRun[]> {
  const shapes = hostileShapes();
  const queries: [string, string][] = [['realistic beacon', REALISTIC_BEACON_QUERY]];
  for (const name of SHAPES) {
    const shape = shapes.find((s) => s.name === name);
    if (shape === undefined) throw new Error(`hostile-requests: no shape named ${name}`);
    queries.push([name, shape.query]);
  }
  const runs: HostileRequestRun[] = [];
  const seconds = options.quick ? 2 : Math.min(options.seconds, 5);
  const dir = fs.mkdtempSync('/dev/shm/scratchd-hostile-');
  try {
    for (let round = 0; round < options.runs; round++) {
      for (let k = 0; k < queries.length; k++) {
        const [name, query] = queries[(k + round) % queries.length]!;
        const runDir = path.join(dir, `run-${round}-${k}`);
        const script = path.join(dir, `run-${round}-${k}.lua`);
        const beacon: Beacon = { host: 'www.skroutz.gr', query };
        writeWrkScript(script, [beacon]);
        const scratchd = await startScratchd({ dir: runDir, cpu: options.serverCpu });
        try {
          await runWrk(options.loadCpu, script, scratchd.port, 10, 1); // warm-up: the JIT, the file opened
          const before = cpuTimes(scratchd.pids());
          const load = await runWrk(options.loadCpu, script, scratchd.port, 10, seconds);
          const after = cpuTimes(scratchd.pids());
          const cpuSeconds = after.user + after.sys - before.user - before.sys;
          const run: HostileRequestRun = {
            name,
            queryBytes: query.length,
            requestBytes: Buffer.byteLength(requestHead(beacon)),
            requests: load.requests,
            requestsPerSecond: load.requestsPerSecond,
            cpuUsPerRequest: (1e6 * cpuSeconds) / load.requests,
            failed: load.non2xx + load.socketErrors,
          };
          runs.push(run);
          log(`bench: hostile request ${name}: ${fmt(run.requestsPerSecond)} req/s, ${fmt(run.cpuUsPerRequest, 1)} µs CPU / request, failed ${run.failed}`);
        } finally {
          await scratchd.stop();
          fs.rmSync(runDir, { recursive: true, force: true });
        }
        await sleep(200);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return runs;
}

export function hostileRequestsTable(runs: readonly HostileRequestRun[]): string {
  const names = [...new Set(runs.map((r) => r.name))];
  const cpu = (name: string) => median(runs.filter((r) => r.name === name).map((r) => r.cpuUsPerRequest));
  const beacon = cpu('realistic beacon');
  const rows: Row[] = names.map((name) => {
    const of = runs.filter((r) => r.name === name);
    const bytes = of[0]!.requestBytes;
    return [name, fmt(of[0]!.queryBytes), fmt(bytes), fmt(median(of.map((r) => r.requestsPerSecond))), fmt(cpu(name), 1), `${fmt(cpu(name) / beacon, 1)}×`, fmt((1000 * cpu(name)) / bytes, 1)];
  });
  return renderTable(
    `Hostile queries, whole requests: scratchd's CPU per request (files on tmpfs, wrk 10 connections, closed loop, medians of ${runs.length / names.length})`,
    ['query', 'query bytes', 'request bytes', 'requests/s', 'CPU µs/request', '× beacon', 'CPU ns/byte'],
    rows,
  );
}
