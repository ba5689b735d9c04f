/**
 * The limits of a query and the one error it raises: each limit named as in
 * Rack 2.2.22 or json 2.6.3, so that "malformed" means exactly "Rack or
 * JSON would have raised" (see docs/query.md).
 */
import { ScratchError } from '../errors';

/** query_parser.rb BYTESIZE_LIMIT: `qs.bytesize > @bytesize_limit` raises QueryLimitError. */
export const BYTESIZE_LIMIT = 4_194_304;
/** query_parser.rb PARAMS_LIMIT: `qs.count('&;') >= @params_limit` raises QueryLimitError. */
export const PARAMS_LIMIT = 4096;
/** utils.rb `QueryParser.make_default(65536, 100)`: key_space_limit, per Params object. */
export const KEY_SPACE_LIMIT = 65_536;
/** utils.rb `QueryParser.make_default(65536, 100)`: param_depth_limit. */
export const PARAM_DEPTH_LIMIT = 100;
/** json 2.6.3 State#max_nesting default: objects and arrays deeper than this raise NestingError. */
export const JSON_MAX_NESTING = 100;

/**
 * Queries, names and output up to this size live in buffers allocated once;
 * bigger ones (rare: queries go up to BYTESIZE_LIMIT) get their own, so that
 * one huge query does not pin megabytes for the life of the process.
 */
export const SHARED_BUFFER_BYTES = 64 * 1024;

export function malformed(reason: string): ScratchError {
  return new ScratchError('QUERY_MALFORMED', reason);
}

/** A short, printable rendering of offending input for error messages. */
export function excerpt(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s);
}
