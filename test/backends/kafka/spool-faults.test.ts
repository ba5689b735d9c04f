/**
 * The disk spool when its disk misbehaves or a stop cuts in: a read error
 * mid-segment, a close while the head is being sealed. Real Spool, real
 * files; only the failure or the slowness is injected (FileOps).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
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
  const spool = new Spool(dir, 1 << 30, FLAVORS, { persisted: (n) => (counts.persisted += n), failed: () => undefined }, log, ops);
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
});
