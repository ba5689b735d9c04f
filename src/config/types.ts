/**
 * The config as the rest of scratchd sees it: validated, defaults filled in,
 * relative paths resolved against the config file's folder, frozen.
 * Every key is documented in README.md ("Configuration").
 */

export interface FlavorConfig {
  readonly name: string;
  readonly hosts: readonly string[];
  readonly timezone: string;
}

export type ListenConfig =
  | { readonly kind: 'address'; readonly host: string; readonly port: number }
  | { readonly kind: 'systemd' };

export interface HttpConfig {
  readonly path: string;
  readonly maxConnections: number;
  readonly headersTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxRequestLineBytes: number;
  readonly maxHeaderBytes: number;
  readonly trustForwardedFor: boolean;
}

export interface FileConfig {
  /** Absolute path template with {flavor} and optionally {date}. */
  readonly path: string;
  readonly queue: number;
  readonly queueMaxBytes: number;
  readonly maxBatchBytes: number;
  readonly writeIntervalMs: number;
  readonly fsyncIntervalMs: number;
  readonly closeIdleAfterMs: number;
  readonly retryMaxDelayMs: number;
  readonly fileMode: number;
}

export interface KafkaConfig {
  readonly brokers: string;
  /** Topic template with {flavor}. */
  readonly topic: string;
  readonly key: string | null;
  readonly queue: number;
  readonly queueMaxBytes: number;
  readonly downAfterMs: number;
  readonly spool: {
    /** Absolute folder. */
    readonly path: string;
    readonly maxBytes: number;
    readonly drainRatePerSec: number;
  };
  /** librdkafka settings after scratchd's defaults (see backends/kafka/settings.ts). */
  readonly librdkafka: Readonly<Record<string, string | number | boolean>>;
}

export interface ChecksConfig {
  readonly duplicateWindowMs: number;
  readonly maxPerMinute: number;
  readonly maxKeys: number;
}

export interface ShutdownConfig {
  readonly drainTimeoutMs: number;
  readonly idleCloseGraceMs: number;
}

export interface Config {
  /** The config file's absolute path (relative paths inside resolve against its folder). */
  readonly source: string;
  readonly listen: ListenConfig;
  /** null: no admin listener. */
  readonly admin: { readonly host: string; readonly port: number } | null;
  readonly flavors: readonly FlavorConfig[];
  readonly http: HttpConfig;
  /** null: the file backend is off. */
  readonly file: FileConfig | null;
  /** null: the Kafka backend is off. */
  readonly kafka: KafkaConfig | null;
  readonly checks: ChecksConfig;
  readonly shutdown: ShutdownConfig;
}
