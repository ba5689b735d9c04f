/**
 * `Line` is the one value that flows from the HTTP path to every backend
 * (docs/architecture.md): built once per accepted beacon and shared, never
 * copied.
 *
 * record: the serialized line (its format: record.ts), with no trailing
 * newline; the file backend adds "\n", Kafka sends it as is.
 */
import type { Flavor } from './flavor';
import { buildRecord } from './record';

export interface Line {
  readonly flavor: Flavor;
  /** Receive time, ms since the epoch. */
  readonly timeMs: number;
  /** "YYYY-MM-DD" of timeMs in the flavor's timezone (the file's {date}). */
  readonly date: string;
  readonly record: string;
}

export function makeLine(flavor: Flavor, timeMs: number, valuesJson: string): Line {
  const time = flavor.clock.stamp(timeMs);
  return { flavor, timeMs, date: flavor.clock.date, record: buildRecord(flavor.recordHead, time, valuesJson) };
}
