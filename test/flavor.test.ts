/**
 * FlavorTable: Host header → flavor (exact, case-insensitive, with port,
 * with one trailing dot), and each flavor's constant line head.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { FlavorTable } from '../src/flavor';

const table = new FlavorTable([
  { name: 'skroutz', hosts: ['www.skroutz.gr', 'skroutz.gr'], timezone: 'Europe/Athens' },
  { name: 'alve', hosts: ['www.alve.com'], timezone: 'Europe/Istanbul' },
  { name: 'scrooge-uk_2', hosts: ['WWW.Scrooge.co.uk'], timezone: 'Europe/London' },
]);

describe('FlavorTable.byHost', () => {
  const cases: [header: string, flavor: string | undefined][] = [
    ['www.skroutz.gr', 'skroutz'],
    ['skroutz.gr', 'skroutz'],
    ['www.alve.com', 'alve'],
    // Case-insensitive (RFC 9110 §4.2.3), also for a host configured in mixed case.
    ['WWW.SKROUTZ.GR', 'skroutz'],
    ['Www.Alve.Com', 'alve'],
    ['www.scrooge.co.uk', 'scrooge-uk_2'],
    ['WWW.Scrooge.co.uk', 'scrooge-uk_2'],
    // Port.
    ['www.skroutz.gr:8080', 'skroutz'],
    ['www.skroutz.gr:443', 'skroutz'],
    ['www.skroutz.gr:', 'skroutz'],
    ['WWW.ALVE.COM:80', 'alve'],
    // One trailing dot, with or without port.
    ['www.skroutz.gr.', 'skroutz'],
    ['WWW.Skroutz.GR.', 'skroutz'],
    ['www.skroutz.gr.:8080', 'skroutz'],
    // Unknown.
    ['', undefined],
    ['example.com', undefined],
    ['skroutz', undefined],
    ['www.skroutz.gr..', undefined],
    ['www.skroutz.gr.evil.com', undefined],
    ['evil.com:www.skroutz.gr', undefined],
    ['www.skroutz.gr:80:80', undefined],
    [' www.skroutz.gr', undefined],
    ['.', undefined],
    [':', undefined],
    [':8080', undefined],
    // IPv6 literals: no flavor, no crash.
    ['[::1]:8080', undefined],
    ['[::1]', undefined],
    ['[::1', undefined],
    ['::1', undefined],
    ['[2001:db8::1]:443', undefined],
    [']:', undefined],
  ];
  for (const [header, expected] of cases) {
    test(`${JSON.stringify(header)} → ${String(expected)}`, () => {
      assert.equal(table.byHost(header)?.name, expected);
    });
  }

  test('returns the same Flavor object as `all` and byName', () => {
    const flavor = table.byHost('skroutz.gr:81');
    assert.ok(flavor !== undefined);
    assert.equal(flavor, table.all[0]);
    assert.equal(flavor, table.byName('skroutz'));
    assert.equal(table.byName('nope'), undefined);
  });
});

describe('Flavor', () => {
  test('index, timezone and clock follow the config order', () => {
    assert.deepEqual(table.all.map((f) => [f.index, f.name, f.timezone, f.clock.timeZone]), [
      [0, 'skroutz', 'Europe/Athens', 'Europe/Athens'],
      [1, 'alve', 'Europe/Istanbul', 'Europe/Istanbul'],
      [2, 'scrooge-uk_2', 'Europe/London', 'Europe/London'],
    ]);
    assert.notEqual(table.all[0]!.clock, table.all[1]!.clock);
  });

  for (const flavor of table.all) {
    test(`recordHead of ${flavor.name} is the JSON prefix up to the time`, () => {
      assert.ok(flavor.recordHead.endsWith('"time":"'));
      const line: unknown = JSON.parse(`${flavor.recordHead}2026-01-01T00:00:00.000+02:00","values":{}}`);
      assert.deepEqual(line, { flavor: flavor.name, time: '2026-01-01T00:00:00.000+02:00', values: {} });
      assert.deepEqual(JSON.parse(flavor.recordHead + 'x"}'), { flavor: flavor.name, time: 'x' });
    });
  }

  test('recordHead escapes a name that needs it', () => {
    const [odd] = new FlavorTable([{ name: 'a"b\\c', hosts: ['x'], timezone: 'UTC' }]).all;
    assert.deepEqual(JSON.parse(odd!.recordHead + 'x"}'), { flavor: 'a"b\\c', time: 'x' });
  });

  test('tracked starts at 0', () => {
    assert.equal(new FlavorTable([{ name: 'a', hosts: ['a'], timezone: 'UTC' }]).all[0]?.tracked, 0);
  });
});
