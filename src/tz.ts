/**
 * Timezones from the system's tz database (TZif files, RFC 8536), read once
 * at start-up: `loadZone("Europe/Athens").offsetAt(ms)` gives the offset from
 * UTC in minutes (east positive) at an instant.
 *
 * Why not Intl: ICU's timezone and locale data cost ~10 MB of resident memory
 * in every process that touches them, for a question that a 2 KB file
 * answers. The result is checked against Intl in the tests.
 *
 * Instants up to the file's last transition use its transition table
 * (version 2+ 64-bit data); later ones use the POSIX TZ rule in its footer
 * ("EET-2EEST,M3.5.0/3,M10.5.0/4"), as the tz reference code does.
 * Zone files come from $TZDIR or /usr/share/zoneinfo (Debian's tzdata).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Zone {
  readonly name: string;
  /** Minutes east of UTC at `ms` (ms since the epoch). */
  offsetAt(ms: number): number;
}

const cache = new Map<string, Zone>();

export function zoneDirectory(): string {
  return process.env.TZDIR ?? '/usr/share/zoneinfo';
}

/** The zone, or throws RangeError naming it when there is no such zone file. */
export function loadZone(name: string): Zone {
  let zone = cache.get(name);
  if (zone === undefined) {
    // Names are paths below the zone directory: refuse anything that could leave it.
    if (!/^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/.test(name)) throw new RangeError(`not a timezone name: ${JSON.stringify(name)}`);
    let data: Buffer;
    try {
      data = fs.readFileSync(path.join(zoneDirectory(), name));
    } catch {
      throw new RangeError(`unknown timezone ${JSON.stringify(name)} (no file in ${zoneDirectory()})`);
    }
    zone = parseTzif(name, data);
    cache.set(name, zone);
  }
  return zone;
}

export function isZone(name: string): boolean {
  try {
    loadZone(name);
    return true;
  } catch {
    return false;
  }
}

/** Parses a TZif file; uses the 64-bit (v2+) block when present. */
export function parseTzif(name: string, data: Buffer): Zone {
  const bad = (why: string) => new RangeError(`timezone ${JSON.stringify(name)}: bad TZif data (${why})`);
  if (data.length < 44 || data.toString('latin1', 0, 4) !== 'TZif') throw bad('no TZif header');
  const version = data[4]!;
  let block = readBlock(data, 0, 4);
  let footer = '';
  if (version >= 0x32) {
    // Skip the v1 block (32-bit times) to the v2 header.
    const v2 = 44 + blockLength(data, 0, 4);
    block = readBlock(data, v2, 8);
    const footerStart = v2 + 44 + blockLength(data, v2, 8);
    const end = data.indexOf(10, footerStart + 1);
    if (data[footerStart] === 10 && end !== -1) footer = data.toString('latin1', footerStart + 1, end);
  }
  if (block.types.length === 0) throw bad('no local time types');
  const rule = footer === '' ? null : parsePosixTz(footer);
  if (footer !== '' && rule === null) throw bad(`unreadable footer ${JSON.stringify(footer)}`);
  const { times, indexes, types } = block;
  // Before the first transition: the first non-DST type (RFC 8536 §3.2), else type 0.
  const initial = types.find((t) => !t.dst) ?? types[0]!;
  const last = times.length === 0 ? -Infinity : times[times.length - 1]!;
  return {
    name,
    offsetAt(ms) {
      const seconds = Math.floor(ms / 1000);
      if (seconds >= last && rule !== null) return rule.offsetAt(seconds);
      if (times.length === 0 || seconds < times[0]!) return initial.offset;
      // The last transition at or before `seconds`.
      let lo = 0;
      let hi = times.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (times[mid]! <= seconds) lo = mid;
        else hi = mid - 1;
      }
      return types[indexes[lo]!]!.offset;
    },
  };
}

interface Block {
  times: number[];
  indexes: number[];
  types: { offset: number; dst: boolean }[];
}

function counts(data: Buffer, at: number) {
  const n = (i: number) => data.readUInt32BE(at + 20 + i * 4);
  return { isut: n(0), isstd: n(1), leap: n(2), time: n(3), type: n(4), char: n(5) };
}

function blockLength(data: Buffer, at: number, timeSize: number): number {
  const c = counts(data, at);
  return c.time * timeSize + c.time + c.type * 6 + c.char + c.leap * (timeSize + 4) + c.isstd + c.isut;
}

function readBlock(data: Buffer, at: number, timeSize: number): Block {
  const c = counts(data, at);
  let p = at + 44;
  const times: number[] = [];
  for (let i = 0; i < c.time; i++, p += timeSize) times.push(timeSize === 8 ? Number(data.readBigInt64BE(p)) : data.readInt32BE(p));
  const indexes: number[] = [];
  for (let i = 0; i < c.time; i++, p++) indexes.push(data[p]!);
  const types: Block['types'] = [];
  for (let i = 0; i < c.type; i++, p += 6) types.push({ offset: Math.round(data.readInt32BE(p) / 60), dst: data[p + 4] === 1 });
  return { times, indexes, types };
}

interface PosixRule {
  offsetAt(seconds: number): number;
}

/**
 * A POSIX TZ string as tz footers use it: std offset [dst [offset] [,rule,rule]]
 * with M.m.w.d, Jn or n dates and optional /time (hours may exceed 24 or be
 * negative, RFC 8536 §3.3.1). Offsets in POSIX are west-positive.
 */
export function parsePosixTz(text: string): PosixRule | null {
  const re = /^(<[^>]+>|[A-Za-z]{3,})([+-]?\d{1,2}(?::\d{2}){0,2})(?:(<[^>]+>|[A-Za-z]{3,})([+-]?\d{1,2}(?::\d{2}){0,2})?(?:,([^,]+),([^,]+))?)?$/;
  const m = re.exec(text);
  if (m === null) return null;
  const std = eastMinutes(m[2]!);
  if (m[3] === undefined) return { offsetAt: () => std };
  const dst = m[4] === undefined ? std + 60 : eastMinutes(m[4]);
  if (m[5] === undefined || m[6] === undefined) return null;
  const start = parseDateRule(m[5]);
  const end = parseDateRule(m[6]);
  if (start === null || end === null) return null;
  return {
    offsetAt(seconds) {
      const year = new Date((seconds + std * 60) * 1000).getUTCFullYear();
      // Transition instants in UTC: the start is given in standard time, the end in DST.
      const dstOn = (y: number) => start(y) - std * 60;
      const dstOff = (y: number) => end(y) - dst * 60;
      const on = dstOn(year);
      const off = dstOff(year);
      if (on < off) return seconds >= on && seconds < off ? dst : std;
      // Southern hemisphere: DST spans the new year.
      return seconds >= off && seconds < on ? std : dst;
    },
  };
}

/** A POSIX (west-positive) offset → minutes east; never -0. */
function eastMinutes(text: string): number {
  const seconds = parseClock(text);
  return seconds === 0 ? 0 : -seconds / 60;
}

/** "2", "-3:30", "+05:45:00" → seconds. */
function parseClock(text: string): number {
  const sign = text.startsWith('-') ? -1 : 1;
  const [h = '0', mi = '0', s = '0'] = text.replace(/^[+-]/, '').split(':');
  return sign * (Number(h) * 3600 + Number(mi) * 60 + Number(s));
}

/** A date rule with its time → (year) => seconds since the epoch of that local wall time, as if UTC. */
function parseDateRule(text: string): ((year: number) => number) | null {
  const [date = '', time] = text.split('/');
  const at = time === undefined ? 7200 : parseClock(time);
  let m = /^M(\d{1,2})\.(\d)\.(\d)$/.exec(date);
  if (m !== null) {
    const month = Number(m[1]) - 1;
    const week = Number(m[2]);
    const weekday = Number(m[3]);
    return (year) => {
      const first = new Date(Date.UTC(year, month, 1)).getUTCDay();
      let day = 1 + ((weekday - first + 7) % 7) + (week - 1) * 7;
      const daysInMonth = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
      while (day > daysInMonth) day -= 7; // week 5 means "the last"
      return Date.UTC(year, month, day) / 1000 + at;
    };
  }
  m = /^J(\d{1,3})$/.exec(date);
  if (m !== null) {
    // Julian day 1..365, February 29 never counted.
    const n = Number(m[1]);
    return (year) => {
      const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
      return Date.UTC(year, 0, 1) / 1000 + (n - 1 + (leap && n >= 60 ? 1 : 0)) * 86400 + at;
    };
  }
  m = /^(\d{1,3})$/.exec(date);
  if (m !== null) {
    const n = Number(m[1]);
    return (year) => Date.UTC(year, 0, 1) / 1000 + n * 86400 + at;
  }
  return null;
}
