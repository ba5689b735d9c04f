/**
 * Flavor-aware wall-clock formatting for the hot path.
 *
 * `ZonedClock.stamp(ms)` gives the ISO-8601 local time with milliseconds and
 * numeric offset ("2026-11-29T22:41:03.123+02:00", "+00:00" for UTC) and sets
 * `date` to the local "YYYY-MM-DD". The zone (tz.ts) is asked once per UTC
 * minute (offsets only change on minute boundaries in every tz rule in use
 * since 1972); inside a minute a stamp is a table lookup and three
 * concatenations, and the last stamp is reused while the millisecond does not
 * change.
 */
import { loadZone, type Zone } from './tz';

const TWO_DIGITS = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const MILLIS = Array.from({ length: 1000 }, (_, i) => `.${String(i).padStart(3, '0')}`);
const MINUTE_MS = 60_000;

export class ZonedClock {
  /** Local date of the last stamp, "YYYY-MM-DD". */
  date = '';
  /** Offset from UTC of the last stamp, in minutes (east positive). */
  offsetMinutes = 0;

  private readonly zone: Zone;
  // Start outside any real minute and ms: with -1, stamp(0…59_998) used the empty
  // prefix and stamp(-1) returned the empty lastStamp.
  private minuteStart = Number.NEGATIVE_INFINITY;
  private minutePrefix = '';
  private offsetSuffix = '';
  private lastMs = Number.NaN;
  private lastStamp = '';

  /** Throws RangeError for a timezone the system's tz database does not have. */
  constructor(readonly timeZone: string) {
    this.zone = loadZone(timeZone);
  }

  stamp(ms: number): string {
    if (ms === this.lastMs) return this.lastStamp;
    const intoMinute = ms - this.minuteStart;
    if (intoMinute < 0 || intoMinute >= MINUTE_MS) {
      this.enterMinute(ms);
      return this.stamp(ms);
    }
    const seconds = (intoMinute / 1000) | 0;
    this.lastMs = ms;
    this.lastStamp = this.minutePrefix + TWO_DIGITS[seconds]! + MILLIS[intoMinute - seconds * 1000]! + this.offsetSuffix;
    return this.lastStamp;
  }

  /** Local date "YYYY-MM-DD" of an instant, without disturbing the stamp cache. */
  dateOf(ms: number): string {
    return localFields(ms, this.zone.offsetAt(ms)).date;
  }

  private enterMinute(ms: number): void {
    const minuteStart = Math.floor(ms / MINUTE_MS) * MINUTE_MS;
    const offset = this.zone.offsetAt(minuteStart);
    const local = localFields(minuteStart, offset);
    this.minuteStart = minuteStart;
    this.offsetMinutes = offset;
    this.date = local.date;
    this.minutePrefix = `${local.date}T${local.hourMinute}:`;
    this.offsetSuffix = formatOffset(offset);
  }
}

/** Wall-clock date and "HH:MM" of an instant at a given offset. */
function localFields(ms: number, offsetMinutes: number): { date: string; hourMinute: string } {
  const local = new Date(ms + offsetMinutes * MINUTE_MS);
  const year = String(local.getUTCFullYear()).padStart(4, '0');
  const month = TWO_DIGITS[local.getUTCMonth() + 1]!;
  const day = TWO_DIGITS[local.getUTCDate()]!;
  return { date: `${year}-${month}-${day}`, hourMinute: `${TWO_DIGITS[local.getUTCHours()]!}:${TWO_DIGITS[local.getUTCMinutes()]!}` };
}

/** Minutes east of UTC → "+02:00", "-03:30", "+00:00". */
export function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${TWO_DIGITS[Math.floor(abs / 60)] ?? String(Math.floor(abs / 60))}:${TWO_DIGITS[abs % 60]!}`;
}

/**
 * The local day `date` ("YYYY-MM-DD") in a timezone as [start, end) in ms
 * since the epoch: the first minute whose local date is `date`, and the first
 * whose local date is later. A binary search over minutes, so days that
 * start at 01:00 (a DST change at midnight) or last 23 or 25 hours are right.
 * For tools (restore), not the hot path.
 */
export function localDayBounds(date: string, timeZone: string): [number, number] {
  if (!/^\d{4}-\d\d-\d\d$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) {
    throw new RangeError(`not a date (YYYY-MM-DD): ${JSON.stringify(date)}`);
  }
  const clock = new ZonedClock(timeZone);
  const noonUtc = Date.parse(`${date}T12:00:00Z`);
  const firstMinuteOnOrAfter = (target: string): number => {
    // Offsets are within ±26 h: the boundary lies in this window.
    let lo = Math.floor((noonUtc - 40 * 3_600_000) / MINUTE_MS);
    let hi = Math.floor((noonUtc + 64 * 3_600_000) / MINUTE_MS);
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (clock.dateOf(mid * MINUTE_MS) >= target) hi = mid;
      else lo = mid + 1;
    }
    return lo * MINUTE_MS;
  };
  const next = new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
  return [firstMinuteOnOrAfter(date), firstMinuteOnOrAfter(next)];
}
