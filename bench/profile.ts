/**
 * CPU profile summary: the functions where scratchd spends its own time.
 *
 * Contract: `summarizeCpuProfile(json, top)` reads a V8 .cpuprofile (what
 * `node --cpu-prof` writes: nodes with a callFrame and a hitCount, plus the
 * sample timeline) and returns the `top` functions by self time. Nodes are
 * the call tree, so one function appears under many parents: their hits are
 * added up by callFrame (function name + script + line + column). Self time
 * is hits × the mean sampling interval ((endTime − startTime) / samples).
 * V8's pseudo-frames — (garbage collector), (program), (idle) — are kept:
 * they are part of the answer. Locations in compiled files are mapped back
 * to the TypeScript source through tsc's .js.map files when they are there.
 *
 * Alone: node build/bench/profile.js FILE.cpuprofile [N]
 */
import * as fs from 'node:fs';
import { SourceMap } from 'node:module';
import * as path from 'node:path';
import { fmt, renderTable } from './table';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame; hitCount?: number }[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

export interface ProfileRow {
  selfMs: number;
  percent: number;
  functionName: string;
  location: string;
}

export function summarizeCpuProfile(profile: CpuProfile, top: number, root = process.cwd()): { rows: ProfileRow[]; totalMs: number } {
  const byFrame = new Map<string, { hits: number; frame: CallFrame }>();
  let totalHits = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    const f = node.callFrame;
    const key = `${f.functionName}\0${f.url}\0${f.lineNumber}\0${f.columnNumber}`;
    const entry = byFrame.get(key);
    if (entry === undefined) byFrame.set(key, { hits, frame: f });
    else entry.hits += hits;
    totalHits += hits;
  }
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  const msPerHit = totalHits === 0 ? 0 : totalMs / totalHits;
  const rows = [...byFrame.values()]
    .sort((a, b) => b.hits - a.hits)
    .slice(0, top)
    .map(({ hits, frame }) => ({
      selfMs: hits * msPerHit,
      percent: totalHits === 0 ? 0 : (100 * hits) / totalHits,
      functionName: frame.functionName === '' ? '(anonymous)' : frame.functionName,
      location: location(frame, root),
    }));
  return { rows, totalMs };
}

const sourceMaps = new Map<string, SourceMap | null>();

function sourceMapFor(file: string): SourceMap | null {
  let map = sourceMaps.get(file);
  if (map === undefined) {
    try {
      map = new SourceMap(JSON.parse(fs.readFileSync(`${file}.map`, 'utf8')) as ConstructorParameters<typeof SourceMap>[0]);
    } catch {
      map = null;
    }
    sourceMaps.set(file, map);
  }
  return map;
}

function location(frame: CallFrame, root: string): string {
  // No script: V8's pseudo-frames, or a native function (writeBuffer: the socket write() of an answer).
  if (frame.url === '') return frame.functionName.startsWith('(') ? '' : '(native)';
  let file = frame.url.startsWith('file://') ? frame.url.slice('file://'.length) : frame.url;
  // V8 lines and columns are 0-based, as are the source map's.
  let line = frame.lineNumber;
  if (file.startsWith('/')) {
    const entry = sourceMapFor(file)?.findEntry(frame.lineNumber, frame.columnNumber);
    if (entry !== undefined && 'originalSource' in entry && entry.originalSource !== undefined) {
      file = path.resolve(path.dirname(file), entry.originalSource);
      line = entry.originalLine;
    }
  }
  if (file.startsWith(root + path.sep)) file = path.relative(root, file);
  return `${file}:${line + 1}`;
}

export function profileTable(title: string, summary: { rows: ProfileRow[]; totalMs: number }): string {
  return renderTable(
    `${title} (${fmt(summary.totalMs / 1000, 1)} s profiled)`,
    ['function', 'self ms', 'self %', 'where'],
    summary.rows.map((r) => [r.functionName, fmt(r.selfMs), fmt(r.percent, 1), r.location]),
  );
}

export function readCpuProfile(file: string): CpuProfile {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
}

if (require.main === module) {
  const [file, n] = process.argv.slice(2);
  if (file === undefined) {
    console.error('usage: node build/bench/profile.js FILE.cpuprofile [N]');
    process.exit(64);
  }
  console.log(profileTable(`Top ${Number(n) || 15} functions by self time: ${file}`, summarizeCpuProfile(readCpuProfile(file), Number(n) || 15)));
}
