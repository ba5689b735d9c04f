/**
 * The messages between the HTTP thread (thread.ts) and the Kafka thread
 * (worker.ts). Plain objects: they cross by structured clone, except a
 * batch's ArrayBuffer, which is transferred.
 */
import { BackendCounters } from '../backend';
import { kafkaDropReasons } from './options';
import type { KafkaConfig } from './types';

/** What the worker is started with (workerData). */
export interface WorkerInit {
  readonly config: KafkaConfig;
  readonly flavors: readonly { name: string; index: number; timezone: string; hosts: readonly string[] }[];
  readonly lockWaitMs: number;
}

export type ToWorker =
  | { readonly t: 'start' }
  | { readonly t: 'lines'; readonly buffer: ArrayBuffer; readonly length: number }
  | { readonly t: 'close'; readonly deadline: number };

/**
 * The worker's backend as numbers, every counter and detail, in one flat
 * array (cheaper to clone and read than objects: it goes every REPORT_MS):
 * the REPORT indexes, then `dropped` by DROP_KEYS, then the details by
 * DETAIL_KEYS. Cumulative, except queued and the details' gauges.
 */
export type Report = readonly number[];

export const REPORT = {
  /** Lines taken out of batches since start. */
  received: 0,
  /** Of those, lines (and record bytes) settled since start: delivered, spooled or dropped. */
  settledLines: 1,
  settledBytes: 2,
  queued: 3,
  written: 4,
  errors: 5,
} as const;

export const DROP_KEYS: readonly string[] = Object.keys(new BackendCounters(kafkaDropReasons).dropped);
const DROPS_AT = 6;

/**
 * KafkaBackend.details()'s keys. /metrics declares its series from the first
 * snapshot, so the HTTP thread shows every one (at 0) before the first report.
 */
export const DETAIL_KEYS: readonly string[] = [
  'up', 'topics_waiting', 'in_flight', 'in_flight_bytes', 'delivery_report_mismatches', 'delivery_reports_reordered', 'delivery_offset_repeats', 'spooled', 'spool_bytes', 'drained', 'possible_duplicates', 'spool_corrupt', 'spool_truncated',
  'librdkafka_msg_cnt', 'librdkafka_msg_size', 'librdkafka_txmsgs', 'librdkafka_brokers_up', 'librdkafka_rtt_p99_us',
];
const DETAILS_AT = DROPS_AT + DROP_KEYS.length;
export const REPORT_LENGTH = DETAILS_AT + DETAIL_KEYS.length;

export function makeReport(received: number, settledLines: number, settledBytes: number, counters: BackendCounters<string> | null, details: Record<string, number>): number[] {
  const out = new Array<number>(REPORT_LENGTH).fill(0);
  out[REPORT.received] = received;
  out[REPORT.settledLines] = settledLines;
  out[REPORT.settledBytes] = settledBytes;
  if (counters !== null) {
    out[REPORT.queued] = counters.queued;
    out[REPORT.written] = counters.written;
    out[REPORT.errors] = counters.errors;
    const dropped = counters.dropped;
    for (let i = 0; i < DROP_KEYS.length; i++) out[DROPS_AT + i] = dropped[DROP_KEYS[i]!] ?? 0;
  }
  for (let i = 0; i < DETAIL_KEYS.length; i++) out[DETAILS_AT + i] = details[DETAIL_KEYS[i]!] ?? 0;
  return out;
}

export const droppedIn = (report: Report, reason: string): number => report[DROPS_AT + DROP_KEYS.indexOf(reason)] ?? 0;

/** Where a detail (DETAIL_KEYS) sits in a report. */
export function reportIndexOfDetail(key: string): number {
  const i = DETAIL_KEYS.indexOf(key);
  if (i < 0) throw new Error(`no detail ${key} in a Kafka thread report`);
  return DETAILS_AT + i;
}

export function detailsOf(report: Report): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < DETAIL_KEYS.length; i++) out[DETAIL_KEYS[i]!] = report[DETAILS_AT + i]!;
  return out;
}

export type FromWorker =
  | { readonly t: 'started' }
  | { readonly t: 'failed'; readonly code: string; readonly message: string }
  | { readonly t: 'report'; readonly report: Report }
  | { readonly t: 'closed'; readonly report: Report };
