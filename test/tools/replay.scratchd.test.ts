/**
 * The verification loop the tools exist for, end to end: replay an access
 * log against the real scratchd (its CLI as a child process), then diff the
 * log files it wrote with the lines expected from src/query queryToJson
 * on the same queries.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { queryToJson } from '../../src/query';
import { diffCommand, type DiffResult } from '../../src/tools/diff';
import type { ToolIo } from '../../src/tools/cli';
import { replayCommand, type ReplayReport } from '../../src/tools/replay';
import { startScratchd, tempDir, type Running } from '../support/scratchd';

function capture() {
  let out = '';
  let err = '';
  const io: ToolIo = {
    stdin: Readable.from([]),
    stdout: new Writable({ write: (c: Buffer, _e, cb) => ((out += c.toString()), cb()) }),
    stderr: new Writable({ write: (c: Buffer, _e, cb) => ((err += c.toString()), cb()) }),
  };
  return { io, out: () => out, err: () => err };
}

const latin1 = (b: Buffer) => b.toString('latin1');

/** One request of the sample: where it goes, and what scratchd should write (null: nothing). */
interface Sample {
  line: Buffer;
  flavor: string | null;
  /** The query as bytes (latin1), as scratchd receives it. */
  query: string;
}

function sample(): Sample[] {
  const out: Sample[] = [];
  const add = (line: string | Buffer, flavor: string | null, query: string) =>
    out.push({ line: typeof line === 'string' ? Buffer.from(line, 'latin1') : line, flavor, query });
  const queries = Array.from(
    { length: 600 },
    (_, i) => `p=${i}&items[][id]=${i % 7}&items[][qty]=${i % 3}&page=https%3A%2F%2Fwww.skroutz.gr%2Fc%2F${i % 97}&${i % 5}=x&flag`,
  );
  queries.forEach((q, i) => {
    switch (i % 4) {
      case 0:
        return add(`www.skroutz.gr /track?${q}`, 'skroutz', q);
      case 1:
        return add(`skroutz.gr 10.0.0.${i % 250} - - [29/Nov/2026:22:41:03 +0200] "GET /track?${q} HTTP/1.1" 200 43 "-" "Mozilla/5.0"`, 'skroutz', q);
      case 2:
        return add(`10.0.1.2:33317 [29/Nov/2026:22:41:03.655] http-in scratchd/srv1 0/0/0/1/1 200 43 - - ---- 1/1/1/1/0 0/0 {www.alve.com} "GET /track?${q} HTTP/1.1"`, 'alve', q);
      default:
        return add(`WWW.SKROUTZ.GR:443 /track?${q}`, 'skroutz', q);
    }
  });
  // Odd bytes: raw UTF-8, nginx-escaped UTF-8, an empty query, a repeated key.
  const alpha = latin1(Buffer.from('α'));
  add(Buffer.concat([Buffer.from('www.skroutz.gr /track?q='), Buffer.from('α'), Buffer.from('&x=%CE%B2')]), 'skroutz', `q=${alpha}&x=%CE%B2`);
  add(`www.skroutz.gr 1.2.3.4 - - [29/Nov/2026:22:41:03 +0200] "GET /track?q=\\xCE\\xB1&x[]=1 HTTP/1.1" 200 43 "-" "-"`, 'skroutz', `q=${alpha}&x[]=1`);
  add('www.skroutz.gr /track', 'skroutz', '');
  add('www.skroutz.gr /track?a=1&a=2&b', 'skroutz', 'a=1&a=2&b');
  add('www.skroutz.gr /track?a=1&a=2&b', 'skroutz', 'a=1&a=2&b');
  // Answered but not written: malformed queries (400), unknown host and path (404), HEAD.
  add('www.skroutz.gr /track?a=1&a[]=2', null, '');
  add('www.skroutz.gr /track?a=%zz', null, '');
  add(Buffer.concat([Buffer.from('www.skroutz.gr /track?a='), Buffer.from([0xff])]), null, '');
  add('evil.example /track?a=1', null, '');
  add('www.skroutz.gr /other?a=1', null, '');
  add(`www.skroutz.gr 1.2.3.4 - - [29/Nov/2026:22:41:03 +0200] "HEAD /track?h=1 HTTP/1.1" 200 0 "-" "-"`, null, '');
  // Not replayed.
  add(`www.skroutz.gr 1.2.3.4 - - [29/Nov/2026:22:41:03 +0200] "POST /track?p=1 HTTP/1.1" 405 0 "-" "-"`, null, '');
  add('www.skroutz.gr 1.2.3.4 - - [29/Nov/2026:22:41:03 +0200] "GET /track?cut', null, '');
  return out;
}

/** Every log file scratchd wrote, concatenated byte for byte. */
function logBytes(app: Running): Buffer {
  const root = path.join(app.dir, 'logs');
  if (!fs.existsSync(root)) return Buffer.alloc(0);
  const files = fs.readdirSync(root).flatMap((flavor) => fs.readdirSync(path.join(root, flavor)).map((f) => path.join(root, flavor, f)));
  return Buffer.concat(files.sort().map((f) => fs.readFileSync(f)));
}

const countLines = (b: Buffer) => b.toString('latin1').split('\n').length - 1;

describe('replay into the real scratchd, then diff with queryToJson', () => {
  let app: Running;
  let dir: string;
  let actual: string;
  let expectedLines: string[];
  let report: ReplayReport;

  before(async () => {
    app = await startScratchd();
    dir = tempDir('scratchd-replay-e2e-');
    const samples = sample();
    const access = path.join(dir, 'access.log');
    fs.writeFileSync(access, Buffer.concat(samples.flatMap((s) => [s.line, Buffer.from('\n')])));

    const c = capture();
    const code = await replayCommand(['--target', `http://127.0.0.1:${app.port}`, '--connections', '16', '--json', access], c.io);
    assert.equal(code, 0, c.err());
    report = JSON.parse(c.out()) as ReplayReport;

    // What the legacy stack would have written, in input order, any time.
    expectedLines = samples
      .filter((s) => s.flavor !== null)
      .map((s) => `{"flavor":"${s.flavor}","time":"2026-11-29T22:41:03.000+02:00","values":${queryToJson(s.query)}}`);
    const deadline = Date.now() + 10_000;
    while (countLines(logBytes(app)) < expectedLines.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    actual = path.join(dir, 'actual.log');
    fs.writeFileSync(actual, logBytes(app));
  });
  after(async () => {
    await app.stop();
  });

  const writeExpected = (name: string, lines: string[]) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, lines.map((l) => `${l}\n`).join(''), 'utf8');
    return file;
  };

  test('replay sends every GET/HEAD once and counts the answers by status', async () => {
    assert.equal(report.sent, 611);
    assert.equal(report.failed, 0);
    assert.deepEqual(report.status, { '200': 606, '400': 3, '404': 2 });
    assert.deepEqual(report.skipped, { malformed: 1, method: 1 });
    const stats = await app.stats();
    assert.equal(stats.requests.tracked, expectedLines.length);
    assert.equal(stats.requests.head, 1);
    assert.equal(stats.requests.malformed, 3);
  });

  test('the log files equal the expected lines: exit 0', async () => {
    const c = capture();
    assert.equal(await diffCommand([actual, writeExpected('expected.log', expectedLines)], c.io), 0, c.out());
    assert.match(c.out(), new RegExp(`^matched ${expectedLines.length}, only in A 0, only in B 0, malformed 0\nidentical\n$`, 'm'));
  });

  test('in another order: still identical', async () => {
    const reordered = [...expectedLines].reverse();
    reordered.push(reordered.shift()!);
    const c = capture();
    assert.equal(await diffCommand([writeExpected('reordered.log', reordered), actual], c.io), 0, c.out());
  });

  test('a changed value: exit 1 and the difference printed', async () => {
    const changed = [...expectedLines];
    const at = changed.findIndex((l) => l.includes('"p":"300"'));
    changed[at] = changed[at]!.replace('"p":"300"', '"p":"301"');
    const c = capture();
    const expected = writeExpected('changed.log', changed);
    assert.equal(await diffCommand([actual, expected], c.io), 1);
    assert.match(c.out(), new RegExp(`^only in B {2}${expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${at + 1} {2}.*"p":"301"`, 'm'));
    assert.match(c.out(), /^only in A {2}.*actual\.log:\d+ {2}\{"flavor":"(skroutz|alve)","time":"[^"]+","values":\{"p":"300",/m);
    assert.match(c.out(), /only in A 1, only in B 1, malformed 0\ndifferent\n$/);
  });

  test('a malformed line is counted: exit 1', async () => {
    const c = capture();
    const code = await diffCommand(['--json', actual, writeExpected('malformed.log', [...expectedLines, '{"flavor":"skroutz","time":"2026-11-29T22:4'])], c.io);
    assert.equal(code, 1);
    const result = JSON.parse(c.out()) as DiffResult;
    assert.deepEqual([result.matched, result.only_in_a, result.only_in_b, result.malformed], [expectedLines.length, 0, 0, 1]);
    assert.deepEqual(result.b.malformed, 1);
  });
});
