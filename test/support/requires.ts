/**
 * Tests that need an outside tool (ruby-rack, Java, systemd-socket-activate, …)
 * say so and skip on a developer's machine that lacks it, and fail under
 * CI=true, where a skip would hide a missing install step.
 */
import { spawnSync } from 'node:child_process';

export function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', command], { stdio: 'ignore' }).status === 0;
}

/**
 * Options for node:test's `test()`/`describe()`: `{}` when available,
 * `{ skip: reason }` when not; throws under CI=true instead of skipping.
 */
export function needs(what: string, available: boolean, install: string): { skip?: string } {
  if (available) return {};
  const reason = `${what} is missing (${install})`;
  if (process.env.CI === 'true') throw new Error(`${reason}; CI=true does not allow skipping`);
  return { skip: reason };
}
