/**
 * The Kafka backend's cost on the HTTP thread, per line, against a real
 * broker: the thread's own CPU time (process.threadCpuUsage) while it pushes
 * lines at ~20k/s (100 per 5 ms) and until Kafka acknowledged them all, with
 * the backend on the HTTP thread (`kafka.thread: false`), on the Kafka
 * thread (the default), and with no backend (the harness alone, subtracted).
 * Each mode runs in a process of its own (the client loads in one thread per
 * process: docs/kafka.md, "Threads").
 *
 * Then the Kafka thread's whole cost per line, split by thread: every thread
 * of the process by its name (/proc/self/task/<tid>/schedstat, time on CPU in
 * ns; the HTTP thread is `MainThread`, the Kafka thread `scratchd-kafka`,
 * librdkafka's `rdk:*`, V8's GC and compiler helpers `V8Worker`), and the
 * broker's whole JVM (/proc/<pid>/stat, utime+stime) when its pid is given.
 * The harness alone (mode none) is subtracted thread by thread. Medians of
 * `runs` (default 3) runs of each mode, the modes alternating.
 *
 *   npx node build/bench/kafka-cost.js HOST:PORT [lines=200000] [runs=3]
 *   KAFKA_BROKER_PID=$(cat STATE_DIR/pid) npx node build/bench/kafka-cost.js ...
 *   KAFKA_COST_LIBRDKAFKA='{"linger.ms":100}' ...   # kafka.librdkafka for the runs
 *
 * Prints tables; never passes or fails.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Backend } from '../src/backends/backend';
import { KafkaBackend } from '../src/backends/kafka/kafka-backend';
import { KafkaThread } from '../src/backends/kafka/thread';
import type { KafkaConfig } from '../src/backends/kafka/types';
import { Flavor } from '../src/flavor';
import { makeLine } from '../src/line';
import { threadCpuNs } from './procs';

type Mode = 'inline' | 'thread' | 'none';
interface Result {
  mode: Mode;
  lines: number;
  written: number;
  usPerLine: number;
  /** CPU µs per line by thread group (threadGroup), and `broker` when KAFKA_BROKER_PID is set. */
  threads: Record<string, number>;
}

/** The broker process's CPU ns so far (all its threads), or NaN without its pid. */
function brokerTime(pid: string | undefined): number {
  if (pid === undefined || pid === '') return NaN;
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after "pid (comm) ".
  return ((Number(fields[11]) + Number(fields[12])) * 1e9) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

async function measure(mode: Mode, brokers: string, lines: number): Promise<Result> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scratchd-kafka-cost-'));
  const config: KafkaConfig = { brokers, topic: 'bench.kafka-cost.{flavor}', key: null, queue: 20_000, queueMaxBytes: 64 * 1024 ** 2, downAfterMs: 5_000, whenFull: 'block', spool: { path: dir, maxBytes: 1024 ** 3, drainRatePerSec: 20_000 }, thread: mode === 'thread', librdkafka: JSON.parse(process.env.KAFKA_COST_LIBRDKAFKA ?? '{}') as KafkaConfig['librdkafka'] };
  const flavor = new Flavor('a', 0, 'UTC', ['a.example']);
  const backend: Pick<Backend, 'start' | 'push' | 'close' | 'counters'> | null = mode === 'none' ? null : mode === 'thread' ? new KafkaThread(config, [flavor], 0) : new KafkaBackend(config, [flavor], 0);
  const values = JSON.stringify({ uid: 'u'.repeat(20), page: `/some/page/${'p'.repeat(200)}`, ref: `https://www.example.com/${'r'.repeat(100)}` });
  await backend?.start();
  await new Promise((r) => setTimeout(r, 3_000)); // connected, partition counts known
  const before = process.threadCpuUsage();
  const threadsBefore = threadCpuNs('self');
  const brokerBefore = brokerTime(process.env.KAFKA_BROKER_PID);
  const started = Date.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const turn = () => {
      for (let i = 0; i < 100 && sent < lines; i++, sent++) backend?.push(makeLine(flavor, Date.now(), values));
      if (sent < lines) setTimeout(turn, 5);
      else resolve();
    };
    turn();
  });
  // Delivery reports are the HTTP thread's work when Kafka runs on it: wait for them all.
  while (backend !== null && backend.counters.written < lines && Date.now() - started < 120_000) await new Promise((r) => setTimeout(r, 20));
  const cpu = process.threadCpuUsage(before);
  const threads: Record<string, number> = {};
  for (const [group, ns] of threadCpuNs('self')) threads[group] = (ns - (threadsBefore.get(group) ?? 0)) / 1000 / lines;
  const broker = (brokerTime(process.env.KAFKA_BROKER_PID) - brokerBefore) / 1000 / lines;
  if (Number.isFinite(broker)) threads.broker = broker;
  const written = backend?.counters.written ?? lines;
  await backend?.close(Date.now() + 5_000);
  fs.rmSync(dir, { recursive: true, force: true });
  return { mode, lines, written, usPerLine: (cpu.user + cpu.system) / lines, threads };
}

if (require.main === module) {
  const [mode, brokers, count] = process.argv.slice(2);
  if (mode === 'inline' || mode === 'thread' || mode === 'none') {
    void measure(mode, brokers!, Number(count)).then((r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    });
  } else {
    const lines = Number(brokers ?? 200_000);
    const runs = Number(count ?? 3);
    const order = Array.from({ length: runs }, () => ['none', 'inline', 'thread'] as const).flat();
    const results = order.map((m) => {
      const run = spawnSync(process.execPath, [__filename, m, mode!, String(lines)], { encoding: 'utf8' });
      return JSON.parse(run.stdout.trim().split('\n').pop()!) as Result;
    });
    const best = (m: Mode) => Math.min(...results.filter((r) => r.mode === m).map((r) => r.usPerLine));
    const base = best('none');
    process.stdout.write(`HTTP-thread CPU per line, ${lines} lines at ~20k/s (best of ${runs}; the harness alone: ${base.toFixed(2)} us)\n`);
    for (const m of ['inline', 'thread'] as const) process.stdout.write(`  kafka.thread ${m === 'thread' ? 'true ' : 'false'}  ${(best(m) - base).toFixed(2)} us/line  (all written: ${results.filter((r) => r.mode === m).every((r) => r.written === r.lines)})\n`);
    process.stdout.write(`\nCPU us per line by thread, minus the harness alone (medians of ${runs})\n`);
    const groups = [...new Set(results.flatMap((r) => Object.keys(r.threads)))].sort();
    const median = (m: Mode, g: string) => {
      const v = results.filter((r) => r.mode === m).map((r) => r.threads[g] ?? 0).sort((a, b) => a - b);
      return v[v.length >> 1] ?? NaN;
    };
    process.stdout.write(`  ${'thread'.padEnd(16)} ${'kafka.thread false'.padStart(18)} ${'kafka.thread true'.padStart(18)}\n`);
    const totals = { inline: 0, thread: 0 };
    for (const g of groups) {
      const cells = (['inline', 'thread'] as const).map((m) => {
        const v = median(m, g) - median('none', g);
        if (g !== 'broker' && Number.isFinite(v)) totals[m] += v;
        return (Number.isFinite(v) ? v.toFixed(2) : '-').padStart(18);
      });
      process.stdout.write(`  ${g.padEnd(16)} ${cells.join(' ')}\n`);
    }
    process.stdout.write(`  ${'scratchd, all'.padEnd(16)} ${totals.inline.toFixed(2).padStart(18)} ${totals.thread.toFixed(2).padStart(18)}\n`);
  }
}
