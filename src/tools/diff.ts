/**
 * `scratchd diff A B`: are two scratchd outputs (log files, or restore
 * output) the same records? Compares the lines as multisets of
 * (flavor, values text), ignoring `time` and order: two services fed the
 * same replayed traffic write the same lines at different moments and in a
 * slightly different order.
 *
 * Contract
 * --------
 * - A line must have the exact shape record.ts writes:
 *   `{"flavor":"F","time":"T","values":{...}}`. The values text runs from
 *   after `,"values":` to before the final `}`, and is compared byte for
 *   byte, never parsed and re-serialized (byte-identical JSON is the whole
 *   point). Any other line (also an empty line, a CR before the LF, a line
 *   over MAX_LINE_BYTES) is malformed: counted, listed, and the files are
 *   then not "identical".
 * - Exit status (DiffExit): 0 identical; 1 different (or malformed lines);
 *   2 a file could not be read; 64 usage.
 * - Output: the first --max-diffs (10) differences in line order (only in
 *   A, only in B, malformed, each with file:line), then a summary; --json
 *   gives one JSON object instead.
 *
 * Memory: A and B are read in lockstep, one line of each in turn, keeping
 * a net count per distinct key (+1 for a line of A, -1 for a line of B);
 * an entry is deleted when it returns to zero. Replayed outputs are nearly
 * in the same order, so an entry lives only across the small reordering
 * window and the map stays small however long the files are (1M-line files
 * in near order: ~2 s, ~90 MB RSS); only real differences stay. In the
 * worst case (unrelated orders, or everything different) it holds one entry
 * per distinct unmatched line, so the entry is kept small: the key is a
 * SHA-1 of flavor and values text (20 bytes however long the JSON; not for
 * security, only so that accidental collisions are impossible in practice),
 * plus a count and a line number, about 150 bytes (1M lines reversed: ~4 s,
 * ~320 MB RSS). Keying by the text itself would cost the line's length
 * instead, often a kilobyte for beacons with URLs and item lists. The text
 * of a line is kept only to print it, and only within TEXT_BUDGET_CHARS;
 * the printed differences whose text did not fit are read again from the
 * file in a second pass (not possible for stdin: then only file:line is
 * printed). The map is sharded because a V8 Map holds at most 2^24 entries.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import { splitRecord } from '../record';
import { openInput, processIo, toolCli, type Input, type ToolCli, type ToolIo } from './cli';
import { LineReader } from './request-log';

export const DiffExit = { identical: 0, different: 1, error: 2 } as const;

const USAGE = `usage: scratchd diff [options] A B

Compares two scratchd outputs (log files, or restore output) line by line as
multisets of (flavor, values), ignoring "time" and the order of lines. The
values JSON is compared byte for byte. A or B may be - for stdin.

options:
  --max-diffs N   print at most N differences (default 10)
  --json          print the result as JSON
  -h, --help      this text

exit status: 0 identical; 1 different or malformed lines; 2 a file could not
be read; 64 usage.`;
const cli: ToolCli = toolCli('diff', USAGE);

const DEFAULT_MAX_DIFFS = 10;
/** Longer lines are malformed (a file without newlines must not fill memory). */
const MAX_LINE_BYTES = 16 * 1024 * 1024;
/** Chars of unmatched lines kept in memory to print them without a second pass. */
const TEXT_BUDGET_CHARS = 64 * 1024 * 1024;
const SHARDS = 16;

/** One file of the two. */
const Side = { a: 0, b: 1 } as const;
type Side = (typeof Side)[keyof typeof Side];

export interface DiffOptions {
  a: string;
  b: string;
  maxDiffs: number;
  json: boolean;
  /** Chars of line text kept in memory for printing (default TEXT_BUDGET_CHARS; tests lower it). */
  textBudgetChars?: number;
}

export interface DiffItem {
  kind: 'only_in_a' | 'only_in_b' | 'malformed';
  file: 'a' | 'b';
  line: number;
  /** Unmatched copies of this line's (flavor, values); 1 for malformed. */
  copies: number;
  /** The line as UTF-8 text, or null if it could not be read again (stdin). */
  text: string | null;
}

export interface DiffResult {
  identical: boolean;
  a: { path: string; lines: number; malformed: number };
  b: { path: string; lines: number; malformed: number };
  matched: number;
  only_in_a: number;
  only_in_b: number;
  malformed: number;
  diffs: DiffItem[];
}

interface Entry {
  /** Net count: > 0 more in A, < 0 more in B; never 0 (deleted then). */
  n: number;
  /** Line of the occurrence that created the entry (on the side of n's sign). */
  line: number;
  /** That line's latin1 text, when it fitted in the budget. */
  text: string | undefined;
}

export async function diffCommand(args: string[], io: ToolIo = processIo): Promise<number> {
  const options = parseDiffArgs(args);
  if (options === 'help') {
    io.stdout.write(`${USAGE}\n`);
    return DiffExit.identical;
  }
  let result: DiffResult;
  try {
    result = await diffFiles(options, io.stdin);
  } catch (err) {
    io.stderr.write(`diff: ${(err as Error).message}\n`);
    return DiffExit.error;
  }
  io.stdout.write(options.json ? `${JSON.stringify(result)}\n` : formatDiff(result));
  return result.identical ? DiffExit.identical : DiffExit.different;
}

export function parseDiffArgs(args: string[]): DiffOptions | 'help' {
  const { values, positionals } = cli.parse(args, { 'max-diffs': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (values.help === true) return 'help';
  if (positionals.length !== 2) cli.usage('expected two files, A and B');
  if (positionals[0] === '-' && positionals[1] === '-') cli.usage('only one of A and B can be - (stdin)');
  const max = values['max-diffs'] ?? String(DEFAULT_MAX_DIFFS);
  if (!/^\d+$/.test(max)) cli.usage(`--max-diffs ${JSON.stringify(max)}: expected a number >= 0`);
  return { a: positionals[0]!, b: positionals[1]!, maxDiffs: Number(max), json: values.json === true };
}

// crypto.hash (one call, no Hash object) is Node >= 20.12; package.json allows 20.9.
const sha1: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha1', text, 'binary')
    : (text) => crypto.createHash('sha1').update(text).digest('binary');

export async function diffFiles(options: DiffOptions, stdin: Readable = process.stdin): Promise<DiffResult> {
  const a = await openInput(options.a, stdin);
  let b: Input;
  try {
    b = await openInput(options.b, stdin);
  } catch (err) {
    a.close();
    throw err;
  }
  try {
    const counter = new MultisetDiff(options.maxDiffs, options.textBudgetChars ?? TEXT_BUDGET_CHARS);
    await counter.run(a, b);
    const result = counter.result(a.path, b.path);
    await fillTexts(result.diffs, [a, b]);
    return result;
  } finally {
    a.close();
    b.close();
  }
}

class MultisetDiff {
  readonly lines = [0, 0];
  readonly malformed = [0, 0];
  /** Unmatched lines per side (sum of |n|). */
  private readonly unmatched = [0, 0];
  private readonly shards: Map<string, Entry>[] = Array.from({ length: SHARDS }, () => new Map<string, Entry>());
  private readonly malformedSeen: DiffItem[] = [];
  private keptChars = 0;

  constructor(
    private readonly maxDiffs: number,
    private readonly textBudgetChars: number,
  ) {}

  async run(a: Input, b: Input): Promise<void> {
    const readers = [a, b].map((input) => new LineReader(input.stream, { stripCR: false, maxLineBytes: MAX_LINE_BYTES }));
    const read = (side: Side) =>
      readers[side]!.next().catch((err: unknown) => {
        throw new Error(`cannot read ${JSON.stringify(side === Side.a ? a.path : b.path)}: ${(err as Error).message}`, { cause: err });
      });
    let batchA = await read(Side.a);
    let batchB = await read(Side.b);
    let ia = 0;
    let ib = 0;
    while (batchA !== null || batchB !== null) {
      if (batchA !== null && batchB !== null) {
        // Alternate line by line so both files advance at the same pace.
        const n = Math.min(batchA.lines.length - ia, batchB.lines.length - ib);
        for (let k = 0; k < n; k++, ia++, ib++) {
          this.add(Side.a, batchA.lines[ia]!, batchA.firstLine + ia);
          this.add(Side.b, batchB.lines[ib]!, batchB.firstLine + ib);
        }
      } else if (batchA !== null) {
        for (; ia < batchA.lines.length; ia++) this.add(Side.a, batchA.lines[ia]!, batchA.firstLine + ia);
      } else if (batchB !== null) {
        for (; ib < batchB.lines.length; ib++) this.add(Side.b, batchB.lines[ib]!, batchB.firstLine + ib);
      }
      if (batchA !== null && ia >= batchA.lines.length) {
        batchA = await read(Side.a);
        ia = 0;
      }
      if (batchB !== null && ib >= batchB.lines.length) {
        batchB = await read(Side.b);
        ib = 0;
      }
    }
  }

  private add(side: Side, text: string | null, line: number): void {
    this.lines[side]!++;
    const record = text === null ? null : splitRecord(text);
    if (record === null) {
      this.malformed[side]!++;
      if (this.malformedSeen.length < this.maxDiffs) {
        this.malformedSeen.push({ kind: 'malformed', file: side === Side.a ? 'a' : 'b', line, copies: 1, text: text === null ? `(line longer than ${MAX_LINE_BYTES} bytes)` : utf8(text) });
      }
      return;
    }
    // A flavor name has no newline: "flavor\nvalues" is unambiguous.
    const key = sha1(`${record.flavor}\n${record.values}`);
    const shard = this.shards[key.charCodeAt(key.length - 1) & (SHARDS - 1)]!;
    const entry = shard.get(key);
    const step = side === Side.a ? 1 : -1;
    if (entry === undefined) {
      const keep = this.keptChars + text!.length <= this.textBudgetChars;
      if (keep) this.keptChars += text!.length;
      shard.set(key, { n: step, line, text: keep ? text! : undefined });
      return;
    }
    entry.n += step;
    if (entry.n === 0) {
      if (entry.text !== undefined) this.keptChars -= entry.text.length;
      shard.delete(key);
    }
  }

  result(pathA: string, pathB: string): DiffResult {
    // The first maxDiffs by line number; kept sorted, small.
    const order = (x: DiffItem, y: DiffItem) => x.line - y.line || x.file.localeCompare(y.file);
    const first: DiffItem[] = [...this.malformedSeen].sort(order);
    for (const shard of this.shards) {
      for (const entry of shard.values()) {
        const side = entry.n > 0 ? Side.a : Side.b;
        this.unmatched[side]! += Math.abs(entry.n);
        if (this.maxDiffs === 0 || (first.length >= this.maxDiffs && entry.line >= first[first.length - 1]!.line)) continue;
        first.push({
          kind: side === Side.a ? 'only_in_a' : 'only_in_b',
          file: side === Side.a ? 'a' : 'b',
          line: entry.line,
          copies: Math.abs(entry.n),
          text: entry.text === undefined ? null : utf8(entry.text),
        });
        first.sort(order);
        if (first.length > this.maxDiffs) first.pop();
      }
    }
    const [onlyA, onlyB] = this.unmatched as [number, number];
    const malformed = this.malformed[0]! + this.malformed[1]!;
    return {
      identical: onlyA === 0 && onlyB === 0 && malformed === 0,
      a: { path: pathA, lines: this.lines[0]!, malformed: this.malformed[0]! },
      b: { path: pathB, lines: this.lines[1]!, malformed: this.malformed[1]! },
      matched: this.lines[0]! - this.malformed[0]! - onlyA,
      only_in_a: onlyA,
      only_in_b: onlyB,
      malformed,
      diffs: first,
    };
  }
}

/** Second pass: reads the texts of the differences to print that did not fit in memory (text null). */
async function fillTexts(diffs: DiffItem[], inputs: [Input, Input]): Promise<void> {
  for (const side of [Side.a, Side.b]) {
    const items = diffs.filter((d) => d.text === null && d.file === (side === Side.a ? 'a' : 'b'));
    const input = inputs[side];
    if (items.length === 0 || !input.rereadable) continue;
    const byLine = new Map(items.map((item) => [item.line, item]));
    const last = Math.max(...byLine.keys());
    const stream = fs.createReadStream(input.path, { highWaterMark: 256 * 1024 });
    try {
      const reader = new LineReader(stream, { stripCR: false, maxLineBytes: MAX_LINE_BYTES });
      for (let batch = await reader.next(); batch !== null; batch = await reader.next()) {
        batch.lines.forEach((text, i) => {
          const item = byLine.get(batch.firstLine + i);
          if (item !== undefined && text !== null) item.text = utf8(text);
        });
        if (batch.firstLine + batch.lines.length > last) break;
      }
    } finally {
      stream.destroy();
    }
  }
}

/** The latin1 (byte) string as the UTF-8 text it encodes, for printing. */
function utf8(latin1: string): string {
  return Buffer.from(latin1, 'latin1').toString('utf8');
}

/** Control chars (C0, DEL, C1) and line separators as \u escapes: a printed line stays one harmless line. */
function printable(text: string, max = 1000): string {
  // eslint-disable-next-line no-control-regex
  const safe = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return safe.length > max ? `${safe.slice(0, max)}…` : safe;
}

export function formatDiff(r: DiffResult): string {
  const out: string[] = [];
  const label = { only_in_a: 'only in A', only_in_b: 'only in B', malformed: 'malformed' } as const;
  for (const d of r.diffs) {
    const where = `${d.file === 'a' ? r.a.path : r.b.path}:${d.line}`;
    const copies = d.copies > 1 ? ` (${d.copies} copies)` : '';
    out.push(`${label[d.kind].padEnd(9)}  ${printable(where)}${copies}  ${d.text === null ? '(text not available: not a regular file)' : printable(d.text)}`);
  }
  const total = r.only_in_a + r.only_in_b + r.malformed;
  if (total > r.diffs.length && r.diffs.length > 0) out.push(`… and more (${total} differing lines in all)`);
  out.push(`A ${printable(r.a.path)}: ${r.a.lines} lines${r.a.malformed > 0 ? `, ${r.a.malformed} malformed` : ''}`);
  out.push(`B ${printable(r.b.path)}: ${r.b.lines} lines${r.b.malformed > 0 ? `, ${r.b.malformed} malformed` : ''}`);
  out.push(`matched ${r.matched}, only in A ${r.only_in_a}, only in B ${r.only_in_b}, malformed ${r.malformed}`);
  out.push(r.identical ? 'identical' : 'different');
  return `${out.join('\n')}\n`;
}
