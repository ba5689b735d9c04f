/**
 * A one-line progress bar for the command-line tools.
 *
 * Contract
 * --------
 * `startProgress(stream, sample)` redraws one line on `stream` every
 * `intervalMs` with what `sample()` returns, and `stop()` erases it. It is
 * pull-based so that a tool's hot loop never calls into it: the timer reads
 * the tool's counters. When `stream` is not a terminal (`isTTY` not true:
 * a pipe, a file, CI logs) it draws nothing at all, since carriage returns
 * and escape codes would only litter a log. The timer is unref'd: a bar
 * never keeps the process alive.
 */
import type { ToolIo } from './cli';

export interface ProgressSample {
  /** 0..1 fills the bar; undefined draws no bar, only the label (total unknown). */
  fraction: number | undefined;
  label: string;
}

export interface Progress {
  /** Writes a message line to the stream without mangling the bar (it is redrawn at the next tick). */
  print(text: string): void;
  /** Erases the bar (idempotent); later output starts on a clean line. */
  stop(): void;
}

const BAR_WIDTH = 24;
/** ANSI "erase to end of line" after a carriage return: shorter labels leave no leftovers. */
const CLEAR_LINE = '\r\x1b[K';

export function startProgress(stream: ToolIo['stderr'], sample: () => ProgressSample, intervalMs = 200): Progress {
  if (stream.isTTY !== true) return { print: (text) => void stream.write(text), stop: () => undefined };
  const draw = () => {
    const { fraction, label } = sample();
    const line = fraction === undefined ? label : `${bar(fraction)} ${label}`;
    // Never wrap: a wrapped line cannot be redrawn in place with "\r".
    const width = Math.max(20, (stream.columns ?? 80) - 1);
    stream.write(CLEAR_LINE + (line.length > width ? line.slice(0, width) : line));
  };
  const timer = setInterval(draw, intervalMs);
  timer.unref();
  let stopped = false;
  return {
    print(text) {
      stream.write(stopped ? text : CLEAR_LINE + text);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      stream.write(CLEAR_LINE);
    },
  };
}

/** "[#########---------------]  37%" */
export function bar(fraction: number): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const filled = Math.round(f * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${String(Math.floor(f * 100)).padStart(3)}%`;
}
