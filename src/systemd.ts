/**
 * systemd socket activation (sd_listen_fds(3)): the listening socket is
 * passed as fd 3 (SD_LISTEN_FDS_START) with LISTEN_FDS=1 and LISTEN_PID set
 * to the pid meant to take it.
 *
 * sd_listen_fds requires LISTEN_PID to be our own pid. We also accept an
 * ancestor's pid, because `systemd-socket-activate … npx scratchd serve`
 * starts npx (whose pid it sets) and npx starts node. A stray environment
 * from an unrelated parent is still refused: the ancestor must be on our
 * own parent chain. The variables are removed so children do not inherit them.
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
  try {
    if (!fs.fstatSync(SD_LISTEN_FDS_START).isSocket()) throw new Error('fd 3 is not a socket');
  } catch (err) {
    throw new ScratchError('SYSTEMD_NO_SOCKET', (err as Error).message, { cause: err });
  }
  return SD_LISTEN_FDS_START;
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
