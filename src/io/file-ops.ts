/**
 * The file-system calls a FileWriter (and the Kafka spool's reader) makes, as one replaceable object: tests
 * pass a wrapper that injects failures which cannot be provoked for real
 * (EAGAIN, EIO): only the failure is faked, the files stay real. Everything here runs on libuv's
 * thread pool, never on the event loop.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface FileOps {
  /** Opens for appending (O_APPEND|O_CREAT|O_WRONLY), creating missing folders. */
  openAppend(path: string, mode: number): Promise<number>;
  write(fd: number, buffer: Buffer, offset: number, length: number): Promise<number>;
  /** Reads up to `length` bytes at `position` (the Kafka spool's drain); resolves with the count read. */
  read(fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  fsync(fd: number): Promise<void>;
  close(fd: number): Promise<void>;
  /**
   * Whether `path` still names the file open as `fd`: false when the file was
   * deleted (st_nlink == 0, or nothing at `path`) or moved (another inode there).
   */
  sameFile(fd: number, path: string): Promise<boolean>;
  /** Device and inode of the open fd: which file a write went to. */
  identify(fd: number): Promise<FileId>;
  /** Cuts the last `bytes` bytes off the file open as `fd` (the start of a line that will be written elsewhere). */
  truncateTail(fd: number, bytes: number): Promise<void>;
}

/** `ops` with `returned()` called each time one of its calls settles (a stop's progress: io/deadline.ts). */
export function withReturns(ops: FileOps, returned: () => void): FileOps {
  const track = <T>(call: Promise<T>): Promise<T> => {
    call.then(returned, returned);
    return call;
  };
  return {
    openAppend: (path, mode) => track(ops.openAppend(path, mode)),
    write: (fd, buffer, offset, length) => track(ops.write(fd, buffer, offset, length)),
    read: (fd, buffer, offset, length, position) => track(ops.read(fd, buffer, offset, length, position)),
    fsync: (fd) => track(ops.fsync(fd)),
    close: (fd) => track(ops.close(fd)),
    sameFile: (fd, path) => track(ops.sameFile(fd, path)),
    identify: (fd) => track(ops.identify(fd)),
    truncateTail: (fd, bytes) => track(ops.truncateTail(fd, bytes)),
  };
}

export interface FileId {
  readonly dev: number;
  readonly ino: number;
}

export function sameId(a: FileId | null, b: FileId | null): boolean {
  return a !== null && b !== null && a.dev === b.dev && a.ino === b.ino;
}

const APPEND = fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_WRONLY;

export const realFileOps: FileOps = {
  async openAppend(file, mode) {
    try {
      return await open(file, mode);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await fs.promises.mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
      return await open(file, mode);
    }
  },
  write: (fd, buffer, offset, length) =>
    new Promise((resolve, reject) => {
      fs.write(fd, buffer, offset, length, null, (err, written) => (err ? reject(err) : resolve(written)));
    }),
  read: (fd, buffer, offset, length, position) =>
    new Promise((resolve, reject) => {
      fs.read(fd, buffer, offset, length, position, (err, read) => (err ? reject(err) : resolve(read)));
    }),
  fsync: (fd) => new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve()))),
  close: (fd) => new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve()))),
  sameFile: (fd, file) =>
    new Promise((resolve, reject) => {
      fs.fstat(fd, (err, open) => {
        if (err) return reject(err);
        if (open.nlink === 0) return resolve(false);
        fs.stat(file, (statErr, current) => {
          if (statErr) return (statErr.code === 'ENOENT' ? resolve(false) : reject(statErr));
          resolve(open.ino === current.ino && open.dev === current.dev);
        });
      });
    }),
  truncateTail: (fd, bytes) =>
    new Promise((resolve, reject) =>
      fs.fstat(fd, (err, stat) => {
        if (err) return reject(err);
        fs.ftruncate(fd, Math.max(0, stat.size - bytes), (truncErr) => (truncErr ? reject(truncErr) : resolve()));
      }),
    ),
  identify: (fd) =>
    new Promise((resolve, reject) => fs.fstat(fd, (err, stat) => (err ? reject(err) : resolve({ dev: stat.dev, ino: stat.ino })))),
};

// The callback API, not fs.promises: a FileHandle would close "its" fd when
// garbage-collected, and a writer keeps its fd for longer than any handle.
function open(file: string, mode: number): Promise<number> {
  return new Promise((resolve, reject) => fs.open(file, APPEND, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
}
