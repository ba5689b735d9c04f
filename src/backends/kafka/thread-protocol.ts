/**
 * The messages between the HTTP thread (thread.ts) and the Kafka thread
 * (worker.ts). Plain objects: they cross by structured clone, except a
 * batch's ArrayBuffer, which is transferred.
 */
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

/** The worker's backend as numbers: every counter and detail, cumulative. */
export interface Report {
  /** Lines taken out of batches since start. */
  readonly received: number;
  /** Of those, lines (and record bytes) safe since start: delivered, spooled or dropped. */
  readonly settledLines: number;
  readonly settledBytes: number;
  readonly queued: number;
  readonly written: number;
  readonly errors: number;
  readonly dropped: Readonly<Record<string, number>>;
  readonly details: Readonly<Record<string, number>>;
}

export type FromWorker =
  | { readonly t: 'started' }
  | { readonly t: 'failed'; readonly code: string; readonly message: string }
  | { readonly t: 'report'; readonly report: Report }
  | { readonly t: 'closed'; readonly report: Report };
