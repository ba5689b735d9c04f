/**
 * Ports for child processes without the "free port" race: a test that
 * listens on port 0, closes the socket and hands the number to a child can
 * lose the port to anyone in between (another test, the kernel's choice of
 * an outgoing port) and then talk to the wrong process.
 *
 * - `listeningSocket()`: when the child can take a listening fd (HAProxy's
 *   `bind fd@N`, systemd's LISTEN_FDS), the test listens on port 0 itself
 *   and passes the socket; the port never stops being held.
 * - `onUnusedPort(attempt)`: when the child takes only a number
 *   (systemd-socket-activate -l), the child binds it itself and the attempt
 *   reports EADDRINUSE, and we try another: ports are drawn at random below
 *   the kernel's ephemeral range, which port-0 listens and outgoing
 *   connections never use, so collisions are rare and always detected.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';

export interface HeldSocket {
  readonly port: number;
  /** The listening socket's fd, for a child's stdio (`spawn(..., { stdio: [..., held.fd] })`). */
  readonly fd: number;
  /** Closes our copy (a child that inherited it keeps listening). */
  close(): Promise<void>;
}

/** A TCP socket listening on 127.0.0.1 on a port the kernel chose, to pass to a child. */
export async function listeningSocket(): Promise<HeldSocket> {
  const server = net.createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  // node:net does not expose a listening socket's fd; its libuv handle does (Unix only).
  const fd = (server as unknown as { _handle: { fd: number } | null })._handle?.fd ?? -1;
  if (!(fd >= 0)) {
    server.close();
    throw new Error('listeningSocket: no fd for the listening socket (not Unix?)');
  }
  return {
    port: (server.address() as net.AddressInfo).port,
    fd,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** What an attempt returns when the child could not bind the port. */
export const IN_USE = Symbol('port in use');

/** First port of the kernel's ephemeral range (ports it picks for port 0 and outgoing connections). */
function ephemeralStart(): number {
  try {
    return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
}

/** Runs `attempt` with random ports in [10000, ephemeral start) until it does not return IN_USE. */
export async function onUnusedPort<T>(attempt: (port: number) => Promise<T | typeof IN_USE>, tries = 20): Promise<T> {
  const low = 10_000;
  const high = Math.max(low + 1000, ephemeralStart());
  for (let i = 0; i < tries; i++) {
    const port = low + Math.floor(Math.random() * (high - low));
    const result = await attempt(port);
    if (result !== IN_USE) return result;
  }
  throw new Error(`onUnusedPort: ${tries} ports in use in a row`);
}

/**
 * A port number below the kernel's ephemeral range that nothing listens on
 * right now, for a child that binds a number itself and whose bind failure a
 * test cannot see as IN_USE (carbon-cache), or for an address that must
 * refuse connections until a server is started on it later. Port-0 listens
 * and outgoing connections never take such a port, so only another test's
 * random pick could collide (rare; the child then fails loudly).
 */
export async function unusedPortBelowEphemeral(): Promise<number> {
  return onUnusedPort(
    (port) =>
      new Promise<number | typeof IN_USE>((resolve) => {
        const probe = net.createServer();
        probe.once('error', () => resolve(IN_USE));
        probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(port)));
      }),
  );
}
