/**
 * A wake-up for code that waits on a condition another part changes: the
 * changer calls `notify()`, the waiter re-checks its condition. Replaces
 * polling on short timers; the only timer is the waiter's own deadline.
 */
export class Signal {
  private waiters: (() => void)[] = [];

  /** Wakes every current waiter (cheap when nobody waits: called on hot paths). */
  notify(): void {
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves on the next notify(), or after `timeoutMs` (Infinity: no timer). */
  next(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const wake = () => {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      };
      this.waiters.push(wake);
      if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          const at = this.waiters.indexOf(wake);
          if (at !== -1) this.waiters.splice(at, 1);
          resolve();
        }, Math.max(0, timeoutMs));
      }
    });
  }

  /** Waits until `condition()` holds (checked after each notify) or `deadline()` (ms since epoch) passes. */
  async until(condition: () => boolean, deadline: () => number): Promise<void> {
    while (!condition() && Date.now() < deadline()) await this.next(deadline() - Date.now());
  }
}
