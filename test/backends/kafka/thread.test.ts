/**
 * The Kafka backend on its own thread, seen from the HTTP thread: `held`
 * and the counters follow the worker's reports, close() leaves every line in
 * the spool when Kafka cannot be reached, and a dying worker stops the
 * process loudly (status 70) with its unconfirmed lines counted.
 *
 * No broker: brokers point at a closed port, so every line goes to the spool
 * (test/integration/kafka.test.ts runs the thread against a real broker).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { Flavor } from '../../../src/flavor';
import { makeLine } from '../../../src/line';
import { KafkaThread } from '../../../src/backends/kafka/thread';
import type { KafkaConfig } from '../../../src/backends/kafka/types';
import { repoRoot } from '../../support/paths';

const config = (spool: string): KafkaConfig => ({
  brokers: '127.0.0.1:1',
  topic: 'scratch.{flavor}',
  key: null,
  queue: 20_000,
  queueMaxBytes: 64 * 1024 ** 2,
  downAfterMs: 5_000,
  whenFull: 'block',
  spool: { path: spool, maxBytes: 1024 ** 3, drainRatePerSec: 20_000 },
  thread: true,
  librdkafka: {},
});

const flavors = [new Flavor('one', 0, 'UTC', ['one.example']), new Flavor('two', 1, 'Europe/Athens', ['two.example'])];

test('lines pushed are held in bytes until the worker spools them; close() leaves them all in the spool', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scratchd-kthread-'));
  try {
    const backend = new KafkaThread(config(path.join(dir, 'spool')), flavors, 0);
    await backend.start();
    const lines = Array.from({ length: 500 }, (_, i) => makeLine(flavors[i % 2]!, Date.now(), `{"i":${i},"city":"Αθήνα"}`));
    let bytes = 0;
    for (const line of lines) {
      backend.push(line);
      bytes += Buffer.byteLength(line.record);
    }
    assert.equal(backend.held.items, 500);
    assert.equal(backend.held.bytes, bytes, 'held counts the records in UTF-8 bytes');
    assert.equal(backend.counters.queued, 500);
    // Kafka is unreachable: the worker spools them, and its reports bring `held` down.
    await backend.held.whenAtMost(0);
    assert.equal(backend.held.items, 0);
    await backend.close(Date.now() + 5_000);
    assert.equal(backend.counters.queued, 0);
    assert.equal(backend.counters.droppedTotal, 0);
    assert.equal(backend.details().spooled, 500);
    assert.ok(backend.details().thread_batches! >= 1);
    const segments = fs.readdirSync(path.join(dir, 'spool')).filter((f) => f.endsWith('.spool'));
    const spooled = segments.map((f) => fs.readFileSync(path.join(dir, 'spool', f), 'utf8')).join('');
    for (const line of lines) assert.ok(spooled.includes(line.record), `spooled: ${line.record}`);
    assert.ok(!fs.existsSync(path.join(dir, 'spool', 'lock')), 'the spool lock is released');
    backend.push(lines[0]!);
    assert.equal(backend.counters.dropped.shutdown, 1, 'a line after close is counted');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a line that might not fit the spool, counting everything still on its way, is refused on the HTTP thread (spool_full), never taken silently', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scratchd-kthread-'));
  try {
    // Room for a handful of lines: 8 KB of spool.
    const small = { ...config(path.join(dir, 'spool')), spool: { path: path.join(dir, 'spool'), maxBytes: 8 * 1024, drainRatePerSec: 20_000 } };
    const backend = new KafkaThread(small, flavors, 0);
    await backend.start();
    const line = (i: number) => makeLine(flavors[0]!, Date.now(), `{"i":${i},"pad":"${'x'.repeat(400)}"}`);
    let taken = 0;
    let refused = 0;
    for (let i = 0; i < 100; i++) {
      if (backend.push(line(i))) taken++;
      else refused++;
    }
    assert.ok(taken > 0 && refused > 0, `taken ${taken}, refused ${refused}`);
    assert.equal(backend.counters.dropped.spool_full, refused);
    assert.equal(backend.refusing(), true, 'refusing until a line as long would fit');
    await backend.held.whenAtMost(0);
    await backend.close(Date.now() + 5_000);
    // Every line taken is in the spool: none was refused by the worker after the HTTP thread said yes.
    assert.equal(backend.details().spooled, taken);
    assert.equal(backend.counters.dropped.spool_full, refused);
    assert.equal(backend.counters.dropped.shutdown, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the spool stays single-writer: another process on the same folder fails to start, naming the owner', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scratchd-kthread-'));
  try {
    const first = new KafkaThread(config(path.join(dir, 'spool')), flavors, 0);
    await first.start();
    const child = path.join(dir, 'second.js');
    fs.writeFileSync(child, `const { KafkaThread } = require(${JSON.stringify(path.join(repoRoot, 'build', 'src', 'backends', 'kafka', 'thread.js'))});
const { Flavor } = require(${JSON.stringify(path.join(repoRoot, 'build', 'src', 'flavor.js'))});
const second = new KafkaThread(${JSON.stringify(config(path.join(dir, 'spool')))}, [new Flavor('one', 0, 'UTC', [])], 0);
second.start().then(
  () => process.stdout.write('started\\n'),
  (err) => process.stdout.write(JSON.stringify({ code: err.code, message: err.message }) + '\\n'),
).then(() => second.close(Date.now() + 1000));
`);
    const r = spawnSync(process.execPath, [child], { encoding: 'utf8', timeout: 20_000 });
    const answer = JSON.parse(r.stdout.trim()) as { code: string; message: string };
    assert.equal(answer.code, 'SPOOL_LOCKED');
    assert.match(answer.message, new RegExp(`in use by pid ${process.pid}`));
    await first.close(Date.now() + 1_000);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a worker that dies: its unconfirmed lines are counted as thread_died, logged, and the process stops with status 70', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scratchd-kthread-'));
  try {
    // The one thing faked: a worker that throws on its first batch (a real
    // worker thread, a real uncaught exception in it).
    const dying = path.join(dir, 'dying-worker.js');
    fs.writeFileSync(dying, `const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => {
  if (m.t === 'start') parentPort.postMessage({ t: 'started' });
  if (m.t === 'lines') throw new Error('boom in the Kafka thread');
});
`);
    const child = path.join(dir, 'child.js');
    const build = path.join(repoRoot, 'build', 'src');
    fs.writeFileSync(child, `const { KafkaThread } = require(${JSON.stringify(path.join(build, 'backends', 'kafka', 'thread.js'))});
const { Flavor } = require(${JSON.stringify(path.join(build, 'flavor.js'))});
const { makeLine } = require(${JSON.stringify(path.join(build, 'line.js'))});
const flavor = new Flavor('one', 0, 'UTC', ['one.example']);
const config = ${JSON.stringify(config(path.join(dir, 'spool')))};
const backend = new KafkaThread(config, [flavor], 0, ${JSON.stringify(dying)});
process.on('SIGTERM', () => {
  // What scratchd's stop does: close every backend, then exit 0.
  backend.push(makeLine(flavor, Date.now(), '{"late":1}'));
  backend.close(Date.now() + 1000).then(() => {
    process.stdout.write(JSON.stringify({ dropped: backend.counters.dropped, queued: backend.counters.queued, held: backend.held.items }) + '\\n');
    process.exit(0);
  });
});
backend.start().then(() => {
  for (let i = 0; i < 10; i++) backend.push(makeLine(flavor, Date.now(), '{"i":' + i + '}'));
  setTimeout(() => {}, 10_000);
});
`);
    const r = spawnSync(process.execPath, [child], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 70, `status ${r.status} ${r.signal}\n${r.stderr}`);
    assert.match(r.stderr, /kafka: error: the Kafka thread died \(.*boom in the Kafka thread[\s\S]*\): 10 lines unconfirmed/);
    const out = JSON.parse(r.stdout.trim()) as { dropped: Record<string, number>; queued: number; held: number };
    assert.equal(out.dropped.thread_died, 11, 'the 10 it held and the one pushed after');
    assert.equal(out.queued, 0);
    assert.equal(out.held, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
