/**
 * `scratchd replay --target http://HOST:PORT [options] FILE|-`: sends the
 * GET/HEAD requests of an access log (formats: ../request-log.ts) to a
 * target, to compare two services fed the same traffic (then `scratchd
 * diff`).
 *
 * The folder, by concern (each module states its contract):
 *   options.ts  the command line: --help text, arguments → ReplayOptions
 *   source.ts   input lines → requests (Jobs), read ahead, bounded
 *   client.ts   the HTTP/1.1 connection pool (answers read by
 *               ../http-client/response-reader.ts)
 *   run.ts      the scheduler: open loop (--rate) or closed loop, counting
 *   report.ts   the report: --json object and text
 *   index.ts    this command: open the input, run, print, exit status
 *
 * Contract of the command
 * -----------------------
 * - Each replayable line is sent once, as `METHOD TARGET HTTP/1.1` with the
 *   line's Host and no other header; the target's bytes are the logged ones
 *   (request-log.ts). The URL only says where to connect.
 * - Report on stdout at the end (--json: one JSON object).
 * - Exit status (ReplayExit): 0 every request sent got an answer (any
 *   status; skipped lines do not count); 1 some requests failed (refused,
 *   reset, closed, timeout, bad answer) or --max-errors stopped the run;
 *   2 the input could not be read; 130 interrupted by SIGINT (the report is
 *   still printed; a second SIGINT abandons the requests in flight).
 */
import { openInput, processIo, type Input, type ToolIo } from '../cli';
import { parseReplayArgs, USAGE } from './options';
import { formatReport } from './report';
import { Replay } from './run';

export { parseReplayArgs, parseDuration, type ReplayOptions } from './options';
export { formatReport, type ReplayReport } from './report';

export const ReplayExit = { ok: 0, failed: 1, input: 2, interrupted: 130 } as const;

export async function replayCommand(args: string[], io: ToolIo = processIo): Promise<number> {
  const options = parseReplayArgs(args);
  if (options === 'help') {
    io.stdout.write(`${USAGE}\n`);
    return ReplayExit.ok;
  }
  let input: Input;
  try {
    input = await openInput(options.file, io.stdin);
  } catch (err) {
    io.stderr.write(`replay: ${(err as Error).message}\n`);
    return ReplayExit.input;
  }
  try {
    const report = await new Replay(options, input, io).run();
    io.stdout.write(options.json ? `${JSON.stringify(report)}\n` : formatReport(report));
    if (report.input_error !== null) return ReplayExit.input;
    if (report.interrupted) return ReplayExit.interrupted;
    return report.failed > 0 || report.stopped_by_errors ? ReplayExit.failed : ReplayExit.ok;
  } finally {
    input.close();
  }
}
