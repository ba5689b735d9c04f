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
 * - Output: a JS string; its UTF-8 encoding is the JSON Ruby wrote. Keys keep
 *   insertion order (Ruby Hash), including integer-like keys, which is why the
 *   text is written here and never by JSON.stringify of a plain object.
 * - Hot path: no regex runs per call, components without '%', '+' or high
 *   bytes are used as sliced, and the whole query is scanned once.
 *
 * test/query.oracle.test.ts checks all of this against the real Ruby code.
 */
import { isUtf8 } from 'node:buffer';
import { ScratchError } from './errors';

// Limits, each named as in Rack 2.2.22.
/** query_parser.rb BYTESIZE_LIMIT: `qs.bytesize > @bytesize_limit` raises QueryLimitError. */
const BYTESIZE_LIMIT = 4_194_304;
/** query_parser.rb PARAMS_LIMIT: `qs.count('&;') >= @params_limit` raises QueryLimitError. */
const PARAMS_LIMIT = 4096;
/** utils.rb `QueryParser.make_default(65536, 100)`: key_space_limit, per Params object. */
const KEY_SPACE_LIMIT = 65_536;
/** utils.rb `QueryParser.make_default(65536, 100)`: param_depth_limit. */
const PARAM_DEPTH_LIMIT = 100;
/** json 2.6.3 State#max_nesting default: objects and arrays deeper than this raise NestingError. */
const JSON_MAX_NESTING = 100;

// Char codes used by the scanners.
const SPACE = 0x20;
const PERCENT = 0x25; // %
const PLUS = 0x2b; // +
const OPEN = 0x5b; // [
const CLOSE = 0x5d; // ]
const NEWLINE = 0x0a;
const QUOTE = 0x22; // "

// What a byte means to the query scanner, as bit flags, so that the scan of
// the common byte (class 0) is one table load and one compare.
/** '&' or ';': DEFAULT_SEP. */
const SEPARATOR = 1;
/** '=': `p.split('=', 2)`. */
const EQUALS_SIGN = 2;
/** '%', '+' or a byte >= 0x80: the component is not its own unescaped UTF-8 string. */
const NEEDS_UNESCAPE = 4;
/** A control char, '"' or '\\': JSON.generate escapes it. */
const NEEDS_JSON_ESCAPE = 8;
/** '[' or ']': the name may be nested. */
const BRACKET = 16;

const CHAR_CLASS = (() => {
  const table = new Uint8Array(256);
  for (let c = 0; c < 0x20; c++) table[c] = NEEDS_JSON_ESCAPE;
  for (let c = 0x80; c < 0x100; c++) table[c] = NEEDS_UNESCAPE;
  table[0x26] = SEPARATOR; // &
  table[0x3b] = SEPARATOR; // ;
  table[0x3d] = EQUALS_SIGN; // =
  table[PERCENT] = NEEDS_UNESCAPE;
  table[PLUS] = NEEDS_UNESCAPE;
  table[QUOTE] = NEEDS_JSON_ESCAPE;
  table[0x5c] = NEEDS_JSON_ESCAPE; // \
  table[OPEN] = BRACKET;
  table[CLOSE] = BRACKET;
  return table;
})();

/** Ruby `\h`: a hex digit's value, else -1. */
const HEX_VALUE = (() => {
  const table = new Int8Array(256).fill(-1);
  for (let d = 0; d < 10; d++) table[0x30 + d] = d;
  for (let d = 0; d < 6; d++) table[0x41 + d] = table[0x61 + d] = 10 + d;
  return table;
})();

/**
 * A value that was not valid UTF-8 after unescaping. Rack keeps it as a
 * (broken) UTF-8 String; only JSON.generate rejects it, so it is an error only
 * if it survives into the output (`a=%FF&a=1` is fine, `a=%FF` is not).
 */
class InvalidUtf8 {
  constructor(readonly latin1: string) {}
}

/**
 * The JSON text of an unescaped value, quotes included. Rack never looks
 * inside a value (only at whether it is nil), so values are encoded once,
 * while the scan that found them still knows whether they need escaping.
 */
type JsonString = string;
/** An unescaped value: nil (no '='), a String (as its JSON text), or broken UTF-8. */
type Leaf = JsonString | null | InvalidUtf8;
type Value = Leaf | Value[] | Params;

/** Up to this many keys a hash is searched linearly; past it, it gets a Map index. */
const LINEAR_SEARCH_MAX_KEYS = 16;

/**
 * query_parser.rb `class Params`: an insertion-ordered hash that charges each
 * new key's length (in characters, Ruby's String#size) against a per-object
 * key space limit.
 *
 * Keys and values live in two arrays, so writing the JSON walks them without
 * iterator allocations, and a typical beacon (a dozen short keys) is searched
 * faster linearly than through a Map, whose hashing of freshly sliced strings
 * costs more. Large hashes get a Map index so that lookups stay O(1).
 *
 * The key space charge is kept in UTF-16 units, an upper bound on characters,
 * until it passes the limit; only then are characters counted exactly, once,
 * and exactly from there on. That keeps the common case free of counting.
 */
class Params {
  /** Keys in insertion order (a repeated key keeps its first position, as a Ruby Hash does). */
  readonly keys: string[] = [];
  /** values[i] belongs to keys[i]. */
  readonly values: Value[] = [];
  private index: Map<string, number> | null = null;
  private keySpace = 0;
  private keySpaceExact = false;

  private position(key: string): number {
    if (this.index !== null) return this.index.get(key) ?? -1;
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) if (keys[i] === key) return i;
    return -1;
  }

  get(key: string): Value | undefined {
    const i = this.position(key);
    return i < 0 ? undefined : this.values[i];
  }

  /** Ruby `key?`: true for a key holding nil, too. */
  has(key: string): boolean {
    return this.position(key) >= 0;
  }

  /** Params#[]=: `@size += key.size if !@params.key?(key); raise if @size > @limit`. */
  set(key: string, value: Value): void {
    const i = this.position(key);
    if (i >= 0) {
      this.values[i] = value;
      return;
    }
    this.chargeKey(key);
    this.keys.push(key);
    this.values.push(value);
    if (this.index !== null) this.index.set(key, this.keys.length - 1);
    else if (this.keys.length > LINEAR_SEARCH_MAX_KEYS) this.index = new Map(this.keys.map((k, at) => [k, at]));
  }

  private chargeKey(key: string): void {
    this.keySpace += this.keySpaceExact ? characterCount(key) : key.length;
    if (this.keySpace <= KEY_SPACE_LIMIT) return;
    if (!this.keySpaceExact) {
      this.keySpaceExact = true;
      this.keySpace = characterCount(key);
      for (const existing of this.keys) this.keySpace += characterCount(existing);
      if (this.keySpace <= KEY_SPACE_LIMIT) return;
    }
    throw malformed(`parameter key space exceeds ${KEY_SPACE_LIMIT} characters`);
  }
}

/** Ruby String#size of a valid UTF-8 string: code points, so a surrogate pair is one. */
function characterCount(s: string): number {
  let count = s.length;
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) count--;
  }
  return count;
}

function malformed(reason: string): ScratchError {
  return new ScratchError('QUERY_MALFORMED', reason);
}

/** A short, printable rendering of offending input for error messages. */
function excerpt(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s);
}

export function queryToJson(raw: string): string {
  // parse_nested_query: `unless qs.nil? || qs.empty?` → {}.
  if (raw.length === 0) return '{}';
  // check_query_string: bytesize first (the latin1 length is the byte size).
  if (raw.length > BYTESIZE_LIMIT) {
    throw malformed(`query is ${raw.length} bytes, over the limit of ${BYTESIZE_LIMIT}`);
  }
  const params = new Params();
  parsePairs(raw, params);
  return writeObject(params, 1);
}

/**
 * parse_nested_query's loop, in one scan: split on DEFAULT_SEP (a '&' or ';'
 * followed by any spaces, which are swallowed with it),
 * split each piece on its first '=' (`p.split('=', 2)`), unescape both sides,
 * and hand them to normalizeParams.
 *
 * Ruby's String#split drops trailing empty fields and keeps others, but an
 * empty piece does nothing anyway (`"".split('=', 2)` is [], so the name is
 * nil and normalize_params returns early), so every empty piece is skipped.
 */
function parsePairs(raw: string, params: Params): void {
  const length = raw.length;
  let separators = 0;
  let start = 0;
  while (start < length) {
    // One pass over the piece: where the first '=' is, and the classes of
    // the bytes on each side of it. Chars above 0xFF (outside the contract)
    // take the unescaping path.
    let equals = -1;
    let keyClasses = 0;
    let valueClasses = 0;
    let end = start;
    for (; end < length; end++) {
      const classes = CHAR_CLASS[raw.charCodeAt(end)] ?? NEEDS_UNESCAPE;
      if (classes === 0) continue;
      if (classes === SEPARATOR) break;
      if (equals >= 0) valueClasses |= classes;
      else if (classes === EQUALS_SIGN) equals = end;
      else keyClasses |= classes;
    }
    if (end > start) {
      const keyEnd = equals < 0 ? end : equals;
      const value = equals < 0 ? null : valueJson(raw, equals + 1, end, valueClasses);
      if ((keyClasses & (NEEDS_UNESCAPE | BRACKET)) === 0 && keyEnd > start) {
        // A plain, non-empty key: normalize_params would match all of it as
        // k with after == '' and assign, so do just that.
        params.set(raw.slice(start, keyEnd), value);
      } else {
        const name = keyClasses & NEEDS_UNESCAPE ? unescapeKey(raw, start, keyEnd) : raw.slice(start, keyEnd);
        normalizeParams(params, name, value, PARAM_DEPTH_LIMIT);
      }
    }
    // Every separator ends a piece, so this counts them all.
    if (end === length) break;
    // check_query_string: `qs.count('&;') >= @params_limit`. Counting as we
    // go is equivalent: any error means malformed, whichever comes first.
    if (++separators >= PARAMS_LIMIT) {
      throw malformed(`more than ${PARAMS_LIMIT - 1} '&' or ';' separators`);
    }
    // DEFAULT_SEP's ` *` swallows spaces after a separator.
    start = end + 1;
    while (start < length && raw.charCodeAt(start) === SPACE) start++;
  }
}

/** The JSON text of the value raw[start, end), given the classes of its bytes. */
function valueJson(raw: string, start: number, end: number, classes: number): JsonString | InvalidUtf8 {
  if (classes & NEEDS_UNESCAPE) return unescapeValue(raw, start, end);
  const text = raw.slice(start, end);
  return classes & NEEDS_JSON_ESCAPE ? JSON.stringify(text) : '"' + text + '"';
}

// --- Unescaping: URI.decode_www_form_component (uri/common.rb) -------------

/** Reused byte buffer for unescaping; grows to the longest component seen. */
let scratch = Buffer.allocUnsafe(1024);

/** What the last unescapeIntoScratch produced: only bytes < 0x80? any byte JSON escapes? */
let scratchIsAscii = true;
let scratchNeedsJsonEscape = false;

/**
 * Unescapes raw[start, end) into `scratch` from `offset` on, returns the end
 * offset, and sets the scratch flags (flags rather than a result object: no
 * allocation per call).
 *
 * decode_www_form_component first raises ArgumentError "invalid %-encoding"
 * if `/%(?!\h\h)/` matches anywhere, then gsubs `+` → space and `%XX` → byte.
 */
function unescapeIntoScratch(raw: string, start: number, end: number, offset: number): number {
  if (scratch.length < offset + end - start + 1) {
    scratch = Buffer.allocUnsafe(Math.max(offset + end - start + 1, scratch.length * 2));
  }
  const bytes = scratch;
  let at = offset;
  let classes = 0;
  let allBits = 0;
  for (let i = start; i < end; i++) {
    let c = raw.charCodeAt(i);
    if (c === PERCENT) {
      const hi = i + 2 < end ? (HEX_VALUE[raw.charCodeAt(i + 1)] ?? -1) : -1;
      const lo = hi < 0 ? -1 : (HEX_VALUE[raw.charCodeAt(i + 2)] ?? -1);
      if (lo < 0) throw malformed(`invalid %-encoding in ${excerpt(raw.slice(start, end))}`);
      c = (hi << 4) | lo;
      i += 2;
    } else if (c === PLUS) {
      c = SPACE;
    }
    classes |= CHAR_CLASS[c] ?? 0;
    allBits |= c;
    bytes[at++] = c;
  }
  scratchIsAscii = allBits < 0x80;
  scratchNeedsJsonEscape = (classes & NEEDS_JSON_ESCAPE) !== 0;
  return at;
}

/**
 * A name: Rack matches it against a regex (normalize_params), and Ruby's
 * regex engine raises ArgumentError "invalid byte sequence in UTF-8" on a
 * broken string, whatever the name would have become.
 */
function unescapeKey(raw: string, start: number, end: number): string {
  const length = unescapeIntoScratch(raw, start, end, 0);
  if (scratchIsAscii) return scratch.toString('latin1', 0, length);
  if (!isUtf8(scratch.subarray(0, length))) {
    throw malformed(`parameter name ${excerpt(raw.slice(start, end))} is not valid UTF-8`);
  }
  return scratch.toString('utf8', 0, length);
}

/**
 * A value, as its JSON text: the bytes are unescaped between two quotes in
 * the scratch buffer, so the common case makes one string and no copies.
 * Broken UTF-8 is kept as a marker, an error only if it reaches the JSON.
 */
function unescapeValue(raw: string, start: number, end: number): JsonString | InvalidUtf8 {
  const close = unescapeIntoScratch(raw, start, end, 1);
  scratch[0] = QUOTE;
  scratch[close] = QUOTE;
  if (!scratchIsAscii && !isUtf8(scratch.subarray(1, close))) {
    return new InvalidUtf8(scratch.toString('latin1', 1, close));
  }
  const encoding = scratchIsAscii ? 'latin1' : 'utf8';
  if (scratchNeedsJsonEscape) return JSON.stringify(scratch.toString(encoding, 1, close));
  return scratch.toString(encoding, 0, close + 1);
}

// --- normalize_params (query_parser.rb), branch for branch -----------------

function isBracket(c: number): boolean {
  return c === OPEN || c === CLOSE;
}

/**
 * query_parser.rb normalize_params. Returns what Ruby returns: `params`, nil,
 * or `Array(v)` (only for the name "[]"); callers use the result exactly
 * where Rack does.
 */
function normalizeParams(params: Params, name: string, v: Leaf, depth: number): Params | Value[] | null {
  // `raise ParamsTooDeepError if depth <= 0`, before anything else.
  if (depth <= 0) throw malformed(`parameter nesting deeper than ${PARAM_DEPTH_LIMIT} in ${excerpt(name)}`);

  // `name =~ %r(\A[\[\]]*([^\[\]]+)\]*)`: skip leading brackets, k is the
  // following run of non-brackets, then skip ']'s; `after` is the rest.
  const length = name.length;
  let kStart = 0;
  while (kStart < length && isBracket(name.charCodeAt(kStart))) kStart++;
  // No match: `k = $1 || ''` is empty; `return Array(v)` only for "[]".
  if (kStart === length) return v !== null && name === '[]' ? [v] : null;
  let kEnd = kStart + 1;
  while (kEnd < length && !isBracket(name.charCodeAt(kEnd))) kEnd++;
  let afterStart = kEnd;
  while (afterStart < length && name.charCodeAt(afterStart) === CLOSE) afterStart++;
  const k = kStart === 0 && kEnd === length ? name : name.slice(kStart, kEnd);

  // `if after == ''`: a plain assignment; a repeated key keeps its first position.
  if (afterStart === length) {
    params.set(k, v);
    return params;
  }
  const after = name.slice(afterStart);
  // `elsif after == "["`: the whole name is the key ("a[" → "a[").
  if (after === '[') {
    params.set(name, v);
    return params;
  }
  // `elsif after == "[]"`: append to the array at k.
  if (after === '[]') {
    arrayAt(params, k).push(v);
    return params;
  }
  // `elsif after =~ %r(^\[\]\[([^\[\]]+)\]$) || after =~ %r(^\[\](.+)$)`
  const childKey = arrayChildKey(after);
  if (childKey !== undefined) {
    const array = arrayAt(params, k);
    const last = array[array.length - 1];
    if (last instanceof Params && !hashHasKey(last, childKey)) {
      // The nested call fills in the last hash; its return value is ignored.
      normalizeParams(last, childKey, v, depth - 1);
    } else {
      const child = normalizeParams(new Params(), childKey, v, depth - 1);
      array.push(child);
    }
    return params;
  }
  // else: `params[k] ||= make_params`, then `params[k] = normalize_params(...)`,
  // which may store nil when the nested name yields no key ("a[[]" → {"a":null}).
  let hash = params.get(k);
  if (hash === undefined || hash === null) {
    hash = new Params();
    params.set(k, hash);
  } else if (!(hash instanceof Params)) {
    throw typeClash('Hash', hash, k);
  }
  params.set(k, normalizeParams(hash, after, v, depth - 1));
  return params;
}

/** `params[k] ||= []` followed by the `is_a?(Array)` check (ParameterTypeError). */
function arrayAt(params: Params, k: string): Value[] {
  const existing = params.get(k);
  if (existing === undefined || existing === null) {
    const array: Value[] = [];
    params.set(k, array);
    return array;
  }
  if (!Array.isArray(existing)) throw typeClash('Array', existing, k);
  return existing;
}

function typeClash(expected: 'Array' | 'Hash', got: Value, k: string): ScratchError {
  const gotClass = Array.isArray(got) ? 'Array' : got instanceof Params ? 'Hash' : 'String';
  return malformed(`expected ${expected} (got ${gotClass}) for param ${excerpt(k)}`);
}

/** Line starts, as Ruby's `^` sees them: 0 and after every "\n". */
function nextLineStart(s: string, from: number): number {
  const newline = s.indexOf('\n', from);
  return newline < 0 ? -1 : newline + 1;
}

/**
 * `after =~ %r(^\[\]\[([^\[\]]+)\]$) || after =~ %r(^\[\](.+)$)` and `$1`.
 *
 * In Ruby `^` and `$` are line anchors and `.` excludes only "\n", so a name
 * with an (unescaped) newline can match on a later line: "a[x\n[][y]" has
 * child key "y". JS's /m would also treat \r, U+2028 and U+2029 as line
 * ends, so both regexes are written out by hand over "\n"-separated lines.
 */
function arrayChildKey(after: string): string | undefined {
  const length = after.length;
  // First regex: "[][" + non-brackets (which may include "\n") + "]" at a line end.
  for (let line = 0; line >= 0; line = nextLineStart(after, line)) {
    if (!after.startsWith('[][', line)) continue;
    const keyStart = line + 3;
    let keyEnd = keyStart;
    while (keyEnd < length && !isBracket(after.charCodeAt(keyEnd))) keyEnd++;
    const lineEnds = keyEnd + 1 === length || after.charCodeAt(keyEnd + 1) === NEWLINE;
    if (keyEnd > keyStart && after.charCodeAt(keyEnd) === CLOSE && lineEnds) {
      return after.slice(keyStart, keyEnd);
    }
  }
  // Second regex: "[]" + the rest of that line, at least one char.
  for (let line = 0; line >= 0; line = nextLineStart(after, line)) {
    if (!after.startsWith('[]', line)) continue;
    let lineEnd = after.indexOf('\n', line + 2);
    if (lineEnd < 0) lineEnd = length;
    if (lineEnd > line + 2) return after.slice(line + 2, lineEnd);
  }
  return undefined;
}

/**
 * query_parser.rb params_hash_has_key?: false if the key contains "[]";
 * otherwise walk `key.split(/[\[\]]+/)`, skipping empty parts, requiring each
 * part to be a key (even one holding nil) of a hash.
 */
function hashHasKey(hash: Params, key: string): boolean {
  if (key.includes('[]')) return false;
  let node: Value | undefined = hash;
  const length = key.length;
  let i = 0;
  while (i < length) {
    while (i < length && isBracket(key.charCodeAt(i))) i++;
    if (i === length) break;
    let partEnd = i + 1;
    while (partEnd < length && !isBracket(key.charCodeAt(partEnd))) partEnd++;
    const part = key.slice(i, partEnd);
    if (!(node instanceof Params) || !node.has(part)) return false;
    node = node.get(part);
    i = partEnd;
  }
  return true;
}

// --- JSON.generate (json 2.6.3 generator.c) --------------------------------

/**
 * json 2.6.3 escapes '"', '\\', \b \f \n \r \t and other controls as \u00xx
 * (lowercase hex), and leaves '/', DEL, U+2028/2029 and all other non-ASCII
 * as-is. JSON.stringify of a well-formed string does exactly the same (the
 * oracle test proves it over every byte), and our strings are well-formed
 * because they were decoded from valid UTF-8. JSON.stringify costs ~100 ns
 * of set-up per call, though, so strings needing no escape (nearly all) are
 * just quoted.
 */
function writeString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c) return JSON.stringify(s);
  }
  return '"' + s + '"';
}

function checkNesting(depth: number): void {
  // generate_json_object/array: `if (max_nesting != 0 && depth > max_nesting)` raise NestingError.
  if (depth > JSON_MAX_NESTING) throw malformed(`JSON nesting deeper than ${JSON_MAX_NESTING}`);
}

function writeObject(params: Params, depth: number): string {
  checkNesting(depth);
  let out = '{';
  const { keys, values } = params;
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) out += ',';
    out += writeString(keys[i] ?? '') + ':' + writeValue(values[i] ?? null, depth);
  }
  return out + '}';
}

function writeArray(array: Value[], depth: number): string {
  checkNesting(depth);
  let out = '[';
  for (let i = 0; i < array.length; i++) {
    if (i > 0) out += ',';
    out += writeValue(array[i] ?? null, depth);
  }
  return out + ']';
}

/** `depth` is the nesting of the container holding `value`. */
function writeValue(value: Value, depth: number): string {
  if (typeof value === 'string') return value;
  if (value === null) return 'null';
  if (value instanceof Params) return writeObject(value, depth + 1);
  if (Array.isArray(value)) return writeArray(value, depth + 1);
  // JSON::GeneratorError "source sequence is illegal/malformed utf-8".
  throw malformed(`value ${excerpt(value.latin1)} is not valid UTF-8`);
}
