/**
 * HTTPS and HTTP/2 at HAProxy (packaging/haproxy/scratchd-tls.cfg, loaded
 * after scratchd.cfg) in front of a real scratchd primary and backup, with a
 * certificate made by openssl and real clients:
 *
 * - curl --http2 over TLS 1.3: HTTP/2 via ALPN, the beacon's line with the
 *   right values; HTTP/1.1 over TLS and cleartext HTTP/1.1 still work;
 * - the client address the checks see is the client's (curl --interface
 *   127.0.0.2 / 127.0.0.3), not HAProxy's, whatever X-Forwarded-For it sends;
 * - h2load: thousands of beacons as concurrent streams on a few HTTP/2
 *   connections over TLS 1.3, one line each; its requests/s and latency are
 *   reported beside HTTP/1.1 through the cleartext frontend (noisy figures on
 *   a shared CPU: diagnostics, not assertions);
 * - failover is scratchd.cfg's: SIGTERM of the primary during an h2load run,
 *   every stream answered 200 and every 200 on disk.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { EXTRA_LISTENER, haproxyAvailable, shippedConfig, startHaproxy, type RunningHaproxy } from '../support/haproxy';
import { hasCommand, needs } from '../support/requires';
import { allLines, startScratchd, tempDir, type Running } from '../support/scratchd';
import { makeCertificate, opensslAvailable, renderTlsBind, type Certificate } from '../support/tls';
import { repoRoot } from '../support/paths';

const tlsConfig = path.join(repoRoot, 'packaging', 'haproxy', 'scratchd-tls.cfg');
const h2loadAvailable = needs('h2load', hasCommand('h2load'), 'apt-get install nghttp2-client');
const curlAvailable = needs('curl', hasCommand('curl'), 'apt-get install curl');
const available = [haproxyAvailable, opensslAvailable, h2loadAvailable, curlAvailable].find((n) => n.skip !== undefined) ?? {};

const HOST = 'www.skroutz.gr';

interface Edge {
  primary: Running;
  backup: Running;
  haproxy: RunningHaproxy;
  tlsPort: number;
  cert: Certificate;
  dir: string;
}

async function startEdge(config: Record<string, unknown> = {}): Promise<Edge> {
  const dir = tempDir('scratchd-tls-');
  const cert = makeCertificate(dir, [HOST, 'www.alve.com', 'www.scrooge.co.uk']);
  const base = { http: { trustForwardedFor: true }, ...config };
  const primary = await startScratchd({ config: base });
  const backup = await startScratchd({ config: base });
  const haproxy = await startHaproxy(dir, primary, backup, { extra: [renderTlsBind(fs.readFileSync(tlsConfig, 'utf8'), EXTRA_LISTENER, cert.pem)] });
  await haproxy.waitUp('primary');
  await haproxy.waitUp('backup');
  return { primary, backup, haproxy, tlsPort: haproxy.extraPort, cert, dir };
}

async function stopEdge(edge: Edge): Promise<void> {
  await edge.haproxy.stop();
  await Promise.all([edge.primary.stop('SIGKILL'), edge.backup.stop('SIGKILL')]);
}

/** curl one URL; returns the HTTP version, the status, and curl's verbose log (TLS version, ALPN). */
function curl(edge: Edge, query: string, args: string[] = []): { version: string; status: number; log: string } {
  const run = spawnSync(
    'curl',
    ['-sS', '-v', '-o', '/dev/null', '-w', '%{http_version} %{response_code}', '--cacert', edge.cert.cert,
      '--resolve', `${HOST}:${edge.tlsPort}:127.0.0.1`, ...args, `https://${HOST}:${edge.tlsPort}/track?${query}`],
    { encoding: 'utf8' },
  );
  assert.equal(run.status, 0, run.stderr);
  const [version, status] = run.stdout.split(' ');
  return { version: version!, status: Number(status), log: run.stderr };
}

/** Parsed `values` of every line in a scratchd's files. */
function values(server: Running): Record<string, unknown>[] {
  return allLines(server.dir).map((l) => (JSON.parse(l) as { values: Record<string, unknown> }).values);
}

interface H2loadResult {
  succeeded: number;
  ok2xx: number;
  reqPerSec: number;
  /** "time for request:" min, max, mean, sd as printed. */
  latency: string;
  protocol: string;
  tls: string;
  output: string;
}

function h2load(args: string[], timeoutMs = 40_000): Promise<H2loadResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout.on('data', (c: Buffer) => (output += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('error', reject);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`h2load exit ${code}:\n${output}`));
      const num = (re: RegExp) => Number(re.exec(output)?.[1] ?? NaN);
      resolve({
        succeeded: num(/requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded/),
        ok2xx: num(/status codes: (\d+) 2xx/),
        reqPerSec: num(/finished in [\d.]+m?s, ([\d.]+) req\/s/),
        latency: /time for request:\s+(.*)/.exec(output)?.[1]?.trim().replace(/\s+/g, ' ') ?? '?',
        protocol: /Application protocol: (\S+)/.exec(output)?.[1] ?? '',
        tls: /TLS Protocol: (\S+)/.exec(output)?.[1] ?? '',
        output,
      });
    });
  });
}

/** A URI list for h2load -i: `count` beacons with the id in the query and values that need decoding. */
function uriFile(dir: string, base: string, run: string, count: number): string {
  const file = path.join(dir, `${run}.uris`);
  const uris = Array.from({ length: count }, (_, i) => `${base}/track?run=${run}&i=${i}&u=%2Fcart%3Fx%3D1&t=caf%C3%A9&n[]=1&n[]=2`);
  fs.writeFileSync(file, `${uris.join('\n')}\n`);
  return file;
}

/**
 * h2load gives every client (connection) the URI list from its start, so
 * with `clients` connections each URI is sent `clients` times: each id must be
 * on disk exactly that many times, with the values of its query.
 */
function checkLines(lines: Record<string, unknown>[], run: string, perClient: number, clients: number): void {
  const counts = new Map<string, number>();
  for (const v of lines) {
    if (v.run !== run) continue;
    const { i, ...rest } = v;
    assert.deepEqual(rest, { run, u: '/cart?x=1', t: 'café', n: ['1', '2'] });
    counts.set(String(i), (counts.get(String(i)) ?? 0) + 1);
  }
  assert.equal(counts.size, perClient, 'every URI has lines');
  for (const [i, n] of counts) assert.equal(n, clients, `beacon i=${i}: ${n} lines for ${clients} requests`);
}

describe('HTTPS and HTTP/2 at HAProxy (packaging/haproxy/scratchd-tls.cfg)', available, () => {
  test('the shipped files are valid together (haproxy -c), given a certificate at the shipped path', () => {
    const dir = tempDir('scratchd-tls-');
    const { pem } = makeCertificate(dir, [HOST]);
    const tls = path.join(dir, 'tls.cfg');
    fs.writeFileSync(tls, fs.readFileSync(tlsConfig, 'utf8').replace(/(?<=^ {4}bind \S+ ssl crt )\/etc\/haproxy\/certs\/scratchd\.pem/m, pem));
    const check = spawnSync('haproxy', ['-c', '-f', shippedConfig, '-f', tls], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
  });

  test('curl: HTTP/2 over TLS 1.3 by ALPN, HTTP/1.1 over TLS, cleartext HTTP/1.1; the lines have the values', { timeout: 30_000 }, async () => {
    const edge = await startEdge();
    try {
      const h2 = curl(edge, 'run=curl&p=h2&t=caf%C3%A9', ['--http2', '--tlsv1.3']);
      assert.deepEqual([h2.version, h2.status], ['2', 200]);
      assert.match(h2.log, /SSL connection using TLSv1\.3/);
      assert.match(h2.log, /ALPN: server accepted h2/);
      const h1 = curl(edge, 'run=curl&p=h1', ['--http1.1']);
      assert.deepEqual([h1.version, h1.status], ['1.1', 200]);
      const clear = spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_version} %{response_code}', '-H', `Host: ${HOST}`, `http://127.0.0.1:${edge.haproxy.port}/track?run=curl&p=clear`], { encoding: 'utf8' });
      assert.equal(clear.stdout, '1.1 200', clear.stderr);
      await edge.primary.stop('SIGTERM');
      assert.deepEqual(
        values(edge.primary).sort((a, b) => String(a.p).localeCompare(String(b.p))),
        [{ run: 'curl', p: 'clear' }, { run: 'curl', p: 'h1' }, { run: 'curl', p: 'h2', t: 'café' }],
      );
    } finally {
      await stopEdge(edge);
    }
  });

  test('X-Forwarded-For over HTTP/2: the duplicate check sees the client\'s address, not HAProxy\'s, nor a forged one', { timeout: 30_000 }, async () => {
    const edge = await startEdge({ checks: { duplicateWindowMs: 60_000 } });
    try {
      // The same beacon from 127.0.0.2 twice (the second with a forged
      // X-Forwarded-For), and once from 127.0.0.3. HAProxy itself connects to
      // scratchd from 127.0.0.1 for all three.
      for (const [from, extra] of [['127.0.0.2', []], ['127.0.0.2', ['-H', 'X-Forwarded-For: 198.51.100.9']], ['127.0.0.3', []]] as const) {
        const reply = curl(edge, 'same=1', ['--http2', '--interface', from, ...extra]);
        assert.deepEqual([reply.version, reply.status], ['2', 200]);
      }
      const stats = await edge.primary.stats();
      assert.equal(stats.requests.tracked, 2, 'two clients: one line each (were HAProxy\'s address used, one line in all)');
      assert.equal(stats.requests.duplicate, 1, 'the second from 127.0.0.2 is its duplicate (were the forged entry used, it would be new)');
    } finally {
      await stopEdge(edge);
    }
  });

  test('h2load: beacons as concurrent streams on 4 HTTP/2 connections over TLS 1.3, one line each; beside HTTP/1.1', { timeout: 60_000 }, async (t: TestContext) => {
    const edge = await startEdge();
    try {
      const clients = 4;
      const perClient = 1024;
      const h1Connections = 128;
      const h2 = await h2load(['-n', String(clients * perClient), '-c', String(clients), '-m', '32', '--connect-to', `127.0.0.1:${edge.tlsPort}`,
        '-i', uriFile(edge.dir, `https://${HOST}`, 'h2', perClient)]);
      assert.equal(h2.tls, 'TLSv1.3', h2.output);
      assert.equal(h2.protocol, 'h2', h2.output);
      assert.equal(h2.succeeded, clients * perClient, h2.output);
      assert.equal(h2.ok2xx, clients * perClient, h2.output);
      const afterH2 = (await edge.primary.stats()).connections.accepted ?? 0;
      // The same number through the cleartext frontend over HTTP/1.1 keep-alive, as many requests in flight (128 connections).
      const h1 = await h2load(['--h1', '-n', String(clients * perClient), '-c', String(h1Connections), '--connect-to', `127.0.0.1:${edge.haproxy.port}`,
        '-i', uriFile(edge.dir, `http://${HOST}`, 'h1', (clients * perClient) / h1Connections)]);
      assert.equal(h1.ok2xx, clients * perClient, h1.output);
      const afterH1 = (await edge.primary.stats()).connections.accepted ?? 0;
      t.diagnostic(`scratchd accepted ${afterH2} connections from HAProxy for the HTTP/2 run, ${afterH1 - afterH2} for the HTTP/1.1 one`);
      t.diagnostic(`h2load, HTTP/2 over TLS 1.3, ${clients} connections × 32 streams: ${h2.reqPerSec} req/s; time for request (min max mean sd) ${h2.latency}`);
      t.diagnostic(`h2load, HTTP/1.1 cleartext, ${h1Connections} keep-alive connections: ${h1.reqPerSec} req/s; time for request (min max mean sd) ${h1.latency}`);
      assert.equal(await edge.primary.stop('SIGTERM'), 0);
      const lines = values(edge.primary);
      assert.equal(lines.length, 2 * clients * perClient);
      checkLines(lines, 'h2', perClient, clients);
      checkLines(lines, 'h1', (clients * perClient) / h1Connections, h1Connections);
      assert.equal(values(edge.backup).length, 0, 'the backup took nothing while the primary was up');
    } finally {
      await stopEdge(edge);
    }
  });

  test('failover as in scratchd.cfg: SIGTERM of the primary during an HTTP/2 run, every stream 200, every 200 on disk', { timeout: 60_000 }, async (t) => {
    const edge = await startEdge();
    try {
      // Enough that the run outlasts the primary's drain (it accepts for up to 1 s, while HAProxy's
      // checks mark it down in ~0.7 s): 6,000 streams at ~8k/s once all went to the primary.
      const clients = 4;
      const perClient = 4000;
      const run = h2load(['-n', String(clients * perClient), '-c', String(clients), '-m', '8', '--connect-to', `127.0.0.1:${edge.tlsPort}`,
        '-i', uriFile(edge.dir, `https://${HOST}`, 'fo', perClient)]);
      // SIGTERM once the primary has a sixth of the beacons: the rest are still to come, on open HTTP/2 connections.
      let finished = false;
      run.then(() => (finished = true), () => (finished = true));
      while (!finished && ((await edge.primary.stats()).requests.tracked ?? 0) < 1000) await new Promise((r) => setTimeout(r, 10));
      assert.equal(finished, false, 'h2load still running when the primary is stopped');
      assert.equal(await edge.primary.stop('SIGTERM'), 0, edge.primary.stderr());
      const result = await run;
      assert.equal(result.ok2xx, clients * perClient, result.output);
      assert.equal(await edge.backup.stop('SIGTERM'), 0);
      const primary = values(edge.primary).length;
      const backup = values(edge.backup).length;
      t.diagnostic(`failover: primary ${primary} lines, backup ${backup}`);
      assert.ok(primary > 0 && backup > 0, `both served (primary ${primary}, backup ${backup})`);
      checkLines([...values(edge.primary), ...values(edge.backup)], 'fo', perClient, clients);
    } finally {
      await stopEdge(edge);
    }
  });
});
