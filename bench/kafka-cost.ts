/**
 * The Kafka backend's cost on the HTTP thread, per line, against a real
 * broker: the thread's own CPU time (process.threadCpuUsage) while it pushes
 * lines at ~20k/s (100 per 5 ms) and until Kafka acknowledged them all, with
 * the backend on the HTTP thread (`kafka.thread: false`), on the Kafka
 * thread (the default), and with no backend (the harness alone, subtracted).
 * Each mode runs in a process of its own (the client loads in one thread per
 * process: docs/kafka.md, "Threads").
 *
 *   node build/bench/kafka-cost.js HOST:PORT [lines=200000]
 *
 * Prints a table; never passes or fails.
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

type Mode = 'inline' | 'thread' | 'none';
interface Result {
  mode: Mode;
  lines: number;
  written: number;
  usPerLine: number;
}

async function measure(mode: Mode, brokers: string, lines: number): Promise<Result> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scratchd-kafka-cost-'));
  const config: KafkaConfig = { brokers, topic: 'bench.kafka-cost.{flavor}', key: null, queue: 20_000, queueMaxBytes: 64 * 1024 ** 2, downAfterMs: 5_000, whenFull: 'block', spool: { path: dir, maxBytes: 1024 ** 3, drainRatePerSec: 20_000 }, thread: mode === 'thread', librdkafka: {} };
  const flavor = new Flavor('a', 0, 'UTC', ['a.example']);
  const backend: Pick<Backend, 'start' | 'push' | 'close' | 'counters'> | null = mode === 'none' ? null : mode === 'thread' ? new KafkaThread(config, [flavor], 0) : new KafkaBackend(config, [flavor], 0);
  const values = JSON.stringify({ uid: 'u'.repeat(20), page: `/some/page/${'p'.repeat(200)}`, ref: `https://www.example.com/${'r'.repeat(100)}` });
  await backend?.start();
  await new Promise((r) => setTimeout(r, 3_000)); // connected, partition counts known
  const before = process.threadCpuUsage();
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
  const written = backend?.counters.written ?? lines;
  await backend?.close(Date.now() + 5_000);
  fs.rmSync(dir, { recursive: true, force: true });
  return { mode, lines, written, usPerLine: (cpu.user + cpu.system) / lines };
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
    const results = (['none', 'inline', 'thread', 'none', 'inline', 'thread'] as const).map((m) => {
      const run = spawnSync(process.execPath, [__filename, m, mode!, String(lines)], { encoding: 'utf8' });
      return JSON.parse(run.stdout.trim().split('\n').pop()!) as Result;
    });
    const best = (m: Mode) => Math.min(...results.filter((r) => r.mode === m).map((r) => r.usPerLine));
    const base = best('none');
    process.stdout.write(`HTTP-thread CPU per line, ${lines} lines at ~20k/s (best of 2; the harness alone: ${base.toFixed(2)} us)\n`);
    for (const m of ['inline', 'thread'] as const) process.stdout.write(`  kafka.thread ${m === 'thread' ? 'true ' : 'false'}  ${(best(m) - base).toFixed(2)} us/line  (all written: ${results.filter((r) => r.mode === m).every((r) => r.written === r.lines)})\n`);
  }
}
