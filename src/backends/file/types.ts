/** The file backend's config types (schema and defaults: options.ts). */
import type { WhenFull } from '../backend';

/** The `file` section as the schema leaves it (defaults filled in). */
export interface FileSection {
  path: string;
  queue: number;
  queueMaxBytes: number;
  whenFull: WhenFull;
  maxBatchBytes: number;
  writeIntervalMs: number;
  fsyncIntervalMs: number;
  closeIdleAfterMs: number;
  retryMaxDelayMs: number;
  fileMode: string;
}

/** The file backend's config as it runs with it. */
export interface FileConfig {
  /** Absolute path template with {flavor} and optionally {date}. */
  readonly path: string;
  readonly queue: number;
  readonly queueMaxBytes: number;
  readonly whenFull: WhenFull;
  readonly maxBatchBytes: number;
  readonly writeIntervalMs: number;
  readonly fsyncIntervalMs: number;
  readonly closeIdleAfterMs: number;
  readonly retryMaxDelayMs: number;
  readonly fileMode: number;
}
