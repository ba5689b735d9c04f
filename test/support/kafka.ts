/**
 * A real Kafka broker for tests, through test/kafka/broker.sh (Kafka 4.x in
 * KRaft mode from Maven Central, run with the machine's Java).
 *
 * - `sharedBroker()`: the broker test/run.js started for the whole run
 *   (KAFKA_BROKERS), or one started here. Tests must not stop or pause it.
 * - `privateBroker()`: a broker of one's own (its own state dir and ports),
 *   for fault tests that pause, kill and resume it.
 * Without Java/Maven the Kafka tests skip with the reason (fail under CI=true).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import type * as KafkaTypes from '@confluentinc/kafka-javascript';
import { kafkaCall, kafkaClient } from '../../src/backends/kafka/client';
import { repoRoot, testFile } from './paths';
import { hasCommand, needs } from './requires';
import { tempDir } from './scratchd';

const script = testFile('kafka', 'broker.sh');

export const kafkaAvailable = needs('a Kafka broker (Java 17+ and Maven)', hasCommand('java') && (hasCommand('mvn') || process.env.KAFKA_BROKERS !== undefined), 'apt-get install openjdk-17-jre-headless maven');

function broker(command: string, stateDir?: string): string {
  const result = spawnSync('bash', [script, ...command.split(' ')], {
    encoding: 'utf8',
    env: { ...process.env, ...(stateDir === undefined ? {} : { KAFKA_STATE_DIR: stateDir }) },
    cwd: repoRoot,
  });
  if (result.status !== 0) throw new Error(`broker.sh ${command} failed (${result.status}): ${result.stderr}`);
  return result.stdout.trim();
}

export function sharedBroker(): string {
  return (process.env.KAFKA_BROKERS ??= broker('start'));
}

export interface PrivateBroker {
  readonly bootstrap: string;
  /** Stops the process, keeping its port and data (`kill`: SIGKILL, a crash). */
  pause(kill?: boolean): void;
  resume(): void;
  /** SIGSTOP: connections stay open, nothing answers (a hung broker). */
  freeze(): void;
  thaw(): void;
  /** After a test that may have left it paused or frozen: running again, or throws. */
  ensureRunning(): void;
  stop(): void;
}

export function privateBroker(): PrivateBroker {
  const stateDir = path.join(tempDir('scratchd-kafka-'), 'broker');
  const bootstrap = broker('start', stateDir);
  return {
    bootstrap,
    pause: (kill = false) => void broker(kill ? 'pause --kill' : 'pause', stateDir),
    resume: () => void broker('resume', stateDir),
    freeze: () => void broker('freeze', stateDir),
    thaw: () => void broker('thaw', stateDir),
    // `start` resumes a paused broker and thaws a frozen one; a running one is left alone.
    ensureRunning: () => void broker('start', stateDir),
    stop: () => void broker('stop', stateDir),
  };
}

export interface ConsumedMessage {
  topic: string;
  partition: number;
  offset: number;
  value: string;
  key: string | null;
  timestamp: number;
  headers: Record<string, string>;
}

/** Every message of a topic, from the beginning to the end it has now. */
export async function consumeAll(bootstrap: string, topic: string, timeoutMs = 20_000): Promise<ConsumedMessage[]> {
  const Kafka = kafkaClient();
  const consumer = new Kafka.KafkaConsumer({ 'bootstrap.servers': bootstrap, 'group.id': `test-${process.pid}-${Date.now()}`, 'enable.auto.commit': false }, { 'auto.offset.reset': 'earliest' });
  await kafkaCall((cb) => consumer.connect({ timeout: timeoutMs }, cb));
  try {
    const metadata = await kafkaCall<KafkaTypes.Metadata>((cb) => consumer.getMetadata({ topic, timeout: timeoutMs }, cb));
    const partitions = metadata.topics.find((t) => t.name === topic)?.partitions.map((p) => p.id) ?? [];
    const ends = new Map<number, number>();
    for (const partition of partitions) {
      const w = await kafkaCall<KafkaTypes.WatermarkOffsets>((cb) => consumer.queryWatermarkOffsets(topic, partition, timeoutMs, cb));
      if (w.highOffset > 0) ends.set(partition, w.highOffset);
    }
    const out: ConsumedMessage[] = [];
    if (ends.size === 0) return out;
    consumer.assign([...ends.keys()].map((partition) => ({ topic, partition, offset: 0 })));
    const next = new Map([...ends.keys()].map((p) => [p, 0]));
    const deadline = Date.now() + timeoutMs;
    while ([...ends].some(([p, end]) => next.get(p)! < end)) {
      if (Date.now() > deadline) throw new Error(`consumeAll(${topic}) timed out`);
      const batch = await kafkaCall<KafkaTypes.Message[]>((cb) => consumer.consume(500, cb));
      for (const m of batch) {
        if (m.offset < next.get(m.partition)!) continue;
        next.set(m.partition, m.offset + 1);
        const headers: Record<string, string> = {};
        for (const h of m.headers ?? []) for (const [k, v] of Object.entries(h)) headers[k] = v.toString();
        out.push({ topic: m.topic, partition: m.partition, offset: m.offset, value: m.value?.toString('utf8') ?? '', key: m.key === undefined || m.key === null ? null : m.key.toString(), timestamp: m.timestamp ?? -1, headers });
      }
    }
    return out;
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
}

/** Polls `read` until it returns at least `count` items. */
export async function eventually<T>(read: () => Promise<T[]>, count: number, timeoutMs = 30_000): Promise<T[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const items = await read();
    if (items.length >= count || Date.now() > deadline) return items;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Creates topics and waits until the broker's metadata shows their
 * partitions. A scratchd started afterwards knows the partition counts from
 * its first metadata call, so its lines go to explicit partitions with ids
 * (for a topic that does not exist yet, it learns them only at the refresh
 * 30 s later, and until then lines go with object opaques).
 */
/** Creates the topics (with `config`: topic-level settings, e.g. message.timestamp.type) and waits until the metadata shows them. */
export async function createTopics(bootstrap: string, topics: readonly string[], partitions: number, config: Record<string, string> = {}): Promise<void> {
  const Kafka = kafkaClient();
  const admin = Kafka.AdminClient.create({ 'bootstrap.servers': bootstrap });
  try {
    for (const topic of topics) await kafkaCall<void>((cb) => admin.createTopic({ topic, num_partitions: partitions, replication_factor: 1, config }, 10_000, (err) => cb(err, undefined)));
  } finally {
    admin.disconnect();
  }
  const producer = new Kafka.Producer({ 'bootstrap.servers': bootstrap });
  await kafkaCall((cb) => producer.connect({ timeout: 10_000 }, cb));
  try {
    const known = await eventually(async () => {
      const metadata = await kafkaCall<KafkaTypes.Metadata>((cb) => producer.getMetadata({ timeout: 5_000 }, cb));
      return topics.filter((topic) => (metadata.topics.find((t) => t.name === topic)?.partitions.length ?? 0) === partitions);
    }, topics.length, 10_000);
    if (known.length < topics.length) throw new Error(`topics not in the metadata after 10 s: ${topics.join(', ')}`);
  } finally {
    await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
  }
}
