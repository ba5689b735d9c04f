/**
 * POST beacons and preflights through the real listener on real sockets
 * (PublicServer + PostDoor + TrackHandler, a backend that keeps its lines):
 * body types, the limits (Content-Length, chunked, gzip/deflate and a zip
 * bomb, Expect: 100-continue, a stalled body), CORS, per-flavor paths, and
 * the connection going on after a POST (pipelining).
 */
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import * as zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { BackendCounters, type Backend } from '../../src/backends/backend';
import { Budget } from '../../src/io/bounded-queue';
import { parseConfig } from '../../src/config/load';
import { FlavorTable } from '../../src/flavor';
import type { Line } from '../../src/line';
import { PostDoor } from '../../src/http/post';
import { PublicServer } from '../../src/http/server';
import { TrackHandler } from '../../src/http/track';
import { ConnectionCounters, RequestCounters } from '../../src/telemetry';
import { exchange, statuses } from '../support/http';

class ListBackend implements Backend {
  readonly name = 'list';
  readonly counters = new BackendCounters();
  readonly lines: Line[] = [];
  readonly held = new Budget();
  readonly whenFull = 'block';
  /** push() refuses (as a full queue would). */
  refuses = false;
  refusing(): boolean {
    return this.refuses;
  }
  start = () => Promise.resolve();
  push(line: Line): boolean {
    if (this.refuses) return false;
    this.lines.push(line);
    return true;
  }
  reopen = () => undefined;
  close = () => Promise.resolve();
  details = () => ({});
}

const FLAVORS = [
  { name: 'skroutz', hosts: ['www.skroutz.gr'], timezone: 'UTC', cors: { origins: ['https://shop.example', 'https://*.skroutz.gr', 'http://127.0.0.1:8000'] } },
  { name: 'alve', hosts: ['www.alve.com'], timezone: 'UTC', paths: ['/e', '/track'], postStatus: 200 },
  { name: 'hidden', hosts: ['hidden.example'], timezone: 'UTC', paths: ['/px'] },
];

let server: PublicServer;
let port = 0;
const backend = new ListBackend();
const requests = new RequestCounters();

before(async () => {
  const config = parseConfig(
    { flavors: FLAVORS, listen: '127.0.0.1:0', http: { maxBodyBytes: 1000, maxBatch: 3, bodyTimeoutMs: 300 } },
    '/etc/scratchd/scratchd.json',
  );
  const flavors = new FlavorTable(config.flavors, config.http.path);
  const handler = new TrackHandler(flavors, [backend], null, requests);
  server = new PublicServer(config.http, handler, requests, new ConnectionCounters(), [backend], flavors.paths);
  server.acceptBodies((end) => new PostDoor(config.http, flavors, handler, requests, end));
  const address = await server.listen(config.listen);
  port = Number(address.slice(address.lastIndexOf(':') + 1));
});

after(() => server.drain(Date.now() + 2_000, 0));

/** The values of the lines written while `run` ran. */
async function valuesOf(run: () => Promise<unknown>): Promise<string[]> {
  const from = backend.lines.length;
  await run();
  return backend.lines.slice(from).map((l) => l.record.slice(l.record.indexOf('"values":') + 9, -1));
}

function post(target: string, body: string | Buffer, headers = '', host = 'www.skroutz.gr'): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return Buffer.concat([Buffer.from(`POST ${target} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${bytes.length}\r\n${headers}\r\n`, 'latin1'), bytes]);
}

const send = (data: string | Buffer, idleMs = 400) => exchange(port, data, idleMs);

describe('POST bodies', () => {
  test('a form body is merged over the query (Rack::Request#params); the connection goes on', async () => {
    let text = '';
    const values = await valuesOf(async () => {
      ({ text } = await send(Buffer.concat([post('/track?a=1&b=0', 'b=2&c[]=x;y'), Buffer.from('GET /track?g=1 HTTP/1.1\r\nHost: www.skroutz.gr\r\n\r\n')])));
    });
    assert.deepEqual(statuses(text), ['204', '200']);
    assert.doesNotMatch(text.split('\r\n\r\n')[0]!, /Content-Length/i, '204 has no Content-Length (RFC 9110 §8.6)');
    assert.deepEqual(values, ['{"a":"1","b":"2","c":["x;y"]}', '{"g":"1"}']);
  });

  test('JSON: an object, a batch, text/plain JSON and form, invalid JSON, a batch too big, another type', async () => {
    const json = 'Content-Type: application/json\r\n';
    const plain = 'Content-Type: text/plain;charset=UTF-8\r\n';
    let text = '';
    const values = await valuesOf(async () => {
      ({ text } = await send(
        Buffer.concat([
          post('/track?q=1', '{"x":1e2,"y":"\\u00e9","q":[true]}', json),
          post('/track', '[{"n":1},{"n":2}]', json),
          post('/track', '{"t":1}', plain),
          post('/track', 't=2', plain),
          post('/track', '{"a":', json),
          post('/track', '[{},{},{},{}]', json),
          post('/track', '{}', 'Content-Type: multipart/form-data; boundary=x\r\n'),
        ]),
      ));
    });
    assert.deepEqual(statuses(text), ['204', '204', '204', '204', '400', '413', '415']);
    assert.deepEqual(values, ['{"q":[true],"x":100.0,"y":"é"}', '{"n":1}', '{"n":2}', '{"t":1}', '{"t":"2"}']);
  });

  test('an empty body is the query alone; HTTP/1.0; postStatus 200', async () => {
    let a = '';
    let b = '';
    const values = await valuesOf(async () => {
      ({ text: a } = await send('POST /track?e=1 HTTP/1.1\r\nHost: www.skroutz.gr\r\nContent-Length: 0\r\n\r\n'));
      ({ text: b } = await send('POST /e?h=1 HTTP/1.0\r\nHost: www.alve.com\r\nContent-Length: 3\r\n\r\nx=1'));
    });
    assert.deepEqual(statuses(a), ['204']);
    assert.deepEqual(statuses(b), ['200']);
    assert.match(b, /Content-Length: 0\r\n/);
    assert.deepEqual(values, ['{"e":"1"}', '{"h":"1","x":"1"}']);
  });
});

describe('a backend that cannot take the line', () => {
  test('a POST is answered 503 with Retry-After, counted unavailable, as a GET would be', async () => {
    const before = requests.unavailable;
    backend.refuses = true;
    try {
      const { text } = await send(post('/track', 'r=1', 'Origin: https://shop.example\r\n'));
      assert.deepEqual(statuses(text), ['503']);
      assert.match(text, /Retry-After: \d+\r\n/);
      assert.match(text, /Access-Control-Allow-Origin: https:\/\/shop\.example\r\n/);
    } finally {
      backend.refuses = false;
    }
    assert.equal(requests.unavailable, before + 1);
  });
});

describe('limits', () => {
  test('Content-Length over http.maxBodyBytes: 413 at once, closed, no 100 Continue', async () => {
    const before = requests.too_large;
    const { text, closed } = await send('POST /track HTTP/1.1\r\nHost: www.skroutz.gr\r\nExpect: 100-continue\r\nContent-Length: 1001\r\n\r\n');
    assert.deepEqual(statuses(text), ['413']);
    assert.doesNotMatch(text, /100 Continue/);
    assert.ok(closed);
    assert.equal(requests.too_large, before + 1);
  });

  test('chunked: the same line under every split; over the limit 413; bad framing 400', async () => {
    const chunked = 'POST /track?c=1 HTTP/1.1\r\nHost: www.skroutz.gr\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nk=v\r\n4\r\n&z=1\r\n0\r\nTrailer: x\r\n\r\n';
    const values = await valuesOf(async () => {
      for (const step of [chunked.length, 7, 1]) {
        const socket = net.connect(port, '127.0.0.1');
        const got: Buffer[] = [];
        socket.on('data', (c: Buffer) => got.push(c));
        await new Promise((r) => socket.once('connect', r));
        for (let i = 0; i < chunked.length; i += step) {
          socket.write(chunked.slice(i, i + step));
          await new Promise((r) => setImmediate(r));
        }
        await new Promise((r) => setTimeout(r, 100));
        socket.destroy();
        assert.deepEqual(statuses(Buffer.concat(got).toString('latin1')), ['204'], `split every ${step} bytes`);
      }
    });
    assert.deepEqual(values, ['{"c":"1","k":"v","z":"1"}', '{"c":"1","k":"v","z":"1"}', '{"c":"1","k":"v","z":"1"}']);
    const head = 'POST /track HTTP/1.1\r\nHost: www.skroutz.gr\r\nTransfer-Encoding: chunked\r\n\r\n';
    assert.deepEqual(statuses((await send(`${head}200\r\n${'a'.repeat(512)}\r\n200\r\n`)).text), ['413']);
    assert.deepEqual(statuses((await send(`${head}3\r\nabcd\r\n0\r\n\r\n`)).text), ['400']);
    assert.deepEqual(statuses((await send(`${head}3\nabc\r\n0\r\n\r\n`)).text), ['400']);
    assert.deepEqual(statuses((await send(`${head}x\r\n`)).text), ['400']);
  });

  test('gzip and deflate; a zip bomb is 413 (the limit is on the decompressed size); a bad stream 400; other codings 415', async () => {
    const values = await valuesOf(async () => {
      assert.deepEqual(statuses((await send(post('/track', zlib.gzipSync('g=1'), 'Content-Encoding: gzip\r\n'))).text), ['204']);
      assert.deepEqual(statuses((await send(post('/track', zlib.deflateSync('{"d":1}'), 'Content-Encoding: deflate\r\nContent-Type: application/json\r\n'))).text), ['204']);
    });
    assert.deepEqual(values, ['{"g":"1"}', '{"d":1}']);
    const bomb = zlib.gzipSync(Buffer.alloc(512 * 1024, 0x61));
    assert.ok(bomb.length < 1000, 'the bomb fits the body limit');
    assert.deepEqual(statuses((await send(post('/track', bomb, 'Content-Encoding: gzip\r\n'))).text), ['413']);
    assert.deepEqual(statuses((await send(post('/track', 'not gzip', 'Content-Encoding: gzip\r\n'))).text), ['400']);
    assert.deepEqual(statuses((await send(post('/track', 'a=1', 'Content-Encoding: br\r\n'))).text), ['415']);
  });

  test('Expect: 100-continue gets "100 Continue" before the body; another expectation 417', async () => {
    const socket = net.connect(port, '127.0.0.1');
    let got = '';
    socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
    await new Promise((r) => socket.once('connect', r));
    socket.write('POST /track HTTP/1.1\r\nHost: www.skroutz.gr\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(got, 'HTTP/1.1 100 Continue\r\n\r\n');
    socket.write('x=1');
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    assert.match(got, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 204 /);
    assert.deepEqual(statuses((await send(post('/track', 'a=1', 'Expect: magic\r\n'))).text), ['417']);
  });

  test('a body that stalls is answered 408 after http.bodyTimeoutMs, and closed', async () => {
    const before = requests.timeout;
    const { text, closed } = await send('POST /track HTTP/1.1\r\nHost: www.skroutz.gr\r\nContent-Length: 10\r\n\r\nabc', 2500);
    assert.deepEqual(statuses(text), ['408']);
    assert.ok(closed);
    assert.equal(requests.timeout, before + 1);
  });
});

describe('CORS', () => {
  test('an allowed origin (exact, wildcard) is named exactly, with credentials and Vary', async () => {
    for (const origin of ['https://shop.example', 'https://a.b.skroutz.gr', 'http://127.0.0.1:8000']) {
      const { text } = await send(post('/track', 'o=1', `Origin: ${origin}\r\n`));
      assert.deepEqual(statuses(text), ['204'], origin);
      assert.match(text, new RegExp(`Access-Control-Allow-Origin: ${origin.replaceAll('.', '\\.')}\r\n`));
      assert.match(text, /Access-Control-Allow-Credentials: true\r\n/);
      assert.match(text, /Vary: Origin\r\n/);
    }
  });

  test('another origin is 403, counted, not recorded; no Origin is accepted', async () => {
    const before = requests.forbidden_origin;
    const values = await valuesOf(async () => {
      for (const origin of ['https://evil.example', 'https://skroutz.gr', 'http://shop.example', 'https://shop.example:444', 'null']) {
        assert.deepEqual(statuses((await send(post('/track', 'o=1', `Origin: ${origin}\r\n`))).text), ['403'], origin);
      }
      assert.deepEqual(statuses((await send(post('/track', 'o=2'))).text), ['204']);
    });
    assert.equal(requests.forbidden_origin, before + 5);
    assert.deepEqual(values, ['{"o":"2"}']);
  });

  test('the default origins are the flavor\'s hosts', async () => {
    assert.deepEqual(statuses((await send(post('/e', 'o=1', 'Origin: https://www.alve.com\r\n', 'www.alve.com'))).text), ['200']);
    assert.deepEqual(statuses((await send(post('/e', 'o=1', 'Origin: https://shop.example\r\n', 'www.alve.com'))).text), ['403']);
  });

  test('a preflight: 204 with the origin, methods, Content-Type, Max-Age, Vary; another origin 403', async () => {
    const preflight = (origin: string) =>
      `OPTIONS /track HTTP/1.1\r\nHost: www.skroutz.gr\r\nOrigin: ${origin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\r\n`;
    const before = requests.preflight;
    const { text, closed } = await send(preflight('https://shop.example'));
    assert.deepEqual(statuses(text), ['204']);
    assert.ok(!closed, 'a preflight keeps the connection');
    for (const header of ['Access-Control-Allow-Origin: https://shop.example', 'Access-Control-Allow-Credentials: true', 'Access-Control-Allow-Methods: POST, GET, HEAD', 'Access-Control-Allow-Headers: Content-Type', 'Access-Control-Max-Age: 86400', 'Vary: Origin']) {
      assert.ok(text.includes(`${header}\r\n`), header);
    }
    assert.equal(requests.preflight, before + 1);
    assert.deepEqual(statuses((await send(preflight('https://evil.example'))).text), ['403']);
  });
});

describe('per-flavor paths', () => {
  test('each flavor answers on its own paths only; GET and POST alike', async () => {
    const get = (host: string, path: string) => `GET ${path}?p=1 HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
    const values = await valuesOf(async () => {
      const { text } = await send(
        get('www.alve.com', '/e') + get('www.alve.com', '/track') + get('hidden.example', '/px') + get('hidden.example', '/track') + get('www.skroutz.gr', '/e') + get('www.skroutz.gr', '/nope'),
      );
      assert.deepEqual(statuses(text), ['200', '200', '200', '404', '404', '404']);
      assert.deepEqual(statuses((await send(post('/px', 'p=2', '', 'hidden.example'))).text), ['204']);
      assert.deepEqual(statuses((await send(post('/px', 'p=3'))).text), ['404']);
    });
    assert.deepEqual(values, ['{"p":"1"}', '{"p":"1"}', '{"p":"1"}', '{"p":"2"}']);
  });
});
