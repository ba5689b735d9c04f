/**
 * The tool commands as main.ts dispatches them: each tool's module is loaded
 * only when its command runs, so `serve` (and `check-config`, `version`)
 * never parse replay, diff or restore.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { cliPath } from '../support/paths';

/** The src/tools/ modules in require's cache once main.js is loaded (main() runs only when it is the entry point). */
function toolsLoaded(): string[] {
  const code = `require(${JSON.stringify(cliPath)}); setTimeout(() => console.log(JSON.stringify(Object.keys(require.cache).filter((f) => f.includes('/build/src/tools/')))), 200);`;
  const child = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout.trim().split('\n').pop()!) as string[];
}

describe('main.ts loads a tool only when its command runs', () => {
  test('loading the CLI (as serve does) loads no tool', () => {
    assert.deepEqual(toolsLoaded(), []);
  });

  test('each tool command answers --help with exit 0 (it is wired)', () => {
    for (const command of ['replay', 'diff', 'restore']) {
      const child = spawnSync(process.execPath, [cliPath, command, '--help'], { encoding: 'utf8' });
      assert.equal(child.status, 0, `${command}: ${child.stderr}`);
      assert.match(child.stdout, new RegExp(`^usage: scratchd ${command} `), command);
    }
  });

  test('a usage error in a lazily loaded tool still exits 64 with its message', () => {
    const child = spawnSync(process.execPath, [cliPath, 'replay'], { encoding: 'utf8' });
    assert.equal(child.status, 64);
    assert.match(child.stderr, /scratchd replay: no input FILE/);
  });
});
