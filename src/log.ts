/**
 * Logging: one line per event on stderr, prefixed by the component
 * ("http: listening on 127.0.0.1:8080"). Quiet on the hot path: per-request
 * problems are counted, not logged; repeated failures go through `every()`.
 * Anything that came from a request or the outside world must be passed
 * through `quote()` so it cannot forge lines or terminal escapes.
 */

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Logs at most once per `intervalMs` per key, saying how many were suppressed. */
  every(key: string, intervalMs: number, message: string): void;
}

let sink: (text: string) => void = (text) => process.stderr.write(text);

/** Tests and the CLI's --quiet can redirect the output. */
export function setLogSink(write: (text: string) => void): void {
  sink = write;
}

export function logger(component: string): Logger {
  const last = new Map<string, { at: number; suppressed: number }>();
  const write = (level: string, message: string) => sink(`${component}: ${level}${message}\n`);
  return {
    info: (m) => write('', m),
    warn: (m) => write('warning: ', m),
    error: (m) => write('error: ', m),
    every(key, intervalMs, message) {
      const now = Date.now();
      const seen = last.get(key);
      if (seen !== undefined && now - seen.at < intervalMs) {
        seen.suppressed++;
        return;
      }
      const suppressed = seen?.suppressed ?? 0;
      last.set(key, { at: now, suppressed: 0 });
      write('warning: ', suppressed > 0 ? `${message} (and ${suppressed} more like it)` : message);
    },
  };
}

/** Untrusted text as a JSON string literal: escapes quotes, controls and newlines. */
export function quote(text: string): string {
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}
