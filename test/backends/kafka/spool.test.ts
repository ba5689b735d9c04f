/** The disk spool against real files: order, commit, torn entries, limits, restarts. */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { formatEntry, parseEntry, Spool, type SpoolEntry } from '../../../src/backends/kafka/spool';
import { Budget } from '../../../src/io/bounded-queue';
import { realFileOps, type FileOps } from '../../../src/io/file-ops';
import { logger } from '../../../src/log';
import { tempDir } from '../../support/scratchd';

const FLAVORS = new Set(['skroutz', 'alve']);
const log = logger('spool-test');

function entry(n: number, flavor = 'skroutz', key: string | null = null): SpoolEntry {
  return { timeMs: 1_764_000_000_000 + n, flavor, key, maybeDelivered: n % 7 === 0, seq: `k1x2-${n}`, record: `{"flavor":"${flavor}","time":"t${n}","values":{"n":"${n}","tab":"a\\tb"}}` };
}

async function open(dir: string, maxBytes = 1 << 30) {
  const counts = { persisted: 0, failures: 0 };
  const spool = new Spool(dir, maxBytes, FLAVORS, { persisted: (n) => (counts.persisted += n), failed: () => counts.failures++, lost: () => undefined }, log);
  await spool.open();
  return { spool, counts };
}

/** A spool folder holding entries 0..n-1 in one closed segment: the folder and the segment's path. */
async function closedSegment(n: number): Promise<{ dir: string; file: string }> {
  const dir = tempDir();
  const a = await open(dir);
  for (let i = 0; i < n; i++) a.spool.append(entry(i));
  await a.spool.close(Date.now() + 1000);
  const [segment] = fs.readdirSync(dir).filter((f) => f.endsWith('.spool'));
  return { dir, file: path.join(dir, segment!) };
}

async function drainAll(spool: Spool, batchSize = 100): Promise<SpoolEntry[]> {
  const out: SpoolEntry[] = [];
  for (let batch = await spool.take(batchSize); batch !== null; batch = await spool.take(batchSize)) {
    out.push(...batch.entries);
    await spool.commit(batch);
  }
  return out;
}

describe('Spool', () => {
  test('while the spool disk fails, memory is bounded: appends beyond it are refused, the held entries reach the disk later', async () => {
    const dir = tempDir();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const stalled: FileOps = { ...realFileOps, write: async (...args) => (await gate, realFileOps.write(...args)) };
    const memory = new Budget(Infinity, 2000);
    const counts = { persisted: 0 };
    const spool = new Spool(dir, 1 << 30, FLAVORS, { persisted: (n) => (counts.persisted += n), failed: () => undefined, lost: () => undefined }, log, stalled, memory);
    await spool.open();
    const size = Buffer.byteLength(formatEntry(entry(10))) + 1;
    let accepted = 0;
    for (let i = 10; i < 60; i++) if (spool.append(entry(i))) accepted++;
    assert.equal(accepted, Math.floor(2000 / size));
    assert.ok(memory.bytes <= 2000);
    assert.equal(spool.bytes, accepted * size);
    release();
    await memory.whenAtMost(0);
    assert.equal(counts.persisted, accepted);
    assert.deepEqual((await drainAll(spool)).map((e) => e.seq), Array.from({ length: accepted }, (_, i) => `k1x2-${10 + i}`));
    await spool.close(Date.now() + 1000);
    assert.equal(spool.append(entry(99)), false, 'closed: an entry is refused, not taken and never written');
  });

  test('entries come back in order, exactly, across segments; drained segments are deleted', async () => {
    const dir = tempDir();
    const { spool, counts } = await open(dir);
    const written = Array.from({ length: 1000 }, (_, i) => entry(i, i % 2 ? 'alve' : 'skroutz', i % 3 ? null : `key\t${i}"`));
    for (const e of written.slice(0, 600)) assert.ok(spool.append(e));
    const first = await spool.take(250);
    assert.deepEqual(first!.entries, written.slice(0, 250));
    await spool.commit(first!);
    for (const e of written.slice(600)) assert.ok(spool.append(e));
    const rest = await drainAll(spool);
    assert.deepEqual(rest, written.slice(250));
    assert.equal(counts.persisted, 1000);
    assert.ok(spool.isEmpty);
    assert.equal(await spool.take(10), null);
    await spool.close(Date.now() + 1000);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.spool')), []);
  });

  test('a restart resumes at the committed cursor; uncommitted entries come again, counted', async () => {
    const dir = tempDir();
    const a = await open(dir);
    for (let i = 0; i < 300; i++) a.spool.append(entry(i));
    const b1 = await a.spool.take(100);
    await a.spool.commit(b1!);
    const b2 = await a.spool.take(100); // handed out, never committed: the process "crashes"
    assert.equal(b2!.entries[0]!.timeMs, entry(100).timeMs);
    // Simulate a crash: no close(); a new process opens the same folder.
    const b = await open(dir);
    const again = await drainAll(b.spool);
    assert.deepEqual(again.map((e) => e.timeMs), Array.from({ length: 200 }, (_, i) => entry(100 + i).timeMs));
    assert.ok(b.spool.replayedAfterCrash > 0, 'entries read again after an unclean stop are counted');
    await b.spool.close(Date.now() + 1000);
  });

  test('a clean close keeps the cursor and counts no replays', async () => {
    const dir = tempDir();
    const a = await open(dir);
    for (let i = 0; i < 50; i++) a.spool.append(entry(i));
    const batch = await a.spool.take(20);
    await a.spool.commit(batch!);
    await a.spool.close(Date.now() + 1000);
    const b = await open(dir);
    const rest = await drainAll(b.spool);
    assert.equal(rest.length, 30);
    assert.equal(b.spool.replayedAfterCrash, 0);
    await b.spool.close(Date.now() + 1000);
  });

  test('a close() while a commit writes its cursor: both settle, and the next process resumes after the commit', async () => {
    for (let round = 0; round < 20; round++) {
      const dir = tempDir();
      const a = await open(dir);
      for (let i = 0; i < 50; i++) a.spool.append(entry(i));
      const batch = await a.spool.take(20);
      // Not awaited: close() runs while the commit's cursor write is under way.
      await Promise.all([a.spool.commit(batch!), a.spool.close(Date.now() + 1000)]);
      const b = await open(dir);
      assert.deepEqual((await drainAll(b.spool)).map((e) => e.seq), Array.from({ length: 30 }, (_, i) => `k1x2-${20 + i}`), `round ${round}`);
      await b.spool.close(Date.now() + 1000);
    }
  });

  test('a cursor left without its segment (a crash while a drained segment was removed) does not apply to the next segment of that number', async () => {
    const { dir, file } = await closedSegment(10);
    const next = Number(/segment-(\d+)/.exec(file)![1]) + 1;
    fs.writeFileSync(path.join(dir, `segment-${String(next).padStart(12, '0')}.cursor`), '300\n');
    const b = await open(dir);
    assert.equal((await drainAll(b.spool)).length, 10);
    for (let i = 10; i < 20; i++) b.spool.append(entry(i));
    assert.deepEqual((await drainAll(b.spool)).map((e) => e.seq), Array.from({ length: 10 }, (_, i) => `k1x2-${10 + i}`));
    await b.spool.close(Date.now() + 1000);
  });

  test('a torn last entry and garbage are skipped and counted', async () => {
    const { dir, file } = await closedSegment(10);
    // A crash mid-write: zeros where data should be, then half an entry without its newline.
    fs.appendFileSync(file, Buffer.alloc(64));
    fs.appendFileSync(file, '\n' + formatEntry(entry(10)).slice(0, 40));
    const b = await open(dir);
    const entries = await drainAll(b.spool);
    assert.equal(entries.length, 10);
    assert.equal(b.spool.corrupt, 2);
    assert.ok(b.spool.isEmpty);
    await b.spool.close(Date.now() + 1000);
  });

  test('a rewind over a garbled entry reads it again without counting it again', async () => {
    const { dir, file } = await closedSegment(3);
    fs.appendFileSync(file, 'garbage\n' + formatEntry(entry(3)) + '\n');
    const b = await open(dir);
    const first = await b.spool.take(100);
    assert.deepEqual(first!.entries.map((e) => e.seq), ['k1x2-0', 'k1x2-1', 'k1x2-2', 'k1x2-3']);
    assert.equal(b.spool.corrupt, 1);
    // Only the first entry settled (the spool could not take the second back): the rest comes again.
    await b.spool.rewind(first!, 1);
    assert.deepEqual((await drainAll(b.spool)).map((e) => e.seq), ['k1x2-1', 'k1x2-2', 'k1x2-3']);
    assert.equal(b.spool.corrupt, 1, 'the garbled entry is counted once');
    await b.spool.close(Date.now() + 1000);
  });

  test('append refuses beyond maxBytes', async () => {
    const dir = tempDir();
    const size = Buffer.byteLength(formatEntry(entry(1))) + 1;
    const { spool } = await open(dir, size * 3 + 5);
    assert.ok(spool.append(entry(1)));
    assert.ok(spool.append(entry(2)));
    assert.ok(spool.append(entry(3)));
    assert.equal(spool.append(entry(4)), false);
    const drained = await drainAll(spool);
    assert.equal(drained.length, 3);
    assert.ok(spool.append(entry(5)), 'room again after draining');
    await spool.close(Date.now() + 1000);
  });

  test('one process per folder: a live owner is waited for, a dead one taken over', async () => {
    const dir = tempDir();
    const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'lock'), `${holder.pid}\n`);
      const spool = new Spool(dir, 1 << 20, FLAVORS, { persisted: () => undefined, failed: () => undefined, lost: () => undefined }, log);
      const started = Date.now();
      await assert.rejects(spool.open(300), new RegExp(`in use by pid ${holder.pid}`));
      assert.ok(Date.now() - started >= 250, 'it waited');
      const waiting = spool.open(5_000);
      setTimeout(() => holder.kill(), 200);
      await waiting;
      assert.equal(fs.readFileSync(path.join(dir, 'lock'), 'utf8').trim(), String(process.pid));
      await spool.close(Date.now() + 1000);
      assert.ok(!fs.existsSync(path.join(dir, 'lock')), 'released at close');
    } finally {
      holder.kill();
    }
  });

  test('parseEntry rejects entries that do not validate', () => {
    const good = formatEntry(entry(1, 'skroutz', 'k'));
    assert.match(good, /\t-\tk1x2-1\t\d+\t\{/);
    assert.deepEqual(parseEntry(good, FLAVORS), entry(1, 'skroutz', 'k'));
    for (const bad of [
      '',
      good.replace('skroutz\t', 'other\t'),
      good.replace(/^\d+/, 'x1'),
      good.slice(0, -1),
      good.replace('\t"k"\t', '\t"k\t'),
      good.replace('\t"k"\t', '\t42\t'),
      good.replace(/\t-\tk1x2-/, '\tX\tk1x2-'),
      good.replace('\tk1x2-1\t', '\tk1x2_1\t'),
      good.replace(/\t(\d+)\t\{/, (_, n: string) => `\t${Number(n) + 1}\t{`),
      `${good}\textra`,
    ]) {
      assert.equal(parseEntry(bad, FLAVORS), null, JSON.stringify(bad));
    }
  });
});
