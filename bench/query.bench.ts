/**
 * Micro benchmark of queryToJson (src/query.ts), the per-request hot path.
 * Prints CPU ns/op (best of 10 rounds) and ops/s per input; never passes
 * or fails on absolute times (docs/performance.md). Run after a build:
 *
 *   node build/bench/query.bench.js [milliseconds per case, default 1000]
 *
 * The "URLSearchParams baseline" row is not Rack-compatible; it is there to
 * put the numbers in proportion with the cheapest thing Node offers.
 */
import { queryToJson } from '../src/query';

/** A realistic beacon, 319 bytes: 10 flat parameters (two %-encoded URLs, a title with +), two items[][...]. */
const BEACON =
  'v=1&tid=SC-48213-1&cid=35009a79-1a05-49d7-b876-2b884d0f825b&t=pageview' +
  '&dl=https%3A%2F%2Fwww.scrooge.co.uk%2Fproducts%2Fwinter-coat%3Fcolour%3Dnavy' +
  '&dr=https%3A%2F%2Fwww.google.com%2F&dt=Winter+Coat+%7C+Scrooge&sr=1920x1080&ul=en-gb' +
  '&ts=1700000000123&items[][id]=SKU-1234&items[][qty]=2&items[][id]=SKU-5678&items[][qty]=1';

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
  // Warm up until the JIT has settled on this shape of input.
  for (let i = 0; i < 20_000; i++) sink += run().length;
  const roundNs = (milliseconds * 1e6) / ROUNDS;
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    let ops = 0;
    const start = cpuNanoseconds();
    let elapsed = 0;
    while (elapsed < roundNs) {
      for (let i = 0; i < 1000; i++) sink += run().length;
      ops += 1000;
      elapsed = cpuNanoseconds() - start;
    }
    best = Math.min(best, elapsed / ops);
  }
  return { nsPerOp: best, opsPerSecond: 1e9 / best };
}

function urlSearchParamsBaseline(query: string): string {
  return JSON.stringify(Object.fromEntries(new URLSearchParams(query)));
}

function main(): void {
  const milliseconds = Number(process.argv[2] ?? 1000);
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

  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  for (const row of rows) {
    console.log(row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  '));
  }
  if (sink === 0) console.log('(sink)');
}

main();
