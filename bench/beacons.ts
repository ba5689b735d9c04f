/**
 * The load: realistic beacons, the same bytes for every server and tool.
 *
 * Contract: `makeBeacons(n, seed)` is deterministic (a seeded PRNG, no
 * Math.random), so two runs, and both servers in one run, get the same
 * requests. A beacon is ~300 bytes of query with ~12 flat parameters — ids, a
 * %-encoded page URL and referrer, UTM fields, a timestamp — and a nested
 * `items[][id]=..&items[][qty]=..` list of 1–3 items, for one of the three
 * flavors' Host names in turn. The request head carries the headers a browser
 * sends with an <img> beacon, so the head parser does realistic work.
 *
 * Writers: `writeWrkScript` (a Lua script that pre-formats every request at
 * start and hands them out round-robin: wrk's own wrk.format per request
 * would make the load generator the bottleneck) and `writeOhaUrls` (a URL a
 * line for oha, the open-loop generator).
 */
import * as fs from 'node:fs';
import { prng } from '../test/support/prng';

export const HOSTS = ['www.skroutz.gr', 'www.alve.com', 'www.scrooge.co.uk'] as const;
export const BEACON_PATH = '/track';

export interface Beacon {
  readonly host: string;
  readonly query: string;
}

/**
 * One realistic beacon's query, 319 bytes: 10 flat parameters (two
 * %-encoded URLs, a title with +), two items[][...]. The unit of the
 * hostile-input budget (bench/query.bench.ts, bench/hostile-requests.ts).
 */
export const REALISTIC_BEACON_QUERY =
  'v=1&tid=SC-48213-1&cid=35009a79-1a05-49d7-b876-2b884d0f825b&t=pageview' +
  '&dl=https%3A%2F%2Fwww.scrooge.co.uk%2Fproducts%2Fwinter-coat%3Fcolour%3Dnavy' +
  '&dr=https%3A%2F%2Fwww.google.com%2F&dt=Winter+Coat+%7C+Scrooge&sr=1920x1080&ul=en-gb' +
  '&ts=1700000000123&items[][id]=SKU-1234&items[][qty]=2&items[][id]=SKU-5678&items[][qty]=1';

const PAGES: Record<string, readonly string[]> = {
  'www.skroutz.gr': ['/c/40/kinhta-thlefwna.html', '/s/30012345/Apple-iPhone-15-128GB.html', '/search?keyphrase=ακουστικά', '/c/25/laptop.html'],
  'www.alve.com': ['/urun/kadin-mont-siyah', '/kategori/ayakkabi?renk=beyaz', '/sepet', '/kampanya/kis-indirimi'],
  'www.scrooge.co.uk': ['/products/winter-coat?colour=navy', '/basket', '/c/kitchen/kettles', '/search?q=fairy lights'],
};
const REFERRERS = ['https://www.google.com/', 'https://www.facebook.com/', 'https://duckduckgo.com/', 'https://t.co/abc123', ''];
const SOURCES = [['google', 'cpc'], ['facebook', 'social'], ['newsletter', 'email'], ['bing', 'organic']] as const;
const CAMPAIGNS = ['black-friday-2026', 'winter_sale', 'brand', 'retargeting q4'];
const EVENTS = ['pageview', 'add_to_cart', 'view_item', 'purchase'];

function hex(rand: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += '0123456789abcdef'[(rand() * 16) | 0];
  return s;
}

export function makeBeacons(n: number, seed = 20261129): Beacon[] {
  const rand = prng(seed);
  const pick = <T>(list: readonly T[]): T => list[(rand() * list.length) | 0]!;
  const beacons: Beacon[] = [];
  for (let i = 0; i < n; i++) {
    const host = HOSTS[i % HOSTS.length]!;
    const [source, medium] = pick(SOURCES);
    const params: [string, string][] = [
      ['v', '2'],
      ['tid', `SC-${10000 + ((rand() * 90000) | 0)}-1`],
      ['cid', `${hex(rand, 8)}-${hex(rand, 4)}-4${hex(rand, 3)}-${hex(rand, 4)}-${hex(rand, 12)}`],
      ['uid', String((rand() * 1e9) | 0)],
      ['t', pick(EVENTS)],
      ['dl', `https://${host}${pick(PAGES[host]!)}`],
      ['dr', pick(REFERRERS)],
      ['utm_source', source],
      ['utm_medium', medium],
      ['utm_campaign', pick(CAMPAIGNS)],
      ['sr', pick(['1920x1080', '390x844', '1366x768', '412x915'])],
      ['ts', String(1_790_000_000_000 + ((rand() * 1e9) | 0))],
    ];
    let query = params.map(([k, v]) => `${k}=${encodeURIComponent(v).replace(/%20/g, '+')}`).join('&');
    const items = 1 + ((rand() * 3) | 0);
    for (let j = 0; j < items; j++) {
      query += `&items[][id]=SKU-${(rand() * 1e6) | 0}&items[][qty]=${1 + ((rand() * 4) | 0)}`;
    }
    beacons.push({ host, query });
  }
  return beacons;
}

/**
 * Headers an <img> beacon request carries (after Host), the same for every
 * request and every tool (oha takes one fixed header set).
 */
export const BEACON_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['User-Agent', 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'],
  ['Accept', 'image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5'],
  ['Accept-Language', 'el-GR,el;q=0.8,en-US;q=0.5,en;q=0.3'],
  ['Referer', 'https://www.skroutz.gr/'],
];

export function requestHead(beacon: Beacon): string {
  const headers = BEACON_HEADERS.map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `GET ${BEACON_PATH}?${beacon.query} HTTP/1.1\r\nHost: ${beacon.host}\r\n${headers}\r\n`;
}

function luaString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r/g, '\\r').replace(/\n/g, '\\n')}"`;
}

/**
 * A wrk script: `request()` returns pre-formatted requests round-robin;
 * `done()` prints one line "WRK_JSON {...}" with the numbers load.ts reads
 * (latencies in µs, as wrk keeps them).
 */
export function writeWrkScript(file: string, beacons: readonly Beacon[]): void {
  const lines = [
    '-- generated by bench/beacons.ts: pre-formatted beacon requests, handed out round-robin',
    'local reqs = {',
    ...beacons.map((b) => `  ${luaString(requestHead(b))},`),
    '}',
    'local n = #reqs',
    'local i = 0',
    'function init(args) i = math.random(n) - 1 end',
    'function request()',
    '  i = i + 1',
    '  if i > n then i = 1 end',
    '  return reqs[i]',
    'end',
    'function done(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format(\'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' +
      '"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f}\\n\',',
    '    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,',
    '    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))',
    'end',
    '',
  ];
  fs.writeFileSync(file, lines.join('\n'));
}

/**
 * oha's input: one URL a line, with the flavor's host name and no port (so
 * the Host header is what a browser sends); `--connect-to host:80:127.0.0.1:port`
 * sends them to the server. oha picks a URL at random for each request.
 */
export function writeOhaUrls(file: string, beacons: readonly Beacon[]): void {
  fs.writeFileSync(file, beacons.map((b) => `http://${b.host}${BEACON_PATH}?${b.query}\n`).join(''));
}
