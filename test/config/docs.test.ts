/**
 * docs/configuration.md against the schema: every key of the config schema
 * (the core's and each backend plug-in's) has a row, every row is a key, and
 * every default written there is the schema's. docs/architecture.md lists
 * every drop reason a backend can count.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { commonDropReasons } from '../../src/backends/backend';
import { backendRegistry } from '../../src/backends/registry';
import { configSchema } from '../../src/config/schema';
import { repoRoot } from '../support/paths';

interface SchemaNode {
  type?: unknown;
  default?: unknown;
  required?: readonly string[];
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
}

interface Key {
  default?: unknown;
  required: boolean;
}

/** Every key path of the schema: "listen", "flavors[].name", "kafka.spool.path". */
function schemaKeys(node: SchemaNode, prefix = '', out = new Map<string, Key>()): Map<string, Key> {
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    const key = prefix === '' ? name : `${prefix}.${name}`;
    out.set(key, { ...('default' in child ? { default: child.default } : {}), required: node.required?.includes(name) ?? false });
    if (child.properties !== undefined) schemaKeys(child, key, out);
    if (child.items?.properties !== undefined) schemaKeys(child.items, `${key}[]`, out);
  }
  return out;
}

/** The rows of the key tables: key → the default column's text. */
function documentedKeys(markdown: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of markdown.split('\n')) {
    const match = /^\| `([^`]+)` \| ([^|]*) \|/.exec(line);
    if (match === null) continue;
    assert.ok(!rows.has(match[1]!), `${match[1]} has two rows`);
    rows.set(match[1]!, match[2]!.trim());
  }
  return rows;
}

const configuration = fs.readFileSync(path.join(repoRoot, 'docs', 'configuration.md'), 'utf8');
const keys = schemaKeys(configSchema);
const documented = documentedKeys(configuration);

describe('docs/configuration.md', () => {
  test('the schema has the keys this test expects of it (core and every plug-in)', () => {
    for (const key of ['listen', 'flavors[].timezone', 'http.path', 'shutdown.drainTimeoutMs']) assert.ok(keys.has(key), key);
    for (const backend of backendRegistry) assert.ok(keys.has(backend.name), backend.name);
  });

  test('every schema key has a row', () => {
    const missing = [...keys.keys()].filter((k) => !documented.has(k));
    assert.deepEqual(missing, [], `keys missing from docs/configuration.md: ${missing.join(', ')}`);
  });

  test('every row is a schema key', () => {
    const unknown = [...documented.keys()].filter((k) => !keys.has(k));
    assert.deepEqual(unknown, [], `rows for keys the schema does not have: ${unknown.join(', ')}`);
  });

  test('every default is the schema\'s; required and optional keys say so', () => {
    for (const [key, spec] of keys) {
      const text = documented.get(key);
      if (text === undefined) continue;
      if ('default' in spec) {
        const code = /^`([^`]*)`/.exec(text);
        assert.ok(code !== null, `${key}: the default column must start with the default as code, got ${JSON.stringify(text)}`);
        assert.deepEqual(JSON.parse(code[1]!), spec.default, `${key}: documented default ${code[1]} is not the schema's ${JSON.stringify(spec.default)}`);
      } else if (spec.required) {
        assert.equal(text, '(required)', key);
      } else {
        assert.equal(text, '(absent)', `${key}: optional without a default`);
      }
    }
  });
});

describe('docs/architecture.md', () => {
  test('lists every drop reason, common and each plug-in\'s', () => {
    const architecture = fs.readFileSync(path.join(repoRoot, 'docs', 'architecture.md'), 'utf8');
    const reasons = [...Object.keys(commonDropReasons), ...backendRegistry.flatMap((b) => Object.keys(b.dropReasons))];
    for (const reason of reasons) assert.match(architecture, new RegExp(`\`${reason}\``), reason);
  });
});
