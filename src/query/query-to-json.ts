/**
 * Query string → JSON text, byte-identical to the legacy Rails stack.
 *
 * Contract
 * --------
 * `queryToJson(raw)` returns exactly the text Ruby produced with
 *
 *     JSON.generate(Rack::Utils.parse_nested_query(qs))
 *
 * under ruby-rack 2.2.22 (lib/rack/query_parser.rb), URI.decode_www_form_component
 * (Ruby 3.1 uri/common.rb) and json 2.6.3, where `qs` is the binary
 * (ASCII-8BIT) QUERY_STRING. Wherever that Ruby code raises, `queryToJson`
 * throws ScratchError('QUERY_MALFORMED', reason) instead, so "malformed" means
 * exactly "Rack or JSON would have raised".
 *
 * - Input: the query string's bytes as a latin1 string (one char per byte,
 *   0..255, as Buffer#latin1Slice gives). Raw bytes >= 0x80 are allowed.
 *   Chars above 0xFF break the contract and give unspecified output.
 * - Output: a flat JS string; its UTF-8 encoding is the JSON Ruby wrote. Keys
 *   keep insertion order (Ruby Hash), including integer-like keys, which is
 *   why the text is written here and never by JSON.stringify of an object.
 * - Synchronous and not re-entrant: it works in module-level buffers.
 *
 * The one deviation: json 2.6.3's UTF-8 check (isLegalUTF8, from ConvertUTF.c)
 * misses an ASCII byte right after a lead byte ED or F4, so a value such as
 * %ED%7F%80 (or %ED%22%80, with a quote) was written out raw: bytes that are
 * not UTF-8, sometimes not even JSON. No JS string encodes to those bytes,
 * so here such a value is malformed, like any other value that is not UTF-8.
 * (Byte-identical output there would need a Buffer-returning API.)
 *
 * How it stays fast (a realistic beacon takes a couple of microseconds)
 * ----------------------------------------------------------------------
 * The query is copied once into a Buffer and scanned once, byte by byte,
 * through a class table. No name, key or value becomes a string: names are
 * unescaped in place and normalized as byte ranges, keys are byte ranges of
 * them, and values (Rack only asks whether a value is nil) are byte ranges of
 * the input, unescaped and JSON-escaped straight into the output buffer when
 * the result is written. The tree is an arena of int32 records (params.ts).
 * The output becomes a string once, at the end. No regex runs per call.
 *
 * The parts: parser.ts (parse_nested_query), params.ts (the param tree),
 * json-writer.ts (JSON.generate), utf8.ts, bytes.ts and limits.ts; the rules
 * and limits for operators are in docs/query.md.
 */
import * as limitsModule from './limits';
import * as jsonWriterModule from './json-writer';
import * as parserModule from './parser';

// Local copies of what is imported: TypeScript's CommonJS output reads a named
// import as a property of the module object at every use, while a module-level
// const is a constant to the JIT (the split into modules cost a beacon ~20%
// without this).
const { BYTESIZE_LIMIT, malformed } = limitsModule;
const { writeJson } = jsonWriterModule;
const { parseQuery, queryBytes } = parserModule;

export function queryToJson(raw: string): string {
  // parse_nested_query: `unless qs.nil? || qs.empty?` → {}.
  if (raw.length === 0) return '{}';
  // check_query_string: bytesize first (the latin1 length is the byte size).
  if (raw.length > BYTESIZE_LIMIT) {
    throw malformed(`query is ${raw.length} bytes, over the limit of ${BYTESIZE_LIMIT}`);
  }
  const input = queryBytes(raw);
  return writeJson(parseQuery(raw, input), input, raw.length);
}
