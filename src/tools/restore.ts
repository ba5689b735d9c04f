/**
 * `scratchd restore --config F --flavor NAME --date YYYY-MM-DD [--out PATH] [--force]`
 *
 * Rebuilds a flavor's day file from its Kafka topic (the legacy team's answer
 * to lost log files, made a command):
 * 1. the day's bounds in the flavor's timezone (clock.localDayBounds);
 * 2. per partition, the first offset at or after the day's start
 *    (offsetsForTimes) and the end of the partition now (high watermark):
 *    reading to the end, not to the day's end, because lines spooled during
 *    an outage reach Kafka late, with their original timestamps;
 * 3. keep messages whose timestamp is in the day and whose value is a line of
 *    this flavor; skip duplicates (the same `seq` header: one line sent twice
 *    by at-least-once delivery; without a header, the same bytes);
 * 4. order the lines as the file backend wrote them (`orderAsWritten`): each
 *    process's lines in its write order (`seq`), the processes merged by
 *    time; and write them exactly as the file backend does (value + "\n")
 *    to a temp file renamed into place. An existing file is kept unless
 *    --force.
 * A progress bar on stderr when it is a terminal; a summary on stdout.
 * Exit: 0 written; 1 Kafka failed (unreachable, no such topic); 64 usage;
 * 73 (EX_CANTCREAT) the output exists and --force was not given.
 * The day's lines are held in memory while sorting (~1.5× their size).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type * as KafkaTypes from '@confluentinc/kafka-javascript';
import { fileBackend } from '../backends/file';
import { kafkaBackend } from '../backends/kafka';
import { kafkaCall, kafkaClient } from '../backends/kafka/client';
import { backendConfig } from '../backends/registry';
import { localDayBounds } from '../clock';
import { loadConfigFile } from '../config/load';
import { ScratchError } from '../errors';
import { isRecordOf, recordHead } from '../record';
import { processIo, usageError, type ToolIo } from './cli';
import { startProgress } from './progress';

export const RestoreExit = { ok: 0, kafka: 1, usage: 64, exists: 73 } as const;

const USAGE = 'usage: scratchd restore --config FILE --flavor NAME --date YYYY-MM-DD [--out PATH] [--force] [--timeout-ms N]';

export interface Found {
  timeMs: number;
  boot: number;
  counter: number;
  value: string;
}

export interface RestoreSummary {
  file: string;
  lines: number;
  duplicates: number;
  outsideDay: number;
  otherFlavor: number;
  messagesRead: number;
  partitions: number;
}

export async function restoreCommand(args: string[], io: ToolIo = processIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      flavor: { type: 'string' },
      date: { type: 'string' },
      out: { type: 'string', short: 'o' },
      force: { type: 'boolean', default: false },
      'timeout-ms': { type: 'string', default: '30000' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    io.stdout.write(`${USAGE}\n`);
    return RestoreExit.ok;
  }
  if (values.config === undefined || values.flavor === undefined || values.date === undefined) usageError(USAGE);
  const timeoutMs = Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) usageError(`--timeout-ms must be a positive integer\n${USAGE}`);

  const config = loadConfigFile(values.config);
  const flavor = config.flavors.find((f) => f.name === values.flavor);
  if (flavor === undefined) usageError(`no flavor ${JSON.stringify(values.flavor)} in ${config.source}`);
  const kafka = backendConfig(config, kafkaBackend);
  const file = backendConfig(config, fileBackend);
  if (kafka === null) usageError(`${config.source} has no kafka section`);
  let bounds: [number, number];
  try {
    bounds = localDayBounds(values.date, flavor.timezone);
  } catch (err) {
    usageError((err as Error).message);
  }
  const out =
    values.out ??
    (file === null
      ? undefined
      : file.path.replaceAll('{flavor}', flavor.name).replaceAll('{date}', values.date));
  if (out === undefined) usageError(`--out is needed: ${config.source} has no file backend to take the path from`);
  if (fs.existsSync(out) && values.force !== true) {
    io.stderr.write(`scratchd restore: ${out} exists; --force replaces it\n`);
    return RestoreExit.exists;
  }

  const topic = kafka.topic.replaceAll('{flavor}', flavor.name);
  try {
    const summary = await restore(
      { brokers: kafka.brokers, settings: clientSettings(kafka.librdkafka), topic, flavor: flavor.name, bounds, out, timeoutMs },
      io,
    );
    io.stdout.write(
      `restored ${summary.file}: ${summary.lines} lines from ${summary.partitions} partitions of ${topic} ` +
        `(${summary.messagesRead} messages read, ${summary.duplicates} duplicates skipped, ` +
        `${summary.outsideDay} outside the day, ${summary.otherFlavor} not lines of ${flavor.name})\n`,
    );
    return RestoreExit.ok;
  } catch (err) {
    io.stderr.write(`scratchd restore: ${(err as Error).message}\n`);
    return RestoreExit.kafka;
  }
}

/** The user's client-level librdkafka settings (security, SASL, SSL, sockets), not the producer's. */
function clientSettings(all: Readonly<Record<string, string | number | boolean>>): Record<string, string | number | boolean> {
  return Object.fromEntries(Object.entries(all).filter(([key]) => /^(security|sasl|ssl|socket|broker|client|connections|api|reconnect|retry)\./.test(key) || key === 'client.id'));
}

interface RestoreJob {
  brokers: string;
  settings: Record<string, string | number | boolean>;
  topic: string;
  flavor: string;
  bounds: [number, number];
  out: string;
  timeoutMs: number;
}

export async function restore(job: RestoreJob, io: ToolIo): Promise<RestoreSummary> {
  const Kafka = kafkaClient();
  const consumer = new Kafka.KafkaConsumer(
    {
      ...job.settings,
      'bootstrap.servers': job.brokers,
      'group.id': `scratchd-restore-${process.pid}-${Date.now()}`,
      'enable.auto.commit': false,
      'enable.auto.offset.store': false,
    },
    { 'auto.offset.reset': 'earliest' },
  );
  await kafkaCall<unknown>((cb) => consumer.connect({ timeout: job.timeoutMs }, cb));
  try {
    const metadata = await kafkaCall<KafkaTypes.Metadata>((cb) => consumer.getMetadata({ topic: job.topic, timeout: job.timeoutMs }, cb));
    const topicMeta = metadata.topics.find((t) => t.name === job.topic);
    if (topicMeta === undefined || topicMeta.partitions.length === 0) throw new ScratchError('KAFKA_TOPIC_MISSING', job.topic);
    const partitions = topicMeta.partitions.map((p) => p.id).sort((a, b) => a - b);
    const starts = await kafkaCall<KafkaTypes.TopicPartitionOffset[]>((cb) =>
      consumer.offsetsForTimes(partitions.map((partition) => ({ topic: job.topic, partition, offset: job.bounds[0] })), job.timeoutMs, cb),
    );
    const plan: { partition: number; start: number; end: number; next: number }[] = [];
    for (const partition of partitions) {
      const watermarks = await kafkaCall<KafkaTypes.WatermarkOffsets>((cb) => consumer.queryWatermarkOffsets(job.topic, partition, job.timeoutMs, cb));
      const start = starts.find((s) => s.partition === partition)?.offset ?? -1;
      // offset -1: no message at or after the day's start in this partition.
      if (start >= 0 && start < watermarks.highOffset) plan.push({ partition, start, end: watermarks.highOffset, next: start });
    }
    const total = plan.reduce((n, p) => n + (p.end - p.start), 0);
    const found: Found[] = [];
    const seen = new Set<string>();
    const summary: RestoreSummary = { file: job.out, lines: 0, duplicates: 0, outsideDay: 0, otherFlavor: 0, messagesRead: 0, partitions: plan.length };
    const head = recordHead(job.flavor);
    const progress = startProgress(io.stderr, () => ({
      fraction: total === 0 ? 1 : summary.messagesRead / total,
      label: `${summary.messagesRead}/${total} messages, ${found.length} lines`,
    }));
    try {
      if (plan.length > 0) {
        consumer.assign(plan.map((p) => ({ topic: job.topic, partition: p.partition, offset: p.start })));
        let idleSince = Date.now();
        while (plan.some((p) => p.next < p.end)) {
          const messages = await kafkaCall<KafkaTypes.Message[]>((cb) => consumer.consume(1000, cb));
          if (messages.length === 0) {
            if (Date.now() - idleSince > job.timeoutMs) throw new ScratchError('RESTORE_TIMEOUT', `no messages for ${job.timeoutMs} ms before the end of the partitions`);
            continue;
          }
          idleSince = Date.now();
          for (const message of messages) {
            const p = plan.find((x) => x.partition === message.partition);
            if (p === undefined || message.offset >= p.end || message.offset < p.next) continue;
            p.next = message.offset + 1;
            summary.messagesRead++;
            keep(message, job, head, seen, found, summary);
          }
        }
      }
    } finally {
      progress.stop();
    }
    const ordered = orderAsWritten(found);
    summary.lines = ordered.length;
    writeAtomically(job.out, ordered.map((f) => `${f.value}\n`).join(''));
    return summary;
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
}

/**
 * The lines in the order the file backend wrote them. Within one process
 * (one `boot`) that is its write order, `counter`, and not always time order:
 * with workers > 1 the main thread writes lines forwarded by the HTTP threads
 * a few milliseconds after lines of its own with later times. Processes that
 * overlapped (a restart) appended to the same file as they went, so they are
 * merged by time: each next line is the earliest of the processes' next
 * lines (ties: the older boot). Lines without `seq` (boot 0) go by time.
 */
export function orderAsWritten(found: readonly Found[]): Found[] {
  const byBoot = new Map<number, Found[]>();
  for (const f of found) {
    let group = byBoot.get(f.boot);
    if (group === undefined) byBoot.set(f.boot, (group = []));
    group.push(f);
  }
  const groups = [...byBoot.entries()].sort((a, b) => a[0] - b[0]).map(([boot, group]) => group.sort(boot === 0 ? (a, b) => a.timeMs - b.timeMs || a.counter - b.counter : (a, b) => a.counter - b.counter));
  const at = groups.map(() => 0);
  const out: Found[] = [];
  for (;;) {
    let next = -1;
    for (let g = 0; g < groups.length; g++) {
      const head = groups[g]![at[g]!];
      if (head !== undefined && (next === -1 || head.timeMs < groups[next]![at[next]!]!.timeMs)) next = g;
    }
    if (next === -1) return out;
    out.push(groups[next]![at[next]!++]!);
  }
}

function keep(message: KafkaTypes.Message, job: RestoreJob, head: string, seen: Set<string>, found: Found[], summary: RestoreSummary): void {
  const timeMs = message.timestamp ?? -1;
  if (timeMs < job.bounds[0] || timeMs >= job.bounds[1]) {
    summary.outsideDay++;
    return;
  }
  const value = message.value?.toString('utf8') ?? '';
  if (!isRecordOf(head, value)) {
    summary.otherFlavor++;
    return;
  }
  const seq = headerValue(message, 'seq');
  const match = seq === undefined ? null : /^([0-9a-z]+)-(\d+)$/.exec(seq);
  const identity = match === null ? `v:${value}` : `s:${seq!}`;
  if (seen.has(identity)) {
    summary.duplicates++;
    return;
  }
  seen.add(identity);
  found.push({ timeMs, boot: match === null ? 0 : parseInt(match[1]!, 36), counter: match === null ? message.offset : Number(match[2]), value });
}

function headerValue(message: KafkaTypes.Message, name: string): string | undefined {
  for (const header of message.headers ?? []) {
    const value = header[name];
    if (value !== undefined) return value.toString();
  }
  return undefined;
}

function writeAtomically(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.restore-${process.pid}`;
  fs.writeFileSync(temp, text, { mode: 0o640 });
  const fd = fs.openSync(temp, 'r');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(temp, file);
}
