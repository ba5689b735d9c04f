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
 * through a class table. Names become strings (Rack compares them), but
 * values never do: Rack only asks whether a value is nil, so a value is kept
 * as a byte range of the input and is unescaped and JSON-escaped straight
 * into the output buffer when the result is written. The output becomes a
 * string once, at the end. No regex runs per call.
 *
 * test/query.oracle.test.ts checks all of this against the real Ruby code.
 */
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

// Bytes the scanners and the writer look for.
const NEWLINE = 0x0a;
const SPACE = 0x20;
const QUOTE = 0x22; // "
const PERCENT = 0x25; // %
const PLUS = 0x2b; // +
const COMMA = 0x2c; // ,
const COLON = 0x3a; // :
const OPEN = 0x5b; // [
const BACKSLASH = 0x5c; // \
const CLOSE = 0x5d; // ]
const OPEN_BRACE = 0x7b; // {
const CLOSE_BRACE = 0x7d; // }

// What a byte means, as bit flags, so that scanning an ordinary byte (class
// 0) is one table load and one compare.
/** '&' or ';': DEFAULT_SEP. */
const SEPARATOR = 1;
/** '=': `p.split('=', 2)`. */
const EQUALS_SIGN = 2;
/** '%', '+' or a byte >= 0x80: the component is not its own unescaped ASCII text. */
const NEEDS_UNESCAPE = 4;
/** A control char, '"' or '\\': JSON.generate escapes it. */
const NEEDS_JSON_ESCAPE = 8;
/** '[' or ']': the name may be nested. */
const BRACKET = 16;
/** '%': must be followed by two hex digits. */
const PERCENT_SIGN = 32;

const CHAR_CLASS = (() => {
  const table = new Uint8Array(256);
  for (let c = 0; c < 0x20; c++) table[c] = NEEDS_JSON_ESCAPE;
  for (let c = 0x80; c < 0x100; c++) table[c] = NEEDS_UNESCAPE;
  table[0x26] = SEPARATOR; // &
  table[0x3b] = SEPARATOR; // ;
  table[0x3d] = EQUALS_SIGN; // =
  table[PERCENT] = NEEDS_UNESCAPE | PERCENT_SIGN;
  table[PLUS] = NEEDS_UNESCAPE;
  table[QUOTE] = NEEDS_JSON_ESCAPE;
  table[BACKSLASH] = NEEDS_JSON_ESCAPE;
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

// --- Errors --------------------------------------------------------------

function malformed(reason: string): ScratchError {
  return new ScratchError('QUERY_MALFORMED', reason);
}

/** A short, printable rendering of offending input for error messages. */
function excerpt(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s);
}

// --- Buffers, allocated once ----------------------------------------------

/**
 * Queries, names and output up to this size live in buffers allocated once;
 * bigger ones (rare: queries go up to BYTESIZE_LIMIT) get their own, so that
 * one huge query does not pin megabytes for the life of the process.
 */
const SHARED_BUFFER_BYTES = 64 * 1024;
const sharedInput = Buffer.allocUnsafe(SHARED_BUFFER_BYTES);
const sharedName = Buffer.allocUnsafe(SHARED_BUFFER_BYTES);
const sharedOutput = Buffer.allocUnsafe(SHARED_BUFFER_BYTES);

/**
 * The query's bytes in a Buffer: scanning a Buffer is about twice as fast as
 * String#charCodeAt, which pays for the copy. Only [0, raw.length) is valid.
 */
function queryBytes(raw: string): Buffer {
  if (raw.length > SHARED_BUFFER_BYTES) return Buffer.from(raw, 'latin1');
  sharedInput.write(raw, 0, 'latin1');
  return sharedInput;
}

// --- Values: byte ranges of the input -------------------------------------

/**
 * A value as Rack holds it: nil (a piece without '='), or a String, kept here
 * as the number of a byte range of the input (see `leafRanges`). Nothing in Rack
 * looks inside a value, so it is decoded only when written out; a value
 * overwritten later is never decoded at all.
 */
type Leaf = number | null;
type Value = Leaf | Value[] | Params;

/**
 * The byte ranges of this call's values, with the classes of their bytes.
 * There is at most one value per piece, and at most PARAMS_LIMIT pieces
 * (check_query_string raises on the PARAMS_LIMIT-th separator).
 */
const leafRanges = {
  start: new Int32Array(PARAMS_LIMIT),
  end: new Int32Array(PARAMS_LIMIT),
  classes: new Uint8Array(PARAMS_LIMIT),
  count: 0,
};

function addValue(start: number, end: number, classes: number): Leaf {
  const leaf = leafRanges.count++;
  leafRanges.start[leaf] = start;
  leafRanges.end[leaf] = end;
  leafRanges.classes[leaf] = classes & (NEEDS_UNESCAPE | NEEDS_JSON_ESCAPE);
  return leaf;
}

// --- Params ---------------------------------------------------------------

/** Up to this many keys a hash is searched linearly; past it, it gets a Map index. */
const LINEAR_SEARCH_MAX_KEYS = 16;

/**
 * query_parser.rb `class Params`: an insertion-ordered hash that charges each
 * new key's length (in characters, Ruby's String#size) against a per-object
 * key space limit.
 *
 * Keys and values live in two arrays, so writing walks them without iterator
 * allocations, and a typical beacon (a dozen short keys) is searched faster
 * linearly than through a Map, whose hashing of freshly sliced strings costs
 * more. Large hashes get a Map index so that lookups stay O(1).
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

// --- The entry point --------------------------------------------------------

export function queryToJson(raw: string): string {
  // parse_nested_query: `unless qs.nil? || qs.empty?` → {}.
  if (raw.length === 0) return '{}';
  // check_query_string: bytesize first (the latin1 length is the byte size).
  if (raw.length > BYTESIZE_LIMIT) {
    throw malformed(`query is ${raw.length} bytes, over the limit of ${BYTESIZE_LIMIT}`);
  }
  const input = queryBytes(raw);
  const params = new Params();
  leafRanges.count = 0;
  parsePairs(raw, input, params);
  return writeJson(params, input);
}

// --- parse_nested_query's loop ----------------------------------------------

/**
 * parse_nested_query's loop, in one scan: split on DEFAULT_SEP (a '&' or ';'
 * followed by any spaces, which are swallowed with it), split each piece on
 * its first '=' (`p.split('=', 2)`), unescape both sides, and hand them to
 * normalizeParams.
 *
 * Ruby's String#split drops trailing empty fields and keeps others, but an
 * empty piece does nothing anyway (`"".split('=', 2)` is [], so the name is
 * nil and normalize_params returns early), so every empty piece is skipped.
 */
function parsePairs(raw: string, input: Buffer, params: Params): void {
  const length = raw.length;
  let separators = 0;
  let start = 0;
  while (start < length) {
    // One pass over the piece: where the first '=' is, and the classes of
    // the bytes on each side of it.
    let equals = -1;
    let keyClasses = 0;
    let valueClasses = 0;
    let end = start;
    for (; end < length; end++) {
      const classes = CHAR_CLASS[input[end] ?? 0] ?? 0;
      if (classes === 0) continue;
      if (classes === SEPARATOR) break;
      if (classes & PERCENT_SIGN) checkEscape(input, end, length);
      if (equals >= 0) valueClasses |= classes;
      else if (classes === EQUALS_SIGN) equals = end;
      else keyClasses |= classes;
    }
    if (end > start) {
      const keyEnd = equals < 0 ? end : equals;
      const value = equals < 0 ? null : addValue(equals + 1, end, valueClasses);
      normalizeName(params, raw, input, start, keyEnd, keyClasses, value);
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
    while (start < length && input[start] === SPACE) start++;
  }
}

/**
 * normalize_params(params, name, v, PARAM_DEPTH_LIMIT) for the name
 * raw[start, end), taking the shortest road the classes of its bytes allow.
 */
function normalizeName(params: Params, raw: string, input: Buffer, start: number, end: number, classes: number, v: Leaf): void {
  if ((classes & (NEEDS_UNESCAPE | BRACKET)) === 0 && end > start) {
    // A plain, non-empty name: normalize_params would match all of it as k
    // with after == '' and assign, so do just that.
    params.set(raw.slice(start, end), v);
    return;
  }
  if ((classes & (NEEDS_UNESCAPE | NEEDS_JSON_ESCAPE)) === 0 && normalizeCommonName(params, raw, input, start, end, v)) {
    return;
  }
  const name = classes & NEEDS_UNESCAPE ? unescapeName(input, start, end) : raw.slice(start, end);
  normalizeParams(params, name, v, PARAM_DEPTH_LIMIT);
}

/**
 * The nested names beacons use, "k[]", "k[][c]" and "k[c]" (k and c without
 * brackets), straight from the input bytes, without the intermediate strings
 * of normalizeParams; false for any other name. Names with control chars are
 * never passed here, so there is no "\n" and Ruby's line anchors are simply
 * the ends of the name. What each shape does in normalize_params:
 * - "k[]": after == "[]", append v to params[k] ||= [].
 * - "k[][c]": the first array regex matches with child key c; c has no
 *   brackets, so params_hash_has_key? is `last.key?(c)` and the nested
 *   normalize_params just assigns c (at depth 99, far from the limit).
 * - "k[c]": the hash branch; the nested call sees "[c]", k = c, after == ''.
 */
function normalizeCommonName(params: Params, raw: string, input: Buffer, start: number, end: number, v: Leaf): boolean {
  let open = start;
  while (open < end && (CHAR_CLASS[input[open] ?? 0] ?? 0) !== BRACKET) open++;
  if (open === start || input[open] !== OPEN) return false;
  if (end - open === 2 && input[open + 1] === CLOSE) {
    arrayAt(params, raw.slice(start, open)).push(v);
    return true;
  }
  const arrayOfHashes = input[open + 1] === CLOSE && input[open + 2] === OPEN;
  const childStart = arrayOfHashes ? open + 3 : open + 1;
  let childEnd = childStart;
  while (childEnd < end && (CHAR_CLASS[input[childEnd] ?? 0] ?? 0) !== BRACKET) childEnd++;
  if (childEnd === childStart || childEnd !== end - 1 || input[childEnd] !== CLOSE) return false;
  const k = raw.slice(start, open);
  const childKey = raw.slice(childStart, childEnd);
  if (arrayOfHashes) {
    const array = arrayAt(params, k);
    const last = array.length > 0 ? array[array.length - 1] : undefined;
    if (last instanceof Params && !last.has(childKey)) {
      last.set(childKey, v);
    } else {
      const child = new Params();
      child.set(childKey, v);
      array.push(child);
    }
  } else {
    hashAt(params, k).set(childKey, v);
  }
  return true;
}

/**
 * decode_www_form_component raises ArgumentError "invalid %-encoding" if
 * `/%(?!\h\h)/` matches the component, even one that is later overwritten,
 * so every '%' is checked here, during the scan. A component ends at '=',
 * '&', ';' or the end, none of them hex, so looking past the component's end
 * within the query gives the same answer as looking within the component.
 */
function checkEscape(input: Buffer, at: number, length: number): void {
  if (at + 2 < length && (HEX_VALUE[input[at + 1] ?? 0] ?? -1) >= 0 && (HEX_VALUE[input[at + 2] ?? 0] ?? -1) >= 0) {
    return;
  }
  throw malformed(`invalid %-encoding at byte ${at}: ${excerpt(input.toString('latin1', at, Math.min(at + 3, length)))}`);
}

/** The byte `%XX` at input[at - 1] stands for; checkEscape has already validated it. */
function escapedByte(input: Buffer, at: number): number {
  return ((HEX_VALUE[input[at] ?? 0] ?? 0) << 4) | (HEX_VALUE[input[at + 1] ?? 0] ?? 0);
}

/**
 * Whether bytes[from, to) is well-formed UTF-8 (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF). That is what Ruby checks before a
 * regex match, and what json 2.6.3's isLegalUTF8 checks on output but for
 * the ED/F4 slip described at the top. (node:buffer isUtf8 agrees, but needs
 * a subarray, ~80 ns for a short span.)
 */
function isWellFormedUtf8(bytes: Buffer, from: number, to: number): boolean {
  let i = from;
  while (i < to) {
    const lead = bytes[i] ?? 0;
    if (lead < 0x80) {
      i++;
      continue;
    }
    // The continuation bytes that may follow `lead`, and the tighter range
    // of the first of them that rules out overlongs, surrogates and > U+10FFFF.
    let continuations: number;
    let secondMin = 0x80;
    let secondMax = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) {
      continuations = 1;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      continuations = 2;
      if (lead === 0xe0) secondMin = 0xa0;
      else if (lead === 0xed) secondMax = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      continuations = 3;
      if (lead === 0xf0) secondMin = 0x90;
      else if (lead === 0xf4) secondMax = 0x8f;
    } else {
      return false;
    }
    if (i + continuations >= to) return false;
    const second = bytes[i + 1] ?? 0;
    if (second < secondMin || second > secondMax) return false;
    for (let k = 2; k <= continuations; k++) {
      const next = bytes[i + k] ?? 0;
      if (next < 0x80 || next > 0xbf) return false;
    }
    i += continuations + 1;
  }
  return true;
}

/**
 * A name, unescaped. Rack matches every name against a regex
 * (normalize_params), and Ruby's regex engine raises ArgumentError "invalid
 * byte sequence in UTF-8" on a broken string, whatever the name would have
 * become, so a name that is not UTF-8 is malformed on the spot.
 */
function unescapeName(input: Buffer, start: number, end: number): string {
  const target = end - start <= SHARED_BUFFER_BYTES ? sharedName : Buffer.allocUnsafe(end - start);
  let length = 0;
  let allBits = 0;
  // URI.decode_www_form_component's gsub: `+` → space, `%XX` → byte.
  for (let i = start; i < end; i++) {
    let c = input[i] ?? 0;
    if (c === PERCENT) {
      c = escapedByte(input, i + 1);
      i += 2;
    } else if (c === PLUS) {
      c = SPACE;
    }
    allBits |= c;
    target[length++] = c;
  }
  if (allBits < 0x80) return target.toString('latin1', 0, length);
  if (!isWellFormedUtf8(target, 0, length)) {
    throw malformed(`parameter name ${excerpt(input.toString('latin1', start, end))} is not valid UTF-8`);
  }
  return target.toString('utf8', 0, length);
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
  // following run of non-brackets, then skip ']'s; `after` is the rest,
  // name[afterStart..], sliced only where Rack needs it as a string.
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
  const afterLength = length - afterStart;

  // `if after == ''`: a plain assignment; a repeated key keeps its first position.
  if (afterLength === 0) {
    params.set(k, v);
    return params;
  }
  // `elsif after == "["`: the whole name is the key ("a[" → "a[").
  if (afterLength === 1 && name.charCodeAt(afterStart) === OPEN) {
    params.set(name, v);
    return params;
  }
  // `elsif after == "[]"`: append to the array at k.
  if (afterLength === 2 && hasEmptyBrackets(name, afterStart)) {
    arrayAt(params, k).push(v);
    return params;
  }
  // `elsif after =~ %r(^\[\]\[([^\[\]]+)\]$) || after =~ %r(^\[\](.+)$)`
  const childKey = arrayChildKey(name, afterStart);
  if (childKey !== undefined) {
    const array = arrayAt(params, k);
    // (array[-1] on an empty array would be a slow named-property lookup.)
    const last = array.length > 0 ? array[array.length - 1] : undefined;
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
  const hash = hashAt(params, k);
  params.set(k, normalizeParams(hash, name.slice(afterStart), v, depth - 1));
  return params;
}

/** `params[k] ||= make_params` followed by the `params_hash_type?` check (ParameterTypeError). */
function hashAt(params: Params, k: string): Params {
  const existing = params.get(k);
  if (existing === undefined || existing === null) {
    const hash = new Params();
    params.set(k, hash);
    return hash;
  }
  if (!(existing instanceof Params)) throw typeClash('Hash', existing, k);
  return existing;
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

/** Line starts, as Ruby's `^` sees them: `from` and after every "\n". */
function nextLineStart(s: string, from: number): number {
  const newline = s.indexOf('\n', from);
  return newline < 0 ? -1 : newline + 1;
}

/** Whether s has "[]" at `at`. */
function hasEmptyBrackets(s: string, at: number): boolean {
  return s.charCodeAt(at) === OPEN && s.charCodeAt(at + 1) === CLOSE;
}

/**
 * `after =~ %r(^\[\]\[([^\[\]]+)\]$) || after =~ %r(^\[\](.+)$)` and `$1`,
 * where `after` is name[afterStart..].
 *
 * In Ruby `^` and `$` are line anchors and `.` excludes only "\n", so a name
 * with an (unescaped) newline can match on a later line: "a[x\n[][y]" has
 * child key "y". JS's /m would also treat \r, U+2028 and U+2029 as line
 * ends, so both regexes are written out by hand over "\n"-separated lines.
 */
function arrayChildKey(name: string, afterStart: number): string | undefined {
  const length = name.length;
  // First regex: "[][" + non-brackets (which may include "\n") + "]" at a line end.
  for (let line = afterStart; line >= 0; line = nextLineStart(name, line)) {
    if (!hasEmptyBrackets(name, line) || name.charCodeAt(line + 2) !== OPEN) continue;
    const keyStart = line + 3;
    let keyEnd = keyStart;
    while (keyEnd < length && !isBracket(name.charCodeAt(keyEnd))) keyEnd++;
    const lineEnds = keyEnd + 1 === length || name.charCodeAt(keyEnd + 1) === NEWLINE;
    if (keyEnd > keyStart && name.charCodeAt(keyEnd) === CLOSE && lineEnds) {
      return name.slice(keyStart, keyEnd);
    }
  }
  // Second regex: "[]" + the rest of that line, at least one char.
  for (let line = afterStart; line >= 0; line = nextLineStart(name, line)) {
    if (!hasEmptyBrackets(name, line)) continue;
    let lineEnd = name.indexOf('\n', line + 2);
    if (lineEnd < 0) lineEnd = length;
    if (lineEnd > line + 2) return name.slice(line + 2, lineEnd);
  }
  return undefined;
}

/**
 * query_parser.rb params_hash_has_key?: false if the key contains "[]";
 * otherwise walk `key.split(/[\[\]]+/)`, skipping empty parts, requiring each
 * part to be a key (even one holding nil) of a hash.
 */
function hashHasKey(hash: Params, key: string): boolean {
  const length = key.length;
  let firstBracket = 0;
  while (firstBracket < length && !isBracket(key.charCodeAt(firstBracket))) firstBracket++;
  // The common child key ("id" in "items[][id]") has no brackets: one part.
  if (firstBracket === length) return hash.has(key);
  if (key.includes('[]')) return false;
  let node: Value | undefined = hash;
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
 * Writes the JSON as UTF-8 bytes into one buffer, which becomes a string once.
 *
 * json 2.6.3 escapes '"', '\\', \b \f \n \r \t and other controls as \u00xx
 * (lowercase hex), and leaves '/', DEL, U+2028/2029 and all other non-ASCII
 * bytes as they are, after checking that the string is valid UTF-8
 * (GeneratorError "source sequence is illegal/malformed utf-8" otherwise;
 * see the contract at the top for the sequences its check lets through).
 * Objects and arrays nested deeper than max_nesting raise NestingError.
 */
class JsonWriter {
  private buffer = sharedOutput;
  private at = 0;
  /** Whether any byte >= 0x80 was written: decides how the bytes become a string. */
  private nonAscii = false;
  /** The query's bytes, which the values are ranges of. */
  private input: Buffer = sharedInput;

  /** Starts a new text (one writer serves every call: no allocation per call). */
  reset(input: Buffer): void {
    this.buffer = sharedOutput;
    this.at = 0;
    this.nonAscii = false;
    this.input = input;
  }

  /** Makes room for `bytes` more bytes; past the shared buffer, this call gets its own. */
  private reserve(bytes: number): Buffer {
    if (this.at + bytes > this.buffer.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.at + bytes, this.buffer.length * 2));
      this.buffer.copy(bigger, 0, 0, this.at);
      this.buffer = bigger;
    }
    return this.buffer;
  }

  private byte(c: number): void {
    this.reserve(1)[this.at++] = c;
  }

  /**
   * The output as a string. Buffer's latin1 decoding is a copy; its UTF-8
   * decoding costs ~1 ns a byte, so it is used only when needed. (Decoding
   * only the non-ASCII stretch measured no faster: each toString call and
   * the concatenation cost as much as they save.)
   */
  text(): string {
    return this.buffer.toString(this.nonAscii ? 'utf8' : 'latin1', 0, this.at);
  }

  /** generate_json_object/array: `if (max_nesting != 0 && depth > max_nesting)`. */
  private enter(depth: number): void {
    if (depth > JSON_MAX_NESTING) throw malformed(`JSON nesting deeper than ${JSON_MAX_NESTING}`);
  }

  object(params: Params, depth: number): void {
    this.enter(depth);
    this.byte(OPEN_BRACE);
    const { keys, values } = params;
    for (let i = 0; i < keys.length; i++) {
      if (i > 0) this.byte(COMMA);
      this.key(keys[i] ?? '');
      this.value(values[i] ?? null, depth);
    }
    this.byte(CLOSE_BRACE);
  }

  private array(array: Value[], depth: number): void {
    this.enter(depth);
    this.byte(OPEN);
    for (let i = 0; i < array.length; i++) {
      if (i > 0) this.byte(COMMA);
      this.value(array[i] ?? null, depth);
    }
    this.byte(CLOSE);
  }

  /** `depth` is the nesting of the container holding `value`. */
  private value(value: Value, depth: number): void {
    if (typeof value === 'number') this.leaf(value);
    else if (value === null) this.nullValue();
    else if (value instanceof Params) this.object(value, depth + 1);
    else this.array(value, depth + 1);
  }

  private nullValue(): void {
    const out = this.reserve(4);
    out[this.at] = 0x6e; // n
    out[this.at + 1] = 0x75; // u
    out[this.at + 2] = 0x6c; // l
    out[this.at + 3] = 0x6c; // l
    this.at += 4;
  }

  /**
   * A value: its input bytes, unescaped (decode_www_form_component) and
   * JSON-escaped in one pass. At most 6 output bytes per input byte
   * ("\u0000" for a raw NUL), plus the quotes.
   */
  private leaf(leaf: number): void {
    const input = this.input;
    const start = leafRanges.start[leaf] ?? 0;
    const end = leafRanges.end[leaf] ?? 0;
    const classes = leafRanges.classes[leaf] ?? 0;
    const out = this.reserve(6 * (end - start) + 2);
    let at = this.at;
    out[at++] = QUOTE;
    if (classes === 0) {
      // The common value: its bytes are its JSON text. A JS loop beats
      // Buffer#copy's call overhead up to a few dozen bytes.
      if (end - start > 48) at += input.copy(out, at, start, end);
      else for (let i = start; i < end; i++) out[at++] = input[i] ?? 0;
    } else {
      const textStart = at;
      let allBits = 0;
      for (let i = start; i < end; i++) {
        // URI.decode_www_form_component's gsub: `+` → space, `%XX` → byte.
        let c = input[i] ?? 0;
        if (c === PERCENT) {
          c = escapedByte(input, i + 1);
          i += 2;
        } else if (c === PLUS) {
          c = SPACE;
        }
        allBits |= c;
        if ((CHAR_CLASS[c] ?? 0) & NEEDS_JSON_ESCAPE) at = writeEscape(out, at, c);
        else out[at++] = c;
      }
      // Replacing ASCII bytes by ASCII escapes does not change whether the
      // bytes are valid UTF-8, so the escaped text can be checked in place.
      if (allBits >= 0x80) {
        if (!isWellFormedUtf8(out, textStart, at)) {
          throw malformed(`value ${excerpt(this.input.toString('latin1', start, end))} is not valid UTF-8`);
        }
        this.nonAscii = true;
      }
    }
    out[at++] = QUOTE;
    this.at = at;
  }

  /**
   * A key and its ':'. Keys are strings (valid UTF-8 by now, or Rack's regex
   * would have raised), so they are encoded here: at most 6 bytes per UTF-16
   * unit (an escape; non-ASCII takes at most 3).
   */
  private key(key: string): void {
    const out = this.reserve(6 * key.length + 3);
    let at = this.at;
    out[at++] = QUOTE;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      if (c >= 0x80) {
        this.nonAscii = true;
        at = writeUtf8(out, at, key, i);
        if (c >= 0xd800 && c <= 0xdbff) i++; // the pair's second half is written too
      } else if ((CHAR_CLASS[c] ?? 0) & NEEDS_JSON_ESCAPE) {
        at = writeEscape(out, at, c);
      } else {
        out[at++] = c;
      }
    }
    out[at++] = QUOTE;
    out[at++] = COLON;
    this.at = at;
  }
}

const writer = new JsonWriter();

function writeJson(params: Params, input: Buffer): string {
  writer.reset(input);
  writer.object(params, 1);
  return writer.text();
}

const HEX_DIGITS = '0123456789abcdef';

/** generator.c convert_UTF8_to_JSON: '"' and '\\' get a backslash, controls \b \f \n \r \t or \u00xx. */
function writeEscape(out: Buffer, at: number, c: number): number {
  out[at++] = BACKSLASH;
  switch (c) {
    case QUOTE:
    case BACKSLASH:
      out[at++] = c;
      return at;
    case 0x08:
      out[at++] = 0x62; // b
      return at;
    case 0x09:
      out[at++] = 0x74; // t
      return at;
    case 0x0a:
      out[at++] = 0x6e; // n
      return at;
    case 0x0c:
      out[at++] = 0x66; // f
      return at;
    case 0x0d:
      out[at++] = 0x72; // r
      return at;
    default:
      out[at++] = 0x75; // u
      out[at++] = 0x30; // 0
      out[at++] = 0x30; // 0
      out[at++] = HEX_DIGITS.charCodeAt(c >> 4);
      out[at++] = HEX_DIGITS.charCodeAt(c & 0xf);
      return at;
  }
}

/** UTF-8 of the non-ASCII code point starting at s[i] (a surrogate pair counts as one). */
function writeUtf8(out: Buffer, at: number, s: string, i: number): number {
  let point = s.charCodeAt(i);
  if (point >= 0xd800 && point <= 0xdbff) {
    point = 0x10000 + ((point - 0xd800) << 10) + (s.charCodeAt(i + 1) - 0xdc00);
  }
  if (point < 0x800) {
    out[at++] = 0xc0 | (point >> 6);
  } else if (point < 0x10000) {
    out[at++] = 0xe0 | (point >> 12);
    out[at++] = 0x80 | ((point >> 6) & 0x3f);
  } else {
    out[at++] = 0xf0 | (point >> 18);
    out[at++] = 0x80 | ((point >> 12) & 0x3f);
    out[at++] = 0x80 | ((point >> 6) & 0x3f);
  }
  out[at++] = 0x80 | (point & 0x3f);
  return at;
}
