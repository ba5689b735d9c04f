/**
 * The backend registry: the core finds backends only through it. A config key
 * that no plug-in registered is refused by name; each registered plug-in's
 * section is validated by its own schema and checks; nothing in config/,
 * main.ts or scratchd.ts names a backend.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { BackendCounters, commonDropReasons } from '../../src/backends/backend';
import { backendConfig, backendRegistry, findBackend } from '../../src/backends/registry';
import { parseConfig } from '../../src/config/load';
import { coreSchema } from '../../src/config/schema';
import { isScratchError } from '../../src/errors';
import { FlavorTable } from '../../src/flavor';
import { FLAVORS, tempDir } from '../support/scratchd';
import { repoRoot } from '../support/paths';

const SOURCE = '/etc/scratchd/scratchd.json';

function problemsOf(json: unknown): string {
  try {
    parseConfig(json, SOURCE);
  } catch (err) {
    assert.ok(isScratchError(err, 'CONFIG_INVALID'), String(err));
    return err.message;
  }
  assert.fail('expected CONFIG_INVALID');
}

/** The smallest valid section of a backend: its required keys, with values its schema and checks accept. */
const MINIMAL: Record<string, Record<string, unknown>> = {
  file: { path: 'logs/{flavor}.log' },
  kafka: { brokers: '127.0.0.1:1', spool: { path: 'spool' } },
};

describe('backend registry', () => {
  test('names are unique, are not core keys, and are found by findBackend', () => {
    const names = backendRegistry.map((b) => b.name);
    assert.equal(new Set(names).size, names.length);
    for (const name of names) {
      assert.ok(!(name in coreSchema.properties), `${name} is a core key`);
      assert.equal(findBackend(name)?.name, name);
    }
    assert.equal(findBackend('nope'), undefined);
  });

  test('a config key no plug-in registered is refused, naming the key', () => {
    assert.match(problemsOf({ flavors: FLAVORS, s3: { bucket: 'x' } }), /^ {2}s3: unknown key$/m);
  });

  for (const backend of backendRegistry) {
    describe(`plug-in "${backend.name}"`, () => {
      test('has a minimal section in this test (a new plug-in must add one)', () => {
        assert.ok(MINIMAL[backend.name], `add a minimal "${backend.name}" section to MINIMAL`);
      });

      test('its section is validated by its own schema: unknown keys, missing required keys, wrong types', () => {
        const minimal = MINIMAL[backend.name]!;
        assert.match(problemsOf({ flavors: FLAVORS, [backend.name]: { ...minimal, bogusKey: 1 } }), new RegExp(`^ {2}${backend.name}\\.bogusKey: unknown key$`, 'm'));
        for (const key of backend.schema.required ?? []) {
          const without = { ...minimal };
          delete without[key];
          assert.match(problemsOf({ flavors: FLAVORS, [backend.name]: without }), new RegExp(`^ {2}${backend.name}\\.${key}: required$`, 'm'));
        }
        assert.match(problemsOf({ flavors: FLAVORS, [backend.name]: 'on' }), new RegExp(`^ {2}${backend.name}: must be object$`, 'm'));
      });

      test('every key is described, and a present section becomes one entry with its defaults filled in', () => {
        for (const [key, schema] of Object.entries(backend.schema.properties)) {
          assert.equal(typeof (schema as { description?: unknown }).description, 'string', `${backend.name}.${key}`);
        }
        const config = parseConfig({ flavors: FLAVORS, [backend.name]: MINIMAL[backend.name] }, SOURCE);
        assert.deepEqual(config.backends.map((b) => b.name), [backend.name]);
        const resolved = backendConfig(config, backend) as Record<string, unknown>;
        for (const [key, schema] of Object.entries(backend.schema.properties)) {
          if ('default' in schema) assert.ok(key in resolved, `${backend.name}.${key} has its default`);
        }
        assert.equal(backend.summary(resolved).length > 0, true);
      });

      test('its counters show the common and its own drop reasons at 0 from the start', async () => {
        const dir = tempDir();
        const section = backend.name === 'file' ? { path: path.join(dir, '{flavor}.log') } : { ...MINIMAL[backend.name], spool: { path: path.join(dir, 'spool') } };
        const config = parseConfig({ flavors: FLAVORS, [backend.name]: section }, SOURCE);
        const running = backend.create(backendConfig(config, backend), { flavors: new FlavorTable(FLAVORS).all, startWaitMs: 1_000 });
        try {
          assert.equal(running.name, backend.name);
          const expected = Object.fromEntries([...Object.keys(commonDropReasons), ...Object.keys(backend.dropReasons)].map((r) => [r, 0]));
          assert.deepEqual({ ...running.counters.dropped }, expected);
          for (const [reason, description] of Object.entries(backend.dropReasons)) assert.ok(description.length > 10, reason);
        } finally {
          await running.close(Date.now() + 1_000);
        }
      });
    });
  }

  test('the core names no backend: config/, main.ts and scratchd.ts know them only through the registry', () => {
    const core = [
      ...fs.readdirSync(path.join(repoRoot, 'src', 'config')).map((f) => path.join('src', 'config', f)),
      path.join('src', 'main.ts'),
      path.join('src', 'scratchd.ts'),
    ];
    for (const file of core) {
      // Code only: comments may say "the config file".
      const text = fs.readFileSync(path.join(repoRoot, file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
      assert.doesNotMatch(text, /from '[./]*backends\/(?!registry'|backend')/, `${file} imports a backend directly`);
      for (const { name } of backendRegistry) {
        assert.doesNotMatch(text, new RegExp(`['"\`.]${name}['"\`.]|\\b${name}Backend\\b|\\b${name}\\??\\.`, 'i'), `${file} names the ${name} backend`);
      }
    }
  });

  test('BackendCounters without own reasons has exactly the common ones', () => {
    assert.deepEqual(Object.keys(new BackendCounters().dropped), Object.keys(commonDropReasons));
  });
});
