/**
 * replay's command line: the --help text, and arguments → ReplayOptions.
 *
 * Contract: `parseReplayArgs` returns the options, or 'help' for --help, and
 * throws a usage error (exit 64, see ../cli.ts) for anything it cannot
 * accept; it touches neither the input file nor the network.
 */
import { toolCli, type ToolCli } from '../cli';

export const USAGE = `usage: scratchd replay --target http://HOST:PORT [options] FILE|-

Sends the GET and HEAD requests of an access log (FILE, or - for stdin) to
the target, each with its logged path (byte for byte) and Host.

Input lines: nginx/Apache combined or common (Host from --host, or from an
extra first field), HAProxy httplog (Host from the first {captured} header,
or --host), or "HOST /path?query". Blank lines and # comments are ignored.

options:
  --target URL         http://host:port to connect to (required)
  --host HOST          Host header for lines that carry none
  --rate N             open loop: N requests per second, latency measured
                       from each request's scheduled time
                       (without --rate: as fast as --connections allow)
  --connections N      connection pool size / requests in flight (default ${64})
  --duration SECONDS   stop sending after this long (also 500ms, 2m)
  --limit N            send at most N requests
  --timeout-ms MS      a request without a complete answer fails (default 10000)
  --max-errors N       stop after N failed requests (default: never)
  --keep-escapes       send paths as logged, without undoing the logger's
                       \\xHH (nginx) or #HH (HAProxy) escapes
  --json               print the report as JSON
  -h, --help           this text

exit status: 0 all sent requests answered (any status); 1 some failed
(connection refused/reset/closed, timeout, bad answer) or --max-errors;
2 input unreadable; 64 usage; 130 interrupted.`;

const DEFAULT_CONNECTIONS = 64;
const DEFAULT_TIMEOUT_MS = 10_000;

const cli: ToolCli = toolCli('replay', USAGE);

export interface ReplayOptions {
  file: string;
  target: { host: string; port: number; url: string };
  defaultHost: string | undefined;
  /** Requests per second, or undefined for the closed loop. */
  rate: number | undefined;
  connections: number;
  durationMs: number | undefined;
  limit: number | undefined;
  timeoutMs: number;
  maxErrors: number | undefined;
  keepEscapes: boolean;
  json: boolean;
}

export function parseReplayArgs(args: string[]): ReplayOptions | 'help' {
  const { values, positionals } = cli.parse(args, {
    target: { type: 'string' },
    host: { type: 'string' },
    rate: { type: 'string' },
    connections: { type: 'string' },
    duration: { type: 'string' },
    limit: { type: 'string' },
    'timeout-ms': { type: 'string' },
    'max-errors': { type: 'string' },
    'keep-escapes': { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help === true) return 'help';
  if (positionals.length !== 1) cli.usage(positionals.length === 0 ? 'no input FILE (use - for stdin)' : 'one input FILE only');
  if (values.target === undefined) cli.usage('--target is required');
  const host = values.host;
  if (host !== undefined && !/^[\x21-\x7e]+$/.test(host)) cli.usage(`--host ${JSON.stringify(host)} is not a valid Host header value`);
  return {
    file: positionals[0]!,
    target: parseTarget(values.target),
    defaultHost: host,
    rate: values.rate === undefined ? undefined : cli.positive('--rate', values.rate, false),
    connections: values.connections === undefined ? DEFAULT_CONNECTIONS : cli.positive('--connections', values.connections, true),
    durationMs: values.duration === undefined ? undefined : parseDuration(values.duration),
    limit: values.limit === undefined ? undefined : cli.positive('--limit', values.limit, true),
    timeoutMs: values['timeout-ms'] === undefined ? DEFAULT_TIMEOUT_MS : cli.positive('--timeout-ms', values['timeout-ms'], true),
    maxErrors: values['max-errors'] === undefined ? undefined : cli.positive('--max-errors', values['max-errors'], true),
    keepEscapes: values['keep-escapes'] === true,
    json: values.json === true,
  };
}

function parseTarget(text: string): ReplayOptions['target'] {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return cli.usage(`--target ${JSON.stringify(text)} is not a URL (http://host:port)`);
  }
  if (url.protocol !== 'http:') cli.usage(`--target ${JSON.stringify(text)}: only http:// is supported`);
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '') {
    cli.usage(`--target ${JSON.stringify(text)}: give only http://host:port; paths come from the input lines`);
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port: url.port === '' ? 80 : Number(url.port), url: `http://${url.host}` };
}

/** "30" (seconds), "30s", "500ms", "2m", "1h" → milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (match === null || Number(match[1]) <= 0) return cli.usage(`--duration ${JSON.stringify(text)}: expected seconds, or a number with ms, s, m or h`);
  const unit = match[2] ?? 's';
  return Number(match[1]) * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000);
}
