/**
 * Memory soak (BENCH_SOAK_SECONDS > 0): does scratchd's memory settle under
 * sustained load, or creep?
 *
 * Contract: `runSoak` starts its own scratchd (pinned like the others), sends
 * a fixed open-loop rate for the given time with oha, samples RSS
 * (/proc/<pid>/status VmRSS) every `sampleMs`, and returns start (just before
 * the load), peak (VmHWM), end (last sample under load), the least-squares
 * slope over all samples and over the second half (after warm-up, which is
 * the number that says "leak" if it stays above ~0), GC pause max and count
 * and the largest event-loop delay from /stats, other processes' CPU while it ran, the latencies and the correctness counters. The server is
 * stopped before it returns, also on failure.
 */
import * as path from 'node:path';
import { runOha, type OpenLoopResult } from './load';
import { cpuTimes, machineCpuSeconds, memory, sleep } from './procs';
import { startScratchd } from './servers';
import { slope } from './stats';

export interface SoakResult {
  seconds: number;
  rate: number;
  samples: { atS: number; rssBytes: number }[];
  startRssBytes: number;
  peakRssBytes: number;
  endRssBytes: number;
  slopeMiBPerMin: number;
  secondHalfSlopeMiBPerMin: number;
  gcPauseMaxMs: number;
  gcCount: number;
  /** Largest event-loop delay /stats reported over the samples (each covers the last 10 s window). */
  eventLoopDelayMaxMs: number;
  /** CPU of other processes during the soak, % of one core (see run.ts DISTURBED_PERCENT). */
  othersCpuPercent: number;
  load: OpenLoopResult;
  tracked: number;
  written: number;
  dropped: number;
}

export interface SoakOptions {
  oha: string;
  urlsFile: string;
  dir: string;
  serverCpu: number;
  loadCpu: number;
  seconds: number;
  rate: number;
  connections: number;
  sampleMs: number;
  log: (m: string) => void;
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const server = await startScratchd({ dir: path.join(o.dir, 'soak'), cpu: o.serverCpu });
  try {
    const startRssBytes = memory(server.proc.pid).rssBytes;
    const samples: { atS: number; rssBytes: number }[] = [];
    const began = Date.now();
    const machine0 = machineCpuSeconds();
    const self0 = process.cpuUsage();
    const server0 = cpuTimes([server.proc.pid]);
    let eventLoopDelayMaxMs = 0;
    let done = false;
    const sampler = (async () => {
      while (!done) {
        await sleep(o.sampleMs);
        if (done) break;
        const atS = (Date.now() - began) / 1000;
        samples.push({ atS, rssBytes: memory(server.proc.pid).rssBytes });
        const st = await server.stats().catch(() => undefined);
        eventLoopDelayMaxMs = Math.max(eventLoopDelayMaxMs, st?.runtime.event_loop_delay_max_ms ?? 0);
        if (samples.length % 12 === 0) o.log(`soak: ${Math.round(atS)} s, RSS ${(samples[samples.length - 1]!.rssBytes / 1048576).toFixed(1)} MiB`);
      }
    })();
    let load: OpenLoopResult;
    try {
      load = await runOha(o.oha, o.loadCpu, o.urlsFile, server.port, o.rate, o.seconds, o.connections, o.dir);
    } finally {
      done = true;
      await sampler;
    }
    const server1 = cpuTimes([server.proc.pid]);
    const self = process.cpuUsage(self0);
    const others =
      machineCpuSeconds() - machine0 - (self.user + self.system) / 1e6 - load.generatorCpuSeconds - (server1.user + server1.sys - server0.user - server0.sys);
    const peakRssBytes = memory(server.proc.pid).peakRssBytes;
    const stats = await server.stats();
    const mib = (s: { rssBytes: number }) => s.rssBytes / 1048576;
    const minutes = (s: { atS: number }) => s.atS / 60;
    const half = samples.slice(Math.floor(samples.length / 2));
    const file = stats.backends.file ?? {};
    return {
      seconds: o.seconds,
      rate: o.rate,
      samples,
      startRssBytes,
      peakRssBytes,
      endRssBytes: samples[samples.length - 1]?.rssBytes ?? Number.NaN,
      slopeMiBPerMin: slope(samples.map(minutes), samples.map(mib)),
      secondHalfSlopeMiBPerMin: slope(half.map(minutes), half.map(mib)),
      gcPauseMaxMs: stats.runtime.gc.pause_max_ms,
      gcCount: stats.runtime.gc.count,
      eventLoopDelayMaxMs: Math.max(eventLoopDelayMaxMs, stats.runtime.event_loop_delay_max_ms),
      othersCpuPercent: (100 * Math.max(0, others)) / ((Date.now() - began) / 1000),
      load,
      tracked: stats.requests.tracked ?? 0,
      written: file.written ?? 0,
      dropped: file.dropped ?? 0,
    };
  } finally {
    await server.stop();
  }
}
