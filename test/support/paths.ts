/** Where things are, for tests compiled to build/test/. */
import * as path from 'node:path';

/** The repository's root folder (tests run from build/test/**). */
export const repoRoot = path.resolve(__dirname, '..', '..', '..');

/** The built CLI, as `npx scratchd` would run it. */
export const cliPath = path.join(repoRoot, 'build', 'src', 'main.js');

/** A file under test/ in the source tree (fixtures, scripts that are not compiled). */
export function testFile(...parts: string[]): string {
  return path.join(repoRoot, 'test', ...parts);
}
