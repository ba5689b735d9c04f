/**
 * The Kafka backend with the real CLI and a real broker: lines arrive
 * exactly as in the files; outages spool and drain without losing a line;
 * restore rebuilds day files byte for byte.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { consumeAll, createTopics, eventually, kafkaAvailable, privateBroker, sharedBroker, type PrivateBroker } from '../support/kafka';
import { request } from '../support/http';
import { cliPath } from '../support/paths';
import { allLines, readLines, startScratchd, tempDir, TEST_WORKERS, type Running } from '../support/scratchd';

const HOSTS = { skroutz: 'www.skroutz.gr', alve: 'www.alve.com', scrooge: 'www.scrooge.co.uk' } as const;
type FlavorName = keyof typeof HOSTS;
const NAMES = Object.keys(HOSTS) as FlavorName[];

let topicCounter = 0;
function uniqueTopic(): string {
  return `it${process.pid}x${Date.now().toString(36)}x${topicCounter++}.{flavor}`;
}

function kafkaConfig(brokers: string, topic: string, extra: Record<string, unknown> = {}) {
  return { kafka: { brokers, topic, key: 'uid', downAfterMs: 1000, spool: { path: 'spool' }, librdkafka: { 'linger.ms': 2 }, ...extra } };
}

/** Sends n beacons spread over the flavors on keep-alive connections; returns the statuses and the slowest answer. */
async function sendBeacons(app: Running, n: number, tag: string): Promise<{ statuses: number[]; maxMs: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const statuses: number[] = [];
  let maxMs = 0;
  try {
    await Promise.all(
      Array.from({ length: 8 }, async (_, worker) => {
        for (let i = worker; i < n; i += 8) {
          const flavor = NAMES[i % NAMES.length]!;
          const started = performance.now();
          const reply = await request(app.port, HOSTS[flavor], `/track?uid=${tag}-${i}&i=${i}&page=https%3A%2F%2Fx%2F${i}&items[][id]=${i}`, { agent });
          maxMs = Math.max(maxMs, performance.now() - started);
          statuses.push(reply.status);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return { statuses, maxMs };
}

/** Lines of a flavor's files, all days. */
function fileLines(app: Running, flavor: FlavorName): string[] {
  const dir = path.join(app.dir, 'logs', flavor);
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).flatMap((f) => readLines(path.join(dir, f)));
}

async function topicValues(brokers: string, topic: string, flavor: FlavorName, atLeast: number): Promise<string[]> {
  const messages = await eventually(() => consumeAll(brokers, topic.replace('{flavor}', flavor)), atLeast);
  return messages.map((m) => m.value);
}

const sorted = (values: string[]) => [...values].sort();

/** POSTs a JSON array of objects (one line each) on a connection of its own; resolves with the status. */
function postJson(port: number, host: string, objects: object[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/track', method: 'POST', agent: false, headers: { Host: host, 'Content-Type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(JSON.stringify(objects));
  });
}

describe('kafka backend with a healthy broker', kafkaAvailable, () => {
  test('every line arrives in its topic exactly as in the file, with key, headers and timestamp; restore rebuilds the files', async () => {
    const brokers = sharedBroker();
    const topic = uniqueTopic();
    const app = await startScratchd({ config: kafkaConfig(brokers, topic) });
    const { statuses } = await sendBeacons(app, 300, 'a');
    assert.ok(statuses.every((s) => s === 200));
    await eventually(async () => ((await app.stats()).backends.kafka!.written === 300 ? [1] : []), 1, 20_000);
    const metrics = (await request(app.adminPort, '127.0.0.1', '/metrics')).body.toString();
    assert.match(metrics, /^scratchd_backend_up\{backend="kafka"\} 1$/m);
    assert.match(metrics, /^scratchd_backend_written_total\{backend="kafka"\} 300$/m);
    assert.equal((await app.stats()).backends.kafka!.delivery_report_mismatches, 0);
    assert.equal((await app.stats()).backends.kafka!.delivery_offset_repeats, 0);
    for (const name of ['spool_bytes', 'in_flight', 'possible_duplicates', 'spool_corrupt', 'spool_truncated', 'librdkafka_msg_cnt']) assert.match(metrics, new RegExp(`^scratchd_backend_${name}\\{backend="kafka"\\} \\d+$`, 'm'));
    assert.equal(await app.stop(), 0, app.stderr());
    for (const flavor of NAMES) {
      const lines = fileLines(app, flavor);
      assert.equal(lines.length, 100);
      const messages = await eventually(() => consumeAll(brokers, topic.replace('{flavor}', flavor)), 100);
      assert.deepEqual(sorted(messages.map((m) => m.value)), sorted(lines), `${flavor}: topic holds exactly the file's lines`);
      for (const m of messages) {
        const uid = /"uid":"([^"]+)"/.exec(m.value)![1];
        assert.equal(m.key, uid);
        assert.equal(m.headers.flavor, flavor);
        assert.match(m.headers.seq!, /^[0-9a-z]+-\d+$/);
        const time = /"time":"([^"]+)"/.exec(m.value)![1]!;
        assert.equal(m.timestamp, Date.parse(time), 'message timestamp = receive time');
      }
    }
    // restore: per flavor and day, byte-identical to what the file backend wrote.
    for (const flavor of NAMES) {
      for (const file of fs.readdirSync(path.join(app.dir, 'logs', flavor))) {
        const date = file.replace('.log', '');
        const out = path.join(app.dir, 'restored', `${flavor}-${date}.log`);
        const run = spawnSync(process.execPath, [cliPath, 'restore', '--config', app.configPath, '--flavor', flavor, '--date', date, '--out', out], { encoding: 'utf8' });
        assert.equal(run.status, 0, run.stderr);
        assert.match(run.stdout, /restored .*: \d+ lines from \d+ partitions/);
        assert.ok(fs.readFileSync(out).equals(fs.readFileSync(path.join(app.dir, 'logs', flavor, file))), `${flavor} ${date}: restored file differs`);
        const again = spawnSync(process.execPath, [cliPath, 'restore', '--config', app.configPath, '--flavor', flavor, '--date', date, '--out', out], { encoding: 'utf8' });
        assert.equal(again.status, 73, 'an existing file is not overwritten without --force');
      }
    }
  });

  test('a line larger than message.max.bytes is refused at once (503: a blocking backend did not take it), counted, never spooled; Kafka stays up for the others', async () => {
    const brokers = sharedBroker();
    const topic = uniqueTopic();
    const app = await startScratchd({ config: kafkaConfig(brokers, topic, { librdkafka: { 'linger.ms': 2, 'message.max.bytes': 2_000 } }) });
    try {
      await eventually(async () => ((await app.stats()).backends.kafka!.topics_waiting === 0 ? [1] : []), 1, 20_000);
      const big = await request(app.port, HOSTS.alve, `/track?uid=big&pad=${'x'.repeat(3_000)}`);
      assert.equal(big.status, 503, 'kafka.whenFull "block": a 200 would promise it reaches Kafka');
      const { statuses } = await sendBeacons(app, 60, 's');
      assert.ok(statuses.every((s) => s === 200));
      await eventually(async () => ((await app.stats()).backends.kafka!.written === 60 ? [1] : []), 1, 20_000);
      const kafka = (await app.stats()).backends.kafka!;
      assert.equal(kafka.dropped_by_reason.too_large, 1, JSON.stringify(kafka));
      assert.equal(kafka.spooled, 0, 'not sent round the spool');
      assert.equal(kafka.up, 1);
      assert.equal((await request(app.adminPort, '127.0.0.1', '/ready')).status, 200, 'one line too large says nothing of the backend');
      assert.match(app.stderr(), /larger than kafka\.librdkafka\["message\.max\.bytes"\]/);
      assert.ok(fileLines(app, 'alve').some((l) => l.includes('"uid":"big"')));
    } finally {
      assert.equal(await app.stop(), 0, app.stderr());
    }
  });

  for (const alone of [false, true]) {
    test(`workers: 2${alone ? ', Kafka the only backend' : ''}: a line larger than message.max.bytes gets the same 503 from either thread, counted once as too_large${alone ? ', not as not_taken' : ', kept by the file backend'}`, async () => {
      const brokers = sharedBroker();
      const topic = uniqueTopic();
      const app = await startScratchd({ config: { ...kafkaConfig(brokers, topic, { librdkafka: { 'linger.ms': 2, 'message.max.bytes': 2_000 } }), workers: 2, ...(alone ? { file: undefined } : {}) } });
      const n = 40;
      const m = 20;
      try {
        await app.waitForLog(/^http: 2 workers serving$/);
        await eventually(async () => ((await app.stats()).backends.kafka!.topics_waiting === 0 ? [1] : []), 1, 20_000);
        // One connection each (agent: false): the kernel spreads them over both threads.
        const bigs = await Promise.all(Array.from({ length: n }, (_, i) => request(app.port, HOSTS.alve, `/track?uid=big${i}&pad=${'x'.repeat(3_000)}`)));
        const smalls = await Promise.all(Array.from({ length: n }, (_, i) => request(app.port, HOSTS.skroutz, `/track?uid=small${i}`)));
        // A POST of a small line and a big one: 503 as with one thread (the small one is kept).
        const posts = await Promise.all(Array.from({ length: m }, (_, i) => postJson(app.port, HOSTS.alve, [{ uid: `psmall${i}` }, { uid: `pbig${i}`, pad: 'x'.repeat(3_000) }])));
        const stats = await app.stats();
        const workers = (stats as unknown as { workers: { requests: number[]; not_taken: number } }).workers;
        assert.ok(workers.requests.length === 2 && workers.requests.every((r) => r > 0), `both threads answered: ${JSON.stringify(workers.requests)}`);
        assert.deepEqual(bigs.map((r) => r.status), bigs.map(() => 503), 'kafka.whenFull "block": as with one thread, never a 200');
        assert.ok(smalls.every((r) => r.status === 200));
        assert.deepEqual(posts, posts.map(() => 503));
        const kafka = stats.backends.kafka!;
        assert.equal(kafka.dropped_by_reason.too_large, n + m, JSON.stringify(kafka));
        assert.equal(kafka.spooled, 0);
        assert.equal(stats.requests.unavailable, n + m);
        // As with one thread: the file backend took every line; alone, Kafka only the small ones.
        assert.equal(stats.requests.tracked, alone ? n + m : 2 * (n + m));
        assert.equal(workers.not_taken, 0, 'answered 503: not a line lost after a 200');
        await eventually(async () => ((await app.stats()).backends.kafka!.written === n + m ? [1] : []), 1, 20_000);
      } finally {
        assert.equal(await app.stop(), 0, app.stderr());
      }
      if (!alone) assert.equal(fileLines(app, 'alve').filter((l) => l.includes('big')).length, n + m, 'every line also where the file backend keeps it');
    });
  }

  test('a topic stamped with the broker\'s time (LogAppendTime): every delivery report still matches its line', async () => {
    const brokers = sharedBroker();
    const topic = uniqueTopic();
    await createTopics(brokers, NAMES.map((f) => topic.replace('{flavor}', f)), 1, { 'message.timestamp.type': 'LogAppendTime' });
    const app = await startScratchd({ config: kafkaConfig(brokers, topic) });
    try {
      const { statuses } = await sendBeacons(app, 30, 'l');
      assert.ok(statuses.every((s) => s === 200));
      await eventually(async () => ((await app.stats()).backends.kafka!.written === 30 ? [1] : []), 1, 20_000);
      assert.equal((await app.stats()).backends.kafka!.delivery_report_mismatches, 0, app.stderr());
    } finally {
      assert.equal(await app.stop(), 0, app.stderr());
    }
  });

  test('check-config names a librdkafka setting librdkafka refuses', () => {
    const dir = tempDir();
    const file = path.join(dir, 'c.json');
    fs.writeFileSync(file, JSON.stringify({ flavors: [{ name: 'a', hosts: ['a.com'], timezone: 'UTC' }], kafka: { brokers: '127.0.0.1:9', librdkafka: { 'no.such.setting': 1 } } }));
    const run = spawnSync(process.execPath, [cliPath, 'check-config', '--config', file], { encoding: 'utf8' });
    assert.equal(run.status, 78);
    assert.match(run.stderr, /kafka\.librdkafka\["no\.such\.setting"\]: No such configuration property/);
  });
});

describe('kafka backend through outages', kafkaAvailable, () => {
  let broker: PrivateBroker;
  before(() => {
    broker = privateBroker();
  });
  after(() => {
    broker?.stop();
  });

  test('broker killed mid-load: every answer is 200 and fast, lines spool, then drain; nothing is lost', async (t) => {
    const topic = uniqueTopic();
    // Topics there before the start: lines go to explicit partitions, matched by id (in-flight.ts).
    await createTopics(broker.bootstrap, NAMES.map((f) => topic.replace('{flavor}', f)), 3);
    const app = await startScratchd({ config: kafkaConfig(broker.bootstrap, topic) });
    try {
      // Connected and the topics' partitions known (kafka.md, "New topics"): the fault meets lines on their way.
      await eventually(async () => ((await app.stats()).backends.kafka!.topics_waiting === 0 ? [1] : []), 1, 10_000);
      assert.ok((await sendBeacons(app, 90, 'before')).statuses.every((s) => s === 200));
      broker.pause(true);
      const during = await sendBeacons(app, 300, 'during');
      assert.ok(during.statuses.every((s) => s === 200), 'HTTP unaffected');
      assert.ok(during.maxMs < 1000, `slowest answer ${during.maxMs} ms`);
      const down = await app.stats();
      // Files keep being written (file.writeIntervalMs may hold the last lines for a moment).
      await eventually(() => Promise.resolve(allLines(app.dir).length >= 390 ? [1] : []), 1, 5_000);
      assert.equal(allLines(app.dir).length, 390, 'files keep being written');
      await eventually(async () => ((await app.stats()).backends.kafka!.up === 0 ? [1] : []), 1, 10_000).catch((err: Error) => {
        throw new Error(`${err.message}; exit ${app.proc.exitCode}; stderr:\n${app.stderr()}`);
      });
      broker.resume();
      const drained = await eventually(async () => {
        const s = await app.stats();
        return s.backends.kafka!.written! >= 390 && s.backends.kafka!.spool_bytes === 0 ? [s] : [];
      }, 1, 60_000);
      assert.equal(drained.length, 1, `not drained: ${JSON.stringify((await app.stats()).backends.kafka)}`);
      assert.ok(down.backends.kafka!.spooled! > 0 || drained[0]!.backends.kafka!.spooled! > 0, 'lines went through the spool');
      for (const flavor of NAMES) {
        const values = await topicValues(broker.bootstrap, topic, flavor, 130);
        assert.deepEqual([...new Set(values)].sort(), sorted(fileLines(app, flavor)), `${flavor}: every line in Kafka`);
      }
      const stats = await app.stats();
      assert.equal(stats.backends.kafka!.dropped, 0);
      assert.equal(stats.backends.kafka!.delivery_report_mismatches, 0);
      assert.equal(stats.backends.kafka!.delivery_offset_repeats, 0);
      // Failures librdkafka reported before older lines' outcomes: matched by id, so harmless (docs/kafka.md).
      t.diagnostic(`delivery reports out of produce order: ${stats.backends.kafka!.delivery_reports_reordered}`);
    } catch (err) {
      // What Kafka's side looked like, so that a rare failure says more than its assertion.
      const kafka = await app.stats().then((s) => JSON.stringify(s.backends.kafka), (e: Error) => e.message);
      throw new Error(`${(err as Error).message}\nkafka stats: ${kafka}\nscratchd stderr:\n${app.stderr()}`, { cause: err });
    } finally {
      const code = await app.stop();
      broker.ensureRunning();
      assert.equal(code, 0, app.stderr());
    }
  });

  test('stopped while the broker is down, restarted later: the spool drains first, everything is delivered', async () => {
    const topic = uniqueTopic();
    broker.pause();
    const dir = tempDir();
    const first = await startScratchd({ dir, config: kafkaConfig(broker.bootstrap, topic) });
    assert.ok((await sendBeacons(first, 120, 'offline')).statuses.every((s) => s === 200));
    assert.equal(await first.stop(), 0, first.stderr());
    assert.match(first.stderr(), /kafka: \d+ lines written, 0 dropped/);
    const spooled = fs.readdirSync(path.join(dir, 'spool')).filter((f) => f.endsWith('.spool'));
    assert.ok(spooled.length > 0, 'the spool holds the lines');
    broker.resume();
    const second = await startScratchd({ dir, config: kafkaConfig(broker.bootstrap, topic) });
    try {
      await second.waitForLog(/spool: \d+ segments, \d+ bytes to drain/);
      const done = await eventually(async () => {
        const s = await second.stats();
        return s.backends.kafka!.drained! >= 120 && s.backends.kafka!.spool_bytes === 0 ? [s] : [];
      }, 1, 60_000);
      assert.equal(done.length, 1, `not drained: ${JSON.stringify((await second.stats()).backends.kafka)}`);
    } finally {
      assert.equal(await second.stop(), 0, second.stderr());
    }
    assert.deepEqual(fs.readdirSync(path.join(dir, 'spool')).filter((f) => f.endsWith('.spool')), [], 'drained segments are deleted');
    for (const flavor of NAMES) {
      const values = await topicValues(broker.bootstrap, topic, flavor, 40);
      assert.deepEqual(sorted(values), sorted(fileLines(second, flavor)));
    }
  });

  test('started while the broker is down, reached after failed connects: every delivery report arrives once', async () => {
    const topic = uniqueTopic();
    await createTopics(broker.bootstrap, NAMES.map((f) => topic.replace('{flavor}', f)), 3);
    broker.pause();
    const app = await startScratchd({ config: kafkaConfig(broker.bootstrap, topic) });
    try {
      await app.waitForLog(/kafka: warning: cannot reach/);
      // At least one more connect attempt fails (the probe retries every second, each connect waits up to 5 s).
      await new Promise((r) => setTimeout(r, 7_000));
      broker.resume();
      await eventually(async () => {
        const k = (await app.stats()).backends.kafka!;
        return k.up === 1 && k.topics_waiting === 0 ? [1] : [];
      }, 1, 30_000);
      assert.ok((await sendBeacons(app, 60, 'after')).statuses.every((s) => s === 200));
      const [kafka] = await eventually(async () => {
        const k = (await app.stats()).backends.kafka!;
        return k.written! >= 60 && k.in_flight === 0 ? [k] : [];
      }, 1, 30_000);
      assert.ok(kafka !== undefined, JSON.stringify((await app.stats()).backends.kafka));
      // The binding added its report callback at every connect(): each report came once per attempt.
      assert.equal(kafka.delivery_report_mismatches, 0, JSON.stringify(kafka));
      assert.equal(kafka.written, 60);
    } finally {
      const code = await app.stop();
      broker.ensureRunning();
      assert.equal(code, 0, app.stderr());
    }
  });

  test("a hung broker: lines that find librdkafka's queue full go to the spool, and all arrive after it recovers", async () => {
    const topic = uniqueTopic();
    // downAfterMs long: Kafka still counts as up, so lines meet librdkafka's full queue.
    const app = await startScratchd({ config: kafkaConfig(broker.bootstrap, topic, { downAfterMs: 600_000, librdkafka: { 'queue.buffering.max.messages': 10 } }) });
    try {
      await app.waitForLog(/scratchd: serving/);
      // Up, and the topic's partitions known (kafka.md, "New topics"): lines are produced, not held.
      await eventually(async () => {
        const k = (await app.stats()).backends.kafka!;
        return k.up === 1 && k.topics_waiting === 0 ? [1] : [];
      }, 1, 10_000);
      broker.freeze();
      const sent = await sendBeacons(app, 150, 'hung');
      assert.ok(sent.statuses.every((s) => s === 200));
      assert.ok(sent.maxMs < 1000, `slowest answer ${sent.maxMs} ms`);
      // The Kafka thread reports its counters every few ms: /stats catches up.
      const [kafka] = await eventually(async () => {
        const k = (await app.stats()).backends.kafka!;
        return k.spooled! >= 100 ? [k] : [];
      }, 1, 5_000);
      assert.ok(kafka !== undefined, JSON.stringify((await app.stats()).backends.kafka));
      assert.ok(kafka.in_flight! <= 10);
      broker.thaw();
      const drained = await eventually(async () => {
        const s = await app.stats();
        return s.backends.kafka!.written! >= 150 && s.backends.kafka!.spool_bytes === 0 ? [s] : [];
      }, 1, 60_000);
      assert.equal(drained.length, 1, `not drained: ${JSON.stringify((await app.stats()).backends.kafka)}`);
      for (const flavor of NAMES) {
        const values = await topicValues(broker.bootstrap, topic, flavor, 50);
        assert.deepEqual([...new Set(values)].sort(), sorted(fileLines(app, flavor)));
      }
    } finally {
      const code = await app.stop();
      broker.thaw();
      assert.equal(code, 0, app.stderr());
    }
  });

  test('a hung broker past message.timeout.ms: the failures, in or out of produce order, each spool their own line; nothing is lost', async (t) => {
    const topic = uniqueTopic();
    // Topics there before the start: lines go to explicit partitions, matched by id (in-flight.ts).
    await createTopics(broker.bootstrap, NAMES.map((f) => topic.replace('{flavor}', f)), 3);
    // message.timeout.ms short (a topic-level setting: it must reach librdkafka); downAfterMs long, so lines keep going to librdkafka until the first failure.
    const app = await startScratchd({ config: kafkaConfig(broker.bootstrap, topic, { downAfterMs: 600_000, librdkafka: { 'linger.ms': 2, 'message.timeout.ms': 2000 } }) });
    try {
      await app.waitForLog(/scratchd: serving/);
      assert.ok((await sendBeacons(app, 30, 'before')).statuses.every((s) => s === 200));
      await eventually(async () => ((await app.stats()).backends.kafka!.written! >= 30 ? [1] : []), 1, 10_000);
      // The first request of a partition after the freeze stays in flight and fails when that request
      // times out; the lines after it wait in librdkafka's queue and fail on a scan of their own, which
      // may come first (docs/kafka.md). Either way, each failure must spool its own line.
      broker.freeze();
      const statuses: number[] = [];
      for (let round = 0; round < 15; round++) {
        statuses.push(...(await sendBeacons(app, 6, `hung${round}`)).statuses);
        await new Promise((r) => setTimeout(r, 100));
      }
      const sent = 30 + statuses.length;
      assert.ok(statuses.every((s) => s === 200));
      const [failed] = await eventually(async () => {
        const k = (await app.stats()).backends.kafka!;
        return k.up === 0 && k.in_flight === 0 && k.spooled! >= statuses.length ? [k] : [];
      }, 1, 15_000);
      // Before the fix of the topic config, message.timeout.ms stayed at librdkafka's 300 s: nothing failed here.
      assert.ok(failed !== undefined, `the hung lines did not fail: ${JSON.stringify((await app.stats()).backends.kafka)}`);
      assert.ok((failed.errors ?? 0) > 0);
      broker.thaw();
      const drained = await eventually(async () => {
        const s = await app.stats();
        return s.backends.kafka!.written! >= sent && s.backends.kafka!.spool_bytes === 0 ? [s] : [];
      }, 1, 60_000);
      assert.equal(drained.length, 1, `not drained: ${JSON.stringify((await app.stats()).backends.kafka)}`);
      for (const flavor of NAMES) {
        const values = await topicValues(broker.bootstrap, topic, flavor, Math.floor(sent / 3));
        assert.deepEqual([...new Set(values)].sort(), sorted(fileLines(app, flavor)), `${flavor}: every line in Kafka`);
      }
      const kafka = (await app.stats()).backends.kafka!;
      assert.equal(kafka.dropped, 0);
      assert.equal(kafka.delivery_report_mismatches, 0, 'a failed report has no timestamp, and is no mismatch');
      assert.equal(kafka.delivery_offset_repeats, 0);
      t.diagnostic(`failures reported out of produce order: ${kafka.delivery_reports_reordered} (errors ${kafka.errors}, lines ${sent})`);
    } finally {
      broker.thaw();
      const code = await app.stop();
      assert.equal(code, 0, app.stderr());
    }
  });

  test('kafka.whenFull "drop_newest": beyond spool.maxBytes lines are dropped and counted, and HTTP does not notice', async () => {
    broker.pause();
    const app = await startScratchd({ config: kafkaConfig(broker.bootstrap, uniqueTopic(), { whenFull: 'drop_newest', spool: { path: 'spool', maxBytes: 20_000 } }) });
    try {
      await app.waitForLog(/kafka: warning: cannot reach/);
      const sent = await sendBeacons(app, 150, 'full');
      assert.ok(sent.statuses.every((s) => s === 200));
      await eventually(async () => ((await app.stats()).backends.kafka!.queued === 0 ? [1] : []), 1, 5_000);
      const kafka = (await app.stats()).backends.kafka!;
      assert.ok(kafka.dropped_by_reason.spool_full! > 0, JSON.stringify(kafka));
      assert.ok(kafka.spool_bytes! <= 20_000);
      assert.equal(kafka.spooled! + kafka.dropped_by_reason.spool_full!, 150);
      await eventually(() => Promise.resolve(allLines(app.dir).length >= 150 ? [1] : []), 1, 5_000);
      assert.equal(allLines(app.dir).length, 150, 'the file backend has every line');
    } finally {
      const code = await app.stop();
      broker.resume();
      assert.equal(code, 0, app.stderr());
    }
  });

  test('kafka.whenFull "block" (the default): a beacon the full spool cannot take is answered 503, never a silent 200', async () => {
    broker.pause();
    const app = await startScratchd({ config: kafkaConfig(broker.bootstrap, uniqueTopic(), { spool: { path: 'spool', maxBytes: 20_000 } }) });
    try {
      await app.waitForLog(/kafka: warning: cannot reach/);
      const sent = await sendBeacons(app, 150, 'full');
      const ok = sent.statuses.filter((s) => s === 200).length;
      // The Kafka thread reports what it spooled every 20 ms: wait until it has reported every line.
      await eventually(async () => ((await app.stats()).backends.kafka!.spooled! >= ok ? [1] : []), 1, 5_000);
      const stats = await app.stats();
      const kafka = stats.backends.kafka!;
      const refused = sent.statuses.filter((s) => s === 503).length;
      assert.equal(ok + refused, 150, 'only 200 and 503');
      assert.ok(refused > 0, JSON.stringify(kafka));
      if (TEST_WORKERS === 1) assert.equal(refused, kafka.dropped_by_reason.spool_full, 'each 503 is a line the spool refused');
      // An HTTP thread's 503 follows the main thread's published refusal (docs/buffering.md): no push, no drop.
      else assert.ok((kafka.dropped_by_reason.spool_full ?? 0) <= refused, JSON.stringify(kafka));
      assert.equal(stats.requests.unavailable, refused);
      assert.equal(kafka.spooled, ok, 'each 200 is a spooled line');
      // Once every line is settled, the spool may still hold more lines: fill
      // it one beacon at a time until a settled spool refuses the next one (a
      // beacon can also be refused while the previous one is not yet reported
      // safe, hence many tries: each 200 adds ~600 bytes of 20,000). A
      // refusing 'block' backend makes the instance not ready: a load balancer
      // sends beacons elsewhere.
      let settled = stats;
      for (let i = 0; i < 200 && settled.backends.kafka!.refusing !== 1; i++) {
        await sendBeacons(app, 1, `fill${i}`);
        settled = (await eventually(async () => {
          const s = await app.stats();
          return s.backends.kafka!.queued === 0 ? [s] : [];
        }, 1, 5_000))[0]!;
      }
      assert.equal(settled.backends.kafka!.refusing, 1, JSON.stringify(settled.backends.kafka));
      assert.equal(settled.ready, false);
      assert.equal((await request(app.adminPort, '127.0.0.1', '/ready')).status, 503);
      // Kafka back: the spool drains, has room again, and the instance is ready.
      broker.resume();
      await eventually(async () => ((await request(app.adminPort, '127.0.0.1', '/ready')).status === 200 ? [1] : []), 1, 30_000);
      assert.equal((await app.stats()).backends.kafka!.refusing, 0);
      assert.equal((await sendBeacons(app, 1, 'after')).statuses[0], 200);
    } finally {
      const code = await app.stop();
      broker.ensureRunning();
      assert.equal(code, 0, app.stderr());
    }
  });
});
