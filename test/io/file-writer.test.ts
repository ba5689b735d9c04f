/**
 * FileWriter against real temp files. Failures that cannot be provoked for
 * real (EAGAIN, EBADF, short writes) are injected by wrapping the real
 * FileOps; everything else (missing folders, moved files) is done for real.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { Budget } from '../../src/io/bounded-queue';
import { realFileOps, type FileOps } from '../../src/io/file-ops';
import { FileWriter, type WriterEvents } from '../../src/io/file-writer';
import { logger } from '../../src/log';
import { tempDir } from '../support/scratchd';

const OPTIONS = { mode: 0o640, maxBatchBytes: 1024 * 1024, retryMaxDelayMs: 40, writeIntervalMs: 0 };

interface Recorder extends WriterEvents {
  lines: number;
  bytes: number;
  failures: string[];
}

function recorder(): Recorder {
  const r: Recorder = {
    lines: 0,
    bytes: 0,
    failures: [],
    written: (lines, bytes) => {
      r.lines += lines;
      r.bytes += bytes;
    },
    failed: (operation, err) => r.failures.push(`${operation}:${err.code ?? '?'}`),
  };
  return r;
}

/** Real ops with hooks: `before(op)` may throw an errno error to fail that call. */
function instrumented(hooks: { write?: (call: number, length: number, fd: number) => number | Error | undefined; open?: (call: number) => Error | undefined } = {}) {
  const calls = { open: 0, write: 0, fsync: 0, close: 0, writes: [] as Buffer[] };
  const ops: FileOps = {
    ...realFileOps,
    async openAppend(file, mode) {
      calls.open++;
      const failure = hooks.open?.(calls.open);
      if (failure) throw failure;
      return realFileOps.openAppend(file, mode);
    },
    async write(fd, buffer, offset, length) {
      calls.write++;
      const verdict = hooks.write?.(calls.write, length, fd);
      if (verdict instanceof Error) throw verdict;
      const n = verdict === undefined ? length : Math.min(length, verdict);
      calls.writes.push(Buffer.from(buffer.subarray(offset, offset + n)));
      return realFileOps.write(fd, buffer, offset, n);
    },
    async fsync(fd) {
      calls.fsync++;
      return realFileOps.fsync(fd);
    },
    async close(fd) {
      calls.close++;
      return realFileOps.close(fd);
    },
  };
  return { ops, calls };
}

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected`), { code });
}

const log = logger('file-test');
const records = (n: number, tag = 'r') => Array.from({ length: n }, (_, i) => `{"${tag}":${i},"pad":"${'x'.repeat(i % 50)}"}`);

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('FileWriter', () => {
  test('appends whole lines in order, creating missing folders', async () => {
    const file = path.join(tempDir(), 'a', 'b', 'day.log');
    const events = recorder();
    const writer = new FileWriter(file, OPTIONS, realFileOps, events, log);
    const lines = records(1000);
    for (const line of lines.slice(0, 500)) writer.append(line);
    await until(() => events.lines === 500);
    for (const line of lines.slice(500)) writer.append(line);
    assert.equal(await writer.close(Date.now() + 5000), 0);
    assert.equal(fs.readFileSync(file, 'utf8'), lines.join('\n') + '\n');
    assert.equal(events.lines, 1000);
    assert.equal(events.bytes, fs.statSync(file).size);
    assert.equal((fs.statSync(file).mode & 0o777).toString(8), (0o640 & ~process.umask()).toString(8));
  });

  test('short writes are continued: no line is split or lost', async () => {
    const file = path.join(tempDir(), 'short.log');
    const { ops, calls } = instrumented({ write: () => 7 });
    const events = recorder();
    const writer = new FileWriter(file, OPTIONS, ops, events, log);
    const lines = records(200);
    for (const line of lines) writer.append(line);
    assert.equal(await writer.close(Date.now() + 10_000), 0);
    assert.equal(fs.readFileSync(file, 'utf8'), lines.join('\n') + '\n');
    assert.ok(calls.write > 100);
    assert.equal(events.lines, 200);
  });

  test('EAGAIN and ENOSPC are retried on the same fd; errors counted', async () => {
    const file = path.join(tempDir(), 'retry.log');
    const failing = new Map([[1, 'EAGAIN'], [2, 'EAGAIN'], [4, 'ENOSPC'], [5, 'ENOSPC']]);
    // Call 3 is short (half), so the ENOSPC on 4 and 5 happens mid-batch.
    const { ops, calls } = instrumented({ write: (call, length) => (failing.has(call) ? errno(failing.get(call)!) : call === 3 ? Math.floor(length / 2) : undefined) });
    const events = recorder();
    const writer = new FileWriter(file, OPTIONS, ops, events, log);
    const lines = records(50);
    for (const line of lines) writer.append(line);
    await until(() => events.lines === 50);
    assert.equal(await writer.close(Date.now() + 5000), 0);
    assert.equal(fs.readFileSync(file, 'utf8'), lines.join('\n') + '\n');
    assert.deepEqual(events.failures, ['write:EAGAIN', 'write:EAGAIN', 'write:ENOSPC', 'write:ENOSPC']);
    assert.equal(calls.open, 1, 'no reopen for try-again errors');
  });

  test('EBADF/ESTALE reopen the path before retrying', async () => {
    const file = path.join(tempDir(), 'stale.log');
    const { ops, calls } = instrumented({ write: (call) => (call === 1 ? errno('ESTALE') : undefined) });
    const events = recorder();
    const writer = new FileWriter(file, OPTIONS, ops, events, log);
    writer.append('{"a":1}');
    await until(() => events.lines === 1);
    assert.equal(await writer.close(Date.now() + 5000), 0);
    assert.equal(calls.open, 2);
    assert.equal(fs.readFileSync(file, 'utf8'), '{"a":1}\n');
  });

  test('open failures are retried until the folder can be made', async () => {
    const dir = tempDir();
    const blocker = path.join(dir, 'blocked');
    fs.writeFileSync(blocker, 'a file where a folder should be');
    const file = path.join(blocker, 'x.log');
    const events = recorder();
    const writer = new FileWriter(file, OPTIONS, realFileOps, events, log);
    writer.append('{"a":1}');
    await until(() => events.failures.length >= 2);
    assert.equal(events.lines, 0);
    fs.rmSync(blocker);
    await until(() => events.lines === 1);
    assert.equal(fs.readFileSync(file, 'utf8'), '{"a":1}\n');
    assert.ok(events.failures.every((f) => f.startsWith('open:')));
    await writer.close(Date.now() + 1000);
  });

  test('reopen() (SIGHUP) moves on to a new file at the path after a rename', async () => {
    const file = path.join(tempDir(), 'rotate.log');
    const events = recorder();
    const writer = new FileWriter(file, OPTIONS, realFileOps, events, log);
    writer.append('{"old":1}');
    await until(() => events.lines === 1);
    fs.renameSync(file, `${file}.1`);
    writer.reopen();
    writer.append('{"new":1}');
    await until(() => events.lines === 2);
    await writer.close(Date.now() + 1000);
    assert.equal(fs.readFileSync(`${file}.1`, 'utf8'), '{"old":1}\n');
    assert.equal(fs.readFileSync(file, 'utf8'), '{"new":1}\n');
  });

  test('maintain() notices a deleted file and its folder, and recreates both', async () => {
    const dir = path.join(tempDir(), 'flavor');
    const file = path.join(dir, 'day.log');
    const events = recorder();
    const writer = new FileWriter(file, OPTIONS, realFileOps, events, log);
    writer.append('{"a":1}');
    await until(() => events.lines === 1);
    fs.rmSync(dir, { recursive: true });
    writer.maintain(false);
    await until(() => fs.existsSync(file));
    writer.append('{"a":2}');
    await until(() => events.lines === 2);
    await writer.close(Date.now() + 1000);
    assert.equal(fs.readFileSync(file, 'utf8'), '{"a":2}\n');
  });

  test('maintain(true) fsyncs only what was written since the last fsync', async () => {
    const file = path.join(tempDir(), 'sync.log');
    const { ops, calls } = instrumented();
    const events = recorder();
    const writer = new FileWriter(file, OPTIONS, ops, events, log);
    writer.append('{"a":1}');
    await until(() => events.lines === 1);
    writer.maintain(true);
    await until(() => calls.fsync === 1);
    writer.maintain(true);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(calls.fsync, 1, 'nothing new to sync');
    await writer.close(Date.now() + 1000);
    assert.equal(calls.fsync, 1, 'close fsyncs only when dirty');
  });

  test('batches never exceed maxBatchBytes and end on a line boundary', async () => {
    const file = path.join(tempDir(), 'batch.log');
    const { ops, calls } = instrumented();
    const events = recorder();
    const writer = new FileWriter(file, { ...OPTIONS, maxBatchBytes: 1000 }, ops, events, log);
    const lines = records(300);
    for (const line of lines) writer.append(line);
    await writer.close(Date.now() + 5000);
    assert.equal(fs.readFileSync(file, 'utf8'), lines.join('\n') + '\n');
    assert.ok(calls.writes.length > 5);
    for (const buffer of calls.writes) {
      assert.ok(buffer.length <= 1000, `write of ${buffer.length}`);
      assert.equal(buffer[buffer.length - 1], 10);
    }
  });

  test('writeIntervalMs paces writes: lines arriving one by one share writes', async () => {
    const file = path.join(tempDir(), 'paced.log');
    const { ops, calls } = instrumented();
    const events = recorder();
    const writer = new FileWriter(file, { ...OPTIONS, writeIntervalMs: 100 }, ops, events, log);
    const lines = records(40);
    const started = Date.now();
    for (const line of lines) {
      writer.append(line);
      await new Promise((r) => setTimeout(r, 5));
    }
    await until(() => events.lines === 40);
    // At most one write per interval (plus the first at once and the last), however slow the machine made this loop.
    const intervals = Math.ceil((Date.now() - started) / 100);
    assert.ok(calls.write <= intervals + 2, `${calls.write} writes for 40 lines over ${intervals} intervals of 100 ms`);
    assert.ok(calls.write >= 2);
    assert.equal(await writer.close(Date.now() + 5000), 0);
    assert.equal(fs.readFileSync(file, 'utf8'), lines.join('\n') + '\n');
  });

  test('64 KiB waiting are written at once, without waiting for writeIntervalMs', async () => {
    const file = path.join(tempDir(), 'burst.log');
    const { ops } = instrumented();
    const events = recorder();
    // An interval no test waits for: whatever is written before close() was written for its size.
    const writer = new FileWriter(file, { ...OPTIONS, writeIntervalMs: 3_600_000 }, ops, events, log);
    writer.append('{"first":1}');
    await until(() => events.lines === 1);
    const big = Array.from({ length: 200 }, (_, i) => `{"big":${i},"pad":"${'y'.repeat(400)}"}`);
    for (const line of big) writer.append(line);
    await until(() => events.lines > 1 + 64 * 1024 / 450);
    assert.equal(await writer.close(Date.now() + 5000), 0);
    assert.equal(fs.readFileSync(file, 'utf8'), ['{"first":1}', ...big].join('\n') + '\n');
  });

  test('a backlog larger than maxBatchBytes drains in order, batch by batch', async () => {
    const file = path.join(tempDir(), 'backlog.log');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let first = true;
    const { ops, calls } = instrumented();
    const gated: FileOps = { ...ops, write: async (...args) => (first ? ((first = false), await gate) : undefined, ops.write(...args)) };
    const events = recorder();
    const writer = new FileWriter(file, { ...OPTIONS, maxBatchBytes: 4096 }, gated, events, log);
    writer.append('{"first":1}');
    await new Promise((r) => setTimeout(r, 20));
    const lines = records(5000);
    for (const line of lines) writer.append(line);
    release();
    await until(() => events.lines === 5001);
    await writer.close(Date.now() + 5000);
    assert.equal(fs.readFileSync(file, 'utf8'), ['{"first":1}', ...lines].join('\n') + '\n');
    assert.ok(calls.writes.every((b) => b.length <= 4096));
  });

  test('close() gives up at the deadline and reports the unwritten lines', async () => {
    const file = path.join(tempDir(), 'full.log');
    const { ops } = instrumented({ write: () => errno('ENOSPC') });
    const events = recorder();
    const writer = new FileWriter(file, OPTIONS, ops, events, log);
    for (const line of records(25)) writer.append(line);
    await until(() => events.failures.length > 0);
    const started = Date.now();
    assert.equal(await writer.close(Date.now() + 300), 25);
    assert.ok(Date.now() - started < 1500, 'close respects its deadline');
    assert.equal(events.lines, 0);
  });

  test('close() gives up at the deadline on a write that never returns (a hung NFS server)', async () => {
    const file = path.join(tempDir(), 'hung.log');
    let writes = 0;
    const hung: FileOps = { ...realFileOps, write: () => (writes++, new Promise<number>(() => undefined)) };
    const events = recorder();
    const writer = new FileWriter(file, OPTIONS, hung, events, log);
    for (const line of records(25)) writer.append(line);
    await until(() => writes > 0);
    const started = Date.now();
    assert.equal(await writer.close(Date.now() + 300), 25, 'every line is reported unwritten');
    // The deadline, or the grace a call under way gets (1 s), whichever is later.
    assert.ok(Date.now() - started < 3000, 'close ends although the write never returns');
    assert.equal(events.lines, 0);
  });

  test('close() past its deadline on a healthy but slow disk: every line is written and synced while writes keep returning', async () => {
    const file = path.join(tempDir(), 'slow.log');
    const { ops, calls } = instrumented();
    const slow: FileOps = { ...ops, write: async (...args) => (await new Promise((r) => setTimeout(r, 150)), ops.write(...args)) };
    const events = recorder();
    const writer = new FileWriter(file, { ...OPTIONS, maxBatchBytes: 64 }, slow, events, log);
    const lines = records(20);
    for (const line of lines) writer.append(line);
    assert.equal(await writer.close(Date.now() + 100), 0, 'nothing lost: ~3 s of writes, each returning');
    assert.equal(fs.readFileSync(file, 'utf8'), lines.join('\n') + '\n');
    assert.equal(calls.fsync, 1);
  });

  test('a reopen that returns after close() gave up on it writes nothing and leaves no fd open', async () => {
    const file = path.join(tempDir(), 'late-open.log');
    let releaseOpen!: () => void;
    const opened = new Promise<void>((r) => (releaseOpen = r));
    let opens = 0;
    const fds: number[] = [];
    const { ops } = instrumented({ write: (call) => (call === 1 ? 10 : call === 2 ? errno('EIO') : undefined) });
    const gated: FileOps = {
      ...ops,
      openAppend: async (...args) => {
        if (++opens > 1) await opened; // the reopen after EIO hangs until released
        const fd = await ops.openAppend(...args);
        fds.push(fd);
        return fd;
      },
    };
    const events = recorder();
    const writer = new FileWriter(file, OPTIONS, gated, events, log);
    writer.append('{"line":"one-two-three-four"}');
    writer.append('{"line":"five"}');
    await until(() => opens === 2);
    fs.renameSync(file, `${file}.1`);
    assert.equal(await writer.close(Date.now() + 50), 2);
    releaseOpen();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '', '', 'nothing written after close() gave up');
    for (const fd of fds) assert.throws(() => fs.fstatSync(fd), /EBADF/, `fd ${fd} closed`);
  });

  test('maxBatchBytes counts UTF-8 bytes, not characters', async () => {
    const file = path.join(tempDir(), 'utf8.log');
    const { ops, calls } = instrumented();
    const writer = new FileWriter(file, { ...OPTIONS, maxBatchBytes: 1000 }, ops, recorder(), log);
    // 2-, 3- and 4-byte characters: ~3 bytes per character.
    const lines = Array.from({ length: 100 }, (_, i) => JSON.stringify({ i, text: 'é€😀'.repeat(20 + (i % 7)) }));
    for (const line of lines) writer.append(line);
    assert.equal(await writer.close(Date.now() + 5000), 0);
    assert.equal(fs.readFileSync(file, 'utf8'), lines.join('\n') + '\n');
    assert.ok(calls.writes.length > 10);
    for (const buffer of calls.writes) assert.ok(buffer.length <= 1000, `write of ${buffer.length} bytes`);
  });

  test('written is reported after every write, for exactly the lines whose newline it wrote', async () => {
    const file = path.join(tempDir(), 'exact.log');
    const { ops, calls } = instrumented({ write: (call) => (call % 3 === 0 ? 5 : 13) });
    const checks: string[] = [];
    const events = recorder();
    const counting: WriterEvents = {
      ...events,
      written: (lines, bytes) => {
        events.written(lines, bytes);
        const newlines = Buffer.concat(calls.writes).toString('utf8').split('\n').length - 1;
        if (newlines !== events.lines) checks.push(`after write ${calls.write}: ${events.lines} reported, ${newlines} in the file`);
      },
    };
    const writer = new FileWriter(file, OPTIONS, ops, counting, log);
    for (const line of records(60)) writer.append(line);
    assert.equal(await writer.close(Date.now() + 10_000), 0);
    assert.deepEqual(checks, []);
    assert.equal(events.lines, 60);
    assert.equal(events.bytes, fs.statSync(file).size);
  });

  test('the budget holds a line until its last byte is written; append refuses when it is full', async () => {
    const file = path.join(tempDir(), 'budget.log');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const gated: FileOps = { ...realFileOps, write: async (...args) => (await gate, realFileOps.write(...args)) };
    const budget = new Budget(Infinity, 100);
    const writer = new FileWriter(file, OPTIONS, gated, recorder(), log, budget);
    assert.equal(writer.append('x'.repeat(39)), true); // 40 bytes with its newline
    assert.equal(writer.append('é'.repeat(20)), true); // 41 bytes
    assert.equal(writer.append('y'.repeat(19)), false, '20 bytes more would make 101');
    assert.equal(writer.append('y'.repeat(18)), true); // 19 bytes: 100 in all
    await new Promise((r) => setTimeout(r, 20)); // the batch is taken, its write waits on the gate
    assert.equal(budget.bytes, 100);
    assert.equal(budget.items, 3);
    assert.equal(writer.append('z'), false, 'full while the batch is being written');
    release();
    await budget.whenAtMost(0);
    assert.equal(writer.append('z'), true);
    assert.equal(await writer.close(Date.now() + 5000), 0);
    assert.equal(budget.bytes, 0);
    assert.equal(budget.items, 0);
  });

  test('ENOSPC on a file deleted underneath: noticed (st_nlink 0), reopened, no line torn or lost', async () => {
    const file = path.join(tempDir(), 'deleted.log');
    let full = true;
    // Half of the first write goes through (ending inside a line), then the disk is full.
    const { ops, calls } = instrumented({ write: (call, length) => (call === 1 ? Math.floor(length / 2) : full ? errno('ENOSPC') : undefined) });
    const events = recorder();
    const writer = new FileWriter(file, OPTIONS, ops, events, log);
    const lines = records(40);
    for (const line of lines) writer.append(line);
    await until(() => events.failures.length >= 2);
    const before = events.lines;
    assert.ok(before > 0 && before < 40);
    fs.rmSync(file); // the operator frees space; scratchd must let go of the inode
    await until(() => calls.open === 2);
    full = false;
    await until(() => events.lines === 40);
    assert.equal(await writer.close(Date.now() + 5000), 0);
    // The new file starts with the line that was cut in two, written whole.
    assert.equal(fs.readFileSync(file, 'utf8'), lines.slice(before).join('\n') + '\n');
  });

  test('reopen() (SIGHUP) acts at once while writes keep failing, even in a long backoff', async () => {
    const file = path.join(tempDir(), 'hup.log');
    let firstFd = -1;
    const { ops, calls } = instrumented({
      // The first fd fails (the same file reopened works): one reopen, so its number is not reused meanwhile.
      write: (call, length, fd) => {
        if (call === 1) {
          firstFd = fd;
          return Math.floor(length / 2);
        }
        return fd === firstFd ? errno('ENOSPC') : undefined;
      },
    });
    const events = recorder();
    const writer = new FileWriter(file, { ...OPTIONS, retryMaxDelayMs: 60_000 }, ops, events, log);
    const lines = records(30);
    for (const line of lines) writer.append(line);
    await until(() => events.failures.length >= 4); // the backoff has grown to 400 ms and more
    const started = Date.now();
    writer.reopen();
    await until(() => events.lines === 30);
    assert.ok(Date.now() - started < 1000, `written ${Date.now() - started} ms after SIGHUP`);
    assert.equal(calls.open, 2);
    assert.equal(await writer.close(Date.now() + 5000), 0);
    // Same file (same inode) after the reopen: the half line is continued, not repeated.
    assert.equal(fs.readFileSync(file, 'utf8'), lines.join('\n') + '\n');
  });

  test('ENOSPC mid-line, the file rotated and SIGHUP: both files hold only whole lines', async () => {
    const file = path.join(tempDir(), 'rotated.log');
    let firstIno = -1;
    const { ops } = instrumented({
      // By inode, not fd number: a closed fd's number is reused by the next open.
      write: (call, length, fd) => {
        if (call === 1) {
          firstIno = fs.fstatSync(fd).ino;
          return Math.floor(length / 2);
        }
        return fs.fstatSync(fd).ino === firstIno ? errno('ENOSPC') : undefined;
      },
    });
    const events = recorder();
    const writer = new FileWriter(file, OPTIONS, ops, events, log);
    const lines = records(30);
    for (const line of lines) writer.append(line);
    await until(() => events.failures.length >= 2);
    fs.renameSync(file, `${file}.1`); // logrotate
    writer.reopen();
    await until(() => events.lines === 30);
    assert.equal(await writer.close(Date.now() + 5000), 0);
    const old = fs.readFileSync(`${file}.1`, 'utf8');
    const now = fs.readFileSync(file, 'utf8');
    assert.ok(old.endsWith('\n'), 'no torn line left at the end of the rotated file');
    assert.equal(old + now, lines.join('\n') + '\n');
  });

  test('EIO after a partial write: the path is reopened and the line continued in the same file', async () => {
    const file = path.join(tempDir(), 'eio.log');
    const { ops, calls } = instrumented({ write: (call, length) => (call === 1 ? Math.floor(length / 3) : call === 2 ? errno('EIO') : undefined) });
    const events = recorder();
    const writer = new FileWriter(file, OPTIONS, ops, events, log);
    const lines = records(20);
    for (const line of lines) writer.append(line);
    assert.equal(await writer.close(Date.now() + 5000), 0);
    assert.equal(calls.open, 2);
    assert.deepEqual(events.failures, ['write:EIO']);
    assert.equal(fs.readFileSync(file, 'utf8'), lines.join('\n') + '\n');
  });

  test('EIO after a partial write with another file at the path: the cut line is written whole to it', async () => {
    const file = path.join(tempDir(), 'eio-moved.log');
    let moved = false;
    const { ops } = instrumented({
      write: (call, length) => {
        if (call === 1) return Math.floor(length / 3);
        if (call === 2) {
          fs.renameSync(file, `${file}.1`);
          moved = true;
          return errno('EIO');
        }
        return undefined;
      },
    });
    const events = recorder();
    const writer = new FileWriter(file, OPTIONS, ops, events, log);
    const lines = records(20);
    for (const line of lines) writer.append(line);
    assert.equal(await writer.close(Date.now() + 5000), 0);
    assert.ok(moved);
    const old = fs.readFileSync(`${file}.1`, 'utf8');
    const whole = old.slice(0, old.lastIndexOf('\n') + 1);
    const complete = whole === '' ? [] : whole.slice(0, -1).split('\n');
    assert.deepEqual(complete, lines.slice(0, complete.length));
    assert.equal(fs.readFileSync(file, 'utf8'), lines.slice(complete.length).join('\n') + '\n');
    for (const line of fs.readFileSync(file, 'utf8').trimEnd().split('\n')) JSON.parse(line);
  });
});

/**
 * A real full disk: a 2 MiB tmpfs mounted by the test (root only, as in CI).
 * The operator deletes the day's file to make room, with or without SIGHUP:
 * the writer must let go of the deleted inode (so the kernel frees its space)
 * and go on in a new file, with no line torn.
 */
describe('FileWriter on a real full filesystem', { skip: process.getuid?.() === 0 ? false : 'mounting a tmpfs needs root' }, () => {
  for (const sighup of [true, false]) {
    test(`ENOSPC, the file deleted${sighup ? ' and SIGHUP' : ' (noticed by st_nlink == 0)'}: space is freed, writing resumes, no line torn`, async () => {
      const dir = tempDir();
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir]);
      try {
        const file = path.join(dir, 'day.log');
        const events = recorder();
        const writer = new FileWriter(file, { ...OPTIONS, retryMaxDelayMs: 100 }, realFileOps, events, log);
        // 300 lines of ~10 KB: 3 MB, more than the filesystem holds.
        const lines = Array.from({ length: 300 }, (_, i) => JSON.stringify({ i, pad: 'x'.repeat(10_000) }));
        for (const line of lines) writer.append(line);
        await until(() => events.failures.filter((f) => f === 'write:ENOSPC').length >= 2);
        const freeBefore = fs.statfsSync(dir).bavail;
        const before = events.lines;
        assert.ok(before > 100 && before < 300, `${before} lines fit`);
        fs.rmSync(file);
        if (sighup) writer.reopen();
        await until(() => events.lines === 300, 10_000);
        assert.equal(await writer.close(Date.now() + 5000), 0);
        assert.ok(fs.statfsSync(dir).bavail > freeBefore, 'the deleted file no longer holds its space');
        const text = fs.readFileSync(file, 'utf8');
        const written = text.trimEnd().split('\n');
        for (const line of written) JSON.parse(line);
        // The new file holds the rest, from the line that was cut by ENOSPC on.
        assert.deepEqual(written, lines.slice(300 - written.length));
        assert.ok(300 - written.length <= before);
      } finally {
        execFileSync('umount', ['-l', dir]);
      }
    });
  }
});
