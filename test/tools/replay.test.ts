/**
 * `scratchd replay` against real local HTTP servers on port 0 (node:net,
 * recording the raw request lines and Host headers they receive): delivery
 * byte for byte, counting, pacing, latency from the intended time, answer
 * framings, errors, and the exit status. The command runs in-process (with
 * its own stdout/stderr), and as the real CLI.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { isScratchError } from '../../src/errors';
import type { ToolIo } from '../../src/tools/cli';
import { replayCommand, type ReplayReport } from '../../src/tools/replay';
import { cliPath } from '../support/paths';
import { tempDir } from '../support/scratchd';

interface Received {
  /** The request line as latin1 (one char per byte). */
  line: string;
  /** Host header values, comma-joined ("" if none). */
  host: string;
  headers: string[];
  at: number;
}

interface Target {
  port: number;
  url: string;
  received: Received[];
  connections(): number;
  close(): Promise<void>;
}

/** How the test server answers one request (index: its number on the connection). */
type Answerer = (req: Received, socket: net.Socket, index: number) => void;

/** 200, or the status in a `status=NNN` query parameter; empty body. */
const statusFromPath: Answerer = (req, socket) => {
  const status = /status=(\d{3})/.exec(req.line)?.[1] ?? '200';
  socket.write(`HTTP/1.1 ${status} X\r\nContent-Length: 0\r\n\r\n`);
};

function startTarget(answer: Answerer = statusFromPath): Promise<Target> {
  const received: Received[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let index = 0;
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (let end = buf.indexOf('\r\n\r\n'); end !== -1; end = buf.indexOf('\r\n\r\n')) {
        const [line, ...headers] = buf.toString('latin1', 0, end).split('\r\n');
        buf = buf.subarray(end + 4);
        const host = headers.filter((h) => /^host:/i.test(h)).map((h) => h.slice(5).trim()).join(',');
        const req = { line: line!, host, headers, at: performance.now() };
        received.push(req);
        answer(req, socket, index++);
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        port,
        url: `http://127.0.0.1:${port}`,
        received,
        connections: () => connections,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/** A port with nothing listening (bound, then closed). */
/**
 * A port where every connection is refused. Not "listen on 0, close, reuse
 * the number": someone may take the port in between. Nothing can listen on
 * port 0, and Linux refuses a connection to it (ECONNREFUSED), every time.
 */
function closedPort(): number {
  return 0;
}

/** Streams for an in-process run; `tty` makes stderr look like a terminal. */
function capture(stdin: Buffer | string = '', tty = false) {
  let out = '';
  let err = '';
  const stdout = new Writable({ write: (c: Buffer, _e, cb) => ((out += c.toString()), cb()) });
  const stderr = Object.assign(new Writable({ write: (c: Buffer, _e, cb) => ((err += c.toString()), cb()) }), { isTTY: tty, columns: 120 });
  const io: ToolIo = { stdin: Readable.from([Buffer.from(stdin)]), stdout, stderr };
  return { io, out: () => out, err: () => err };
}

async function replayJson(args: string[], stdin?: Buffer | string): Promise<{ code: number; report: ReplayReport; stderr: string }> {
  const c = capture(stdin);
  const code = await replayCommand([...args, '--json'], c.io);
  return { code, report: JSON.parse(c.out()) as ReplayReport, stderr: c.err() };
}

function writeLog(lines: (string | Buffer)[]): string {
  const file = path.join(tempDir('scratchd-replay-'), 'access.log');
  fs.writeFileSync(file, Buffer.concat(lines.flatMap((l) => [typeof l === 'string' ? Buffer.from(l, 'latin1') : l, Buffer.from('\n')])));
  return file;
}

const simpleLines = (n: number, host = 'www.skroutz.gr') => Array.from({ length: n }, (_, i) => `${host} /track?i=${i}`);
const NGINX = (request: string, tail = ' 200 43 "https://ref/" "Mozilla/5.0"') => `1.2.3.4 - - [29/Nov/2026:22:41:03 +0200] "${request}"${tail}`;
const HAPROXY = (captures: string, request: string) =>
  `10.0.1.2:33317 [29/Nov/2026:22:41:03.655] http-in scratchd/srv1 10/0/30/69/109 200 43 - - ---- 1/1/1/1/0 0/0 ${captures}"${request}"`;

describe('replay against a local server', () => {
  let target: Target;
  before(async () => {
    target = await startTarget();
  });
  after(async () => {
    await target.close();
  });

  test('every line arrives once, byte for byte (bytes outside visible ASCII percent-encoded), with its Host; malformed lines are skipped, reported and counted', async () => {
    target.received.length = 0;
    const raw = Buffer.concat([Buffer.from('www.skroutz.gr /track?raw='), Buffer.from([0xce, 0xb1, 0xff]), Buffer.from('&p=%ZZ+%2F&a[b][]=1')]);
    const file = writeLog([
      '# replay sample',
      '',
      'www.skroutz.gr /track?foo=bar',
      NGINX('GET /track?q=\\xCE\\xB1&a[]=1 HTTP/1.1'),
      `www.alve.com ${NGINX('HEAD /track?h=1 HTTP/1.1')}`,
      HAPROXY('{www.scrooge.co.uk} ', 'GET /track?status=404&x=#C3#A9 HTTP/1.1'),
      raw,
      'www.skroutz.gr /track?status=400&a=1&a[]=2',
      '\x1b[31mnot a log line "',
      NGINX('POST /track HTTP/1.1'),
      NGINX('GET /track?x HTTP/1.1', ''),
      'www.skroutz.gr /track?dup=1',
      'www.skroutz.gr /track?dup=1\r',
    ]);
    const { code, report, stderr } = await replayJson(['--target', target.url, '--host', 'default.example', file]);
    assert.equal(code, 0, stderr);

    const expected = [
      ['GET /track?foo=bar HTTP/1.1', 'www.skroutz.gr'],
      // Bytes outside visible ASCII go out percent-encoded (the beacon port refuses them raw).
      ['GET /track?q=%CE%B1&a[]=1 HTTP/1.1', 'default.example'],
      ['HEAD /track?h=1 HTTP/1.1', 'www.alve.com'],
      ['GET /track?status=404&x=%C3%A9 HTTP/1.1', 'www.scrooge.co.uk'],
      ['GET /track?raw=%CE%B1%FF&p=%ZZ+%2F&a[b][]=1 HTTP/1.1', 'www.skroutz.gr'],
      ['GET /track?status=400&a=1&a[]=2 HTTP/1.1', 'www.skroutz.gr'],
      ['GET /track?dup=1 HTTP/1.1', 'www.skroutz.gr'],
      ['GET /track?dup=1 HTTP/1.1', 'www.skroutz.gr'],
    ];
    const got = target.received.map((r) => [r.line, r.host]);
    assert.deepEqual(got.map((g) => g.join('\n')).sort(), expected.map((e) => e.join('\n')).sort());
    for (const r of target.received) assert.deepEqual(r.headers, [`Host: ${r.host}`], 'no header but Host');

    assert.equal(report.lines, 13);
    assert.equal(report.sent, 8);
    assert.equal(report.answered, 8);
    assert.equal(report.failed, 0);
    assert.deepEqual(report.status, { '200': 6, '400': 1, '404': 1 });
    assert.deepEqual(report.skipped, { malformed: 2, method: 1 });
    assert.deepEqual(report.errors, {});
    assert.equal(report.mode, 'closed');
    assert.ok(report.latency_ms.max > 0 && report.latency_ms.p50 <= report.latency_ms.max);

    // Reported with line numbers, escaped (no raw ESC reaches the terminal).
    assert.match(stderr, /^replay: line 9: unterminated quote: \\x1b\[31mnot a log line "$/m);
    assert.match(stderr, /^replay: line 11: truncated/m);
    assert.ok(!stderr.includes('\x1b'));
  });

  test('the human report names counts by status, errors, skips and latency percentiles', async () => {
    const file = writeLog([...simpleLines(20), 'www.skroutz.gr /track?status=503', 'junk "']);
    const c = capture();
    assert.equal(await replayCommand(['--target', target.url, file], c.io), 0);
    const out = c.out();
    assert.match(out, /^replay: 21 requests to http:\/\/127\.0\.0\.1:\d+ in [\d.]+ s, \d+ req\/s \(closed loop, 64 connections\)$/m);
    assert.match(out, /^ {2}answered {2}21 {3}200: 20 {2}503: 1$/m);
    assert.match(out, /^ {2}failed {4}0$/m);
    assert.match(out, /^ {2}skipped {3}1 {3}malformed: 1 {2}method: 0 {3}\(of 22 lines\)$/m);
    assert.match(out, /^ {2}latency {3}p50 [\d.]+ ms {2}p90 [\d.]+ ms {2}p99 [\d.]+ ms {2}p99\.9 [\d.]+ ms {2}max [\d.]+ ms$/m);
  });

  test('reads stdin for "-"', async () => {
    const before = target.received.length;
    const { code, report } = await replayJson(['--target', target.url, '--limit', '3', '-'], `${simpleLines(5).join('\n')}\n`);
    assert.equal(code, 0);
    assert.equal(report.sent, 3);
    assert.equal(target.received.length - before, 3);
  });

  test('--rate paces an open loop: 300 requests at 1000/s take about 0.3 s', async () => {
    const before = target.received.length;
    const file = writeLog(simpleLines(300));
    const t0 = performance.now();
    const { code, report } = await replayJson(['--target', target.url, '--rate', '1000', file]);
    const elapsed = (performance.now() - t0) / 1000;
    assert.equal(code, 0);
    assert.equal(report.mode, 'rate');
    assert.equal(report.target_rate, 1000);
    assert.equal(report.answered, 300);
    assert.ok(elapsed >= 0.25 && elapsed < 1.0, `took ${elapsed} s`);
    assert.ok(report.duration_s >= 0.25 && report.duration_s < 1.0, `report says ${report.duration_s} s`);
    const arrivals = target.received.slice(before).map((r) => r.at);
    const spread = (Math.max(...arrivals) - Math.min(...arrivals)) / 1000;
    // Sent all at once, they would arrive within a few ms. (Loose: on a busy
    // machine a late timer makes the open loop catch up in a burst, by design.)
    assert.ok(spread >= 0.1, `requests arrived within ${spread} s: not paced`);
  });

  test('--limit and --duration end the run early, exit 0', async () => {
    const file = writeLog(simpleLines(1000));
    const limited = await replayJson(['--target', target.url, '--limit', '7', file]);
    assert.equal(limited.code, 0);
    assert.equal(limited.report.sent, 7);
    const timed = await replayJson(['--target', target.url, '--rate', '100', '--duration', '300ms', file]);
    assert.equal(timed.code, 0);
    assert.ok(timed.report.sent >= 15 && timed.report.sent <= 80, `sent ${timed.report.sent} in 0.3 s at 100/s`);
    assert.equal(timed.report.answered, timed.report.sent);
  });

  test('a progress bar on stderr only when it is a terminal', async () => {
    const file = writeLog(simpleLines(300));
    const tty = capture('', true);
    assert.equal(await replayCommand(['--target', target.url, '--rate', '1000', file], tty.io), 0);
    // eslint-disable-next-line no-control-regex -- the bar's own escape codes
    assert.match(tty.err(), /\r\x1b\[K\[[#-]+\] +\d+% sent \d+ · \d+ req\/s · answered \d+ · errors 0/);
    assert.ok(tty.err().endsWith('\r\x1b[K'), 'the bar is erased at the end');
    const pipe = capture('', false);
    assert.equal(await replayCommand(['--target', target.url, '--rate', '1000', file], pipe.io), 0);
    assert.equal(pipe.err(), '');
  });
});

describe('replay: latency and answers', () => {
  test('open loop measures latency from the intended send time (no coordinated omission)', async () => {
    // Each answer takes 40 ms, one connection, a request due every 10 ms:
    // they queue, and the later ones wait for those before them.
    const slow = await startTarget((req, socket) => setTimeout(() => statusFromPath(req, socket, 0), 40));
    try {
      const file = writeLog(simpleLines(15));
      const open = await replayJson(['--target', slow.url, '--rate', '100', '--connections', '1', file]);
      assert.equal(open.code, 0);
      assert.ok(open.report.latency_ms.max > 300, `max ${open.report.latency_ms.max} ms: queueing time not counted`);
      const closed = await replayJson(['--target', slow.url, '--connections', '1', file]);
      assert.equal(closed.code, 0);
      assert.ok(closed.report.latency_ms.p50 >= 39 && closed.report.latency_ms.p50 < 250, `closed loop p50 ${closed.report.latency_ms.p50} ms`);
    } finally {
      await slow.close();
    }
  });

  test('answers in every framing are read to their end on one keep-alive connection', async () => {
    // In this order on purpose: an answer without a body (HEAD, 204) right
    // before a chunked or read-until-close one must not leave state behind.
    const answers: Record<string, string[]> = {
      '/head': ['HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\nContent-Length: 43\r\n\r\n'],
      '/chunked': ['HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n4;ext=1\r\nab', 'cd\r\n3\r\nefg\r\n0\r\nX-Trailer: 1\r\n', '\r\n'],
      '/204': ['HTTP/1.1 204 No Content\r\n\r\n'],
      '/http10': ['HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until ', 'close'],
      '/cl': ['HTTP/1.1 200 OK\r\nContent-Le', 'ngth: 5\r\n\r\nhel', 'lo'],
      '/continue': ['HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok'],
      '/close': ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'],
    };
    const server = await startTarget((req, socket) => {
      const route = req.line.split(' ')[1]!.split('?')[0]!;
      const pieces = answers[route]!;
      // Pieces in separate TCP segments, to exercise partial parsing.
      const send = (i: number) => {
        if (i === pieces.length) {
          if (route === '/close' || route === '/http10') socket.end();
          return;
        }
        socket.write(pieces[i]!);
        setTimeout(() => send(i + 1), 5);
      };
      send(0);
    });
    try {
      const routes = Object.keys(answers);
      const lines = Array.from({ length: 3 }, () => routes.map((r) => (r === '/head' ? `www.skroutz.gr ${NGINX(`HEAD ${r} HTTP/1.1`)}` : `www.skroutz.gr ${r}`))).flat();
      const { code, report } = await replayJson(['--target', server.url, '--connections', '1', writeLog(lines)]);
      assert.equal(code, 0, JSON.stringify(report));
      assert.equal(report.answered, 21);
      assert.deepEqual(report.errors, {});
      assert.deepEqual(report.status, { '200': 12, '201': 3, '202': 3, '204': 3 });
      // One connection, renewed after each of the 6 closes but the last.
      assert.equal(server.connections(), 6);
    } finally {
      await server.close();
    }
  });

  test('a reused connection closed before any answer byte is retried once on a fresh one', async () => {
    // Answers only the first request of each connection, then hangs up on the next.
    const server = await startTarget((req, socket, index) => (index === 0 ? statusFromPath(req, socket, 0) : socket.destroy()));
    try {
      const { code, report } = await replayJson(['--target', server.url, '--connections', '1', writeLog(simpleLines(5))]);
      assert.equal(code, 0);
      assert.equal(report.answered, 5);
      assert.equal(report.failed, 0);
      assert.equal(report.retries, 4);
    } finally {
      await server.close();
    }
  });
});

describe('replay: failures and exit status', () => {
  test('connection refused: counted, exit 1', async () => {
    const port = closedPort();
    const { code, report } = await replayJson(['--target', `http://127.0.0.1:${port}`, writeLog(simpleLines(10))]);
    assert.equal(code, 1);
    assert.equal(report.sent, 10);
    assert.equal(report.answered, 0);
    assert.equal(report.failed, 10);
    assert.deepEqual(report.errors, { refused: 10 });
  });

  test('no complete answer within --timeout-ms: counted as timeout, exit 1', async () => {
    const mute = await startTarget(() => undefined);
    try {
      const { code, report } = await replayJson(['--target', mute.url, '--timeout-ms', '200', writeLog(simpleLines(3))]);
      assert.equal(code, 1);
      assert.deepEqual(report.errors, { timeout: 3 });
      assert.equal(mute.received.length, 3);
    } finally {
      await mute.close();
    }
  });

  test('--max-errors stops the run', async () => {
    const port = closedPort();
    const { code, report } = await replayJson(['--target', `http://127.0.0.1:${port}`, '--connections', '2', '--max-errors', '5', writeLog(simpleLines(1000))]);
    assert.equal(code, 1);
    assert.equal(report.stopped_by_errors, true);
    assert.ok(report.sent < 1000 && report.failed >= 5, JSON.stringify(report));
  });

  test('an unreadable input file: exit 2', async () => {
    const c = capture();
    assert.equal(await replayCommand(['--target', 'http://127.0.0.1:9', path.join(tempDir(), 'missing.log')], c.io), 2);
    assert.match(c.err(), /^replay: cannot read ".*missing\.log": ENOENT/);
  });

  test('usage errors throw ScratchError USAGE; --help prints the usage', async () => {
    const bad = [
      ['access.log'],
      ['--target', 'http://127.0.0.1:1'],
      ['--target', 'http://127.0.0.1:1', 'a.log', 'b.log'],
      ['--target', 'https://127.0.0.1:1', 'a.log'],
      ['--target', 'http://127.0.0.1:1/track', 'a.log'],
      ['--target', 'not a url', 'a.log'],
      ['--target', 'http://127.0.0.1:1', '--rate', '0', 'a.log'],
      ['--target', 'http://127.0.0.1:1', '--connections', '1.5', 'a.log'],
      ['--target', 'http://127.0.0.1:1', '--duration', 'soon', 'a.log'],
      ['--target', 'http://127.0.0.1:1', '--host', 'a b', 'a.log'],
      ['--target', 'http://127.0.0.1:1', '--bogus', 'a.log'],
    ];
    for (const args of bad) {
      await assert.rejects(replayCommand(args, capture().io), (err) => isScratchError(err, 'USAGE'), args.join(' '));
    }
    const c = capture();
    assert.equal(await replayCommand(['--help'], c.io), 0);
    assert.match(c.out(), /^usage: scratchd replay --target/);
  });
});

describe('scratchd replay as a child process', () => {
  function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [cliPath, 'replay', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
  }

  test('exit 0 when all are answered, 1 on connection errors, 64 on bad usage; no bar when stderr is a pipe', async () => {
    const target = await startTarget();
    try {
      const file = writeLog(simpleLines(50));
      const ok = await run(['--target', target.url, '--json', file]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal((JSON.parse(ok.stdout) as ReplayReport).answered, 50);
      assert.equal(ok.stderr, '');
      const refused = await run(['--target', `http://127.0.0.1:${closedPort()}`, file]);
      assert.equal(refused.code, 1);
      assert.match(refused.stdout, /refused: 50/);
      assert.equal((await run(['--rate', 'x', file])).code, 64);
    } finally {
      await target.close();
    }
  });

  test('SIGINT stops sending, still prints the report, exit 130', async () => {
    const target = await startTarget();
    try {
      const child = spawn(process.execPath, [cliPath, 'replay', '--target', target.url, '--rate', '50', '--json', writeLog(simpleLines(1000))], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      // Once requests arrive, the run (and its SIGINT handler) is under way.
      while (target.received.length < 5) await new Promise((r) => setTimeout(r, 20));
      child.kill('SIGINT');
      const code = await new Promise((resolve) => child.on('exit', resolve));
      assert.equal(code, 130);
      const report = JSON.parse(stdout) as ReplayReport;
      assert.equal(report.interrupted, true);
      assert.ok(report.sent > 0 && report.sent < 1000);
      assert.equal(report.answered, report.sent);
    } finally {
      await target.close();
    }
  });
});
