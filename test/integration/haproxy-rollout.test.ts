/**
 * The rollout recipe (packaging/haproxy/rollout.cfg) with Debian's haproxy in
 * front of two real scratchd processes, one standing for the legacy service
 * and one for the new, each with its own files:
 *
 * - the internal-networks ACL sends those clients to the new side at any weight;
 * - weights changed live through the runtime API (stats socket: `set weight`),
 *   0 → 10 % → 100 %, no reload: every beacon lands on exactly one side, and the
 *   observed share is within a few points of the weight;
 * - `scratchd replay` sends each side the beacons the other one got, and
 *   `scratchd diff` finds both sides' files identical (values, ignoring time).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { EXTRA_LISTENER, haproxyAvailable, shippedConfig, startHaproxy, type RunningHaproxy } from '../support/haproxy';
import { cliPath, repoRoot } from '../support/paths';
import { allLines, startScratchd, tempDir, type Running } from '../support/scratchd';
import { makeCertificate, opensslAvailable, renderTlsBind } from '../support/tls';

const rolloutConfig = path.join(repoRoot, 'packaging', 'haproxy', 'rollout.cfg');
const available = [haproxyAvailable, opensslAvailable].find((n) => n.skip !== undefined) ?? {};
const HOST = 'www.skroutz.gr';
const INTERNAL = '127.0.0.2';

function replaceOnce(text: string, pattern: RegExp, replacement: string): string {
  const count = [...text.matchAll(new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`))].length;
  if (count !== 1) throw new Error(`${rolloutConfig}: ${String(pattern)} matched ${count} times, expected once`);
  return text.replace(pattern, replacement);
}

/** The section of a config file from "global" to the first "frontend" (global and defaults). */
function common(file: string): string {
  const text = fs.readFileSync(file, 'utf8');
  return text.slice(text.indexOf('\nglobal\n'), text.indexOf('\nfrontend '));
}

/** A section ("backend scratchd") up to the next one. */
function section(file: string, name: string): string {
  const text = fs.readFileSync(file, 'utf8');
  const start = text.indexOf(`\n${name}\n`);
  assert.ok(start >= 0, `${file}: no ${name}`);
  const next = text.slice(start + 1).search(/\n(frontend|backend|listen|global|defaults) /);
  return text.slice(start, next < 0 ? undefined : start + 1 + next);
}

interface Sent {
  /** id → request target, for the beacons answered 200. */
  targets: Map<string, string>;
  failures: number;
}

/** `count` beacons through HAProxy, 16 at a time over keep-alive connections from `from`. */
async function send(port: number, phase: string, count: number, from = '127.0.0.1'): Promise<Sent> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const sent: Sent = { targets: new Map(), failures: 0 };
  let next = 0;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const target = `/track?run=ro&phase=${phase}&i=${i}&u=%2Fcart%3Fx%3D1&t=caf%C3%A9&n[]=${i % 7}`;
      const req = http.request({ host: '127.0.0.1', port, path: target, headers: { Host: HOST }, agent, localAddress: from }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) sent.targets.set(`${phase}/${i}`, target);
          else sent.failures++;
          resolve();
        });
      });
      req.on('error', () => (sent.failures++, resolve()));
      req.end();
    });
  const worker = async () => {
    while (next < count) await one(next++);
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  agent.destroy();
  return sent;
}

/** id ("phase/i") of each line of a scratchd's files. */
function ids(server: Running): string[] {
  return allLines(server.dir).map((line) => {
    const v = (JSON.parse(line) as { values: { phase: string; i: string } }).values;
    return `${v.phase}/${v.i}`;
  });
}

function cli(args: string[]): { status: number | null; out: string } {
  const run = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8' });
  return { status: run.status, out: run.stdout + run.stderr };
}

describe('rollout from the legacy service (packaging/haproxy/rollout.cfg)', available, () => {
  test('global, defaults and backend scratchd are scratchd.cfg\'s, word for word', () => {
    const fix = 'scratchd.cfg changed: copy its "global", "defaults" and "backend scratchd" into rollout.cfg';
    assert.equal(common(rolloutConfig), common(shippedConfig), fix);
    assert.equal(section(rolloutConfig, 'backend scratchd'), section(shippedConfig, 'backend scratchd'), fix);
  });

  test('weights changed live 0 → 10 % → 100 %: each beacon on one side, shares as weighted, both sides record the same values', { timeout: 60_000 }, async (t) => {
    const dir = tempDir('scratchd-rollout-');
    const config = { http: { trustForwardedFor: true } };
    const legacy = await startScratchd({ config, dir: fs.mkdtempSync(path.join(dir, 'legacy-')) });
    const fresh = await startScratchd({ config, dir: fs.mkdtempSync(path.join(dir, 'new-')) });
    let haproxy: RunningHaproxy | null = null;
    try {
      const { pem } = makeCertificate(dir, [HOST]);
      haproxy = await startHaproxy(dir, fresh, fresh, {
        template: rolloutConfig,
        edit: (text) => {
          text = replaceOnce(text, /^( {4}server legacy )\S+( weight 100)$/m, `$1127.0.0.1:${legacy.port}$2`);
          text = replaceOnce(text, /^( {4}server scratchd )\S+( weight 0 check port )\d+/m, `$1127.0.0.1:${fresh.port}$2${fresh.adminPort}`);
          text = replaceOnce(text, /^( {4}acl internal src ).*$/m, `$1${INTERNAL}/32`);
          return renderTlsBind(text, EXTRA_LISTENER, pem);
        },
      });
      await haproxy.waitUp('primary');
      await haproxy.waitUp('scratchd', 10_000, 'rollout');
      const h = haproxy;
      const setWeights = async (scratchd: number, legacyWeight: number) => {
        // Both in one runtime API call: ';' separates commands.
        const answer = await h.command(`set weight rollout/scratchd ${scratchd}; set weight rollout/legacy ${legacyWeight}`);
        assert.equal(answer.trim(), '', `set weight: ${answer}`);
        assert.match(await h.command('get weight rollout/scratchd'), new RegExp(`^${scratchd} \\(initial 0\\)`));
      };

      const phases: { phase: string; weight: number; count: number; from?: string }[] = [
        // The shipped start: legacy 100, scratchd 0.
        { phase: 'p0', weight: 0, count: 600 },
        { phase: 'internal', weight: 0, count: 200, from: INTERNAL },
        { phase: 'p10', weight: 10, count: 2000 },
        { phase: 'p100', weight: 100, count: 600 },
      ];
      const targets = new Map<string, string>();
      for (const { phase, count, from } of phases) {
        if (phase === 'p10') await setWeights(10, 90);
        if (phase === 'p100') await setWeights(100, 0);
        const sent = await send(haproxy.port, phase, count, from);
        assert.equal(sent.failures, 0, `${phase}: every beacon answered 200`);
        for (const [id, target] of sent.targets) targets.set(id, target);
      }

      // Each side flushes its files on SIGTERM; restarted on the same folders for the replay.
      assert.equal(await legacy.stop('SIGTERM'), 0);
      assert.equal(await fresh.stop('SIGTERM'), 0);
      const onLegacy = ids(legacy);
      const onNew = ids(fresh);
      const seen = new Map<string, number>();
      for (const id of [...onLegacy, ...onNew]) seen.set(id, (seen.get(id) ?? 0) + 1);
      assert.equal(seen.size, targets.size, 'every beacon answered 200 has a line');
      assert.deepEqual([...seen].filter(([, n]) => n !== 1), [], 'no beacon on both sides, none twice');

      const shares: string[] = [];
      for (const { phase, weight, count } of phases) {
        const toNew = onNew.filter((id) => id.startsWith(`${phase}/`)).length;
        const share = (100 * toNew) / count;
        shares.push(`${phase}: ${toNew}/${count} on scratchd = ${share.toFixed(1)} %`);
        const expected = phase === 'internal' ? 100 : weight;
        assert.ok(Math.abs(share - expected) <= 3, `${phase}: ${share.toFixed(1)} % on scratchd, weight ${expected} %`);
      }
      t.diagnostic(`observed shares: ${shares.join('; ')}`);

      // Cross-replay: each side gets, straight from `scratchd replay`, the
      // beacons the other side got through HAProxy. Then both sides have seen
      // the same traffic, and their files must hold the same values.
      const legacyAgain = await startScratchd({ config, dir: legacy.dir });
      const freshAgain = await startScratchd({ config, dir: fresh.dir });
      try {
        const replays: [Running, string[]][] = [[legacyAgain, onNew], [freshAgain, onLegacy]];
        for (const [server, list] of replays) {
          const file = path.join(dir, `replay-${server.port}.txt`);
          fs.writeFileSync(file, list.map((id) => `${HOST} ${targets.get(id)}\n`).join(''));
          const replay = cli(['replay', '--target', `http://127.0.0.1:${server.port}`, '--connections', '8', file]);
          assert.equal(replay.status, 0, replay.out);
        }
      } finally {
        assert.equal(await legacyAgain.stop('SIGTERM'), 0);
        assert.equal(await freshAgain.stop('SIGTERM'), 0);
      }
      const sides = [legacy, fresh].map((server, n) => {
        const file = path.join(dir, `side-${n}.log`);
        fs.writeFileSync(file, allLines(server.dir).map((l) => `${l}\n`).join(''));
        return file;
      });
      const diff = cli(['diff', sides[0]!, sides[1]!]);
      t.diagnostic(`scratchd diff legacy new: ${diff.out.trim().split('\n').slice(-2).join(' | ')}`);
      assert.equal(diff.status, 0, diff.out);
      assert.equal(allLines(legacy.dir).length, targets.size);
    } finally {
      await haproxy?.stop();
      await Promise.all([legacy.stop('SIGKILL'), fresh.stop('SIGKILL')]);
    }
  });
});
