/**
 * Flavor-aware wall-clock formatting for the hot path.
 *
 * `ZonedClock.stamp(ms)` gives the ISO-8601 local time with milliseconds and
 * numeric offset ("2026-11-29T22:41:03.123+02:00", "+00:00" for UTC) and sets
 * `date` to the local "YYYY-MM-DD". Intl is asked once per UTC minute (offsets
 * only change on minute boundaries in every tz rule in use since 1972); inside a
 * minute a stamp is a table lookup and three concatenations, and the last stamp
 * is reused while the millisecond does not change.
 */

const TWO_DIGITS = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const MILLIS = Array.from({ length: 1000 }, (_, i) => `.${String(i).padStart(3, '0')}`);
const MINUTE_MS = 60_000;

export class ZonedClock {
  /** Local date of the last stamp, "YYYY-MM-DD". */
  date = '';
  /** Offset from UTC of the last stamp, in minutes (east positive). */
  offsetMinutes = 0;

  private readonly format: Intl.DateTimeFormat;
  // Start outside any real minute and ms: with -1, stamp(0…59_998) used the empty
  // prefix and stamp(-1) returned the empty lastStamp.
  private minuteStart = Number.NEGATIVE_INFINITY;
  private minutePrefix = '';
  private offsetSuffix = '';
  private lastMs = Number.NaN;
  private lastStamp = '';

  constructor(readonly timeZone: string) {
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
    });
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
    const p = this.fields(ms);
    return `${p.year}-${p.month}-${p.day}`;
  }

  private enterMinute(ms: number): void {
    const minuteStart = Math.floor(ms / MINUTE_MS) * MINUTE_MS;
    const p = this.fields(minuteStart);
    const localAsUtc = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute));
    const offset = Math.round((localAsUtc - minuteStart) / MINUTE_MS);
    this.minuteStart = minuteStart;
    this.offsetMinutes = offset;
    this.date = `${p.year}-${p.month}-${p.day}`;
    this.minutePrefix = `${this.date}T${p.hour}:${p.minute}:`;
    this.offsetSuffix = formatOffset(offset);
  }

  private fields(ms: number): Record<'year' | 'month' | 'day' | 'hour' | 'minute', string> {
    const out = { year: '', month: '', day: '', hour: '', minute: '' };
    for (const part of this.format.formatToParts(ms)) {
      if (part.type in out) out[part.type as keyof typeof out] = part.value;
    }
    return out;
  }
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
