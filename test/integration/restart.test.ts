/**
 * Zero-downtime restarts: scratchd on a socket held the way systemd holds a
 * .socket unit's (test/support/socket-holder.py), restarted several times
 * under steady load — keep-alive connections and a new connection per
 * request — without one failed request, and with exactly one line on disk
 * (and in Kafka) per 200 the client saw.
 *
 * - sequential: SIGTERM, wait for the exit, then start the next process, as
 *   systemd does for Restart= and `systemctl restart`: connections made in
 *   between wait in the socket's backlog.
 * - overlapping: start the next process, wait until it listens, then SIGTERM
 *   the old one; both accept from the one backlog for a moment.
 *
 * The client retries once, on a new connection, a request whose reused
 * keep-alive connection closed before any byte of the answer (RFC 9112
 * §9.3.1, as browsers and HAProxy do); retries are reported, not failures.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { request } from '../support/http';
import { consumeAll, eventually, kafkaAvailable, sharedBroker, type ConsumedMessage } from '../support/kafka';
import { Load, reconcile, requestIdOf, type LoadReport, type Reconciliation } from '../support/load-client';
import { cliPath } from '../support/paths';
import { allLines, FLAVORS, tempDir, writeConfig } from '../support/scratchd';
import { holderAvailable, SocketHolder, type Generation } from '../support/socket-holder';

const RESTARTS = 4;
const BETWEEN_RESTARTS_MS = 1500;
/**
 * 2600 requests/s: 1500/s on 16 busy keep-alive connections, 100/s on 64
 * mostly idle ones (a request every ~0.6 s each, like browsers), 1000/s on a
 * new connection each.
 */
const LOAD = {
  groups: [
    { name: 'k', rate: 1500, connections: 16 },
    { name: 's', rate: 100, connections: 64 },
    { name: 'f', rate: 1000, connections: 16, fresh: true },
  ],
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Timing {
  /** SIGTERM → the old process has exited. */
  stopMs: number;
  /** Start → the new process logs "listening". */
  startMs: number;
}

async function startGeneration(holder: SocketHolder): Promise<{ generation: Generation; startMs: number }> {
  const started = performance.now();
  const generation = await holder.start();
  await generation.waitForLog(/^http: listening on .*\(systemd socket\)/, 20_000);
  return { generation, startMs: Math.round(performance.now() - started) };
}

async function stopGeneration(generation: Generation): Promise<number> {
  const started = performance.now();
  generation.kill('SIGTERM');
  const code = await generation.exited;
  assert.equal(code, 0, `generation ${generation.index} exit status; output:\n${generation.stderr()}`);
  return Math.round(performance.now() - started);
}

interface RunResult {
  report: LoadReport;
  timings: Timing[];
  dir: string;
  run: string;
}

async function restartUnderLoad(mode: 'sequential' | 'overlapping', extraConfig: Record<string, unknown> = {}): Promise<RunResult> {
  const dir = tempDir('scratchd-restart-');
  const config = writeConfig(dir, { listen: 'systemd', admin: '127.0.0.1:0', ...extraConfig });
  const holder = await SocketHolder.open([process.execPath, cliPath, 'serve', '--config', config], dir);
  const run = `r${process.pid}x${Date.now().toString(36)}`;
  const timings: Timing[] = [];
  let load: Load | null = null;
  try {
    let current = (await startGeneration(holder)).generation;
    load = new Load({ port: holder.port, run, ...LOAD });
    await sleep(BETWEEN_RESTARTS_MS);
    for (let i = 0; i < RESTARTS; i++) {
      if (mode === 'sequential') {
        const stopMs = await stopGeneration(current);
        const next = await startGeneration(holder);
        timings.push({ stopMs, startMs: next.startMs });
        current = next.generation;
      } else {
        const next = await startGeneration(holder);
        const stopMs = await stopGeneration(current);
        timings.push({ stopMs, startMs: next.startMs });
        current = next.generation;
      }
      await sleep(BETWEEN_RESTARTS_MS);
    }
    const report = await load.stop();
    load = null;
    // What a stop spooled (Kafka slow at its deadline) the next start drains;
    // after the last restart, the last generation is that next start.
    if ('kafka' in extraConfig) await kafkaSettled(current);
    await stopGeneration(current);
    return { report, timings, dir, run };
  } finally {
    await load?.stop();
    await holder.close();
  }
}

/** Waits (≤ 30 s) until a generation's Kafka backend holds nothing: no line queued or in flight, an empty spool. */
async function kafkaSettled(generation: Generation): Promise<void> {
  let kafka: Record<string, unknown> = {};
  const settled = await eventually(async () => {
    const reply = await request(generation.adminPort(), '127.0.0.1', '/stats');
    kafka = (JSON.parse(reply.body.toString('utf8')) as { backends: Record<string, Record<string, unknown>> }).backends.kafka!;
    return kafka.queued === 0 && kafka.spool_bytes === 0 ? [kafka] : [];
  }, 1);
  if (settled.length === 0) assert.fail(`the Kafka backend did not settle within 30 s: ${JSON.stringify(kafka)}`);
}

/**
 * Where the lines missing from Kafka stand, for a failure's message: each
 * missing line as the files have it; each generation's `seq` headers (boot-n,
 * one number per line a process pushed) with their gaps and the messages
 * beside each gap; and each partition's offsets with their gaps. A seq gap
 * beside a partition without an offset gap means the broker never appended
 * the line; an offset gap, that the consumer did not read it.
 */
function whereMissing(dir: string, okIds: readonly string[], fileLines: readonly string[], messages: readonly ConsumedMessage[], run: string): string {
  const inKafka = new Set(messages.map((m) => requestIdOf(m.value, run)));
  const ok = new Set(okIds);
  const out: string[] = [];
  for (const line of fileLines) {
    const id = requestIdOf(line, run);
    if (id !== null && !inKafka.has(id) && ok.has(id)) out.push(`missing: ${line}`);
  }
  const bySeq = new Map<string, Map<number, ConsumedMessage>>();
  for (const m of messages) {
    const [boot, n] = (m.headers.seq ?? '-').split('-');
    if (boot === undefined || n === undefined) continue;
    if (!bySeq.has(boot)) bySeq.set(boot, new Map());
    bySeq.get(boot)!.set(Number(n), m);
  }
  const where = (m: ConsumedMessage | undefined) => (m === undefined ? 'none' : `${m.topic} [${m.partition}] @${m.offset} t=${m.timestamp} seq=${m.headers.seq}`);
  // Boots are start times in base 36 (one length for decades): their order is the generations'.
  const boots = [...bySeq.keys()].sort();
  for (const [index, boot] of boots.entries()) {
    const seqs = bySeq.get(boot)!;
    const sorted = [...seqs.keys()].sort((a, b) => a - b);
    const log = path.join(dir, `generation-${index}.log`);
    const written = fs.existsSync(log) ? /kafka: (\d+) lines written/.exec(fs.readFileSync(log, 'utf8'))?.[1] : undefined;
    out.push(`generation ${index} (${boot}): ${sorted.length} messages, seq ${sorted[0]}..${sorted.at(-1)}; its log: ${written ?? '?'} lines written`);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]! === sorted[i - 1]! + 1) continue;
      out.push(`  seq gap ${sorted[i - 1]! + 1}..${sorted[i]! - 1}: before ${where(seqs.get(sorted[i - 1]!))}; after ${where(seqs.get(sorted[i]!))}`);
    }
  }
  const byPartition = new Map<string, number[]>();
  for (const m of messages) {
    const key = `${m.topic} [${m.partition}]`;
    if (!byPartition.has(key)) byPartition.set(key, []);
    byPartition.get(key)!.push(m.offset);
  }
  for (const [key, offsets] of byPartition) {
    offsets.sort((a, b) => a - b);
    const gaps = offsets.filter((o, i) => i > 0 && o !== offsets[i - 1]! + 1).map((o) => `before @${o}`);
    out.push(`${key}: ${offsets.length} messages, offsets ${offsets[0]}..${offsets.at(-1)}${gaps.length > 0 ? `, gaps ${gaps.join(', ')}` : ', no gap'}`);
  }
  return out.join('\n');
}

/** Every generation's log lines about Kafka, for a failure's message. */
function kafkaLog(dir: string): string {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .sort()
    .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter((l) => l.startsWith('kafka')).map((l) => `${f}: ${l}`))
    .join('\n');
}

function describeRun(t: TestContext, mode: string, { report, timings }: RunResult, lines: Record<string, Reconciliation>): void {
  t.diagnostic(
    `${mode}: ${report.requests} requests in ${report.seconds} s (${Math.round(report.requests / report.seconds)}/s), ${report.ok} × 200, ` +
      `${report.failed} failed ${JSON.stringify(report.failures)}, ${report.retried} retried ${JSON.stringify(report.retries)}; ` +
      `latency p50 ${report.latencyMs.p50} ms, p99 ${report.latencyMs.p99} ms, max ${report.latencyMs.max} ms`,
  );
  t.diagnostic(`restarts (stop ms / start ms): ${timings.map((x) => `${x.stopMs}/${x.startMs}`).join(', ')}`);
  for (const [where, r] of Object.entries(lines)) {
    t.diagnostic(`${where}: ${r.lines} lines, ${r.missing} missing, ${r.duplicates} duplicated, ${r.unanswered} without a 200`);
  }
}

function assertClean(result: RunResult, lines: Record<string, Reconciliation>): void {
  const { report } = result;
  assert.ok(report.ok > 5000, `the load ran (${report.ok} × 200)`);
  assert.deepEqual(report.failures, {}, `no request failed; first failures:\n${report.samples.join('\n')}`);
  for (const [where, r] of Object.entries(lines)) {
    assert.deepEqual(r, { lines: report.ok, missing: 0, duplicates: 0, unanswered: 0 }, `${where}: one line per 200`);
  }
}

describe('zero-downtime restarts on a socket held like systemd does', holderAvailable, () => {
  test('sequential (systemd Restart=): SIGTERM, exit, start the next; no request fails, one line per 200', { timeout: 60_000 }, async (t) => {
    const result = await restartUnderLoad('sequential');
    const files = { files: reconcile(result.report.okIds, allLines(result.dir), result.run) };
    describeRun(t, 'sequential', result, files);
    assertClean(result, files);
  });

  test('overlapping: the next starts before the old one gets SIGTERM; no request fails, one line per 200', { timeout: 60_000 }, async (t) => {
    const result = await restartUnderLoad('overlapping');
    const files = { files: reconcile(result.report.okIds, allLines(result.dir), result.run) };
    describeRun(t, 'overlapping', result, files);
    assertClean(result, files);
  });

  test('sequential with the Kafka backend: one line per 200 in the files and in Kafka', { ...kafkaAvailable, timeout: 90_000 }, async (t) => {
    const brokers = sharedBroker();
    const topic = `restart${process.pid}x${Date.now().toString(36)}.{flavor}`;
    // One spool folder for all generations: what one process spools at its stop, the next drains.
    const result = await restartUnderLoad('sequential', { kafka: { brokers, topic, spool: { path: 'spool' }, librdkafka: { 'linger.ms': 5 } } });
    const inKafka = async () => (await Promise.all(FLAVORS.map((f) => consumeAll(brokers, topic.replace('{flavor}', f.name))))).flat();
    let messages = await inKafka();
    for (let i = 0; i < 40 && messages.length < result.report.ok; i++) {
      await sleep(250);
      messages = await inKafka();
    }
    const fileLines = allLines(result.dir);
    const lines = {
      files: reconcile(result.report.okIds, fileLines, result.run),
      kafka: reconcile(result.report.okIds, messages.map((m) => m.value), result.run),
    };
    describeRun(t, 'sequential + kafka', result, lines);
    if (lines.kafka.lines !== result.report.ok) {
      t.diagnostic(`Kafka's log lines:\n${kafkaLog(result.dir)}`);
      t.diagnostic(`where the missing lines stand:\n${whereMissing(result.dir, result.report.okIds, fileLines, messages, result.run)}`);
    }
    assertClean(result, lines);
  });
});
