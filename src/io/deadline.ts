/**
 * Waiting on file system calls at a stop, with an end: a call to a hung NFS
 * server never returns, and a stop must not wait on it for ever
 * (docs/operations.md, "Signals, stopping and restarting").
 *
 * Contract: `settlesBy(work, by)` resolves true as soon as `work` settles
 * (resolved or rejected: the caller handles the outcome), false once the
 * time `by()` returns (ms since the epoch) has passed first. `by` is read
 * again as the wait goes on (every ≤ 100 ms), so a deadline brought forward
 * ends the wait too. `work` itself is not cancelled.
 */
export function settlesBy(work: Promise<unknown>, by: () => number): Promise<boolean> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const check = (): void => {
      const left = by() - Date.now();
      if (left <= 0) resolve(false);
      else timer = setTimeout(check, Math.min(left, 100));
    };
    const settled = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    work.then(settled, settled);
    check();
  });
}

/**
 * At a stop, calls are waited for past the deadline while they keep
 * returning (a healthy but slow disk finishes what it was given), and given
 * up once none has returned for this long after the deadline.
 */
export const STOP_CALL_GRACE_MS = 1000;

/**
 * settlesBy() until `deadline()`, or STOP_CALL_GRACE_MS after the last call
 * returned (`lastReturnAt()`; by default the moment the wait began), whichever
 * is later.
 */
export function returnsInTime(work: Promise<unknown>, deadline: () => number, lastReturnAt: () => number = () => 0): Promise<boolean> {
  const started = Date.now();
  return settlesBy(work, () => Math.max(deadline(), Math.max(started, lastReturnAt()) + STOP_CALL_GRACE_MS));
}
