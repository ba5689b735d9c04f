/**
 * The TZif reader against a reference, and its refusals. The reference is
 * Intl (ICU: other code, other copy of the data) when Node's bundled tz
 * release is the system's; when they differ (Node 24 brings a newer one than
 * Debian's tzdata, and zones such as Africa/Casablanca changed in between),
 * it is glibc's zdump reading the same system files.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { isZone, loadZone, parsePosixTz, parseTzif } from '../src/tz';
import { tempDir } from './support/scratchd';

/** Offset in minutes east from Intl, independently of src/tz.ts. */
const formats = new Map<string, Intl.DateTimeFormat>();
function intlOffset(timeZone: string, ms: number): number {
  let format = formats.get(timeZone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    formats.set(timeZone, format);
  }
  const parts = format.formatToParts(ms);
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  const local = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return Math.round((local - Math.floor(ms / 1000) * 1000) / 60_000);
}

/** "2025b" from the system tzdata's tzdata.zi ("# version 2025b"), or null. */
function systemTzVersion(): string | null {
  try {
    return /^# version (\S+)/.exec(fs.readFileSync('/usr/share/zoneinfo/tzdata.zi', 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** Offset in minutes east from glibc's zdump over the system's files: the transitions 1970–2100, then a lookup. */
const zdumps = new Map<string, { at: number[]; after: number[]; first: number }>();
function zdumpOffset(zone: string, ms: number): number {
  let table = zdumps.get(zone);
  if (table === undefined) {
    const out = execFileSync('zdump', ['-V', '-c', '1970,2100', zone], { encoding: 'utf8' });
    const rows = [...out.matchAll(/ (\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4}) UT = .* gmtoff=(-?\d+)$/gm)].map((m) => ({
      at: Date.parse(`${m[1]!} UTC`),
      offset: Number(m[2]) / 60,
    }));
    // Rows come in pairs: the last second before a transition, then the transition itself.
    const at: number[] = [];
    const after: number[] = [];
    for (let i = 1; i < rows.length; i += 2) {
      at.push(rows[i]!.at);
      after.push(rows[i]!.offset);
    }
    const now = execFileSync('date', ['+%z'], { encoding: 'utf8', env: { ...process.env, TZ: zone } }).trim();
    const fixed = (now.startsWith('-') ? -1 : 1) * (Number(now.slice(1, 3)) * 60 + Number(now.slice(3, 5)));
    table = { at, after, first: rows[0]?.offset ?? fixed };
    zdumps.set(zone, table);
  }
  let offset = table.first;
  for (let i = 0; i < table.at.length && table.at[i]! <= ms; i++) offset = table.after[i]!;
  return offset;
}

const sameData = systemTzVersion() === process.versions.tz;
const referenceOffset = sameData ? intlOffset : zdumpOffset;
const reference = sameData ? 'Intl' : 'zdump';

const ZONES = [
  'Europe/Athens', 'Europe/London', 'Europe/Istanbul', 'Europe/Dublin', 'America/New_York', 'America/St_Johns',
  'America/Santiago', 'America/Sao_Paulo', 'Australia/Lord_Howe', 'Pacific/Auckland', 'Pacific/Chatham',
  'Asia/Kathmandu', 'Asia/Tehran', 'Africa/Casablanca', 'UTC',
];

describe(`loadZone().offsetAt agrees with ${reference} (system tzdata ${systemTzVersion() ?? '?'}, Node's ${process.versions.tz ?? '?'})`, () => {
  for (const zone of ZONES) {
    test(zone, () => {
      const z = loadZone(zone);
      let seed = zone.length * 7919;
      const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
      const from = Date.UTC(1971, 0, 1);
      const to = Date.UTC(2099, 0, 1); // far past the tables: the footer rule
      for (let i = 0; i < 2000; i++) {
        const ms = Math.floor(from + random() * (to - from));
        assert.equal(z.offsetAt(ms), referenceOffset(zone, ms), `${zone} at ${new Date(ms).toISOString()}`);
      }
      // Around every transition Intl shows between 2024 and 2042 (past the tables' end), to the second.
      for (let ms = Date.UTC(2024, 0, 1); ms < Date.UTC(2042, 0, 1); ms += 12 * 3_600_000) {
        if (referenceOffset(zone, ms) !== referenceOffset(zone, ms + 12 * 3_600_000)) {
          let lo = ms;
          let hi = ms + 12 * 3_600_000;
          while (hi - lo > 1000) {
            const mid = Math.floor((lo + hi) / 2000) * 1000;
            if (referenceOffset(zone, mid) === referenceOffset(zone, lo)) lo = mid;
            else hi = mid;
          }
          for (const t of [hi - 1000, hi - 1, hi, hi + 1000]) assert.equal(z.offsetAt(t), referenceOffset(zone, t), `${zone} at ${new Date(t).toISOString()}`);
        }
      }
    });
  }
});

describe('zone names and files', () => {
  test('unknown zones and names that would leave the zone folder are refused', () => {
    for (const name of ['Mars/Olympus', '../etc/passwd', 'Europe/../../etc/passwd', '/etc/passwd', '', 'Europe//Athens', 'Europe/Athens\n']) {
      assert.equal(isZone(name), false, name);
      assert.throws(() => loadZone(name), RangeError);
    }
    assert.equal(isZone('Europe/Athens'), true);
  });

  test('a file that is not TZif is refused', () => {
    assert.throws(() => parseTzif('x', Buffer.from('not a tz file at all, definitely not, no no no no')), /bad TZif data/);
  });

  test('TZDIR chooses the zone folder', () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'Test'));
    fs.copyFileSync('/usr/share/zoneinfo/Asia/Kathmandu', path.join(dir, 'Test', 'Zone'));
    const saved = process.env.TZDIR;
    process.env.TZDIR = dir;
    try {
      assert.equal(loadZone('Test/Zone').offsetAt(Date.UTC(2026, 0, 1)), 345);
      assert.equal(isZone('Europe/Athens'), true, 'cached zones stay');
      assert.equal(isZone('Europe/Paris'), false, 'others come from TZDIR now');
    } finally {
      if (saved === undefined) delete process.env.TZDIR;
      else process.env.TZDIR = saved;
    }
  });
});

test('parsePosixTz: the footer forms in use', () => {
  const cases: [string, string, number][] = [
    ['EET-2EEST,M3.5.0/3,M10.5.0/4', '2041-07-01T00:00:00Z', 180],
    ['EET-2EEST,M3.5.0/3,M10.5.0/4', '2041-12-01T00:00:00Z', 120],
    ['GMT0BST,M3.5.0/1,M10.5.0', '2041-03-31T00:59:59Z', 0],
    ['GMT0BST,M3.5.0/1,M10.5.0', '2041-03-31T01:00:00Z', 60],
    ['<+03>-3', '2041-01-01T00:00:00Z', 180],
    ['<-03>3<-02>,M3.2.0,M11.1.0', '2041-06-01T00:00:00Z', -120],
    ['AEST-10AEDT,M10.1.0,M4.1.0/3', '2041-01-01T00:00:00Z', 660],
    ['AEST-10AEDT,M10.1.0,M4.1.0/3', '2041-07-01T00:00:00Z', 600],
    ['<+1030>-10:30<+11>-11,M10.1.0,M4.1.0', '2041-01-01T00:00:00Z', 660],
    ['<+0545>-5:45', '2041-01-01T00:00:00Z', 345],
    ['UTC0', '2041-01-01T00:00:00Z', 0],
    ['XXX3YYY,J60/0,J300/0', '2041-06-01T00:00:00Z', -120],
    ['XXX3YYY,59/0,299/0', '2041-06-01T00:00:00Z', -120],
  ];
  for (const [rule, at, expected] of cases) assert.equal(parsePosixTz(rule)!.offsetAt(Date.parse(at) / 1000), expected, `${rule} at ${at}`);
  for (const bad of ['', 'EET', 'EET-2EEST,M3.5.0/3', 'EET-2EEST,X3,M10.5.0']) assert.equal(parsePosixTz(bad), null, bad);
});
