/** HTTP clients for tests: node:http for well-formed requests, raw sockets for the rest. */
import * as http from 'node:http';
import * as net from 'node:net';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export function request(
  port: number,
  host: string,
  target: string,
  options: { method?: string; headers?: Record<string, string>; agent?: http.Agent | false; timeoutMs?: number } = {},
): Promise<Reply> {
  // A deadline on every request: a server that never answers fails the test instead of hanging it.
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: target, method: options.method ?? 'GET', headers: { Host: host, ...options.headers }, agent: options.agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from 127.0.0.1:${port}${target} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Writes `data` on a fresh connection and collects everything the server
 * sends until it closes the connection or `idleMs` pass without bytes.
 */
export function exchange(port: number, data: string | Buffer, idleMs = 1500): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(false), idleMs);
    };
    socket.on('connect', () => {
      socket.write(data);
      arm();
    });
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      arm();
    });
    socket.on('end', () => finish(true));
    socket.on('error', (err) => (chunks.length > 0 ? finish(true) : reject(err)));
  });
}

/** Status lines ("200", "404", …) of the answers in a raw byte stream. */
export function statuses(text: string): string[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]!);
}

/** A beacon request line and head, as a browser would send it. */
export function beaconHead(host: string, query: string, extra = ''): string {
  return `GET /track?${query} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: test\r\n${extra}\r\n`;
}
