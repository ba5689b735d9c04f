/**
 * systemd socket activation (sd_listen_fds(3)): the listening socket is
 * passed as fd 3 (SD_LISTEN_FDS_START) with LISTEN_FDS=1 and LISTEN_PID set
 * to the pid meant to take it.
 *
 * sd_listen_fds requires LISTEN_PID to be our own pid. We also accept an
 * ancestor's pid when fd 3 really is a socket, for wrappers that start us
 * without exec (a shell script). A stray environment from an unrelated parent
 * is still refused: the ancestor must be on our own parent chain. npx cannot
 * be such a wrapper: npm's Node marks inherited descriptors close-on-exec
 * before it starts scratchd, so fd 3 never arrives; the error says so. The
 * variables are removed so children do not inherit them.
 */
import * as fs from 'node:fs';
import { ScratchError } from './errors';

export const SD_LISTEN_FDS_START = 3;

export function takeListenFd(env: NodeJS.ProcessEnv = process.env): number {
  const pid = Number(env.LISTEN_PID);
  const count = Number(env.LISTEN_FDS);
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(count) || count < 1) {
    throw new ScratchError('SYSTEMD_NO_SOCKET', 'LISTEN_PID/LISTEN_FDS are not set (start scratchd from a .socket unit or systemd-socket-activate)');
  }
  if (!isSelfOrAncestor(pid)) {
    throw new ScratchError('SYSTEMD_NO_SOCKET', `LISTEN_PID=${pid} is neither this process (${process.pid}) nor one of its parents`);
  }
  if (count > 1) {
    throw new ScratchError('SYSTEMD_NO_SOCKET', `LISTEN_FDS=${count}: scratchd takes exactly one socket (ListenStream= once)`);
  }
  if (!isSocket(SD_LISTEN_FDS_START)) {
    const via = pid === process.pid ? '' : ` (LISTEN_PID=${pid} is a parent: a process in between, such as npx, did not pass fd 3 on; start scratchd directly, e.g. node_modules/.bin/scratchd)`;
    throw new ScratchError('SYSTEMD_NO_SOCKET', `fd 3 is not a socket${via}`);
  }
  return SD_LISTEN_FDS_START;
}

function isSocket(fd: number): boolean {
  try {
    return fs.fstatSync(fd).isSocket();
  } catch {
    return false;
  }
}

function isSelfOrAncestor(pid: number): boolean {
  let current = process.pid;
  for (let depth = 0; depth < 8 && current > 1; depth++) {
    if (current === pid) return true;
    current = parentOf(current);
  }
  return false;
}

function parentOf(pid: number): number {
  try {
    // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may contain spaces and parentheses.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[1]);
  } catch {
    return 0;
  }
}
