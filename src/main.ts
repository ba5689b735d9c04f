#!/usr/bin/env -S node --max-semi-space-size=4
/**
 * The scratchd command line (thin: parse arguments, load config, start,
 * signals). This file is package.json's `bin` and runs scratchd in its own
 * process — no wrapper that forks — so systemd's LISTEN_PID can name it.
 *
 * The shebang caps V8's young generation at 4 MiB per semi-space (default
 * 16): under saturation peak RSS falls from ~95 to ~75 MiB at the same
 * requests/s, with shorter scavenges (bench, docs/performance.md).
 *
 * Exit status: 0 ok; 1 failure at run time (e.g. address in use);
 * 64 usage error; 70 internal error; 78 bad config (sysexits.h EX_CONFIG,
 * so a unit can say RestartPreventExitStatus=78).
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { findBackend } from './backends/registry';
import { loadConfigFile } from './config/load';
import { isScratchError, ScratchError } from './errors';
import { logger } from './log';
import { Scratchd } from './scratchd';
import { VERSION } from './version';

export const Exit = { ok: 0, failure: 1, usage: 64, software: 70, config: 78 } as const;

const log = logger('scratchd');

const USAGE = `usage: scratchd <command> [options]

commands:
  serve --config FILE          run the daemon
  check-config --config FILE   validate a config file and exit (0: good)
  restore --config FILE --flavor NAME --date YYYY-MM-DD [--out PATH] [--force]
                               rebuild a day's log file from Kafka
  replay --target URL FILE     send logged requests to a server (--rate N | --connections N)
  diff A B                     compare two log files by values, ignoring time (exit 0: identical)
  version                      print the version

Run "scratchd <command> --help" for a command's options. See README.md and docs/.`;

type Command = (args: string[]) => Promise<number>;

const commands: Record<string, Command> = {
  serve: async (args) => {
    const { config } = configOption(args, 'serve');
    return serve(config);
  },
  'check-config': async (args) => {
    const { config } = configOption(args, 'check-config');
    const loaded = loadConfigFile(config);
    const backends = loaded.backends.map((b) => `${b.name} (${findBackend(b.name)?.summary(b.config) ?? '?'})`);
    process.stdout.write(
      `${loaded.source}: ok (${loaded.flavors.length} flavors: ${loaded.flavors.map((f) => f.name).join(', ')}; ` +
        `backends: ${backends.length === 0 ? 'none' : backends.join(', ')})\n`,
    );
    return Promise.resolve(Exit.ok);
  },
  // The tools are loaded only when their command runs: `serve` never loads
  // replay, diff or restore (less to parse at start-up, less in memory).
  restore: async (args) => (await import('./tools/restore.js')).restoreCommand(args),
  replay: async (args) => (await import('./tools/replay/index.js')).replayCommand(args),
  diff: async (args) => (await import('./tools/diff.js')).diffCommand(args),
  version: () => {
    process.stdout.write(`scratchd ${VERSION} (node ${process.version})\n`);
    return Promise.resolve(Exit.ok);
  },
};

function configOption(args: string[], command: string): { config: string } {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help === true || values.config === undefined) {
    throw new ScratchError('USAGE', `scratchd ${command} --config FILE`);
  }
  return { config: values.config };
}

/**
 * Node 24 names its main thread "MainThread" (nodejs/node#56416), and on
 * Linux the main thread's name is the process's `comm`: what top, `ps -C`
 * and journald's _COMM show. Named back to scratchd; elsewhere, nothing.
 */
function nameProcess(): void {
  try {
    fs.writeFileSync('/proc/self/comm', 'scratchd');
  } catch {
    // Not Linux, or /proc not mounted: the name is cosmetic.
  }
}

async function serve(configPath: string): Promise<number> {
  nameProcess();
  const config = loadConfigFile(configPath);
  const app = new Scratchd(config);
  let exitCode: number = Exit.ok;
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info(`${signal}: stopping`);
      app.stop().then(resolve, (err: unknown) => {
        log.error(`stop failed: ${(err as Error).stack ?? String(err)}`);
        exitCode = Exit.software;
        resolve();
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => app.reopen());
  });
  try {
    await app.start();
  } catch (err) {
    await app.stop().catch(() => undefined);
    throw err;
  }
  await stopped;
  return exitCode;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-v') return commands.version!([]);
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? Exit.usage : Exit.ok;
  }
  const run = commands[command];
  if (run === undefined) {
    process.stderr.write(`scratchd: unknown command ${JSON.stringify(command)}\n${USAGE}\n`);
    return Exit.usage;
  }
  try {
    return await run(rest);
  } catch (err) {
    if (isScratchError(err, 'USAGE')) {
      process.stderr.write(`${err.message}\n`);
      return Exit.usage;
    }
    if (isScratchError(err, 'CONFIG_INVALID') || isScratchError(err, 'CONFIG_UNREADABLE')) {
      process.stderr.write(`scratchd: ${err.message}\n`);
      return Exit.config;
    }
    if (err instanceof TypeError && (err as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`scratchd: ${err.message}\n`);
      return Exit.usage;
    }
    process.stderr.write(`scratchd: ${err instanceof Error ? err.message : String(err)}\n`);
    return Exit.failure;
  }
}

if (require.main === module) {
  process.on('uncaughtException', (err) => {
    process.stderr.write(`scratchd: internal error: ${err.stack ?? String(err)}\n`);
    process.exit(Exit.software);
  });
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // Let stderr drain, then leave even if a stray handle is still open.
      setTimeout(() => process.exit(code), 50).unref();
    },
    (err: unknown) => {
      process.stderr.write(`scratchd: internal error: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(Exit.software);
    },
  );
}
