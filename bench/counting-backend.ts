/**
 * A backend for the micro-benchmarks that does no I/O: it takes every line
 * and hands its record length to `onLine`, so the JIT cannot drop the work
 * that built it.
 */
import { BackendCounters, type Backend } from '../src/backends/backend';
import { Budget } from '../src/io/bounded-queue';
import type { Line } from '../src/line';

export function countingBackend(onLine: (recordLength: number) => void): Backend {
  return {
    name: 'count',
    counters: new BackendCounters(),
    held: new Budget(),
    whenFull: 'block',
    push(line: Line) {
      onLine(line.record.length);
      return true;
    },
    refusing: () => false,
    start: () => Promise.resolve(),
    reopen: () => undefined,
    close: () => Promise.resolve(),
    details: () => ({}),
  };
}
