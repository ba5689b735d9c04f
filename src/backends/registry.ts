/**
 * Every backend scratchd knows, one line each. The core (config/, main.ts,
 * scratchd.ts) finds backends only here: a backend's name is its config key,
 * and its descriptor brings its schema, checks, drop reasons and constructor.
 * Adding a backend is a folder exporting a BackendDescriptor plus one line
 * below (docs/architecture.md, "Adding a backend"). The order here is the
 * order of Config.backends, of push() and of /stats.
 */
import type { Config } from '../config/types';
import type { BackendDescriptor } from './backend';
import { fileBackend } from './file';
import { kafkaBackend } from './kafka';

export const backendRegistry: readonly BackendDescriptor[] = [
  fileBackend,
  kafkaBackend,
];

export function findBackend(name: string): BackendDescriptor | undefined {
  return backendRegistry.find((d) => d.name === name);
}

/** The resolved config of one backend, typed by its descriptor; null when the config leaves it off. */
export function backendConfig<C>(config: Config, descriptor: BackendDescriptor<C>): C | null {
  const entry = config.backends.find((b) => b.name === descriptor.name);
  return entry === undefined ? null : (entry.config as C);
}
