/**
 * The shared HTTP/1.1 response reader, fed byte sequences split at every
 * position: the outcome must not depend on how TCP cuts the stream. The
 * same reader runs under replay's tests (real sockets) and the load
 * client's (integration); this table pins the delimiting rules themselves.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import * as net from 'node:net';
import { describe, test } from 'node:test';
import { Feed, MAX_HEAD_BYTES, ResponseReader } from '../../../src/tools/http-client/response-reader';

interface Case {
  name: string;
  bytes: string;
  head?: boolean;
  /** Where the answer ends, when bytes follow it: a cut there delivers the extra bytes in a later chunk. */
  answerLength?: number;
  /** The outcome once every byte is fed; `closed`: only the peer's close completes it. */
  expect: { feed: Feed; status?: number; keepAlive?: boolean } | 'closed';
}

const CASES: Case[] = [
  { name: 'Content-Length body', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello', expect: { feed: Feed.done, status: 200, keepAlive: true } },
  { name: 'empty body', bytes: 'HTTP/1.1 204 No Content\r\n\r\n', expect: { feed: Feed.done, status: 204, keepAlive: true } },
  { name: 'Content-Length: 0', bytes: 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n', expect: { feed: Feed.done, status: 200, keepAlive: true } },
  { name: 'HEAD ignores Content-Length', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 43\r\n\r\n', head: true, expect: { feed: Feed.done, status: 200, keepAlive: true } },
  { name: '304 has no body', bytes: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 43\r\n\r\n', expect: { feed: Feed.done, status: 304 } },
  {
    name: 'chunked with extension and trailer',
    bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n',
    expect: { feed: Feed.done, status: 200, keepAlive: true },
  },
  { name: 'Connection: close', bytes: 'HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno', expect: { feed: Feed.done, status: 503, keepAlive: false } },
  { name: 'HTTP/1.0 closes unless keep-alive', bytes: 'HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n', expect: { feed: Feed.done, status: 200, keepAlive: false } },
  { name: 'HTTP/1.0 keep-alive', bytes: 'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n', expect: { feed: Feed.done, status: 200, keepAlive: true } },
  { name: '1xx skipped', bytes: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx', expect: { feed: Feed.done, status: 200 } },
  { name: 'extra bytes after the answer', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxy', answerLength: 39, expect: { feed: Feed.doneWithExtra, status: 200 } },
  { name: 'no length: read until close', bytes: 'HTTP/1.1 400 Bad Request\r\n\r\nbody', expect: 'closed' },
  { name: 'not HTTP', bytes: 'SSH-2.0-OpenSSH\r\n\r\n', expect: { feed: Feed.invalid } },
  { name: '101 is never asked for', bytes: 'HTTP/1.1 101 Switching\r\n\r\n', expect: { feed: Feed.invalid } },
  { name: 'bad Content-Length', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n', expect: { feed: Feed.invalid } },
  { name: 'bad chunk size', bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', expect: { feed: Feed.invalid } },
];

/** Feeds `bytes` in two pieces cut at `cut`; the first result other than `more`, or `more`. */
function feedSplit(reader: ResponseReader, bytes: Buffer, cut: number): Feed {
  const first = reader.feed(bytes.subarray(0, cut));
  if (first !== Feed.more || cut === bytes.length) return first;
  return reader.feed(bytes.subarray(cut));
}

describe('ResponseReader', () => {
  for (const c of CASES) {
    test(c.name, () => {
      const bytes = Buffer.from(c.bytes, 'latin1');
      for (let cut = 1; cut <= bytes.length; cut++) {
        const reader = new ResponseReader();
        reader.start(c.head === true);
        const feed = feedSplit(reader, bytes, cut);
        if (c.expect === 'closed') {
          assert.equal(feed, Feed.more, `cut ${cut}`);
          assert.equal(reader.closedByPeer(), true, `cut ${cut}`);
          continue;
        }
        assert.equal(feed, cut === c.answerLength ? Feed.done : c.expect.feed, `cut ${cut}`);
        assert.equal(reader.closedByPeer(), false);
        if (c.expect.status !== undefined) assert.equal(reader.status, c.expect.status, `cut ${cut}`);
        if (c.expect.keepAlive !== undefined) assert.equal(reader.keepAlive, c.expect.keepAlive, `cut ${cut}`);
      }
    });
  }

  test('a head that never ends is refused past MAX_HEAD_BYTES', () => {
    const reader = new ResponseReader();
    reader.start(false);
    assert.equal(reader.feed(Buffer.from('HTTP/1.1 200 OK\r\n')), Feed.more);
    assert.equal(reader.feed(Buffer.alloc(MAX_HEAD_BYTES, 'a')), Feed.invalid);
  });

  test('reads answer after answer of node:http on one keep-alive connection', async () => {
    const server = http.createServer((req, res) => {
      if (req.url === '/chunked') {
        res.write('abc');
        res.end('def');
      } else res.end('x'.repeat(Number(req.url!.slice(1))));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const reader = new ResponseReader();
    try {
      for (const path of ['/0', '/chunked', '/70000', '/5', '/chunked']) {
        reader.start(false);
        const done = new Promise<Feed>((resolve) => {
          const onData = (chunk: Buffer) => {
            const feed = reader.feed(chunk);
            if (feed === Feed.more) return;
            socket.off('data', onData);
            resolve(feed);
          };
          socket.on('data', onData);
        });
        socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
        assert.equal(await done, Feed.done, path);
        assert.equal(reader.status, 200);
        assert.equal(reader.keepAlive, true);
      }
    } finally {
      socket.destroy();
      server.close();
    }
  });
});
