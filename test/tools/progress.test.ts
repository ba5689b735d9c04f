/** The tools' progress bar: drawn on a terminal only, erased at the end, messages not mangled. */
import { strict as assert } from 'node:assert';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { bar, startProgress } from '../../src/tools/progress';

function stream(isTTY: boolean, columns = 80) {
  let text = '';
  const s = Object.assign(new Writable({ write: (c: Buffer, _e, cb) => ((text += c.toString()), cb()) }), { isTTY, columns });
  return { s, text: () => text };
}

describe('progress', () => {
  test('bar() fills in proportion and clamps', () => {
    assert.equal(bar(0), `[${'-'.repeat(24)}]   0%`);
    assert.equal(bar(0.5), `[${'#'.repeat(12)}${'-'.repeat(12)}]  50%`);
    assert.equal(bar(1.7), `[${'#'.repeat(24)}] 100%`);
    assert.equal(bar(Number.NaN), `[${'-'.repeat(24)}]   0%`);
  });

  test('on a terminal: redrawn in place, cut to the width, messages on their own line, erased by stop()', async () => {
    const out = stream(true, 40);
    let n = 0;
    const progress = startProgress(out.s, () => ({ fraction: 0.25, label: `step ${++n} ${'x'.repeat(50)}` }), 10);
    await new Promise((r) => setTimeout(r, 60));
    progress.print('a message\n');
    progress.stop();
    progress.stop();
    const draws = out.text().split('\r\x1b[K').filter((d) => d.startsWith('['));
    assert.ok(draws.length >= 2, out.text());
    for (const d of draws) assert.ok(d.length <= 39 && d.startsWith(`${bar(0.25)} step `), JSON.stringify(d));
    assert.ok(out.text().includes('\r\x1b[Ka message\n'));
    assert.ok(out.text().endsWith('\r\x1b[K'));
  });

  test('not a terminal: nothing drawn, messages written as they are', async () => {
    const out = stream(false);
    const progress = startProgress(out.s, () => ({ fraction: undefined, label: 'x' }), 5);
    await new Promise((r) => setTimeout(r, 30));
    progress.print('plain\n');
    progress.stop();
    assert.equal(out.text(), 'plain\n');
  });
});
