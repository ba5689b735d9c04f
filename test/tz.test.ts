/** The TZif reader against Intl (ICU), the reference, and its refusals. */
import { strict as assert } from 'node:assert';
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

const ZONES = [
  'Europe/Athens', 'Europe/London', 'Europe/Istanbul', 'Europe/Dublin', 'America/New_York', 'America/St_Johns',
  'America/Santiago', 'America/Sao_Paulo', 'Australia/Lord_Howe', 'Pacific/Auckland', 'Pacific/Chatham',
  'Asia/Kathmandu', 'Asia/Tehran', 'Africa/Casablanca', 'UTC',
];

describe('loadZone().offsetAt agrees with Intl', () => {
  for (const zone of ZONES) {
    test(zone, () => {
      const z = loadZone(zone);
      let seed = zone.length * 7919;
      const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
      const from = Date.UTC(1971, 0, 1);
      const to = Date.UTC(2099, 0, 1); // far past the tables: the footer rule
      for (let i = 0; i < 2000; i++) {
        const ms = Math.floor(from + random() * (to - from));
        assert.equal(z.offsetAt(ms), intlOffset(zone, ms), `${zone} at ${new Date(ms).toISOString()}`);
      }
      // Around every transition Intl shows between 2024 and 2042 (past the tables' end), to the second.
      for (let ms = Date.UTC(2024, 0, 1); ms < Date.UTC(2042, 0, 1); ms += 12 * 3_600_000) {
        if (intlOffset(zone, ms) !== intlOffset(zone, ms + 12 * 3_600_000)) {
          let lo = ms;
          let hi = ms + 12 * 3_600_000;
          while (hi - lo > 1000) {
            const mid = Math.floor((lo + hi) / 2000) * 1000;
            if (intlOffset(zone, mid) === intlOffset(zone, lo)) lo = mid;
            else hi = mid;
          }
          for (const t of [hi - 1000, hi - 1, hi, hi + 1000]) assert.equal(z.offsetAt(t), intlOffset(zone, t), `${zone} at ${new Date(t).toISOString()}`);
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
