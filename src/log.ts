/**
 * Logging: one line per event on stderr, prefixed by the component
 * ("http: listening on 127.0.0.1:8080"). Quiet on the hot path: per-request
 * problems are counted, not logged; repeated failures go through `every()`.
 * No request data is ever logged: messages are made of config values and
 * error texts, so a client cannot forge lines or terminal escapes.
 */

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Logs at most once per `intervalMs` per key, saying how many were suppressed. */
  every(key: string, intervalMs: number, message: string): void;
}

const sink = (text: string) => process.stderr.write(text);

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
