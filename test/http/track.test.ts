/**
 * TrackHandler's error rule: only the parser's own QUERY_MALFORMED is a 400;
 * any other exception is a bug that propagates, and the server answers it 500,
 * counts it, and keeps serving.
 */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { BackendCounters, type Backend, type WhenFull } from '../../src/backends/backend';
import { Budget } from '../../src/io/bounded-queue';
import { parseConfig } from '../../src/config/load';
import { FlavorTable } from '../../src/flavor';
import type { Line } from '../../src/line';
import { Answer } from '../../src/http/responses';
import { PublicServer } from '../../src/http/server';
import { BodyType, PostOutcome, TrackHandler } from '../../src/http/track';
import { SanityChecks } from '../../src/checks';
import { ConnectionCounters, RequestCounters } from '../../src/telemetry';
import { request } from '../support/http';
import { FLAVORS } from '../support/scratchd';

/** A backend that keeps its lines, or throws on push when told to (a bug in a backend). */
class ListBackend implements Backend {
  readonly name = 'list';
  readonly counters = new BackendCounters();
  readonly lines: Line[] = [];
  readonly held = new Budget();
  failing = false;
  /** push() refuses (as a full queue would). */
  refuses = false;
  refusing(): boolean {
    return this.refuses;
  }
  constructor(readonly whenFull: WhenFull = 'block') {}
  start = () => Promise.resolve();
  push(line: Line): boolean {
    if (this.failing) throw new TypeError('bug in push');
    if (this.refuses) {
      this.counters.dropped.queue_full++;
      return false;
    }
    this.lines.push(line);
    return true;
  }
  reopen = () => undefined;
  close = () => Promise.resolve();
  details = () => ({});
}

const client = { address: () => '127.0.0.1' };

describe('TrackHandler', () => {
  test('a malformed query is a 400 counted as malformed; nothing reaches the backend', () => {
    const backend = new ListBackend();
    const requests = new RequestCounters();
    const handler = new TrackHandler(new FlavorTable(FLAVORS), [backend], null, requests);
    assert.equal(handler.track(false, 'a=%zz', 'www.skroutz.gr', client), Answer.malformedQuery);
    assert.equal(requests.malformed, 1);
    assert.equal(handler.track(false, 'a=1', 'www.skroutz.gr', client), Answer.gif);
    assert.equal(requests.tracked, 1);
    assert.equal(backend.lines.length, 1);
  });

  test('a 200 only for a line some backend took and no blocking backend refused; tracked counts taken lines', () => {
    const cases: { name: string; backends: [WhenFull, boolean][]; answer: Answer; tracked: number }[] = [
      { name: 'all take it', backends: [['block', false], ['drop_newest', false]], answer: Answer.gif, tracked: 1 },
      { name: 'a dropping backend refuses, another takes it', backends: [['block', false], ['drop_newest', true]], answer: Answer.gif, tracked: 1 },
      { name: 'every backend drops it', backends: [['drop_newest', true], ['drop_newest', true]], answer: Answer.unavailable, tracked: 0 },
      { name: 'a blocking backend refuses, another takes it', backends: [['block', true], ['drop_newest', false]], answer: Answer.unavailable, tracked: 1 },
      { name: 'the only (blocking) backend refuses', backends: [['block', true]], answer: Answer.unavailable, tracked: 0 },
    ];
    for (const c of cases) {
      const backends = c.backends.map(([whenFull, refuses]) => Object.assign(new ListBackend(whenFull), { refuses }));
      const requests = new RequestCounters();
      const handler = new TrackHandler(new FlavorTable(FLAVORS), backends, null, requests);
      assert.equal(handler.track(false, 'a=1', 'www.skroutz.gr', client), c.answer, c.name);
      assert.equal(requests.tracked, c.tracked, c.name);
      assert.equal(requests.unavailable, c.answer === Answer.unavailable ? 1 : 0, c.name);
    }
  });

  test('a line answered 503 is not a duplicate: the retry of a refused GET or POST line is saved', () => {
    const backend = Object.assign(new ListBackend('block'), { refuses: true });
    const requests = new RequestCounters();
    const checks = new SanityChecks({ duplicateWindowMs: 60_000, maxPerMinute: 0, maxKeys: 1000 });
    const flavors = new FlavorTable(FLAVORS);
    const handler = new TrackHandler(flavors, [backend], checks, requests);
    const flavor = flavors.byHost('www.skroutz.gr')!;
    assert.equal(handler.track(false, 'a=1', 'www.skroutz.gr', client), Answer.unavailable);
    assert.equal(handler.post(flavor, 'q=1', BodyType.form, Buffer.from('b=2'), 10, client), PostOutcome.unavailable);
    backend.refuses = false;
    assert.equal(handler.track(false, 'a=1', 'www.skroutz.gr', client), Answer.gif);
    assert.equal(handler.post(flavor, 'q=1', BodyType.form, Buffer.from('b=2'), 10, client), PostOutcome.accepted);
    assert.deepEqual(backend.lines.map((l) => l.record.includes('"a":"1"') || l.record.includes('"b":"2"')), [true, true]);
    assert.equal(requests.duplicate, 0);
    // Once saved, the same beacon again is the duplicate the check is for.
    assert.equal(handler.track(false, 'a=1', 'www.skroutz.gr', client), Answer.gif);
    assert.equal(requests.duplicate, 1);
    assert.equal(backend.lines.length, 2);
  });

  test('a line another backend took stays seen: its retry is a duplicate, not one more copy in that backend', () => {
    const file = new ListBackend('drop_newest');
    const kafka = Object.assign(new ListBackend('block'), { refuses: true }); // refusing for good (a line too large for it)
    const requests = new RequestCounters();
    const checks = new SanityChecks({ duplicateWindowMs: 60_000, maxPerMinute: 0, maxKeys: 1000 });
    const handler = new TrackHandler(new FlavorTable(FLAVORS), [file, kafka], checks, requests);
    for (let retry = 0; retry < 5; retry++) handler.track(false, 'a=1', 'www.skroutz.gr', client);
    assert.equal(file.lines.length, 1);
    assert.equal(requests.unavailable, 1);
    assert.equal(requests.duplicate, 4);
  });

  test('a line no backend took does not count toward the rate: its retry is saved, not answered 200 as malicious', () => {
    const backend = Object.assign(new ListBackend('block'), { refuses: true });
    const requests = new RequestCounters();
    const checks = new SanityChecks({ duplicateWindowMs: 0, maxPerMinute: 1, maxKeys: 1000 });
    const handler = new TrackHandler(new FlavorTable(FLAVORS), [backend], checks, requests, () => 1_764_000_000_000);
    assert.equal(handler.track(false, 'a=1', 'www.skroutz.gr', client), Answer.unavailable);
    backend.refuses = false;
    assert.equal(handler.track(false, 'a=1', 'www.skroutz.gr', client), Answer.gif);
    assert.equal(backend.lines.length, 1);
    assert.equal(requests.malicious, 0);
    // The rate still holds for what was saved.
    assert.equal(handler.track(false, 'a=2', 'www.skroutz.gr', client), Answer.gif);
    assert.equal(requests.malicious, 1);
    assert.equal(backend.lines.length, 1);
  });

  test('any other exception is not a malformed query: it propagates', () => {
    const backend = new ListBackend();
    backend.failing = true;
    const requests = new RequestCounters();
    const handler = new TrackHandler(new FlavorTable(FLAVORS), [backend], null, requests);
    assert.throws(() => handler.track(false, 'a=1', 'www.skroutz.gr', client), /bug in push/);
    assert.equal(requests.malformed, 0);
  });

  test('the server answers a throwing handler 500, counts internal_error, and keeps serving', async () => {
    const config = parseConfig({ flavors: FLAVORS, listen: '127.0.0.1:0' }, '/etc/scratchd/scratchd.json');
    const backend = new ListBackend();
    const requests = new RequestCounters();
    const handler = new TrackHandler(new FlavorTable(config.flavors), [backend], null, requests);
    const server = new PublicServer(config.http, handler, requests, new ConnectionCounters());
    const address = await server.listen(config.listen);
    const port = Number(address.slice(address.lastIndexOf(':') + 1));
    try {
      backend.failing = true;
      const failed = await request(port, 'www.skroutz.gr', '/track?a=1');
      assert.equal(failed.status, 500);
      assert.equal(requests.internal_error, 1);
      assert.equal(requests.malformed, 0);
      backend.failing = false;
      assert.equal((await request(port, 'www.skroutz.gr', '/track?a=2')).status, 200);
      assert.equal((await request(port, 'www.skroutz.gr', '/track?a=%zz')).status, 400);
      assert.equal(backend.lines.length, 1);
    } finally {
      await server.drain(Date.now() + 2_000, 0);
    }
  });
});
