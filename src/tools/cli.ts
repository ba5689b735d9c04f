/**
 * What every tool command (`replay`, `diff`, `restore`) shares on the
 * command line: the streams it writes to, its usage errors, option parsing,
 * and opening its input (a file, or `-` for stdin).
 *
 * Contract
 * --------
 * - A tool command is `(args, io) => Promise<exit status>`. It writes only
 *   to `io` (tests pass their own streams) and throws a ScratchError
 *   `USAGE` for bad arguments: main.ts prints the message and exits 64.
 * - `toolCli(name, usage)`: `usage` is the command's --help text, whose
 *   first line is `usage: scratchd NAME ...`. `cli.usage(message)` throws
 *   "<synopsis>\nscratchd NAME: <message> (see scratchd NAME --help)", and
 *   `cli.parse` turns node:util parseArgs errors (unknown option, missing
 *   value) into such usage errors.
 * - `openInput(path, stdin)` never reads: it opens, so that "cannot read"
 *   is reported before any work starts. Its errors say
 *   `cannot read "<path>": <reason>`.
 */
import * as fs from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ScratchError } from '../errors';

/** The streams of a tool command; tests pass their own instead of the process's. */
export interface ToolIo {
  stdin: Readable;
  stdout: Writable;
  /** `isTTY` decides whether a progress bar is drawn (process.stderr has it). */
  stderr: Writable & { isTTY?: boolean; columns?: number };
}

export const processIo: ToolIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };

/** The options of parseArgs; `args` comes from the command. */
type Options = NonNullable<ParseArgsConfig['options']>;

export interface ToolCli {
  /** Throws the usage error for `message` (see the contract above). */
  usage(message: string): never;
  /** parseArgs over `args` with positionals allowed; its errors become usage errors. */
  parse<O extends Options>(args: string[], options: O): ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true }>>;
  /** `text` as a positive number (an integer if `integer`), else a usage error naming `name`. */
  positive(name: string, text: string, integer: boolean): number;
}

export function toolCli(name: string, usageText: string): ToolCli {
  const synopsis = usageText.slice('usage: '.length, usageText.includes('\n') ? usageText.indexOf('\n') : undefined);
  const cli: ToolCli = {
    usage(message) {
      // ScratchError adds "usage: "; main.ts prints the message and exits 64.
      throw new ScratchError('USAGE', `${synopsis}\nscratchd ${name}: ${message} (see scratchd ${name} --help)`);
    },
    parse(args, options) {
      try {
        return parseArgs({ args, options, allowPositionals: true });
      } catch (err) {
        return cli.usage((err as Error).message);
      }
    },
    positive(option, text, integer) {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
        cli.usage(`${option} ${JSON.stringify(text)}: expected a positive ${integer ? 'integer' : 'number'}`);
      }
      return n;
    },
  };
  return cli;
}

/** A plain usage error: main.ts prints `message` as is and exits 64. */
export function usageError(message: string): never {
  throw new ScratchError('USAGE', message);
}

export interface Input {
  /** As given: a path, or `-`. */
  path: string;
  stream: Readable;
  /** Size in bytes of a regular file (for a progress bar), else undefined. */
  size: number | undefined;
  /** A regular file can be read a second time; stdin and pipes cannot. */
  rereadable: boolean;
  /** Stops reading (destroys a file stream; pauses stdin, which is not ours to close). */
  close(): void;
}

/** Opens a tool's input: `-` is `stdin`, anything else a file (not a directory). */
export async function openInput(path: string, stdin: Readable): Promise<Input> {
  if (path === '-') return { path, stream: stdin, size: undefined, rereadable: false, close: () => stdin.pause() };
  const cannot = (err: unknown, reason = (err as Error).message) => new Error(`cannot read ${JSON.stringify(path)}: ${reason}`, { cause: err });
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(path, 'r');
  } catch (err) {
    throw cannot(err);
  }
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) throw cannot(undefined, 'is a directory');
    const stream = handle.createReadStream({ highWaterMark: 256 * 1024 });
    return { path, stream, size: stat.isFile() ? stat.size : undefined, rereadable: stat.isFile(), close: () => stream.destroy() };
  } catch (err) {
    await handle.close();
    throw err instanceof Error && err.message.startsWith('cannot read ') ? err : cannot(err);
  }
}
