/**
 * Beacons as a real browser sends them: Debian's chromium, headless, driven
 * by playwright-core, against the real CLI. A page served from one origin
 * (http://localhost:<page port>) sends beacons to scratchd on another
 * (http://127.0.0.1:<port>): every way a site sends one must produce
 * exactly one line with the expected values. Each case gets a fresh browser
 * context (a fresh preflight cache).
 */
import * as http from 'node:http';
import { strict as assert } from 'node:assert';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { hasCommand, needs } from '../support/requires';
import { allLines, startScratchd, type Running } from '../support/scratchd';

const CHROMIUM = '/usr/bin/chromium';

function playwrightLoadable(): boolean {
  try {
    require.resolve('playwright-core');
    return true;
  } catch {
    return false;
  }
}

const available = hasCommand(CHROMIUM) && playwrightLoadable();

let browser: Browser;
let scratchd: Running;
let pages: http.Server;
let pageOrigin = '';
let target = '';

const PAGE = `<!doctype html><meta charset="utf-8"><title>shop</title><body>
<script>
  // Set by the pagehide case: a beacon sent while the user navigates away.
  window.leaveWithBeacon = (url) => addEventListener('pagehide', () => navigator.sendBeacon(url, new URLSearchParams({ bye: '1' })));
</script>`;

/** The values of the lines whose values hold "case":"<name>". */
function linesOf(name: string): string[] {
  return allLines(scratchd.dir)
    .map((line) => line.slice(line.indexOf('"values":') + 9, -1))
    .filter((values) => values.includes(`"case":"${name}"`));
}

/** Waits for the case's line, then a little longer to see that no second one follows. */
async function oneLine(name: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (linesOf(name).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  await new Promise((r) => setTimeout(r, 300));
  const lines = linesOf(name);
  assert.equal(lines.length, 1, `exactly one line for ${name}: ${JSON.stringify(lines)}`);
  return lines[0]!;
}

describe('a real browser', needs('chromium and playwright-core', available, 'apt-get install chromium; npm install'), () => {
  before(async () => {
    pages = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(req.url?.startsWith('/other') ? '<!doctype html><title>other</title>' : PAGE);
    });
    await new Promise<void>((r) => pages.listen(0, '127.0.0.1', r));
    pageOrigin = `http://localhost:${(pages.address() as { port: number }).port}`;
    scratchd = await startScratchd({
      config: {
        flavors: [{ name: 'shop', hosts: ['127.0.0.1'], timezone: 'UTC', cors: { origins: [pageOrigin] } }],
        file: { path: 'logs/{flavor}/{date}.log', writeIntervalMs: 0 },
      },
    });
    target = `http://127.0.0.1:${scratchd.port}/track`;
    const { chromium } = await import('playwright-core');
    const root = process.getuid?.() === 0;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: root ? ['--no-sandbox'] : [] });
  });

  after(async () => {
    await browser?.close();
    await scratchd?.stop();
    await new Promise((r) => pages?.close(r));
  });

  /** A fresh context and page on the page origin; `run` gets the page. */
  async function onPage<T>(run: (page: import('playwright-core').Page) => Promise<T>): Promise<T> {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${pageOrigin}/shop`);
      return await run(page);
    } finally {
      await context.close();
    }
  }

  // Scripts run in the page (strings: this project's TypeScript has no DOM types); U is the beacon URL.
  const cases: { name: string; script: string; after?: (page: import('playwright-core').Page) => Promise<void>; values: string }[] = [
    {
      name: 'img',
      script: "document.body.insertAdjacentHTML('beforeend', `<img src=\"${U}?case=img&a=1\">`)",
      values: '{"case":"img","a":"1"}',
    },
    {
      name: 'image',
      script: "new Image().src = `${U}?case=image&u[name]=${encodeURIComponent('Ζήτα & co')}&u[tags][]=a&u[tags][]=b`",
      values: '{"case":"image","u":{"name":"Ζήτα & co","tags":["a","b"]}}',
    },
    { name: 'beacon-empty', script: 'navigator.sendBeacon(`${U}?case=beacon-empty`)', values: '{"case":"beacon-empty"}' },
    {
      name: 'beacon-params',
      script: "navigator.sendBeacon(`${U}?case=beacon-params`, new URLSearchParams({ x: '1', 'y[z]': 'é' }))",
      values: '{"case":"beacon-params","x":"1","y":{"z":"é"}}',
    },
    {
      name: 'beacon-string',
      script: 'navigator.sendBeacon(`${U}?case=beacon-string`, \'{"s":"é","n":1.5e3}\')',
      values: '{"case":"beacon-string","s":"é","n":1500.0}',
    },
    {
      name: 'beacon-blob',
      script: "navigator.sendBeacon(`${U}?case=beacon-blob`, new Blob([JSON.stringify({ b: [1, 2] })], { type: 'application/json' }))",
      values: '{"case":"beacon-blob","b":[1,2]}',
    },
    {
      name: 'fetch',
      script:
        "fetch(`${U}?case=fetch`, { method: 'POST', keepalive: true, credentials: 'include', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ f: true }) })" +
        '.then((r) => `${r.status} ${r.type}`)',
      values: '{"case":"fetch","f":true}',
    },
    { name: 'no-cors', script: "fetch(`${U}?case=no-cors&n=1`, { mode: 'no-cors' }).then((r) => r.type)", values: '{"case":"no-cors","n":"1"}' },
    {
      name: 'pagehide',
      script: 'leaveWithBeacon(`${U}?case=pagehide`)',
      after: async (page) => {
        await page.goto(`${pageOrigin}/other`);
      },
      values: '{"case":"pagehide","bye":"1"}',
    },
  ];

  for (const c of cases) {
    test(c.name, { timeout: 20_000 }, async () => {
      const { answer, values } = await onPage(async (page) => {
        const result: unknown = await page.evaluate(`(() => { const U = ${JSON.stringify(target)}; return ${c.script}; })()`);
        await c.after?.(page);
        // Waited for with the page's context still open: closing it can cancel a beacon the browser has not sent yet.
        return { answer: result, values: await oneLine(c.name) };
      });
      if (c.name === 'fetch') assert.equal(answer, '204 cors', 'the answer is readable by the page');
      if (c.name.startsWith('beacon')) assert.equal(answer, true, 'sendBeacon queued the beacon');
      assert.equal(values, c.values);
    });
  }

  test('the counters saw the preflights and POSTs', async () => {
    const stats = await scratchd.stats();
    assert.ok((stats.requests.preflight ?? 0) >= 2, `preflights: ${stats.requests.preflight}`);
    assert.equal(stats.requests.post, 6);
    assert.equal(stats.requests.forbidden_origin, 0);
  });
});
