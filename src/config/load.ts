/**
 * Config loading: read JSON → validate against the schema (defaults filled in)
 * → semantic checks → resolve paths → freeze. Every failure is one
 * ScratchError('CONFIG_INVALID') whose message lists each problem as
 * "<key path>: <reason>", so `check-config` and `serve` say exactly what to fix.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { type ErrorObject } from 'ajv';
import { ScratchError } from '../errors';
import { resolveGraphite, type RawGraphiteConfig } from '../graphite';
import { isZone } from '../tz';
import { configSchema } from './schema';
import type { Config, FileConfig, KafkaConfig, ListenConfig } from './types';

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, strictTypes: false });
const validate = ajv.compile(configSchema);

/** The shape ajv hands back after filling defaults (all defaulted keys present). */
interface RawConfig {
  listen: string;
  admin: string | null;
  flavors: { name: string; hosts: string[]; timezone: string }[];
  http: Config['http'];
  file?: Omit<FileConfig, 'fileMode'> & { fileMode: string };
  kafka?: KafkaConfig;
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

  checkFlavors(raw.flavors, problems);

  let file: FileConfig | null = null;
  if (raw.file !== undefined) {
    const template = raw.file.path;
    if (!template.includes('{flavor}')) problems.push('file.path: must contain {flavor}');
    const unknown = template.match(/\{[^}]*\}/g)?.filter((p) => p !== '{flavor}' && p !== '{date}') ?? [];
    if (unknown.length > 0) problems.push(`file.path: unknown placeholder ${unknown[0]} (only {flavor} and {date})`);
    file = { ...raw.file, path: path.resolve(baseDir, template), fileMode: parseInt(raw.file.fileMode, 8) };
  }

  let kafka: KafkaConfig | null = null;
  if (raw.kafka !== undefined) {
    checkKafka(raw.kafka, raw.flavors, problems);
    kafka = { ...raw.kafka, spool: { ...raw.kafka.spool, path: path.resolve(baseDir, raw.kafka.spool.path) } };
  }

  const graphite = resolveGraphite(raw.graphite, problems);

  if (problems.length > 0) throw invalid(source, problems);
  return deepFreeze({
    source,
    listen: listen.kind === 'systemd' ? listen : { kind: 'address', host: listen.host, port: listen.port },
    admin: admin === null || admin.kind === 'systemd' ? null : { host: admin.host, port: admin.port },
    flavors: raw.flavors,
    http: raw.http,
    file,
    kafka,
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

/** librdkafka settings scratchd owns: they have keys of their own, or break delivery tracking. */
const RESERVED_LIBRDKAFKA = new Map([
  ['bootstrap.servers', 'set kafka.brokers instead'],
  ['metadata.broker.list', 'set kafka.brokers instead'],
  ['dr_cb', 'scratchd tracks deliveries itself'],
  ['dr_msg_cb', 'scratchd tracks deliveries itself'],
]);

function checkKafka(kafka: KafkaConfig, flavors: RawConfig['flavors'], problems: string[]): void {
  const unknown = kafka.topic.match(/\{[^}]*\}/g)?.filter((p) => p !== '{flavor}') ?? [];
  if (unknown.length > 0) problems.push(`kafka.topic: unknown placeholder ${unknown[0]} (only {flavor})`);
  for (const flavor of flavors) {
    const topic = kafka.topic.replaceAll('{flavor}', flavor.name);
    // Kafka's own rule (kafka.common.internals.Topic): at most 249 of [a-zA-Z0-9._-].
    if (topic.length > 249 || !/^[A-Za-z0-9._-]+$/.test(topic)) problems.push(`kafka.topic: "${topic}" (flavor ${flavor.name}) is not a valid Kafka topic name`);
  }
  for (const key of Object.keys(kafka.librdkafka)) {
    const why = RESERVED_LIBRDKAFKA.get(key);
    if (why !== undefined) problems.push(`kafka.librdkafka["${key}"]: not allowed (${why})`);
  }
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
    case 'pattern':
      return `${where}: ${describePattern(error.schemaPath)}`;
    default:
      return `${where}: ${error.message ?? error.keyword}`;
  }
}

/** Readable reasons for the schema's patterns, keyed by where they are. */
function describePattern(schemaPath: string): string {
  if (schemaPath.includes('/name/')) return 'must be lower-case letters, digits, "_" or "-" (at most 63)';
  if (schemaPath.includes('/hosts/')) return 'must be a host name (letters, digits, "-", dot-separated), without port or trailing dot';
  if (schemaPath.includes('/fileMode/')) return 'must be an octal mode like "0640"';
  if (schemaPath.includes('/path/')) return 'must start with "/" and contain no "?", "#" or spaces';
  return 'has the wrong form';
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
