/**
 * Micro benchmark of queryToJson (src/query/), the per-request hot path.
 * Prints CPU ns/op (best of 10 rounds) and ops/s per input, then the
 * hostile-input budget: the worst query shapes a request line allows
 * (test/support/query-hostile.ts), in µs per query and as a multiple of the
 * realistic beacon (docs/query.md states the budget, 30×; docs/performance.md). Comparable
 * tables, never pass or fail on absolute times. Run after a build (or as
 * part of `BENCH_ONLY=micro npm run bench`):
 *
 *   node build/bench/query.bench.js [milliseconds per case, default 1000] [hostile]
 *
 * With "hostile", only the hostile table is printed.
 *
 * The "URLSearchParams baseline" row is not Rack-compatible; it is there to
 * put the numbers in proportion with the cheapest thing Node offers.
 */
import { queryToJson } from '../src/query';
import { hostileShapes } from '../test/support/query-hostile';
import { REALISTIC_BEACON_QUERY } from './beacons';

const BEACON = REALISTIC_BEACON_QUERY;

const CASES: ReadonlyArray<[name: string, query: string]> = [
  ['realistic beacon', BEACON],
  ['foo=bar', 'foo=bar'],
  ['beacon, non-ASCII title', BEACON.replace('Winter+Coat', 'Manteau+d%E2%80%99hiver+%C3%A9t%C3%A9')],
  ['beacon, quotes and controls', `${BEACON}&note=%22hi%22%0A%09tab`],
  ['20 nested hash params', Array.from({ length: 20 }, (_, i) => `u[p${i % 5}][q${i}]=${i}`).join('&')],
];

let sink = 0;

/**
 * Best of ROUNDS timed rounds of CPU time (process.cpuUsage, user + system):
 * on a shared machine wall time also measures the neighbours, and the
 * minimum is the round least disturbed, the number comparable between runs.
 */
const ROUNDS = 10;

function cpuNanoseconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) * 1000;
}

function measure(run: () => string, milliseconds: number): { nsPerOp: number; opsPerSecond: number } {
  // Warm up until the JIT has settled on this shape of input (20,000 runs,
  // or a fifth of the time for the slow hostile shapes).
  const warmUntil = cpuNanoseconds() + milliseconds * 2e5;
  for (let i = 0; i < 20_000 && (i % 100 !== 0 || cpuNanoseconds() < warmUntil); i++) sink += run().length;
  const roundNs = (milliseconds * 1e6) / ROUNDS;
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    let ops = 0;
    const start = cpuNanoseconds();
    let elapsed = 0;
    while (elapsed < roundNs) {
      for (let i = 0; i < 10; i++) sink += run().length;
      ops += 10;
      elapsed = cpuNanoseconds() - start;
    }
    best = Math.min(best, elapsed / ops);
  }
  return { nsPerOp: best, opsPerSecond: 1e9 / best };
}

function urlSearchParamsBaseline(query: string): string {
  return JSON.stringify(Object.fromEntries(new URLSearchParams(query)));
}

/** A query's JSON, or '' where it is malformed (a hostile shape may be: the cost is what counts). */
function jsonOrEmpty(query: string): string {
  try {
    return queryToJson(query);
  } catch {
    return '';
  }
}

function printTable(rows: string[][]): void {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  for (const row of rows) {
    console.log(row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  '));
  }
}

function shapeTable(milliseconds: number): void {
  const rows: string[][] = [['case', 'bytes', 'ns/op', 'ops/s']];
  for (const [name, query] of CASES) {
    const { nsPerOp, opsPerSecond } = measure(() => queryToJson(query), milliseconds);
    rows.push([name, String(query.length), nsPerOp.toFixed(0), Math.round(opsPerSecond).toLocaleString('en')]);
  }
  const baseline = measure(() => urlSearchParamsBaseline(BEACON), milliseconds);
  rows.push([
    'URLSearchParams baseline (beacon)',
    String(BEACON.length),
    baseline.nsPerOp.toFixed(0),
    Math.round(baseline.opsPerSecond).toLocaleString('en'),
  ]);
  printTable(rows);
}

/** The hostile-input budget: each shape's µs per query and its multiple of the realistic beacon, worst first. */
function hostileTable(milliseconds: number): void {
  const beacon = measure(() => queryToJson(BEACON), milliseconds).nsPerOp;
  const measured = hostileShapes().map(({ name, query }) => {
    const answer = jsonOrEmpty(query) === '' ? 'malformed' : 'ok';
    return { name, bytes: query.length, answer, nsPerOp: measure(() => jsonOrEmpty(query), milliseconds / 2).nsPerOp };
  });
  measured.sort((a, b) => b.nsPerOp - a.nsPerOp);
  const rows: string[][] = [['hostile shape', 'bytes', 'answer', 'µs/query', '× beacon']];
  rows.push(['realistic beacon', String(BEACON.length), 'ok', (beacon / 1000).toFixed(1), '1.0']);
  for (const m of measured) rows.push([m.name, String(m.bytes), m.answer, (m.nsPerOp / 1000).toFixed(1), (m.nsPerOp / beacon).toFixed(1)]);
  console.log('');
  console.log(`hostile-input budget: worst ${((measured[0]?.nsPerOp ?? 0) / beacon).toFixed(1)}× the realistic beacon (budget 30×)`);
  printTable(rows);
}

function main(): void {
  const milliseconds = Number(process.argv[2] ?? 1000);
  if (process.argv[3] !== 'hostile') shapeTable(milliseconds);
  hostileTable(milliseconds);
  if (sink === 0) console.log('(sink)');
}

main();
