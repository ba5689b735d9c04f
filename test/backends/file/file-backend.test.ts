/** FileBackend: per-flavor, per-day files, the bounded queue, idle closing. */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { FileBackend } from '../../../src/backends/file/file-backend';
import { realFileOps, type FileOps } from '../../../src/io/file-ops';
import type { FileConfig } from '../../../src/backends/file/types';
import { FlavorTable, type Flavor } from '../../../src/flavor';
import { makeLine, type Line } from '../../../src/line';
import { FLAVORS, readLines, tempDir } from '../../support/scratchd';

function config(dir: string, overrides: Partial<FileConfig> = {}): FileConfig {
  return {
    path: path.join(dir, '{flavor}', '{date}.log'),
    queue: 100_000,
    queueMaxBytes: 64 * 1024 * 1024,
    whenFull: 'block',
    maxBatchBytes: 1024 * 1024,
    writeIntervalMs: 0,
    fsyncIntervalMs: 0,
    closeIdleAfterMs: 10_000,
    retryMaxDelayMs: 50,
    fileMode: 0o640,
    ...overrides,
  };
}

const flavors = new FlavorTable(FLAVORS);
const flavor = (name: string): Flavor => flavors.byName(name)!;

/** A line with a chosen date, as if received on that day. */
function lineOn(f: Flavor, date: string, n: number): Line {
  return { flavor: f, timeMs: Date.parse(`${date}T12:00:00Z`), date, record: `{"flavor":"${f.name}","n":${n}}` };
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('FileBackend', () => {
  test('each flavor and each local day gets its own file; the date rolls over per line', async () => {
    const dir = tempDir();
    const backend = new FileBackend(config(dir), flavors.all);
    backend.push(lineOn(flavor('skroutz'), '2026-11-29', 1));
    backend.push(lineOn(flavor('alve'), '2026-11-29', 2));
    backend.push(lineOn(flavor('skroutz'), '2026-11-30', 3));
    backend.push(lineOn(flavor('skroutz'), '2026-11-29', 4)); // a late line of yesterday
    backend.push(lineOn(flavor('skroutz'), '2026-11-30', 5));
    await backend.close(Date.now() + 5000);
    assert.deepEqual(readLines(path.join(dir, 'skroutz', '2026-11-29.log')), ['{"flavor":"skroutz","n":1}', '{"flavor":"skroutz","n":4}']);
    assert.deepEqual(readLines(path.join(dir, 'skroutz', '2026-11-30.log')), ['{"flavor":"skroutz","n":3}', '{"flavor":"skroutz","n":5}']);
    assert.deepEqual(readLines(path.join(dir, 'alve', '2026-11-29.log')), ['{"flavor":"alve","n":2}']);
    assert.equal(backend.counters.written, 5);
    assert.equal(backend.counters.queued, 0);
  });

  test('lines made by makeLine land in the file of their flavor-local date', async () => {
    const dir = tempDir();
    const backend = new FileBackend(config(dir), flavors.all);
    // 22:30 UTC on 2026-11-29 is already 2026-11-30 in Athens (UTC+2) but not in London.
    const ms = Date.parse('2026-11-29T22:30:00.000Z');
    backend.push(makeLine(flavor('skroutz'), ms, '{}'));
    backend.push(makeLine(flavor('scrooge'), ms, '{}'));
    await backend.close(Date.now() + 5000);
    assert.deepEqual(readLines(path.join(dir, 'skroutz', '2026-11-30.log')), ['{"flavor":"skroutz","time":"2026-11-30T00:30:00.000+02:00","values":{}}']);
    assert.deepEqual(readLines(path.join(dir, 'scrooge', '2026-11-29.log')), ['{"flavor":"scrooge","time":"2026-11-29T22:30:00.000+00:00","values":{}}']);
  });

  test('beyond `queue` lines in memory, new lines are dropped and counted', async () => {
    const dir = tempDir();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const stalled: FileOps = { ...realFileOps, write: async (...args) => (await gate, realFileOps.write(...args)) };
    const backend = new FileBackend(config(dir, { queue: 10 }), flavors.all, stalled);
    for (let i = 0; i < 15; i++) backend.push(lineOn(flavor('skroutz'), '2026-11-29', i));
    assert.equal(backend.counters.queued, 10);
    assert.equal(backend.counters.dropped.queue_full, 5);
    release();
    await until(() => backend.counters.written === 10);
    assert.equal(backend.counters.queued, 0);
    backend.push(lineOn(flavor('skroutz'), '2026-11-29', 99));
    await backend.close(Date.now() + 5000);
    assert.equal(readLines(path.join(dir, 'skroutz', '2026-11-29.log')).length, 11);
    assert.equal(backend.counters.droppedTotal, 5);
  });

  test('lines pushed once close() began are dropped as shutdown, not queue_full', async () => {
    const dir = tempDir();
    const backend = new FileBackend(config(dir), flavors.all);
    await backend.start();
    backend.push(lineOn(flavor('skroutz'), '2026-11-29', 1));
    const closing = backend.close(Date.now() + 5000);
    backend.push(lineOn(flavor('skroutz'), '2026-11-29', 2));
    await closing;
    assert.deepEqual({ ...backend.counters.dropped }, { queue_full: 0, shutdown: 1 });
    assert.equal(backend.counters.written, 1);
    assert.deepEqual(readLines(path.join(dir, 'skroutz', '2026-11-29.log')), ['{"flavor":"skroutz","n":1}']);
  });

  test('beyond `queueMaxBytes` bytes in memory, new lines are dropped and counted; queued_bytes shows what is held', async () => {
    const dir = tempDir();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const stalled: FileOps = { ...realFileOps, write: async (...args) => (await gate, realFileOps.write(...args)) };
    const backend = new FileBackend(config(dir, { queueMaxBytes: 100_000 }), flavors.all, stalled);
    // ~10 KB lines of 3-byte characters: the bound is on bytes, not characters.
    const fat = (n: number): Line => ({ ...lineOn(flavor('alve'), '2026-11-29', n), record: JSON.stringify({ flavor: 'alve', n, pad: '€'.repeat(3300) }) });
    const size = Buffer.byteLength(fat(0).record) + 1;
    for (let i = 0; i < 20; i++) backend.push(fat(i));
    const held = Math.floor(100_000 / size);
    assert.equal(backend.counters.queued, held);
    assert.equal(backend.counters.dropped.queue_full, 20 - held);
    assert.equal(backend.details().queued_bytes, held * size);
    const below = backend.held.whenAtMost(0);
    release();
    await below;
    assert.equal(backend.counters.written, held);
    assert.equal(backend.details().queued_bytes, 0);
    await backend.close(Date.now() + 5000);
    assert.equal(readLines(path.join(dir, 'alve', '2026-11-29.log')).length, held);
  });

  test("yesterday's file is closed once idle, today's stays open", async () => {
    const dir = tempDir();
    const backend = new FileBackend(config(dir, { closeIdleAfterMs: 1 }), flavors.all);
    backend.push(lineOn(flavor('skroutz'), '2026-11-29', 1));
    backend.push(lineOn(flavor('skroutz'), '2026-11-30', 2));
    await until(() => backend.counters.written === 2);
    assert.equal(backend.details().open_files, 2);
    await until(() => backend.details().open_files === 1, 4000);
    backend.push(lineOn(flavor('skroutz'), '2026-11-30', 3));
    await backend.close(Date.now() + 5000);
    assert.equal(readLines(path.join(dir, 'skroutz', '2026-11-30.log')).length, 2);
  });

  test('write errors are counted, retried, and do not lose lines', async () => {
    const dir = tempDir();
    let failures = 3;
    const flaky: FileOps = {
      ...realFileOps,
      write: async (...args) => {
        if (failures-- > 0) throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
        return realFileOps.write(...args);
      },
    };
    const backend = new FileBackend(config(dir), flavors.all, flaky);
    for (let i = 0; i < 20; i++) backend.push(lineOn(flavor('alve'), '2026-11-29', i));
    await until(() => backend.counters.written === 20);
    await backend.close(Date.now() + 5000);
    assert.equal(backend.counters.errors, 3);
    assert.equal(readLines(path.join(dir, 'alve', '2026-11-29.log')).length, 20);
  });

  test('pathFor uses only config values: the flavor name and the date', () => {
    const backend = new FileBackend(config('/var/log/x'), flavors.all);
    assert.equal(backend.pathFor(flavor('scrooge'), '2026-01-02'), '/var/log/x/scrooge/2026-01-02.log');
    void backend.close(Date.now());
    assert.ok(!fs.existsSync('/var/log/x/scrooge'));
  });
});
