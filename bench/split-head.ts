/**
 * The split-head cost, end to end: the server CPU of reading a ~16 KB request
 * head sent in one write, and the same head sent in 10-byte pieces (a slow or
 * hostile client), over real TCP. The server runs in a child process and
 * reports its own CPU time (process.cpuUsage) and the reads it did, so the
 * client's work is not counted and the table shows that the pieces did
 * arrive as separate reads.
 *
 * Servers: `scratchd` (the public listener, src/http/server.ts, with a handler
 * that answers the GIF and records nothing: the HTTP layer alone) and
 * `minimal` (a node:net server that only looks for the blank line across
 * chunk boundaries and answers): the floor of reading those pieces in Node.
 * Without a rescan, scratchd's pieces/one-write ratio should be near the
 * minimal server's; the extra is its parsing. `--module PATH` points the
 * scratchd child at another build of server.js (before/after comparisons).
 *
 * A second table is the everyday cost: browser-like beacon heads
 * (bench/beacons.ts), 8 keep-alive connections pipelining 16 at a time,
 * server CPU per request, median of 5 rounds; with `--module`, the other
 * build is measured too, in alternating rounds.
 *
 *   node build/bench/split-head.js [heads per mode, default 40] [--module PATH]
 *
 * Prints a table; never passes or fails on a time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { makeBeacons, requestHead } from './beacons';
import { median } from './stats';
import { fmt, renderTable, type Row } from './table';

const HEAD_BYTES = 16_000;
const PIECE = 10;

/** A valid head of about `bytes` bytes: a beacon request line, Host, and many ordinary headers. */
export function bigHead(bytes: number): string {
  let head = 'GET /track?a=1&b=2 HTTP/1.1\r\nHost: www.skroutz.gr\r\n';
  for (let n = 0; head.length + 2 < bytes - 60; n++) head += `X-Filler-${n}: ${'v'.repeat(50)}\r\n`;
  return `${head}Connection: close\r\n\r\n`;
}

type Kind = 'scratchd' | 'minimal';

interface Usage {
  cpuUs: number;
  reads: number;
}

// ---- the child: one server, answering 'usage' requests on IPC ----

async function serve(kind: Kind, modulePath: string): Promise<void> {
  let reads = 0;
  let server: net.Server;
  if (kind === 'scratchd') {
    /* eslint-disable @typescript-eslint/no-require-imports -- a build chosen at run time */
    const { PublicServer } = require(modulePath) as typeof import('../src/http/server');
    const { Answer } = require(path.join(path.dirname(modulePath), 'responses.js')) as typeof import('../src/http/responses');
    const { ConnectionCounters, RequestCounters } = require(path.join(path.dirname(modulePath), '..', 'telemetry.js')) as typeof import('../src/telemetry');
    /* eslint-enable @typescript-eslint/no-require-imports */
    const config = { path: '/track', maxConnections: 10_000, headersTimeoutMs: 60_000, keepAliveTimeoutMs: 60_000, maxRequestLineBytes: 8192, maxHeaderBytes: 16384, maxBodyBytes: 65536, maxBatch: 100, bodyTimeoutMs: 10_000, trustForwardedFor: false, backpressureHighPercent: 50, backpressureLowPercent: 25, blockTimeoutMs: 5_000, threadStallMs: 3_000 };
    const publicServer = new PublicServer(config, { track: () => Answer.gif }, new RequestCounters(), new ConnectionCounters());
    server = publicServer.server;
    await publicServer.listen({ kind: 'address', host: '127.0.0.1', port: 0 });
  } else {
    const answer = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    server = net.createServer({ noDelay: true }, (socket) => {
      let tail = 0; // the last bytes seen, as a shift register: the blank line across chunks
      socket.on('data', (chunk: Buffer) => {
        for (let i = 0; i < chunk.length; i++) {
          tail = ((tail << 8) | chunk[i]!) >>> 0;
          if (tail === 0x0d0a0d0a) {
            socket.end(answer);
            return;
          }
        }
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  }
  server.on('connection', (socket: net.Socket) => socket.on('data', () => reads++));
  let since = process.cpuUsage();
  process.on('message', (message: string) => {
    if (message === 'usage') {
      const d = process.cpuUsage(since);
      process.send!({ cpuUs: d.user + d.system, reads } satisfies Usage);
      reads = 0;
      since = process.cpuUsage();
    } else if (message === 'exit') {
      process.exit(0);
    }
  });
  process.send!({ port: (server.address() as net.AddressInfo).port });
}

// ---- the parent: clients ----

function ask<T>(child: ChildProcess, message: string): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T));
    child.send(message);
  });
}

/** Sends one head on a fresh connection, in pieces of `piece` bytes (each written after the last was flushed and a pause), until the answer. */
function sendHead(port: number, head: Buffer, piece: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    socket.on('end', () => resolve(answer.slice(9, 12)));
    socket.on('error', reject);
    socket.on('connect', () => {
      let at = 0;
      const next = () => {
        if (at >= head.length) return;
        const end = Math.min(head.length, at + piece);
        const chunk = head.subarray(at, end);
        at = end;
        socket.write(chunk, () => (piece >= head.length ? undefined : setTimeout(next, 0)));
      };
      next();
    });
  });
}

async function measure(label: string, kind: Kind, heads: number, modulePath: string): Promise<Row[]> {
  const child = spawn(process.execPath, [__filename, '--serve', kind, modulePath], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { port } = await new Promise<{ port: number }>((resolve) => child.once('message', (m) => resolve(m as { port: number })));
  const head = Buffer.from(bigHead(HEAD_BYTES), 'latin1');
  const rows: Row[] = [];
  const perHead: number[] = [];
  // Warm-up: the parser's loops are optimized by the JIT after ~100 such heads.
  for (let i = 0; i < 200; i++) await sendHead(port, head, head.length);
  for (const [mode, piece] of [['one write', head.length], [`${PIECE}-byte pieces`, PIECE]] as const) {
    // A warm-up, then the measured heads, a few connections at a time.
    // One write is cheap: 10 times as many heads, so that a timer or a GC does not dominate its total.
    const count = piece === PIECE ? heads : heads * 10;
    await ask<Usage>(child, 'usage');
    const statuses = new Set<string>();
    for (let i = 0; i < count; i += 4) {
      const batch = Array.from({ length: Math.min(4, count - i) }, () => sendHead(port, head, piece));
      for (const s of await Promise.all(batch)) statuses.add(s);
    }
    const usage = await ask<Usage>(child, 'usage');
    const us = usage.cpuUs / count;
    perHead.push(us);
    rows.push([label, mode, fmt(usage.reads / count, 0), fmt(us, 0), perHead.length === 2 ? `${fmt(us / perHead[0]!, 1)}×` : '', [...statuses].join(',')]);
  }
  child.send('exit');
  return rows;
}

/** `builds`: label → path of a server.js to measure (this build by default); the minimal server is always measured. */
export async function splitHeadTable(heads: number, builds: Record<string, string> = defaultBuilds()): Promise<string> {
  const rows: Row[] = [];
  for (const [label, modulePath] of Object.entries(builds)) rows.push(...(await measure(label, 'scratchd', heads, modulePath)));
  rows.push(...(await measure('minimal', 'minimal', heads, '')));
  return renderTable(
    `A ${HEAD_BYTES} B request head in one write and in ${PIECE}-byte pieces: server CPU per head (${heads} heads in pieces, ${heads * 10} in one write, over TCP)`,
    ['server', 'sent as', 'reads/head', 'CPU µs/head', 'pieces/one', 'status'],
    rows,
  );
}

/** Sends `total` beacon heads over 8 connections, 16 pipelined per write, and waits for every answer. */
async function beaconLoad(port: number, heads: readonly Buffer[], total: number): Promise<void> {
  let sent = 0;
  let next = 0;
  const connection = () =>
    new Promise<void>((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
      let pending = 0;
      let seen = 0;
      const send = () => {
        if (sent >= total) {
          socket.destroy();
          resolve();
          return;
        }
        const batch: Buffer[] = [];
        for (let k = 0; k < 16; k++) batch.push(heads[next++ % heads.length]!);
        sent += 16;
        pending = 16;
        seen = 0;
        socket.write(Buffer.concat(batch));
      };
      socket.on('connect', send);
      socket.on('error', reject);
      socket.on('data', (c: Buffer) => {
        // Each answer starts with "HTTP/1.1 "; the GIF body holds no such bytes.
        for (let at = c.indexOf('HTTP/1.1 '); at !== -1; at = c.indexOf('HTTP/1.1 ', at + 1)) seen++;
        if (seen >= pending) send();
      });
    });
  await Promise.all(Array.from({ length: 8 }, connection));
}

function defaultBuilds(): Record<string, string> {
  return { scratchd: path.join(__dirname, '..', 'src', 'http', 'server.js') };
}

export async function beaconTable(builds: Record<string, string> = defaultBuilds()): Promise<string> {
  const heads = makeBeacons(1024).map((b) => Buffer.from(requestHead(b), 'latin1'));
  const servers: Record<string, { child: ChildProcess; port: number }> = {};
  for (const [name, modulePath] of Object.entries(builds)) {
    const child = spawn(process.execPath, [__filename, '--serve', 'scratchd', modulePath], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const { port } = await new Promise<{ port: number }>((resolve) => child.once('message', (m) => resolve(m as { port: number })));
    servers[name] = { child, port };
    await beaconLoad(port, heads, 20_000); // warm-up
    await ask<Usage>(child, 'usage');
  }
  const perRequest: Record<string, number[]> = {};
  const total = 40_000;
  for (let round = 0; round < 5; round++) {
    const names = Object.keys(servers);
    for (const name of round % 2 === 0 ? names : names.reverse()) {
      const { child, port } = servers[name]!;
      await beaconLoad(port, heads, total);
      (perRequest[name] ??= []).push((await ask<Usage>(child, 'usage')).cpuUs / total);
    }
  }
  for (const { child } of Object.values(servers)) child.send('exit');
  const avg = Math.round(heads.reduce((a, h) => a + h.length, 0) / heads.length);
  return renderTable(
    `Beacon heads (~${avg} B), 8 connections pipelining 16: server CPU per request, HTTP layer only (median of 5 rounds)`,
    ['build', 'CPU µs/request', 'rounds'],
    Object.entries(perRequest).map(([name, xs]) => [name, fmt(median(xs), 2), xs.map((x) => fmt(x, 2)).join(' ')]),
  );
}

if (require.main === module) {
  const args = process.argv.slice(2);
  if (args[0] === '--serve') {
    void serve(args[1] as Kind, args[2]!);
  } else {
    const m = args.indexOf('--module');
    const modulePath = m === -1 ? undefined : path.resolve(args[m + 1]!);
    const heads = Number(args.find((a, i) => /^\d+$/.test(a) && args[i - 1] !== '--module') ?? 40);
    const builds = defaultBuilds();
    if (modulePath !== undefined) builds[`scratchd ${path.relative(process.cwd(), modulePath)}`] = modulePath;
    splitHeadTable(heads, builds).then(
      async (table) => console.log(`${table}\n\n${await beaconTable(builds)}`),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  }
}
