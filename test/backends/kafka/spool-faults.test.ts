/**
 * The disk spool when its disk misbehaves or a stop cuts in: a read error
 * mid-segment, a close while the head is being sealed. Real Spool, real
 * files; only the failure or the slowness is injected (FileOps).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { Spool, type SpoolEntry } from '../../../src/backends/kafka/spool';
import { realFileOps, type FileOps } from '../../../src/io/file-ops';
import { logger } from '../../../src/log';
import { tempDir } from '../../support/scratchd';

const FLAVORS = new Set(['skroutz']);
const log = logger('spool-test');

function entry(n: number): SpoolEntry {
  return { timeMs: 1_764_000_000_000 + n, flavor: 'skroutz', key: null, maybeDelivered: false, seq: `k1x2-${n}`, record: `{"flavor":"skroutz","time":"t${n}","values":{"n":"${n}"}}` };
}

function eio(): NodeJS.ErrnoException {
  return Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', errno: -5, syscall: 'read' });
}

async function openSpool(dir: string, ops: FileOps) {
  const counts = { persisted: 0 };
  const spool = new Spool(dir, 1 << 30, FLAVORS, { persisted: (n) => (counts.persisted += n), failed: () => undefined, lost: () => undefined }, log, ops);
  await spool.open();
  return { spool, counts };
}

describe('Spool faults', () => {
  test('a read error mid-segment loses nothing: the next take goes on with the first entry not handed out', async () => {
    const dir = tempDir();
    // Reads number 2 and 5 fail: the first in the middle of a take that had read
    // a chunk already, the second in a take after batches were committed.
    let reads = 0;
    const ops: FileOps = {
      ...realFileOps,
      read: async (...args) => {
        reads++;
        if (reads === 2 || reads === 5) throw eio();
        return realFileOps.read(...args);
      },
    };
    const { spool } = await openSpool(dir, ops);
    const total = 40_000; // ~4 MB: several 1 MiB read chunks
    for (let i = 0; i < total; i++) assert.ok(spool.append(entry(i)));
    const seqs: string[] = [];
    let failures = 0;
    while (!spool.isEmpty) {
      let batch;
      try {
        // Larger than a chunk holds, so a take reads on after its first chunk.
        batch = await spool.take(seqs.length === 0 ? 50_000 : 7_000);
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'EIO');
        assert.ok(++failures <= 2, 'only the injected reads fail');
        continue;
      }
      if (batch === null) break;
      // Checked batch by batch: a skip shows at once (and the loop cannot run on past the end).
      assert.equal(batch.entries[0]!.seq, `k1x2-${seqs.length}`, 'each batch starts at the first entry not handed out');
      for (const e of batch.entries) seqs.push(e.seq);
      await spool.commit(batch);
    }
    assert.equal(failures, 2);
    assert.deepEqual(seqs, Array.from({ length: total }, (_, i) => `k1x2-${i}`));
    assert.equal(spool.corrupt, 0, 'nothing counted as torn');
    assert.equal(spool.bytes, 0);
    await spool.close(Date.now() + 1000);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.spool')), [], 'the drained segment is deleted');
  });

  test('a close while a take seals the head waits for the seal: every entry is on disk or reported lost, and the take hands out nothing', async () => {
    const dir = tempDir();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // A slow disk: the seal's writes wait for the gate.
    const slow: FileOps = { ...realFileOps, write: async (...args) => (await gate, realFileOps.write(...args)) };
    const { spool } = await openSpool(dir, slow);
    const total = 500;
    for (let i = 0; i < total; i++) assert.ok(spool.append(entry(i)));
    const taking = spool.take(100); // seals the head: its close waits for the disk
    const closing = spool.close(Date.now() + 30_000);
    setTimeout(release, 300); // the disk answers, long before the deadline
    const lost = await closing;
    assert.equal(lost, 0);
    assert.equal(linesOnDisk(dir), total, 'when close() resolves, the sealed head is on disk');
    assert.equal(await taking, null, 'a take overtaken by close() hands out nothing');
    const again = await openSpool(dir, realFileOps);
    assert.deepEqual((await drainAll(again.spool)).map((e) => e.seq), Array.from({ length: total }, (_, i) => `k1x2-${i}`));
    await again.spool.close(Date.now() + 1000);
  });

  test('a close while a take seals the head on a failing disk reports the entries it could not write, at its own deadline', async () => {
    const dir = tempDir();
    const failing: FileOps = { ...realFileOps, write: async () => Promise.reject(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' })) };
    const { spool } = await openSpool(dir, failing);
    for (let i = 0; i < 50; i++) assert.ok(spool.append(entry(i)));
    const taking = spool.take(100);
    const lost = await spool.close(Date.now() + 300);
    assert.equal(lost, 50, 'the seal\'s unwritten entries are counted, not dropped silently');
    assert.equal(await taking, null);
  });

  test('close(deadline, batch) commits the last batch taken once the head is on disk; without it the batch comes again', async () => {
    const dir = tempDir();
    const a = await openSpool(dir, realFileOps);
    for (let i = 0; i < 300; i++) a.spool.append(entry(i));
    const first = await a.spool.take(100);
    await a.spool.commit(first!);
    const second = await a.spool.take(100);
    assert.equal(second!.entries[0]!.seq, 'k1x2-100');
    await a.spool.close(Date.now() + 1000, second);
    const b = await openSpool(dir, realFileOps);
    const third = await b.spool.take(100);
    assert.equal(third!.entries[0]!.seq, 'k1x2-200', 'the batch given to close() was committed');
    await b.spool.close(Date.now() + 1000); // not given: not committed
    const c = await openSpool(dir, realFileOps);
    assert.deepEqual((await drainAll(c.spool)).map((e) => e.seq), Array.from({ length: 100 }, (_, i) => `k1x2-${200 + i}`));
    assert.equal(c.spool.replayedAfterCrash, 0);
    await c.spool.close(Date.now() + 1000);
  });

  test('a crash during the first batch of a segment (nothing committed from it yet): the batch comes again, counted as possible duplicates', async () => {
    const dir = tempDir();
    const a = await openSpool(dir, realFileOps);
    for (let i = 0; i < 300; i++) a.spool.append(entry(i));
    const handedOut = await a.spool.take(100); // sent to Kafka, then the process dies: no commit, no close
    assert.equal(handedOut!.entries.length, 100);
    const b = await openSpool(dir, realFileOps);
    const again = await drainAll(b.spool);
    assert.equal(again.length, 300);
    assert.ok(b.spool.replayedAfterCrash >= 100, `replayed after the crash: ${b.spool.replayedAfterCrash}`);
    await b.spool.close(Date.now() + 1000);
  });

  test('a rewind whose cursor write fails (a full disk) skips nothing: the next take starts at the first entry not committed', async () => {
    const dir = tempDir();
    const { spool } = await openSpool(dir, realFileOps);
    const total = 40_000; // ~4 MB: the take reads a 1 MiB chunk ahead of what it hands out
    for (let i = 0; i < total; i++) assert.ok(spool.append(entry(i)));
    const batch = await spool.take(100);
    assert.equal(batch!.entries.length, 100);
    // The cursor's temporary file cannot be written (a directory in its place: EISDIR, as ENOSPC would fail it).
    const tmp = path.join(dir, 'segment-000000000001.cursor.tmp');
    fs.mkdirSync(tmp);
    await assert.rejects(spool.rewind(batch!, 50));
    fs.rmdirSync(tmp);
    // The drain tries again later: whether the 50 settled entries count as committed or not, none after them is skipped.
    const again = await drainAll(spool);
    const first = Number(again[0]!.seq.split('-')[1]);
    assert.ok(first === 0 || first === 50, `the next take starts at entry ${first}`);
    assert.deepEqual(again.map((e) => e.seq), Array.from({ length: total - first }, (_, i) => `k1x2-${first + i}`));
    assert.equal(spool.corrupt, 0, 'nothing read from the middle of an entry');
    await spool.close(Date.now() + 1000);
  });

  test('a segment cut by something else while it is read: the take hands out what is left, counts the cut and the torn entry, and the drain goes on with the next segment (no spin)', async () => {
    const dir = tempDir();
    const first = path.join(dir, 'segment-000000000001.spool');
    let reads = 0;
    const ops: FileOps = {
      ...realFileOps,
      read: async (...args) => {
        // A take that spins reads the same place for ever: stop it here rather than hang.
        if (++reads > 1_000) throw new Error('take() spins on the cut segment');
        // The second chunk: something cuts the file in the middle of an entry past 1.5 MiB.
        if (reads === 2) fs.truncateSync(first, 1.5 * 1024 * 1024 + 10);
        return realFileOps.read(...args);
      },
    };
    const { spool } = await openSpool(dir, ops);
    const total = 40_000; // ~4 MB: several 1 MiB read chunks
    for (let i = 0; i < total; i++) assert.ok(spool.append(entry(i)));
    const head = await spool.take(100); // seals segment 1: the next entries go to segment 2
    for (let i = total; i < total + 100; i++) assert.ok(spool.append(entry(i)));
    await spool.commit(head!);
    const rest = await spool.take(50_000);
    assert.equal(rest!.entries[0]!.seq, 'k1x2-100');
    const last = Number(rest!.entries.at(-1)!.seq.split('-')[1]);
    assert.ok(last > 100 && last < total, `handed out up to the cut: ${last}`);
    assert.deepEqual(rest!.entries.map((e) => e.seq), Array.from({ length: last - 99 }, (_, i) => `k1x2-${100 + i}`));
    await spool.commit(rest!);
    assert.deepEqual((await drainAll(spool)).map((e) => e.seq), Array.from({ length: 100 }, (_, i) => `k1x2-${total + i}`), 'segment 2 drains next');
    assert.equal(spool.truncated, 1, 'the cut is counted');
    assert.equal(spool.corrupt, 1, 'the entry torn by the cut is counted');
    assert.equal(spool.bytes, 0);
    assert.equal(await spool.take(100), null);
    await spool.close(Date.now() + 1000);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.spool')), []);
  });

  test('a segment cut below its cursor between two starts: counted, skipped, and spool_bytes comes back to 0', async () => {
    const dir = tempDir();
    const a = await openSpool(dir, realFileOps);
    for (let i = 0; i < 300; i++) a.spool.append(entry(i));
    const batch = await a.spool.take(100);
    await a.spool.commit(batch!);
    await a.spool.close(Date.now() + 1000);
    const b = await openSpool(dir, realFileOps);
    assert.ok(b.spool.bytes > 0);
    fs.truncateSync(path.join(dir, 'segment-000000000001.spool'), 10);
    assert.equal(await b.spool.take(100), null);
    assert.equal(b.spool.bytes, 0, 'what was counted of the cut segment is gone with it');
    assert.ok(b.spool.isEmpty);
    assert.equal(b.spool.truncated, 1);
    await b.spool.close(Date.now() + 1000);
  });
  test('a read that never returns (a hung NFS server) does not hold close() past its deadline', async () => {
    const dir = tempDir();
    let hung = 0;
    const ops: FileOps = { ...realFileOps, read: () => (hung++, new Promise<number>(() => undefined)) };
    const { spool } = await openSpool(dir, ops);
    for (let i = 0; i < 10; i++) assert.ok(spool.append(entry(i)));
    void spool.take(100);
    while (hung === 0) await new Promise((r) => setTimeout(r, 5)); // the take waits on its read, which never returns
    const started = Date.now();
    assert.equal(await spool.close(Date.now() + 300), 0, 'every entry reached the disk: nothing lost');
    // The deadline, or the grace a call under way gets (1 s), whichever is later.
    assert.ok(Date.now() - started < 3000, 'close ends although the read never returns');
  });
  test('entries whose segment cannot be written when it is sealed are given up at the seal timeout and reported lost, not kept silently', async () => {
    const dir = tempDir();
    const ops: FileOps = { ...realFileOps, write: () => Promise.reject(Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' })) };
    let lost = 0;
    const spool = new Spool(dir, 1 << 30, FLAVORS, { persisted: () => undefined, failed: () => undefined, lost: (n) => (lost += n) }, log, ops, undefined, 300);
    await spool.open();
    for (let i = 0; i < 10; i++) assert.ok(spool.append(entry(i)));
    assert.equal(await spool.take(100), null, 'nothing reached the disk: nothing to hand out');
    assert.equal(lost, 10);
    await spool.close(Date.now() + 1000);
  });
});

function linesOnDisk(dir: string): number {
  let lines = 0;
  for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.spool'))) {
    lines += fs.readFileSync(path.join(dir, name), 'utf8').split('\n').length - 1;
  }
  return lines;
}

async function drainAll(spool: Spool): Promise<SpoolEntry[]> {
  const out: SpoolEntry[] = [];
  for (let batch = await spool.take(1000); batch !== null; batch = await spool.take(1000)) {
    out.push(...batch.entries);
    await spool.commit(batch);
  }
  return out;
}
