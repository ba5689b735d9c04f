/**
 * The cost of a POST beacon beside a GET one, without I/O: the same load
 * beacons (bench/beacons.ts) sent as `GET /track?query` and as POSTs whose
 * body holds the query (form, JSON, gzip'd JSON, and a batch of 10 JSON
 * objects), each through what the server does per request: the head parser,
 * the body reader (and zlib), the body → JSON rules, the line, a push to a
 * counting backend. Part of the micro phase (bench/micro.ts); alone:
 *
 *   npm run build && npx node build/bench/post.js [roundMs] [rounds]
 */
import * as zlib from 'node:zlib';
import { FlavorTable } from '../src/flavor';
import { queryToJson } from '../src/query';
import { BodyReader, Coding, decode } from '../src/http/body';
import { HeadParser } from '../src/http/request-head';
import { BodyType, TrackHandler } from '../src/http/track';
import { RequestCounters } from '../src/telemetry';
import { countingBackend } from './counting-backend';
import { makeBeacons, requestHead } from './beacons';
import { summarize, time, type MicroResult } from './micro';
import { FLAVORS } from './servers';
import { fmt, renderTable } from './table';

export function postVsGet(roundMs: number, rounds: number): MicroResult[] {
  const beacons = makeBeacons(1024);
  const mask = beacons.length - 1;
  let sink = 0;
  const counting = countingBackend((length) => (sink += length));
  const table = new FlavorTable(FLAVORS);
  let now = Date.UTC(2026, 10, 29, 20, 0, 0);
  const handler = new TrackHandler(table, [counting], null, new RequestCounters(), () => now);
  const client = { address: () => '127.0.0.1' };
  const parser = new HeadParser(8192, 16384, false);
  const reader = new BodyReader(65_536);

  const getHeads = beacons.map((b) => Buffer.from(requestHead(b), 'latin1'));
  const post = (b: (typeof beacons)[number], body: Buffer, type: string, extra = ''): Buffer =>
    Buffer.concat([
      Buffer.from(`POST /track HTTP/1.1\r\nHost: ${b.host}\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0\r\nContent-Type: ${type}\r\nOrigin: https://${b.host}\r\n${extra}Content-Length: ${body.length}\r\n\r\n`, 'latin1'),
      body,
    ]);
  const jsonOf = (query: string): string => JSON.stringify(JSON.parse(queryToJson(query)));
  const forms = beacons.map((b) => post(b, Buffer.from(b.query, 'latin1'), 'application/x-www-form-urlencoded'));
  const jsons = beacons.map((b) => post(b, Buffer.from(jsonOf(b.query)), 'application/json'));
  const gzipped = beacons.map((b) => post(b, zlib.gzipSync(jsonOf(b.query)), 'application/json', 'Content-Encoding: gzip\r\n'));
  const batches = beacons.map((b, i) => {
    const items = Array.from({ length: 10 }, (_, k) => jsonOf(beacons[(i + k) & mask]!.query));
    return post(b, Buffer.from(`[${items.join(',')}]`), 'application/json');
  });
  const avg = (bufs: Buffer[]) => Math.round(bufs.reduce((a, x) => a + x.length, 0) / bufs.length);

  const get = (i: number): number => {
    if ((i & 15) === 0) now++;
    const h = getHeads[i & mask]!;
    parser.reset();
    parser.execute(h, 0, h.length);
    const q = parser.target.indexOf('?');
    return handler.track(false, parser.target.slice(q + 1), parser.host, client);
  };
  const postOne = (requests: Buffer[], type: BodyType, coding: Coding) => (i: number): number => {
    if ((i & 15) === 0) now++;
    const r = requests[i & mask]!;
    parser.reset();
    const end = parser.execute(r, 0, r.length);
    reader.begin(parser.bodyLength);
    reader.execute(r, end, r.length);
    const body = decode(reader.body, coding, 65_536) as Buffer;
    const flavor = table.byHost(parser.host!)!;
    flavor.origins.allows(parser.origin!);
    return handler.post(flavor, '', type, body, 100, client);
  };
  const results = [
    summarize('GET beacon: head + track (no I/O)', time(get, roundMs, rounds), `~${avg(getHeads)} B request`),
    summarize('POST form body (no I/O)', time(postOne(forms, BodyType.form, Coding.identity), roundMs, rounds), `~${avg(forms)} B request: head, body, CORS check, Rack form rules`),
    summarize('POST JSON body (no I/O)', time(postOne(jsons, BodyType.json, Coding.identity), roundMs, rounds), `~${avg(jsons)} B request: the same values as JSON`),
    summarize('POST JSON body, gzip (no I/O)', time(postOne(gzipped, BodyType.json, Coding.gzip), roundMs, rounds), `~${avg(gzipped)} B request: + gunzip`),
    summarize('POST batch of 10 JSON (no I/O)', time(postOne(batches, BodyType.json, Coding.identity), roundMs, rounds), `~${avg(batches)} B request, 10 lines: per request`),
  ];
  if (sink === 0) console.error('(sink)');
  return results;
}

if (require.main === module) {
  const [roundMs, rounds] = process.argv.slice(2).map(Number);
  const results = postVsGet(roundMs || 200, rounds || 5);
  console.log(renderTable('POST beside GET (ns/op, median of rounds)', ['piece', 'ns/op', 'min', 'max', 'what'], results.map((r) => [r.name, fmt(r.nsPerOp), fmt(r.minNs), fmt(r.maxNs), r.note])));
}
