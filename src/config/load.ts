/**
 * Config loading: read JSON → validate against the schema (defaults filled in)
 * → semantic checks → resolve paths → freeze. Every failure is one
 * ScratchError('CONFIG_INVALID') whose message lists each problem as
 * "<key path>: <reason>", so `check-config` and `serve` say exactly what to fix.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Ajv, { type ErrorObject } from 'ajv';
import { backendRegistry } from '../backends/registry';
import { ScratchError } from '../errors';
import { resolveGraphite, type RawGraphiteConfig } from '../graphite';
import { isZone } from '../tz';
import { configSchema } from './schema';
import type { BackendEntry, Config, ListenConfig } from './types';

// verbose: errors carry their schema, for its patternReason.
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, strictTypes: false, verbose: true });
ajv.addVocabulary(['patternReason']);
const validate = ajv.compile(configSchema);

/** The shape ajv hands back after filling defaults (all defaulted keys present). */
interface RawConfig {
  listen: string;
  admin: string | null;
  workers: unknown;
  flavors: { name: string; hosts: string[]; timezone: string; paths?: string[]; cors?: { origins: string[] }; postStatus?: 200 | 204 }[];
  http: Config['http'];
  checks: Config['checks'];
  shutdown: Config['shutdown'];
  graphite?: RawGraphiteConfig;
}

export function loadConfigFile(file: string): Config {
  const source = path.resolve(file);
  let text: string;
  try {
    text = fs.readFileSync(source, 'utf8');
  } catch (err) {
    throw new ScratchError('CONFIG_UNREADABLE', `${source}: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ScratchError('CONFIG_INVALID', `${source}: not JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseConfig(json, source);
}

/** Validates an already-parsed config object; `source` is where relative paths start from. */
export function parseConfig(json: unknown, source: string): Config {
  const copy: unknown = structuredClone(json);
  if (!validate(copy)) {
    throw invalid(source, (validate.errors ?? []).map(describeSchemaError));
  }
  const raw = copy as RawConfig;
  const problems: string[] = [];
  const baseDir = path.dirname(source);

  const listen = parseListen(raw.listen, 'listen', true, problems);
  const admin = raw.admin === null ? null : parseListen(raw.admin, 'admin', false, problems);
  if (admin !== null && admin.kind === 'address' && listen.kind === 'address' && admin.port !== 0 &&
      admin.port === listen.port && sameHost(admin.host, listen.host)) {
    problems.push('admin: must not be the public listener\'s address');
  }

  const workers = parseWorkers(raw.workers, problems);
  checkFlavors(raw.flavors, problems);
  if (raw.http.backpressureLowPercent >= raw.http.backpressureHighPercent) {
    problems.push('http.backpressureLowPercent: must be below http.backpressureHighPercent');
  }

  // Each backend whose section is present: its own checks and path resolution.
  const backends: BackendEntry[] = [];
  const sections = raw as unknown as Record<string, unknown>;
  // "auto" may be 1 here and more on the machine the file is deployed to.
  const forwarding = raw.workers === 'auto' || workers > 1;
  for (const backend of backendRegistry) {
    const section = sections[backend.name];
    if (section === undefined) continue;
    backends.push({ name: backend.name, config: backend.resolve(section, { baseDir, flavors: raw.flavors, problems, forwarding }) });
  }
  // With HTTP threads a line is answered before the owner pushes it: only a
  // 'block' backend takes every answered line (beyond its bounds if need be,
  // docs/buffering.md "More than one worker"), so one must be there.
  if (forwarding && backends.length > 0 && !backends.some((b) => (b.config as { whenFull?: string }).whenFull === 'block')) {
    problems.push(`workers: ${JSON.stringify(raw.workers)} needs a backend with whenFull "block" (${backends.map((b) => b.name).join(', ')}: "drop_newest"): an HTTP thread answers 200 before the line reaches a backend, and only a blocking one takes every answered line`);
  }

  const graphite = resolveGraphite(raw.graphite, problems);

  if (problems.length > 0) throw invalid(source, problems);
  return deepFreeze({
    source,
    listen: listen.kind === 'systemd' ? listen : { kind: 'address', host: listen.host, port: listen.port },
    admin: admin === null || admin.kind === 'systemd' ? null : { host: admin.host, port: admin.port },
    workers,
    flavors: raw.flavors,
    http: raw.http,
    backends,
    checks: raw.checks,
    shutdown: raw.shutdown,
    graphite,
  });
}

function checkFlavors(flavors: RawConfig['flavors'], problems: string[]): void {
  const names = new Map<string, number>();
  const hosts = new Map<string, string>();
  flavors.forEach((flavor, i) => {
    const at = `flavors[${i}]`;
    const first = names.get(flavor.name);
    if (first !== undefined) problems.push(`${at}.name: "${flavor.name}" is also flavors[${first}].name`);
    else names.set(flavor.name, i);
    if (!isZone(flavor.timezone)) problems.push(`${at}.timezone: unknown timezone ${JSON.stringify(flavor.timezone)}`);
    flavor.hosts.forEach((host, j) => {
      const key = host.toLowerCase();
      const owner = hosts.get(key);
      if (owner !== undefined) problems.push(`${at}.hosts[${j}]: "${host}" is also a host of ${owner}`);
      else hosts.set(key, `flavor "${flavor.name}"`);
    });
  });
}

/** At most this many event loops: each costs a thread's memory (~10 MiB) and start-up. */
export const MAX_WORKERS = 256;

/** `workers`: an integer from 1 to MAX_WORKERS, or "auto" (os.availableParallelism(), which honours CPU affinity). */
function parseWorkers(value: unknown, problems: string[]): number {
  if (value === 'auto') return Math.min(MAX_WORKERS, os.availableParallelism());
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_WORKERS) return value;
  problems.push(`workers: ${JSON.stringify(value)} is not an integer from 1 to ${MAX_WORKERS} or "auto"`);
  return 1;
}

type Listen = ListenConfig | { kind: 'address'; host: string; port: number };

function parseListen(value: string, key: string, allowSystemd: boolean, problems: string[]): Listen {
  if (value === 'systemd') {
    if (allowSystemd) return { kind: 'systemd' };
    problems.push(`${key}: "systemd" is only for the public listener`);
    return { kind: 'systemd' };
  }
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    problems.push(`${key}: ${JSON.stringify(value)} is not "host:port"${allowSystemd ? ' or "systemd"' : ''}`);
    return { kind: 'address', host: '127.0.0.1', port: 0 };
  }
  return { kind: 'address', host: match[1] ?? match[2] ?? '', port };
}

function sameHost(a: string, b: string): boolean {
  const any = (h: string) => h === '0.0.0.0' || h === '::';
  return a === b || any(a) || any(b);
}

function describeSchemaError(error: ErrorObject): string {
  const at = keyPath(error.instancePath);
  // The offending key itself for unknown and missing keys ("flavors[1].foo: unknown key").
  const child = (key: unknown) => (at === '' ? String(key) : `${at}.${String(key)}`);
  const where = at === '' ? '(top level)' : at;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return `${child(params.additionalProperty)}: unknown key`;
    case 'required':
      return `${child(params.missingProperty)}: required`;
    case 'type':
      return `${where}: must be ${String(params.type).replace(',', ' or ')}`;
    case 'pattern': {
      const reason = (error.parentSchema as { patternReason?: string } | undefined)?.patternReason;
      return `${where}: ${reason ?? 'has the wrong form'}`;
    }
    default:
      return `${where}: ${error.message ?? error.keyword}`;
  }
}

/** "/flavors/0/timezone" → "flavors[0].timezone" */
function keyPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc === '' ? part : `${acc}.${part}`), '');
}

function invalid(source: string, problems: string[]): ScratchError {
  return new ScratchError('CONFIG_INVALID', `${source}:\n  ${problems.join('\n  ')}`);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
