/**
 * Rack 2.2.22 parse_nested_query (lib/rack/query_parser.rb) over the query's
 * bytes: one scan splits the pieces and classifies their bytes, names are
 * unescaped and normalized branch for branch as normalize_params does, and
 * values stay byte ranges of the input (see params.ts) until the JSON writer
 * decodes them.
 */
import * as bytesModule from './bytes';
import * as limitsModule from './limits';
import type { Leaf, Value } from './params';
import * as paramsModule from './params';
import * as utf8Module from './utf8';
import type { ScratchError } from '../errors';

// Local copies of what is imported: TypeScript's CommonJS output reads a named
// import as a property of the module object at every use, while a module-level
// const is a constant to the JIT (the split into modules cost a beacon ~20%
// without this).
const { BRACKET, CHAR_CLASS, CLOSE, EQUALS_SIGN, NEEDS_JSON_ESCAPE, NEEDS_UNESCAPE, NEWLINE, OPEN, PERCENT, PERCENT_SIGN, PLUS, SEPARATOR, SPACE, checkEscape, escapedByte } = bytesModule;
const { PARAMS_LIMIT, PARAM_DEPTH_LIMIT, SHARED_BUFFER_BYTES, excerpt, malformed } = limitsModule;
const { Params, addValue, leafRanges } = paramsModule;
type Params = paramsModule.Params;
const { isWellFormedUtf8 } = utf8Module;

const sharedInput = Buffer.allocUnsafe(SHARED_BUFFER_BYTES);
const sharedName = Buffer.allocUnsafe(SHARED_BUFFER_BYTES);

/**
 * The query's bytes in a Buffer: scanning a Buffer is about twice as fast as
 * String#charCodeAt, which pays for the copy. Only [0, raw.length) is valid.
 */
export function queryBytes(raw: string): Buffer {
  if (raw.length > SHARED_BUFFER_BYTES) return Buffer.from(raw, 'latin1');
  sharedInput.write(raw, 0, 'latin1');
  return sharedInput;
}

/**
 * parse_nested_query(raw) into a fresh Params, for a non-empty query within
 * BYTESIZE_LIMIT whose bytes `input` holds (from queryBytes). Its values are
 * ranges of `input`, valid until the next call.
 */
export function parseQuery(raw: string, input: Buffer): Params {
  const params = new Params();
  leafRanges.count = 0;
  parsePairs(raw, input, params);
  return params;
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
function normalizeParams(params: Params, name: string, v: Leaf, depth: number, laterLinesFail = false): Params | Value[] | null {
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
  const childKey = arrayChildKey(name, afterStart, laterLinesFail);
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
  // The nested name is a suffix of this one, and arrayChildKey has just
  // found that no line start in it matches: the nested call need only try
  // its own start, which keeps names full of "\n" linear, not quadratic.
  const nested = normalizeParams(hash, name.slice(afterStart), v, depth - 1, true);
  // hashAt has stored `hash` at k already; storing it again would change nothing.
  if (nested !== hash) params.set(k, nested);
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
function arrayChildKey(name: string, afterStart: number, laterLinesFail: boolean): string | undefined {
  const length = name.length;
  // Whether either regex matches at a line start depends only on the text
  // from there on; with `laterLinesFail` the caller knows that every line
  // start after afterStart fails both, so only afterStart is tried.
  // First regex: "[][" + non-brackets (which may include "\n") + "]" at a line end.
  for (let line = afterStart; line >= 0; line = laterLinesFail ? -1 : nextLineStart(name, line)) {
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
  for (let line = afterStart; line >= 0; line = laterLinesFail ? -1 : nextLineStart(name, line)) {
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
