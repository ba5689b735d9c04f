/**
 * `scratchd diff` over real files: multiset comparison of (flavor, values
 * text) ignoring time and order, byte for byte; malformed lines; exit status;
 * output; large files in unrelated orders; the second pass for texts not
 * kept in memory.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { isScratchError } from '../../src/errors';
import { diffCommand, diffFiles, type DiffResult } from '../../src/tools/diff';
import type { ToolIo } from '../../src/tools/cli';
import { cliPath } from '../support/paths';
import { tempDir } from '../support/scratchd';

function capture(stdin: string | Buffer = '') {
  let out = '';
  let err = '';
  const io: ToolIo = {
    stdin: Readable.from([Buffer.from(stdin)]),
    stdout: new Writable({ write: (c: Buffer, _e, cb) => ((out += c.toString()), cb()) }),
    stderr: new Writable({ write: (c: Buffer, _e, cb) => ((err += c.toString()), cb()) }),
  };
  return { io, out: () => out, err: () => err };
}

const record = (values: string, flavor = 'skroutz', time = '2026-11-29T22:41:03.123+02:00') => `{"flavor":"${flavor}","time":"${time}","values":${values}}`;

function write(name: string, lines: (string | Buffer)[], dir = tempDir('scratchd-diff-')): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.concat(lines.flatMap((l) => [Buffer.from(l), Buffer.from('\n')])));
  return file;
}

async function diffJson(a: string, b: string, extra: string[] = [], stdin?: string): Promise<{ code: number; result: DiffResult; err: string }> {
  const c = capture(stdin);
  const code = await diffCommand([...extra, '--json', a, b], c.io);
  return { code, result: JSON.parse(c.out()) as DiffResult, err: c.err() };
}

const base = ['{"foo":"bar"}', '{"a":["1","2"],"b":{"c":"d"}}', '{"page":"https://www.skroutz.gr/?q=1","n":null}', '{"foo":"bar"}', '{"x":"α"}'].map((v, i) =>
  record(v, 'skroutz', `2026-11-29T22:41:0${i}.000+02:00`),
);

describe('diff', () => {
  test('same lines in another order, with other times: identical, exit 0', async () => {
    const a = write('a.log', base);
    const b = write('b.log', [...base].reverse().map((l) => l.replace(/"time":"[^"]+"/, '"time":"2030-01-01T00:00:00.000+00:00"')));
    const c = capture();
    assert.equal(await diffCommand([a, b], c.io), 0);
    assert.equal(c.out(), `A ${a}: 5 lines\nB ${b}: 5 lines\nmatched 5, only in A 0, only in B 0, malformed 0\nidentical\n`);
  });

  test('a changed value: exit 1, both lines printed with file:line', async () => {
    const a = write('a.log', base);
    const changed = [...base];
    changed[2] = changed[2]!.replace('q=1', 'q=2');
    const b = write('b.log', changed);
    const c = capture();
    assert.equal(await diffCommand([a, b], c.io), 1);
    assert.equal(
      c.out(),
      `only in A  ${a}:3  ${base[2]}\n` +
        `only in B  ${b}:3  ${changed[2]}\n` +
        `A ${a}: 5 lines\nB ${b}: 5 lines\nmatched 4, only in A 1, only in B 1, malformed 0\ndifferent\n`,
    );
  });

  test('bytes decide: the same JSON value written differently is a difference', async () => {
    const a = write('a.log', [record('{"x":"é"}'), record('{"a":"1","b":"2"}')]);
    const b = write('b.log', [record('{"x":"\\u00e9"}'), record('{"b":"2","a":"1"}')]);
    const { code, result } = await diffJson(a, b);
    assert.equal(code, 1);
    assert.equal(result.only_in_a, 2);
    assert.equal(result.only_in_b, 2);
  });

  test('the flavor is part of the key', async () => {
    const { code, result } = await diffJson(write('a.log', [record('{"a":"1"}', 'skroutz')]), write('b.log', [record('{"a":"1"}', 'alve')]));
    assert.equal(code, 1);
    assert.deepEqual([result.only_in_a, result.only_in_b, result.matched], [1, 1, 0]);
  });

  test('multisets: a line twice in A and once in B leaves one copy only in A', async () => {
    const a = write('a.log', [base[0]!, base[1]!, base[0]!, base[0]!]);
    const b = write('b.log', [base[1]!, base[0]!]);
    const { code, result } = await diffJson(a, b);
    assert.equal(code, 1);
    assert.deepEqual([result.matched, result.only_in_a, result.only_in_b], [2, 2, 0]);
    assert.equal(result.diffs.length, 1);
    assert.equal(result.diffs[0]!.copies, 2);
    assert.equal(result.diffs[0]!.kind, 'only_in_a');
    const c = capture();
    await diffCommand([a, b], c.io);
    assert.match(c.out(), /^only in A {2}.*a\.log:\d \(2 copies\) {2}\{"flavor"/m);
  });

  test('malformed lines are counted and listed, and the files are not identical', async () => {
    const a = write('a.log', [...base, '{"flavor":"skroutz","time":"2026-11-29T22:41', '']);
    const b = write('b.log', [...base, 'garbage\x1b[2J']);
    const { code, result } = await diffJson(a, b);
    assert.equal(code, 1);
    assert.equal(result.identical, false);
    assert.deepEqual([result.matched, result.only_in_a, result.only_in_b, result.malformed], [5, 0, 0, 3]);
    assert.deepEqual(result.a, { path: a, lines: 7, malformed: 2 });
    assert.deepEqual(result.b, { path: b, lines: 6, malformed: 1 });
    assert.deepEqual(
      result.diffs.map((d) => [d.kind, d.file, d.line]),
      [['malformed', 'a', 6], ['malformed', 'b', 6], ['malformed', 'a', 7]],
    );
    const c = capture();
    await diffCommand([a, b], c.io);
    assert.match(c.out(), /^malformed {2}.*b\.log:6 {2}garbage\\u001b\[2J$/m, 'escaped');
    assert.ok(!c.out().includes('\x1b'));
  });

  test('CRLF line ends are bytes that differ: malformed', async () => {
    const { code, result } = await diffJson(write('a.log', base), write('b.log', base.map((l) => `${l}\r`)));
    assert.equal(code, 1);
    assert.equal(result.b.malformed, 5);
  });

  test('--max-diffs limits the listing, the summary counts all', async () => {
    const a = write('a.log', Array.from({ length: 30 }, (_, i) => record(`{"i":"${i}"}`)));
    const b = write('b.log', Array.from({ length: 30 }, (_, i) => record(`{"i":"${i}x"}`)));
    const { result } = await diffJson(a, b, ['--max-diffs', '3']);
    assert.equal(result.diffs.length, 3);
    assert.deepEqual(result.diffs.map((d) => [d.file, d.line]), [['a', 1], ['b', 1], ['a', 2]]);
    assert.equal(result.only_in_a + result.only_in_b, 60);
    const c = capture();
    await diffCommand(['--max-diffs', '3', a, b], c.io);
    assert.match(c.out(), /^… and more \(60 differing lines in all\)$/m);
    assert.equal((await diffJson(a, b, ['--max-diffs', '0'])).result.diffs.length, 0);
  });

  test('an empty file against a non-empty one; two empty files', async () => {
    const empty = write('empty.log', []);
    fs.writeFileSync(empty, '');
    const { code, result } = await diffJson(empty, write('b.log', base));
    assert.equal(code, 1);
    assert.equal(result.only_in_b, 5);
    assert.equal((await diffJson(empty, empty)).code, 0);
  });

  test('stdin as one side', async () => {
    const a = write('a.log', base);
    const { code } = await diffJson('-', a, [], `${[...base].reverse().join('\n')}\n`);
    assert.equal(code, 0);
  });

  test('an unreadable file: exit 2 with the reason', async () => {
    const c = capture();
    const missing = path.join(tempDir(), 'nope.log');
    assert.equal(await diffCommand([write('a.log', base), missing], c.io), 2);
    assert.match(c.err(), /^diff: cannot read ".*nope\.log": ENOENT/);
    const d = capture();
    assert.equal(await diffCommand([tempDir(), missing], d.io), 2);
    assert.match(d.err(), /is a directory/);
  });

  test('usage errors throw ScratchError USAGE; --help prints the usage', async () => {
    for (const args of [[], ['a'], ['a', 'b', 'c'], ['-', '-'], ['--max-diffs', 'x', 'a', 'b'], ['--bogus', 'a', 'b']]) {
      await assert.rejects(diffCommand(args, capture().io), (err) => isScratchError(err, 'USAGE'), args.join(' '));
    }
    const c = capture();
    assert.equal(await diffCommand(['--help'], c.io), 0);
    assert.match(c.out(), /^usage: scratchd diff/);
  });

  test('200,000 lines in unrelated orders, with one difference deep inside', async () => {
    const n = 200_000;
    const lines = Array.from({ length: n }, (_, i) => record(`{"i":"${i}","page":"https://www.skroutz.gr/c/${i % 977}"}`, i % 3 === 0 ? 'alve' : 'skroutz'));
    const dir = tempDir('scratchd-diff-');
    const a = write('a.log', lines, dir);
    // B: every 7th line first, then the rest backwards; one value changed.
    const shuffled = [...lines.filter((_, i) => i % 7 === 0), ...lines.filter((_, i) => i % 7 !== 0).reverse()];
    const at = shuffled.indexOf(lines[123_456]!);
    shuffled[at] = shuffled[at]!.replace('"i":"123456"', '"i":"123456 "');
    const b = write('b.log', shuffled, dir);
    const { code, result } = await diffJson(a, b);
    assert.equal(code, 1);
    assert.deepEqual([result.matched, result.only_in_a, result.only_in_b], [n - 1, 1, 1]);
    assert.deepEqual(result.diffs.map((d) => [d.file, d.line, d.text]), [['b', at + 1, shuffled[at]], ['a', 123_457, lines[123_456]]].sort((x, y) => (x[1] as number) - (y[1] as number)));
  });

  test('texts that did not fit in memory are read again from the file (not from stdin)', async () => {
    const a = write('a.log', base);
    const changed = base.map((l) => l.replace('bar', 'baz'));
    const b = write('b.log', changed);
    const files = await diffFiles({ a, b, maxDiffs: 10, json: true, textBudgetChars: 0 });
    assert.deepEqual(
      files.diffs.map((d) => [d.file, d.line, d.text]),
      // Lines 1 and 4 are the same record: one entry of 2 copies per side.
      [['a', 1, base[0]], ['b', 1, changed[0]]],
    );
    const piped = await diffFiles({ a: '-', b, maxDiffs: 10, json: true, textBudgetChars: 0 }, Readable.from([Buffer.from(`${base.join('\n')}\n`)]));
    assert.deepEqual(piped.diffs.map((d) => [d.file, d.text === null]), [['a', true], ['b', false]]);
  });
});

describe('scratchd diff as a child process', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [cliPath, 'diff', ...args], { encoding: 'utf8' });

  test('exit 0 identical, 1 different, 2 unreadable, 64 usage', () => {
    const a = write('a.log', base);
    const same = run(a, write('b.log', [...base].reverse()));
    assert.equal(same.status, 0, same.stderr);
    assert.match(same.stdout, /identical\n$/);
    const different = run(a, write('b.log', base.slice(0, -1)));
    assert.equal(different.status, 1);
    assert.match(different.stdout, /^only in A {2}.*a\.log:5 .*"x":"α"/m);
    const unreadable = run(a, path.join(tempDir(), 'nope.log'));
    assert.equal(unreadable.status, 2);
    assert.match(unreadable.stderr, /^diff: cannot read/);
    const usage = run(a);
    assert.equal(usage.status, 64);
    assert.match(usage.stderr, /^usage: scratchd diff \[options\] A B\nscratchd diff: expected two files/);
  });
});
