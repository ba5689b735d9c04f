/**
 * The config as the rest of scratchd sees it: validated, defaults filled in,
 * relative paths resolved against the config file's folder, frozen.
 * Every key is documented in docs/configuration.md (test/config/docs.test.ts
 * keeps the two in step).
 */
import type { GraphiteConfig } from '../graphite';

export interface FlavorConfig {
  readonly name: string;
  readonly hosts: readonly string[];
  readonly timezone: string;
  /** Absent: [http.path]. */
  readonly paths?: readonly string[];
  /** Absent: https:// and http:// of each host (http/cors.ts). */
  readonly cors?: { readonly origins: readonly string[] };
  /** Absent: 204. */
  readonly postStatus?: 200 | 204;
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
  readonly maxBodyBytes: number;
  readonly maxBatch: number;
  readonly bodyTimeoutMs: number;
  readonly trustForwardedFor: boolean;
  readonly backpressureHighPercent: number;
  readonly backpressureLowPercent: number;
  readonly blockTimeoutMs: number;
  /** workers > 1: the watchdog's limit for an HTTP thread whose event loop does not turn (workers/http-threads.ts). */
  readonly threadStallMs: number;
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

/**
 * One enabled backend: its name (= its config key, backends/registry.ts) and
 * its config as its plug-in resolved it (backendConfig() gives it typed).
 */
export interface BackendEntry {
  readonly name: string;
  readonly config: unknown;
}

export interface Config {
  /** The config file's absolute path (relative paths inside resolve against its folder). */
  readonly source: string;
  readonly listen: ListenConfig;
  /** null: no admin listener. */
  readonly admin: { readonly host: string; readonly port: number } | null;
  /** Event loops serving the public port ("auto" resolved to the cores available): 1 = the main thread only. */
  readonly workers: number;
  readonly flavors: readonly FlavorConfig[];
  readonly http: HttpConfig;
  /** The enabled backends, in registry order; empty: none (lines are only counted). */
  readonly backends: readonly BackendEntry[];
  readonly checks: ChecksConfig;
  readonly shutdown: ShutdownConfig;
  /** null: no push to Graphite. */
  readonly graphite: GraphiteConfig | null;
}
