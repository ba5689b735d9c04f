/**
 * Config loading against real files in a temp folder: the example config,
 * defaults from the schema, path resolution, freezing, and one row per way a
 * config can be wrong (each must name the key path and the reason).
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isScratchError, type ErrorCode } from '../../src/errors';
import { fileBackend } from '../../src/backends/file';
import { backendConfig } from '../../src/backends/registry';
import { loadConfigFile, parseConfig } from '../../src/config/load';
import { configSchema } from '../../src/config/schema';
import type { Config } from '../../src/config/types';
import { repoRoot } from '../support/paths';

const SOURCE = '/etc/scratchd/scratchd.json';

const flavor = (name: string, hosts: string[], timezone = 'UTC') => ({ name, hosts, timezone });
const ONE = [flavor('a', ['a.example'])];
const fileOf = (config: Config) => backendConfig(config, fileBackend);
const TWO = [flavor('a', ['a.example']), flavor('b', ['b.example'], 'Europe/Athens')];

/** Runs `fn`, expects a ScratchError with `code`, and returns its message. */
function errorOf(code: ErrorCode, fn: () => unknown): string {
  let message = '';
  assert.throws(fn, (err: unknown) => {
    assert.ok(isScratchError(err, code), `expected ${code}, got ${String(err)}`);
    message = err.message;
    return true;
  });
  return message;
}

function assertInvalid(json: unknown, fragments: readonly string[]): string {
  const message = errorOf('CONFIG_INVALID', () => parseConfig(json, SOURCE));
  assert.ok(message.includes(SOURCE), `message names the file: ${message}`);
  for (const fragment of fragments) {
    assert.ok(message.includes(fragment), `expected ${JSON.stringify(fragment)} in:\n${message}`);
  }
  return message;
}

function assertDeepFrozen(value: unknown, at = 'config'): void {
  if (value === null || typeof value !== 'object') return;
  assert.ok(Object.isFrozen(value), `${at} is frozen`);
  for (const [key, inner] of Object.entries(value)) assertDeepFrozen(inner, `${at}.${key}`);
}

/** The `default` of every key under a schema object's properties. */
function schemaDefaults(section: { properties: Record<string, unknown> }): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(section.properties)) {
    if (spec !== null && typeof spec === 'object' && 'default' in spec) out[key] = spec.default;
  }
  return out;
}

let tmp = '';
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scratchd-config-'));
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function writeConfig(relative: string, content: unknown): string {
  const file = path.join(tmp, relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('loadConfigFile: the example config', () => {
  const example = path.join(repoRoot, 'config', 'scratchd.json');

  test('loads, with its flavors, listeners and a file path resolved next to it', () => {
    const config = loadConfigFile(example);
    assert.equal(config.source, example);
    assert.deepEqual(config.listen, { kind: 'address', host: '127.0.0.1', port: 8080 });
    assert.deepEqual(config.admin, { host: '127.0.0.1', port: 9090 });
    assert.deepEqual(config.flavors.map((f) => [f.name, f.timezone]), [
      ['skroutz', 'Europe/Athens'],
      ['alve', 'Europe/Istanbul'],
      ['scrooge', 'Europe/London'],
    ]);
    assert.deepEqual(config.flavors[0]?.hosts, ['www.skroutz.gr', 'skroutz.gr']);
    assert.equal(fileOf(config)?.path, path.join(repoRoot, 'var', 'log', 'scratchd', '{flavor}', '{date}.log'));
    assert.equal(fileOf(config)?.queue, 100_000);
  });

  test('is deeply frozen', () => {
    const config = loadConfigFile(example);
    assertDeepFrozen(config);
    assert.throws(() => {
      (config.http as { path: string }).path = '/other';
    }, TypeError);
    assert.throws(() => {
      (config.flavors[0]!.hosts as string[]).push('evil.example');
    }, TypeError);
  });
});

describe('parseConfig: defaults', () => {
  const minimal = () => parseConfig({ flavors: ONE }, SOURCE);

  test('workers: 1 by default; an integer as given; "auto" the cores available', () => {
    assert.equal(parseConfig({ flavors: ONE }, SOURCE).workers, 1);
    assert.equal(parseConfig({ flavors: ONE, workers: 4 }, SOURCE).workers, 4);
    assert.equal(parseConfig({ flavors: ONE, workers: 'auto' }, SOURCE).workers, Math.min(256, os.availableParallelism()));
    // One blocking backend is enough beside a dropping one.
    const mixed = { flavors: ONE, workers: 2, file: { path: '/x/{flavor}.log' }, kafka: { brokers: 'k:9092', whenFull: 'drop_newest', librdkafka: { 'bootstrap.servers': 'x:1' } } };
    assert.throws(() => parseConfig(mixed, SOURCE), (err: Error) => !err.message.includes('needs a backend with whenFull'));
  });

  test('listen and admin', () => {
    const config = minimal();
    assert.equal(config.source, SOURCE);
    assert.deepEqual(config.listen, { kind: 'address', host: '127.0.0.1', port: 8080 });
    assert.deepEqual(config.admin, { host: '127.0.0.1', port: 9090 });
  });

  const sections = [
    ['http', configSchema.properties.http],
    ['checks', configSchema.properties.checks],
    ['shutdown', configSchema.properties.shutdown],
  ] as const;
  for (const [name, section] of sections) {
    test(`${name}.* are the schema defaults`, () => {
      const expected = schemaDefaults(section);
      assert.ok(Object.keys(expected).length > 0);
      assert.deepEqual({ ...minimal()[name] }, expected);
    });
  }

  test('literal values of a few defaults the rest of scratchd relies on', () => {
    const config = minimal();
    assert.equal(config.http.path, '/track');
    assert.equal(config.http.trustForwardedFor, false);
    assert.equal(config.checks.duplicateWindowMs, 0);
    assert.equal(config.checks.maxPerMinute, 0);
  });

  test('file omitted → no file backend (no backend at all)', () => {
    assert.equal(fileOf(minimal()), null);
    assert.deepEqual(minimal().backends, []);
  });

  test('file.* are the schema defaults, fileMode as a number', () => {
    const config = parseConfig({ flavors: ONE, file: { path: '/var/log/{flavor}.log' } }, SOURCE);
    const expected: Record<string, unknown> = { ...schemaDefaults(fileBackend.schema), path: '/var/log/{flavor}.log' };
    assert.equal(expected.fileMode, '0640');
    expected.fileMode = 0o640;
    assert.deepEqual({ ...fileOf(config) }, expected);
  });

  test('given values are kept, fileMode parsed as octal', () => {
    const config = parseConfig(
      {
        flavors: ONE,
        http: { maxConnections: 7, trustForwardedFor: true },
        file: { path: '/x/{flavor}', fileMode: '600', fsyncIntervalMs: 0 },
        checks: { duplicateWindowMs: 5000 },
      },
      SOURCE,
    );
    assert.equal(config.http.maxConnections, 7);
    assert.equal(config.http.trustForwardedFor, true);
    assert.equal(config.http.path, '/track');
    assert.equal(fileOf(config)?.fileMode, 0o600);
    assert.equal(fileOf(config)?.fsyncIntervalMs, 0);
    assert.equal(config.checks.duplicateWindowMs, 5000);
    assert.equal(config.checks.maxKeys, 100_000);
  });

  test('the input object is not changed', () => {
    const input = { flavors: [flavor('a', ['a.example'])], file: { path: 'x/{flavor}' } };
    const before = structuredClone(input);
    const config = parseConfig(input, SOURCE);
    assert.deepEqual(input, before);
    assert.ok(!Object.isFrozen(input));
    assert.notEqual(config.flavors, input.flavors);
  });

  test('the result is deeply frozen', () => {
    assertDeepFrozen(parseConfig({ flavors: TWO, file: { path: 'x/{flavor}' } }, SOURCE));
  });
});

describe('parseConfig: listeners that are valid', () => {
  const cases: { listen?: string; admin?: string | null; expectListen: Config['listen']; expectAdmin: Config['admin'] }[] = [
    { listen: '[::1]:8080', expectListen: { kind: 'address', host: '::1', port: 8080 }, expectAdmin: { host: '127.0.0.1', port: 9090 } },
    { listen: '0.0.0.0:80', admin: '[::]:9091', expectListen: { kind: 'address', host: '0.0.0.0', port: 80 }, expectAdmin: { host: '::', port: 9091 } },
    { listen: 'systemd', admin: '127.0.0.1:8080', expectListen: { kind: 'systemd' }, expectAdmin: { host: '127.0.0.1', port: 8080 } },
    { listen: 'localhost:65535', admin: null, expectListen: { kind: 'address', host: 'localhost', port: 65535 }, expectAdmin: null },
    // Port 0 (any free port, as tests use) twice on one host is not a clash.
    { listen: '127.0.0.1:0', admin: '127.0.0.1:0', expectListen: { kind: 'address', host: '127.0.0.1', port: 0 }, expectAdmin: { host: '127.0.0.1', port: 0 } },
  ];
  for (const c of cases) {
    test(`listen ${String(c.listen)}, admin ${String(c.admin)}`, () => {
      const json: Record<string, unknown> = { flavors: ONE };
      if (c.listen !== undefined) json.listen = c.listen;
      if (c.admin !== undefined) json.admin = c.admin;
      const config = parseConfig(json, SOURCE);
      assert.deepEqual(config.listen, c.expectListen);
      assert.deepEqual(config.admin, c.expectAdmin);
    });
  }
});

describe('parseConfig: bad configs → CONFIG_INVALID naming key and reason', () => {
  const withFile = (file: Record<string, unknown>) => ({ flavors: ONE, file: { path: '/x/{flavor}.log', ...file } });
  const cases: { why: string; json: unknown; expect: string[] }[] = [
    { why: 'not an object', json: [], expect: ['(top level): must be object'] },
    { why: 'null', json: null, expect: ['(top level): must be object'] },
    { why: 'unknown top-level key', json: { flavors: ONE, flavours: [] }, expect: ['flavours: unknown key'] },
    { why: 'unknown key in a flavor', json: { flavors: [...ONE, { ...flavor('b', ['b.example']), foo: 1 }] }, expect: ['flavors[1].foo: unknown key'] },
    { why: 'unknown key in http', json: { flavors: ONE, http: { bar: true } }, expect: ['http.bar: unknown key'] },
    { why: 'unknown key in file', json: withFile({ baz: 1 }), expect: ['file.baz: unknown key'] },
    { why: 'unknown key in checks', json: { flavors: ONE, checks: { windowMs: 1 } }, expect: ['checks.windowMs: unknown key'] },
    { why: 'missing flavors', json: {}, expect: ['flavors: required'] },
    { why: 'workers 0', json: { flavors: ONE, workers: 0 }, expect: ['workers: 0 is not an integer from 1 to 256 or "auto"'] },
    { why: 'workers not whole', json: { flavors: ONE, workers: 2.5 }, expect: ['workers: 2.5 is not an integer from 1 to 256'] },
    { why: 'workers too many', json: { flavors: ONE, workers: 257 }, expect: ['workers: 257 is not an integer from 1 to 256'] },
    { why: 'workers a word other than "auto"', json: { flavors: ONE, workers: 'all' }, expect: ['workers: "all" is not an integer from 1 to 256 or "auto"'] },
    { why: 'workers a number in a string', json: { flavors: ONE, workers: '2' }, expect: ['workers: "2" is not an integer'] },
    {
      why: 'workers > 1 with only drop_newest backends',
      json: { flavors: ONE, workers: 2, file: { path: '/x/{flavor}.log', whenFull: 'drop_newest' } },
      expect: ['workers: 2 needs a backend with whenFull "block" (file: "drop_newest")'],
    },
    {
      why: 'workers "auto" with only drop_newest backends (auto may be more elsewhere)',
      json: { flavors: ONE, workers: 'auto', file: { path: '/x/{flavor}.log', whenFull: 'drop_newest' } },
      expect: ['workers: "auto" needs a backend with whenFull "block"'],
    },
    {
      why: 'workers > 1 with the Kafka client on the main thread',
      json: { flavors: ONE, workers: 2, kafka: { brokers: 'k:9092', thread: false, librdkafka: { 'bootstrap.servers': 'x:1' } } },
      expect: ['kafka.thread: must be true with workers > 1'],
    },
    { why: 'flavors not an array', json: { flavors: {} }, expect: ['flavors: must be array'] },
    { why: 'empty flavors', json: { flavors: [] }, expect: ['flavors: must NOT have fewer than 1 items'] },
    { why: 'missing name', json: { flavors: [{ hosts: ['a.example'], timezone: 'UTC' }] }, expect: ['flavors[0].name: required'] },
    { why: 'missing timezone', json: { flavors: [{ name: 'a', hosts: ['a.example'] }] }, expect: ['flavors[0].timezone: required'] },
    { why: 'upper-case name', json: { flavors: [flavor('Skroutz', ['a.example'])] }, expect: ['flavors[0].name: must be lower-case letters'] },
    { why: 'name with a slash', json: { flavors: [...ONE, flavor('b/c', ['b.example'])] }, expect: ['flavors[1].name: must be lower-case letters'] },
    { why: 'name of 64 characters', json: { flavors: [flavor('a'.repeat(64), ['a.example'])] }, expect: ['flavors[0].name: must be lower-case letters'] },
    { why: 'name starting with "-"', json: { flavors: [flavor('-a', ['a.example'])] }, expect: ['flavors[0].name:'] },
    { why: 'no hosts', json: { flavors: [flavor('a', [])] }, expect: ['flavors[0].hosts: must NOT have fewer than 1 items'] },
    { why: 'empty host', json: { flavors: [flavor('a', [''])] }, expect: ['flavors[0].hosts[0]:'] },
    {
      why: 'unknown timezone',
      json: { flavors: [...ONE, flavor('b', ['b.example'], 'Mars/Olympus_Mons')] },
      expect: ['flavors[1].timezone: unknown timezone', '"Mars/Olympus_Mons"'],
    },
    { why: 'duplicate flavor names', json: { flavors: [...ONE, flavor('a', ['b.example'])] }, expect: ['flavors[1].name: "a" is also flavors[0].name'] },
    {
      why: 'duplicate hosts across flavors',
      json: { flavors: [...ONE, flavor('b', ['b.example', 'a.example'])] },
      expect: ['flavors[1].hosts[1]: "a.example" is also a host of flavor "a"'],
    },
    {
      why: 'duplicate hosts, case-insensitively',
      json: { flavors: [...ONE, flavor('b', ['A.Example'])] },
      expect: ['flavors[1].hosts[0]: "A.Example" is also a host of flavor "a"'],
    },
    { why: 'duplicate host within a flavor', json: { flavors: [flavor('a', ['a.example', 'a.example'])] }, expect: ['flavors[0].hosts[1]: "a.example" is also'] },
    { why: 'host with a port', json: { flavors: [flavor('a', ['a.example:8080'])] }, expect: ['flavors[0].hosts[0]: must be a host name', 'without port'] },
    { why: 'host with a scheme', json: { flavors: [flavor('a', ['https://a.example'])] }, expect: ['flavors[0].hosts[0]: must be a host name'] },
    { why: 'file.path without {flavor}', json: withFile({ path: '/var/log/{date}.log' }), expect: ['file.path: must contain {flavor}'] },
    { why: 'file.path with {day}', json: withFile({ path: '/var/log/{flavor}/{day}.log' }), expect: ['file.path: unknown placeholder {day}'] },
    {
      why: 'kafka.librdkafka sets the brokers',
      json: { flavors: ONE, kafka: { brokers: 'k:9092', librdkafka: { 'bootstrap.servers': 'x:1' } } },
      expect: ['kafka.librdkafka["bootstrap.servers"]: not allowed (set kafka.brokers instead)'],
    },
    {
      why: 'kafka.librdkafka turns idempotence off',
      json: { flavors: ONE, kafka: { brokers: 'k:9092', librdkafka: { 'enable.idempotence': false } } },
      expect: ['kafka.librdkafka["enable.idempotence"]: must stay true'],
    },
    { why: 'file without path', json: { flavors: ONE, file: {} }, expect: ['file.path: required'] },
    { why: 'empty file.path', json: withFile({ path: '' }), expect: ['file.path:'] },
    { why: 'listen without host', json: { flavors: ONE, listen: '8080' }, expect: ['listen: "8080" is not "host:port" or "systemd"'] },
    { why: 'listen port too large', json: { flavors: ONE, listen: 'host:99999' }, expect: ['listen: "host:99999" is not "host:port"'] },
    { why: 'listen port 65536', json: { flavors: ONE, listen: '127.0.0.1:65536' }, expect: ['listen: "127.0.0.1:65536"'] },
    { why: 'listen with IPv6 unbracketed', json: { flavors: ONE, listen: '::1:8080' }, expect: ['listen: "::1:8080"'] },
    { why: 'listen without port', json: { flavors: ONE, listen: '127.0.0.1' }, expect: ['listen: "127.0.0.1"'] },
    { why: 'listen with empty port', json: { flavors: ONE, listen: '127.0.0.1:' }, expect: ['listen: "127.0.0.1:"'] },
    { why: 'admin "systemd"', json: { flavors: ONE, admin: 'systemd' }, expect: ['admin: "systemd" is only for the public listener'] },
    { why: 'admin not host:port', json: { flavors: ONE, admin: '9090' }, expect: ['admin: "9090" is not "host:port"'] },
    { why: 'admin equal to listen', json: { flavors: ONE, listen: '127.0.0.1:8080', admin: '127.0.0.1:8080' }, expect: ['admin: must not be the public listener'] },
    { why: 'admin on 0.0.0.0 at the public port', json: { flavors: ONE, listen: '127.0.0.1:8080', admin: '0.0.0.0:8080' }, expect: ['admin: must not be the public listener'] },
    { why: 'admin on [::] at the public IPv6 port', json: { flavors: ONE, listen: '[::1]:8080', admin: '[::]:8080' }, expect: ['admin: must not be the public listener'] },
    { why: 'listen a number', json: { flavors: ONE, listen: 8080 }, expect: ['listen: must be string'] },
    { why: 'admin a number', json: { flavors: ONE, admin: 9090 }, expect: ['admin: must be string or null'] },
    { why: 'file.queue a string', json: withFile({ queue: '10' }), expect: ['file.queue: must be integer'] },
    { why: 'file.queue zero', json: withFile({ queue: 0 }), expect: ['file.queue: must be >= 1'] },
    { why: 'file.whenFull unknown', json: withFile({ whenFull: 'drop_oldest' }), expect: ['file.whenFull: must be equal to one of the allowed values'] },
    { why: 'backpressure low mark not below the high one', json: { flavors: ONE, http: { backpressureHighPercent: 40, backpressureLowPercent: 40 } }, expect: ['http.backpressureLowPercent: must be below http.backpressureHighPercent'] },
    { why: 'file.queue negative', json: withFile({ queue: -5 }), expect: ['file.queue: must be >= 1'] },
    { why: 'file.queue fractional', json: withFile({ queue: 1.5 }), expect: ['file.queue: must be integer'] },
    { why: 'file.fsyncIntervalMs negative', json: withFile({ fsyncIntervalMs: -1 }), expect: ['file.fsyncIntervalMs: must be >= 0'] },
    { why: 'file.fileMode not octal', json: withFile({ fileMode: '0999' }), expect: ['file.fileMode: must be an octal mode'] },
    { why: 'file.fileMode a number', json: withFile({ fileMode: 416 }), expect: ['file.fileMode: must be string'] },
    { why: 'http.path without "/"', json: { flavors: ONE, http: { path: 'track' } }, expect: ['http.path: must start with "/"'] },
    { why: 'http.path with "?"', json: { flavors: ONE, http: { path: '/track?x' } }, expect: ['http.path: must start with "/"'] },
    { why: 'http.maxConnections zero', json: { flavors: ONE, http: { maxConnections: 0 } }, expect: ['http.maxConnections: must be >= 1'] },
    { why: 'http.maxRequestLineBytes too large', json: { flavors: ONE, http: { maxRequestLineBytes: 65_537 } }, expect: ['http.maxRequestLineBytes: must be <= 65536'] },
    { why: 'http.trustForwardedFor a string', json: { flavors: ONE, http: { trustForwardedFor: 'yes' } }, expect: ['http.trustForwardedFor: must be boolean'] },
    { why: 'http an array', json: { flavors: ONE, http: [] }, expect: ['http: must be object'] },
    { why: 'checks.maxKeys zero', json: { flavors: ONE, checks: { maxKeys: 0 } }, expect: ['checks.maxKeys: must be >= 1'] },
    { why: 'checks.duplicateWindowMs negative', json: { flavors: ONE, checks: { duplicateWindowMs: -1 } }, expect: ['checks.duplicateWindowMs: must be >= 0'] },
    { why: 'checks.maxPerMinute a string', json: { flavors: ONE, checks: { maxPerMinute: '5' } }, expect: ['checks.maxPerMinute: must be integer'] },
    { why: 'shutdown.drainTimeoutMs zero', json: { flavors: ONE, shutdown: { drainTimeoutMs: 0 } }, expect: ['shutdown.drainTimeoutMs: must be >= 1'] },
    { why: 'shutdown.idleCloseGraceMs negative', json: { flavors: ONE, shutdown: { idleCloseGraceMs: -250 } }, expect: ['shutdown.idleCloseGraceMs: must be >= 0'] },
  ];
  for (const c of cases) {
    test(c.why, () => {
      assertInvalid(c.json, c.expect);
    });
  }

  test('several schema problems are reported together, one per line', () => {
    const message = assertInvalid(
      { flavors: [flavor('Bad', ['a.example'])], http: { bar: 1 }, file: { path: '/x/{flavor}', queue: '10' }, extra: true },
      ['flavors[0].name:', 'http.bar: unknown key', 'file.queue: must be integer', 'extra: unknown key'],
    );
    assert.equal(message.split('\n').length, 5, message);
  });

  test('several semantic problems are reported together, one per line', () => {
    const message = assertInvalid(
      {
        listen: 'nowhere',
        admin: 'systemd',
        flavors: [flavor('a', ['a.example'], 'Not/AZone'), flavor('a', ['A.EXAMPLE'])],
        file: { path: '/x/{date}/{hour}.log' },
      },
      [
        'listen: "nowhere"',
        'admin: "systemd"',
        'flavors[0].timezone: unknown timezone "Not/AZone"',
        'flavors[1].name: "a" is also flavors[0].name',
        'flavors[1].hosts[0]: "A.EXAMPLE" is also a host',
        'file.path: must contain {flavor}',
        'file.path: unknown placeholder {hour}',
      ],
    );
    assert.equal(message.split('\n').length, 8, message);
  });
});

describe('loadConfigFile: real files', () => {
  test('a relative file.path resolves against the config file folder, not the cwd', () => {
    const file = writeConfig('etc/scratchd.json', { flavors: ONE, file: { path: '../log/{flavor}/{date}.log' } });
    const config = loadConfigFile(file);
    assert.equal(config.source, file);
    assert.equal(fileOf(config)?.path, path.join(tmp, 'log', '{flavor}', '{date}.log'));
  });

  test('an absolute file.path is kept', () => {
    const file = writeConfig('abs/scratchd.json', { flavors: ONE, file: { path: '/srv/logs/{flavor}.log' } });
    assert.equal(fileOf(loadConfigFile(file))?.path, '/srv/logs/{flavor}.log');
  });

  test('a relative config path gives an absolute source', () => {
    const file = writeConfig('rel/scratchd.json', { flavors: ONE, file: { path: 'out/{flavor}.log' } });
    const config = loadConfigFile(path.relative(process.cwd(), file));
    assert.equal(config.source, file);
    assert.equal(fileOf(config)?.path, path.join(tmp, 'rel', 'out', '{flavor}.log'));
  });

  test('the loaded config is deeply frozen', () => {
    const file = writeConfig('frozen/scratchd.json', { flavors: TWO, file: { path: 'x/{flavor}' } });
    assertDeepFrozen(loadConfigFile(file));
  });

  test('a missing file → CONFIG_UNREADABLE naming it, with the cause kept', () => {
    const file = path.join(tmp, 'does-not-exist.json');
    assert.throws(
      () => loadConfigFile(file),
      (err: unknown) => {
        assert.ok(isScratchError(err, 'CONFIG_UNREADABLE'), String(err));
        assert.ok(err.message.includes(file), err.message);
        assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOENT');
        return true;
      },
    );
  });

  test('a directory → CONFIG_UNREADABLE', () => {
    const message = errorOf('CONFIG_UNREADABLE', () => loadConfigFile(tmp));
    assert.ok(message.includes(tmp), message);
  });

  test('invalid JSON → CONFIG_INVALID naming the file', () => {
    const file = writeConfig('broken/scratchd.json', '{ "flavors": [ }');
    const message = errorOf('CONFIG_INVALID', () => loadConfigFile(file));
    assert.ok(message.includes(file), message);
    assert.ok(message.includes('not JSON'), message);
  });

  test('an invalid config in a file names the file and the key', () => {
    const file = writeConfig('bad/scratchd.json', { flavors: [flavor('a', ['a.example'], 'Europe/Atlantis')] });
    const message = errorOf('CONFIG_INVALID', () => loadConfigFile(file));
    assert.ok(message.includes(file), message);
    assert.ok(message.includes('flavors[0].timezone: unknown timezone "Europe/Atlantis"'), message);
  });
});
