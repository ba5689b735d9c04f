/**
 * Rack 2.2.22 parse_nested_query (lib/rack/query_parser.rb) over the query's
 * bytes: one scan splits the pieces and classifies their bytes, names are
 * unescaped in place and normalized branch for branch as normalize_params
 * does, on byte ranges of the input (no string per name, key or level), into
 * the arena of params.ts; values stay byte ranges of the input until the JSON
 * writer decodes them.
 *
 * Working on UTF-8 bytes gives Rack's answers on characters: every name is
 * valid UTF-8 (checked first, as Ruby's regex engine does), the bytes the
 * regexes look for ('[', ']', "\n") are ASCII, and no byte of a multi-byte
 * character is ASCII, so a byte range cut at those bytes is the substring
 * Rack cuts, and a non-empty range holds at least one character.
 */
import * as bytesModule from './bytes';
import * as limitsModule from './limits';
import type { Leaf } from './params';
import * as paramsModule from './params';
import * as utf8Module from './utf8';
import type { ScratchError } from '../errors';

// Local copies of what is imported: TypeScript's CommonJS output reads a named
// import as a property of the module object at every use, while a module-level
// const is a constant to the JIT (the split into modules cost a beacon ~20%
// without this).
const { BRACKET, CHAR_CLASS, CLOSE, EQUALS_SIGN, NEEDS_JSON_ESCAPE, NEEDS_UNESCAPE, NEWLINE, OPEN, PERCENT, PERCENT_SIGN, PLUS, SEPARATOR, SPACE, checkEscape, escapedByte } = bytesModule;
const { KEY_SPACE_LIMIT, PARAMS_LIMIT, PARAM_DEPTH_LIMIT, SHARED_BUFFER_BYTES, excerpt, malformed } = limitsModule;
const { FIRST, RECORD, SIZE, SLOT_KEY_START, SLOT_KEY_END, KIND_ARRAY, KIND_HASH, KIND_LAZY, KIND_LEAF, KIND_NIL, NIL, SLOT_HASH, SLOT_KIND, SLOT_REF, addKey, addOnlyContainer, addTemplate, addValue, arrayPush, findKey, hasKeyPath, isIndexed, keySlot, lastSlot, lazyHasKey, materialize, materializeWithKey, newContainer, pushLazy, resetTree, setKey, setSlot, tree } = paramsModule;
const { isWellFormedUtf8 } = utf8Module;

const sharedInput = Buffer.allocUnsafe(SHARED_BUFFER_BYTES);

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
 * parse_nested_query(raw) into a fresh tree (params.ts), for a non-empty
 * query within BYTESIZE_LIMIT whose bytes `input` holds (from queryBytes).
 * Returns the root hash. Names are unescaped in place, so afterwards `input`
 * holds unescaped names (the keys) and the raw values; the tree is valid until
 * the next call.
 */
export function parseQuery(raw: string, input: Buffer): number {
  const root = resetTree(input);
  // What a huge query made the newline table grow to is not kept.
  if (nextNewline.length > SHARED_BUFFER_BYTES && raw.length <= SHARED_BUFFER_BYTES) nextNewline = new Int32Array(SHARED_BUFFER_BYTES);
  bytes = input;
  replayKind = REPLAY_NONE;
  parsePairs(raw, input, root);
  return root;
}

/** This call's input: the bytes every name range below refers to. */
let bytes: Buffer = sharedInput;

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
function parsePairs(raw: string, input: Buffer, root: number): void {
  const length = raw.length;
  let separators = 0;
  let start = 0;
  while (start < length) {
    // One pass over the piece: where the first '=' is, the classes of the
    // bytes on each side of it, and the name's brackets (how many, where the
    // first is), so that the common nested names need no second look.
    let equals = -1;
    let keyClasses = 0;
    let valueClasses = 0;
    let brackets = 0;
    let end = start;
    for (; end < length; end++) {
      const classes = CHAR_CLASS[input[end] ?? 0] ?? 0;
      if (classes === 0) continue;
      if (classes === SEPARATOR) break;
      if (classes & PERCENT_SIGN) checkEscape(input, end, length);
      if (equals >= 0) {
        valueClasses |= classes;
      } else if (classes === EQUALS_SIGN) {
        equals = end;
      } else if (classes === BRACKET) {
        if (brackets < BRACKETS_NOTED) bracketAt[brackets] = end;
        brackets++;
      } else {
        keyClasses |= classes;
      }
    }
    if (end > start) {
      const keyEnd = equals < 0 ? end : equals;
      const value = equals < 0 ? NIL : addValue(equals + 1, end, valueClasses);
      if (brackets > 0) keyClasses |= BRACKET;
      normalizeName(root, raw, input, start, keyEnd, keyClasses, value, brackets > 0 ? (bracketAt[0] ?? -1) : -1, brackets);
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

/** How many "[c]" levels normalizeHashPath takes (a name with more goes through normalizeParams). */
const HASH_PATH_MAX_LEVELS = 16;
/**
 * Where the first BRACKETS_NOTED brackets of the piece's name are (the scan
 * notes them as it counts them): normalizeCommonName and normalizeHashPath
 * read a name's shape from them rather than scanning the name again.
 */
const BRACKETS_NOTED = 2 * HASH_PATH_MAX_LEVELS;
const bracketAt = new Int32Array(BRACKETS_NOTED);

function leafKind(v: Leaf): number {
  return v === NIL ? KIND_NIL : KIND_LEAF;
}

/**
 * normalize_params(params, name, v, PARAM_DEPTH_LIMIT) for the name
 * input[start, end), taking the shortest road the classes of its bytes allow
 * (and its raw brackets: how many, and the first one's position if any).
 */
function normalizeName(root: number, raw: string, input: Buffer, start: number, end: number, classes: number, v: Leaf, open: number, brackets: number): void {
  // Only the piece right after the one that recorded a replay may use it.
  const replay = replayKind;
  replayKind = REPLAY_NONE;
  tree.plainKeys = (classes & (NEEDS_UNESCAPE | NEEDS_JSON_ESCAPE)) === 0 ? 1 : 0;
  if ((classes & (NEEDS_UNESCAPE | BRACKET)) === 0 && end > start) {
    // A plain, non-empty name: normalize_params would match all of it as k
    // with after == '' and assign, so do just that.
    setKey(root, start, end, leafKind(v), v);
    return;
  }
  if ((classes & (NEEDS_UNESCAPE | NEEDS_JSON_ESCAPE)) === 0) {
    // The name is its bytes and has no "\n": a repeated one is replayed
    // (replayKind) before anything else.
    if (replay !== REPLAY_NONE && end - start === replayEnd - replayStart && replayed(replay, input, start, end, classes, v)) return;
    if ((classes & BRACKET) !== 0 && normalizeCommonName(root, input, start, open, brackets, end, v)) return;
  }
  normalizeNested(root, raw, input, start, end, classes, v, replay);
}

/** normalizeName for a name no shortcut took: unescaped, replayed or normalized (and recorded for a replay). */
function normalizeNested(root: number, raw: string, input: Buffer, start: number, end: number, classes: number, v: Leaf, replay: number): void {
  let nameEnd = end;
  if (classes & NEEDS_UNESCAPE) {
    nameEnd = unescapeName(raw, input, start, end);
    // An escaped name that unescapes to plain ASCII (`%61<i>`): its keys are copied to the JSON as they are.
    if (unescapedPlain && (classes & NEEDS_JSON_ESCAPE) === 0) tree.plainKeys = 1;
  }
  if ((classes & BRACKET) === 0 && !(classes & NEEDS_UNESCAPE && escapedBracket) && nameEnd > start) {
    // No bracket, raw or escaped (`%61<i>`, "a\nb"): `[^\[\]]+` takes the
    // whole name, newlines too, as k with after == '': assign it, as for a
    // plain name. (No replay can match: replays are of names with brackets.)
    setKey(root, start, nameEnd, leafKind(v), v);
    return;
  }
  if ((classes & (NEEDS_UNESCAPE | NEEDS_JSON_ESCAPE)) !== 0 && replay !== REPLAY_NONE && replayed(replay, input, start, nameEnd, classes, v)) return;
  // A raw control char or an escape may be a "\n" (Ruby's line anchors).
  if (classes & (NEEDS_UNESCAPE | NEEDS_JSON_ESCAPE)) findNewlines(input, start, nameEnd);
  else newlinesTo = -1;
  // A name without brackets is one key of the root: nothing to replay.
  recording = (classes & BRACKET) !== 0;
  recordKind = REPLAY_NONE;
  normalizeParams(root, start, nameEnd, v, PARAM_DEPTH_LIMIT, false);
  recording = false;
  if (recordKind !== REPLAY_NONE) {
    replayKind = recordKind;
    replayRef = recordRef;
    replayChildStart = recordChildStart - start;
    replayChildEnd = recordChildEnd - start;
    replayDepth = recordDepth;
    replayChain = CHAIN_UNKNOWN;
    replayTemplate = -1;
    replayStart = start;
    replayEnd = nameEnd;
  }
}

/**
 * The replay of a repeated name (`a[b][c]=1&a[b][c]=2…`, `a[][b][c]=1&…`:
 * the same bytes piece after piece). normalize_params' levels depend only on
 * the name's bytes until the first level that is not the hash branch; the
 * hashes those levels walk (or make) are there, with the same keys, when the
 * same name comes again right after, so the next piece can start where that
 * walk ended:
 * - REPLAY_SET: the walk ended by assigning a key (`after == ''`): assign
 *   its slot (replayRef) again.
 * - REPLAY_PUSH: it ended by appending to an array (`after == "[]"`):
 *   append to that array (replayRef) again.
 * - REPLAY_CHILD: it ended in the array branch (`after` is "[][c]" or
 *   "[]c…"), with the array replayRef, the child name at
 *   [replayChildStart, replayChildEnd) from the name's start and the depth
 *   of that level: replayArrayBranch takes that branch again from there.
 * normalizeParams records what it ends with (recordKind) while `recording`
 * (its outermost level only); replayKind is valid for the very next piece
 * only, for the name [replayStart, replayEnd).
 */
const REPLAY_NONE = 0;
const REPLAY_SET = 1;
const REPLAY_PUSH = 2;
const REPLAY_CHILD = 3;
let recording = false;
let recordKind = REPLAY_NONE;
let recordRef = 0;
let recordChildStart = 0;
let recordChildEnd = 0;
let recordDepth = 0;
let replayKind = REPLAY_NONE;
let replayRef = 0;
let replayChildStart = 0;
let replayChildEnd = 0;
let replayDepth = 0;
let replayStart = 0;
let replayEnd = 0;

/**
 * If the (unescaped) name [start, nameEnd) is the one `replay` was recorded
 * for, does what normalize_params does for it from where the recorded walk
 * ended, keeps the replay for the next piece and returns true.
 */
function replayed(replay: number, input: Buffer, start: number, nameEnd: number, classes: number, v: Leaf): boolean {
  if (nameEnd - start !== replayEnd - replayStart || !sameName(input, replayStart, start, nameEnd - start)) return false;
  if (replay === REPLAY_SET) {
    setSlot(replayRef, leafKind(v), v);
  } else if (replay === REPLAY_PUSH) {
    arrayPush(replayRef, leafKind(v), v);
  } else {
    replayArrayBranch(start, nameEnd, v, classes);
    if (replayPushTo >= 0) {
      // The walk into the last hash only appended to an array: see replayArrayBranch.
      replayKind = REPLAY_PUSH;
      replayRef = replayPushTo;
      replayPushTo = -1;
      replayStart = start;
      replayEnd = nameEnd;
      return true;
    }
  }
  replayKind = replay;
  replayStart = start;
  replayEnd = nameEnd;
  return true;
}

/**
 * The newline table for the name [start, nameEnd), whose raw bytes had
 * `classes`, before a replay normalizes its child (only then: a replay that
 * pushes an unbuilt hash or assigns a slot needs none).
 */
function newlinesOf(start: number, nameEnd: number, classes: number): void {
  if (classes & (NEEDS_UNESCAPE | NEEDS_JSON_ESCAPE)) findNewlines(bytes, start, nameEnd);
  else newlinesTo = -1;
}

/** Whether b holds the same `length` bytes at `a` and at `c` (a JS loop: Buffer#compare is a native call, dearer for short names). */
function sameName(b: Buffer, a: number, c: number, length: number): boolean {
  // From the end: names that differ mostly differ in a counter at the end.
  for (let i = length - 1; i >= 0; i--) if (b[a + i] !== b[c + i]) return false;
  return true;
}

/**
 * For each byte of the name being normalized, where the next "\n" at or
 * after it is (the name's end if none): so that each level of
 * normalizeParams finds its line starts without rescanning the name, which
 * would make a long name quadratic. Valid for positions below `newlinesTo`;
 * -1 when the name has no "\n".
 */
let nextNewline = new Int32Array(SHARED_BUFFER_BYTES);
let newlinesTo = -1;

function findNewlines(input: Buffer, start: number, end: number): void {
  let i = start;
  while (i < end && input[i] !== NEWLINE) i++;
  if (i === end) {
    newlinesTo = -1;
    return;
  }
  if (nextNewline.length < end) nextNewline = new Int32Array(Math.max(end, 2 * nextNewline.length));
  let next = end;
  for (let k = end - 1; k >= start; k--) {
    if (input[k] === NEWLINE) next = k;
    nextNewline[k] = next;
  }
  newlinesTo = end;
}

/**
 * The nested names beacons use, "k[]", "k[][c]" and "k[c]" (also
 * "k[c1][c2]…"), and "k[]c" (k and c without brackets), without going through normalizeParams; false for
 * any other name. Names with control chars are never passed here, so there is no "\n"
 * and Ruby's line anchors are simply the ends of the name. What each shape
 * does in normalize_params:
 * - "k[]": after == "[]", append v to params[k] ||= [].
 * - "k[][c]": the first array regex matches with child key c; c has no
 *   brackets, so params_hash_has_key? is `last.key?(c)` and the nested
 *   normalize_params just assigns c (at depth 99, far from the limit).
 * - "k[]c": the second array regex matches with child key c, which then goes
 *   exactly as in "k[][c]".
 * - "k[c]", "k[c1][c2]…": the hash branch, level after level, then the
 *   assignment (normalizeHashPath).
 */
function normalizeCommonName(root: number, input: Buffer, start: number, open: number, brackets: number, end: number, v: Leaf): boolean {
  if (open === start || input[open] !== OPEN || open + 1 === end) return false;
  if (input[open + 1] !== CLOSE) {
    // "k[c]": its only brackets are at `open` and at the end, so c is
    // [open + 1, end - 1), not empty (input[open + 1] is not "]").
    if (brackets === 2 && input[end - 1] === CLOSE) {
      setKey(hashAt(root, start, open), open + 1, end - 1, leafKind(v), v);
      return true;
    }
    return normalizeHashPath(root, input, start, open, brackets, end, v);
  }
  if (end - open === 2) {
    arrayPush(arrayAt(root, start, open), leafKind(v), v);
    return true;
  }
  // The child key c, from where the name's brackets are: "k[]c" has only
  // the two at `open` ("k[]c": `after =~ %r(^\[\](.+)$)` with child key
  // c, handled as "k[][c]"), "k[][c]" four, the last at the end.
  let childStart: number;
  let childEnd: number;
  if (brackets === 2) {
    childStart = open + 2;
    childEnd = end;
  } else if (brackets === 4 && input[open + 2] === OPEN && input[end - 1] === CLOSE && end - 1 > open + 3) {
    childStart = open + 3;
    childEnd = end - 1;
  } else {
    return false;
  }
  const array = arrayAt(root, start, open);
  const last = lastSlot(array);
  let lastKind = last >= 0 ? tree.mem[last + SLOT_KIND] : KIND_NIL;
  if (lastKind === KIND_LAZY) {
    // An unbuilt {"c":…} (params.ts KIND_LAZY) that has c: a new one, still unbuilt.
    if (lazyHasKey(last, childStart, childEnd)) {
      pushLazy(array, -1, 0, childStart, childEnd, v);
      return true;
    }
    // `{"x":…}` gets its second key (`a[][x]=1&a[][y]=2`).
    if (tree.mem[last + SLOT_HASH] === -1 && materializeWithKey(last, childStart, childEnd, v)) return true;
    materialize(last);
    lastKind = KIND_HASH;
  }
  const lastHash = lastKind === KIND_HASH ? (tree.mem[last + SLOT_REF] ?? 0) : -1;
  if (lastHash >= 0 && isIndexed(lastHash)) {
    // The last hash lacks c (keySlot has just added it): c goes there.
    const slot = keySlot(lastHash, childStart, childEnd);
    if (tree.keyAdded) {
      setSlot(slot, leafKind(v), v);
      return true;
    }
  } else if (lastHash >= 0 && findKey(lastHash, childStart, childEnd) < 0) {
    addKey(lastHash, childStart, childEnd, leafKind(v), v);
    return true;
  }
  if (childEnd - childStart <= KEY_SPACE_LIMIT) {
    pushLazy(array, -1, 0, childStart, childEnd, v);
  } else {
    const child = newContainer();
    addKey(child, childStart, childEnd, leafKind(v), v);
    arrayPush(array, KIND_HASH, child);
  }
  return true;
}

/**
 * "k[c1][c2]…[cn]" (k and every c non-empty, without brackets; no "\n", see
 * normalizeCommonName), else false with nothing done: normalize_params takes
 * the hash branch n times (`after` starts with "[" and a char that is not
 * "]", so it is never '', "[", "[]" nor matched by the array regexes) and
 * then assigns cn (`after == ''`); the depth limit is far. So: hashAt for
 * k, c1 … c(n-1), then set cn. The name's shape is checked whole, from where
 * the scan found its brackets (bracketAt: "[", "]" pairs, each "[" right
 * after the previous "]", the last "]" at the end; at most
 * HASH_PATH_MAX_LEVELS pairs), before anything is made, so a name of
 * another shape leaves no trace.
 */
function normalizeHashPath(root: number, input: Buffer, start: number, open: number, brackets: number, end: number, v: Leaf): boolean {
  if ((brackets & 1) !== 0 || brackets > BRACKETS_NOTED) return false;
  let next = open;
  for (let i = 0; i < brackets; i += 2) {
    const keyOpen = bracketAt[i] ?? 0;
    const keyClose = bracketAt[i + 1] ?? 0;
    if (keyOpen !== next || input[keyOpen] !== OPEN || input[keyClose] !== CLOSE || keyClose === keyOpen + 1) return false;
    next = keyClose + 1;
  }
  if (next !== end) return false;
  let params = hashAt(root, start, open);
  for (let i = 0; i < brackets - 2; i += 2) params = hashAt(params, (bracketAt[i] ?? 0) + 1, bracketAt[i + 1] ?? 0);
  setKey(params, (bracketAt[brackets - 2] ?? 0) + 1, bracketAt[brackets - 1] ?? 0, leafKind(v), v);
  return true;
}

/** Whether the name unescapeName last unescaped had an escaped bracket (%5B, %5D). */
let escapedBracket = false;
/** Whether it unescaped to ASCII with no escape (%XX) that JSON escapes (its raw bytes are the caller's to check). */
let unescapedPlain = false;

/**
 * A name, unescaped in place (unescaping only shrinks, so each byte is
 * written at or before where it is read); returns the new end. Rack matches
 * every name against a regex (normalize_params), and Ruby's regex engine
 * raises ArgumentError "invalid byte sequence in UTF-8" on a broken string,
 * whatever the name would have become, so a name that is not UTF-8 is
 * malformed on the spot.
 */
function unescapeName(raw: string, input: Buffer, start: number, end: number): number {
  escapedBracket = false;
  let at = start;
  let allBits = 0;
  let escapedClasses = 0;
  // URI.decode_www_form_component's gsub: `+` → space, `%XX` → byte.
  for (let i = start; i < end; i++) {
    let c = input[i] ?? 0;
    if (c === PERCENT) {
      c = escapedByte(input, i + 1);
      i += 2;
      if (c === OPEN || c === CLOSE) escapedBracket = true;
      escapedClasses |= CHAR_CLASS[c] ?? 0;
    } else if (c === PLUS) {
      c = SPACE;
    }
    allBits |= c;
    input[at++] = c;
  }
  unescapedPlain = allBits < 0x80 && (escapedClasses & NEEDS_JSON_ESCAPE) === 0;
  if (allBits >= 0x80 && !isWellFormedUtf8(input, start, at)) {
    throw malformed(`parameter name ${excerpt(raw.slice(start, end))} is not valid UTF-8`);
  }
  return at;
}

/** The text of the name or key bytes [start, end), for error messages. */
function nameText(start: number, end: number): string {
  return bytes.toString('utf8', start, end);
}

// --- normalize_params (query_parser.rb), branch for branch -----------------

function isBracket(c: number): boolean {
  return c === OPEN || c === CLOSE;
}

/** normalizeParams' answer when Ruby returns nil. */
const RETURNS_NIL = -1;
/** normalizeParams' answer when Ruby returns `Array(v)` (only for the name "[]" and a non-nil v). */
const RETURNS_ARRAY_OF_V = -2;

/**
 * query_parser.rb normalize_params for the name bytes [start, end). Returns
 * what Ruby returns: `params` (a container number), nil (RETURNS_NIL), or
 * `Array(v)` (RETURNS_ARRAY_OF_V); callers use the result exactly where
 * Rack does.
 *
 * Rack recurses once per level of the name; here the two recursive calls
 * whose result is known or ignored (the hash branch, and filling in an
 * array's last hash) are turned into iterations of one loop, so that a deep
 * name costs no call per level. A level can only return something other
 * than its own `params` at its first step (no key), which is where the
 * caller's use of the result is replayed.
 */
function normalizeParams(params: number, start: number, end: number, v: Leaf, depth: number, laterLinesFail: boolean): number {
  const b = bytes;
  const outer = params;
  // How this level was reached: from the caller, through the hash branch
  // (the parent's key [parentKStart, parentKEnd) gets what this level
  // returns), or into an array's last hash (what it returns is ignored).
  let via = FROM_CALLER;
  let parent = -1;
  let parentKStart = 0;
  let parentKEnd = 0;
  // Whether every level so far took the hash branch (see replayKind).
  let onlyHashes = true;
  for (;;) {
    // `raise ParamsTooDeepError if depth <= 0`, before anything else.
    if (depth <= 0) throw malformed(`parameter nesting deeper than ${PARAM_DEPTH_LIMIT} in ${excerpt(nameText(start, end))}`);

    // `name =~ %r(\A[\[\]]*([^\[\]]+)\]*)`: skip leading brackets, k is the
    // following run of non-brackets, then skip ']'s; `after` is the rest,
    // [afterStart, end).
    let kStart = start;
    while (kStart < end && isBracket(b[kStart] ?? 0)) kStart++;
    if (kStart === end) {
      // No match: `k = $1 || ''` is empty; `return Array(v)` only for "[]".
      const result = v !== NIL && end - start === 2 && hasEmptyBrackets(b, start) ? RETURNS_ARRAY_OF_V : RETURNS_NIL;
      if (via === FROM_CALLER) return result;
      if (via === FROM_HASH_BRANCH) {
        // `params[k] = normalize_params(...)` stores nil (or Array(v)) over the new hash.
        if (result === RETURNS_NIL) setKey(parent, parentKStart, parentKEnd, KIND_NIL, 0);
        else setKey(parent, parentKStart, parentKEnd, KIND_ARRAY, arrayOf(v));
      }
      return outer;
    }
    let kEnd = kStart + 1;
    while (kEnd < end && !isBracket(b[kEnd] ?? 0)) kEnd++;
    let afterStart = kEnd;
    while (afterStart < end && b[afterStart] === CLOSE) afterStart++;
    const afterLength = end - afterStart;

    // `if after == ''`: a plain assignment; a repeated key keeps its first position.
    if (afterLength === 0) {
      const slot = setKey(params, kStart, kEnd, leafKind(v), v);
      if (onlyHashes && recording) {
        recordKind = REPLAY_SET;
        recordRef = slot;
      }
      return outer;
    }
    // `elsif after == "["`: the whole name is the key ("a[" → "a[").
    if (afterLength === 1 && b[afterStart] === OPEN) {
      setKey(params, start, end, leafKind(v), v);
      return outer;
    }
    // `elsif after == "[]"`: append to the array at k.
    if (afterLength === 2 && hasEmptyBrackets(b, afterStart)) {
      const array = arrayAt(params, kStart, kEnd);
      arrayPush(array, leafKind(v), v);
      leafPushArray = array;
      if (onlyHashes && recording) {
        recordKind = REPLAY_PUSH;
        recordRef = array;
      }
      return outer;
    }
    // `elsif after =~ %r(^\[\]\[([^\[\]]+)\]$) || after =~ %r(^\[\](.+)$)`
    // (with laterLinesFail only afterStart is tried, and both need "[]" there).
    if ((!laterLinesFail || hasEmptyBrackets(b, afterStart)) && arrayChildKey(b, afterStart, end, laterLinesFail)) {
      const childStart = foundStart;
      const childEnd = foundEnd;
      const array = arrayAt(params, kStart, kEnd);
      if (onlyHashes && recording) {
        recordKind = REPLAY_CHILD;
        recordRef = array;
        recordChildStart = childStart;
        recordChildEnd = childEnd;
        recordDepth = depth;
        recording = false;
      }
      onlyHashes = false;
      const last = lastSlot(array);
      if (last >= 0 && tree.mem[last + SLOT_KIND] === KIND_LAZY) materialize(last);
      const lastHash = last >= 0 && tree.mem[last + SLOT_KIND] === KIND_HASH ? (tree.mem[last + SLOT_REF] ?? 0) : -1;
      if (lastHash >= 0 && !hasKeyPath(lastHash, childStart, childEnd)) {
        // The nested call fills in the last hash; its return value is ignored.
        params = lastHash;
        start = childStart;
        end = childEnd;
        depth--;
        laterLinesFail = false;
        via = INTO_LAST_HASH;
        continue;
      }
      const top = tree.top;
      const child = normalizeParams(newContainer(), childStart, childEnd, v, depth - 1, false);
      if (child >= 0) arrayPush(array, KIND_HASH, child);
      else if (child === RETURNS_NIL) arrayPush(array, KIND_NIL, 0);
      else arrayPush(array, KIND_ARRAY, arrayOf(v));
      // Where this walk ended (see pushedAt).
      pushedArray = array;
      pushedTop = top;
      pushedChildStart = childStart;
      pushedChildEnd = childEnd;
      pushedDepth = depth;
      return outer;
    }
    // else: `params[k] ||= make_params`, then `params[k] = normalize_params(...)`,
    // which may store nil when the nested name yields no key ("a[[]" → {"a":null}).
    // hashAt stores the hash at k; the next level overwrites it only where it
    // returns something else (see above).
    parent = params;
    parentKStart = kStart;
    parentKEnd = kEnd;
    params = hashAt(params, kStart, kEnd);
    // The nested name is a suffix of this one, and arrayChildKey has just
    // found that no line start in it matches: the nested level need only try
    // its own start, which keeps names full of "\n" linear, not quadratic.
    start = afterStart;
    depth--;
    laterLinesFail = true;
    via = FROM_HASH_BRANCH;
    // Further levels that take the hash branch too: see hashChain.
    if (hashChain(b, params, start, end, depth)) {
      parent = chain.parent;
      parentKStart = chain.kStart;
      parentKEnd = chain.kEnd;
      params = chain.params;
      start = chain.start;
      depth = chain.depth;
    }
  }
}

/** Where hashChain left off: the state of normalizeParams' loop after its levels. */
const chain = { parent: 0, kStart: 0, kEnd: 0, params: 0, start: 0, depth: 0 };

/**
 * The levels after one reached through the hash branch that take the hash
 * branch again (`a[b][c][d]…`, also down an existing tree), done with only
 * the tests that tell that branch apart; the state after them is left in
 * `chain`; returns false if there were none. Reached through the hash
 * branch, only `after` itself is tried for the array regexes (see
 * laterLinesFail). `after` starts with "[" (k ends at a bracket and the
 * "]"s are skipped). So the hash branch is taken exactly when `after` is
 * not "[" and, if it starts with "[]", neither regex matches there: both
 * need at least one char after the "[]" on its line, so "[]" followed by
 * "\n" matches neither, and anything else is left to normalizeParams, as
 * is the depth limit. (A function of its own: inside normalizeParams' loop
 * it slowed other shapes.)
 */
function hashChain(b: Buffer, params: number, start: number, end: number, depth: number): boolean {
  let levels = 0;
  while (depth > 0) {
    let k = start;
    while (k < end && isBracket(b[k] ?? 0)) k++;
    if (k === end) break;
    let kLast = k + 1;
    while (kLast < end && !isBracket(b[kLast] ?? 0)) kLast++;
    let after = kLast;
    while (after < end && b[after] === CLOSE) after++;
    if (after + 1 >= end) break;
    if (b[after + 1] === CLOSE && (after + 2 >= end || b[after + 2] !== NEWLINE)) break;
    chain.parent = params;
    chain.kStart = k;
    chain.kEnd = kLast;
    params = hashAt(params, k, kLast);
    start = after;
    depth--;
    levels++;
  }
  chain.params = params;
  chain.start = start;
  chain.depth = depth;
  return levels > 0;
}

const FROM_CALLER = 0;
const FROM_HASH_BRANCH = 1;
const INTO_LAST_HASH = 2;

/**
 * What the child name of a REPLAY_CHILD replay makes in a new hash, when
 * that is a chain of one-key hashes ending in v (`[b][c]` → {"b":{"c":v}}):
 * replayChain hash levels, whose keys are at [chainKeys[2i], chainKeys[2i+1])
 * from the name's start, and the key of v after them. Learnt from the first
 * replayed piece that made a new hash (CHAIN_UNKNOWN until then; CHAIN_NONE
 * if it was anything else). The child's levels depend only on its bytes, so
 * the next time it makes a new hash it makes the same chain, with no error
 * (the first time had none, at the same depth, and each new hash holds one
 * key), and the chain can be built without normalizing the child again.
 */
const CHAIN_UNKNOWN = -2;
const CHAIN_NONE = -1;
let replayChain = CHAIN_UNKNOWN;
const chainKeys = new Int32Array(2 * (PARAM_DEPTH_LIMIT + 2));

/**
 * The template (params.ts addTemplate) of the chain's hash levels, once
 * replayChain is known, and whether the child name has its key path
 * (params_hash_has_key?) in such a chain: the same for every chain this
 * replay makes (the same keys, one per hash, ending in a value), so it is
 * asked once, on the first. A chain made as the array's last element is
 * then left unbuilt (KIND_LAZY) for as long as the next piece finds its
 * path there, which is the only thing it asks of it.
 */
let replayTemplate = -1;
let replayHasPath = false;

/**
 * Where normalizeParams' last walk ended when it ended by pushing a new
 * element in the array branch: that array, the arena's top before the new
 * element was made, the child name and the level's depth.
 */
let pushedArray = 0;
let pushedTop = -1;
let pushedChildStart = 0;
let pushedChildEnd = 0;
let pushedDepth = 0;

/**
 * A REPLAY_CHILD replay whose walk down the last hash (`a[][x][][x]…`: into
 * the last hash, again and again) made nothing on the way and ended by
 * pushing a new element into a deeper array: the next piece, with the same
 * bytes, takes the same road over the same tree (only that array changed,
 * and the road reaches it before its elements; nothing on the road looks at
 * v) to the same array branch. So the replay starts there from now on.
 */
function descendReplay(start: number): void {
  replayRef = pushedArray;
  replayChildStart = pushedChildStart - start;
  replayChildEnd = pushedChildEnd - start;
  replayDepth = pushedDepth;
  replayChain = CHAIN_UNKNOWN;
  replayTemplate = -1;
}

/**
 * The array normalizeParams last appended v to (`after == "[]"`), and the
 * array a REPLAY_CHILD replay hands on to replayed() to replay as
 * REPLAY_PUSH from now on, or -1. When the walk into the last hash
 * (`a[][b][]=1` again and again) made nothing but that one element (the
 * arena grew by its one record), everything it passed is as it was: the
 * array branch's array has the same last hash, whose key path
 * (params_hash_has_key?) is unchanged (an array's elements are not part of
 * it), and the walk from there depends only on the name's bytes and those
 * hashes. So the next piece with the same bytes appends to the same array.
 */
let leafPushArray = -1;
let replayPushTo = -1;

/** normalizeParams' array branch for the repeated name [start, nameEnd), replayed (REPLAY_CHILD). */
function replayArrayBranch(start: number, nameEnd: number, v: Leaf, classes: number): void {
  const array = replayRef;
  const childStart = start + replayChildStart;
  const childEnd = start + replayChildEnd;
  const last = lastSlot(array);
  if (last >= 0 && tree.mem[last + SLOT_KIND] === KIND_LAZY) {
    if (replayHasPath && replayTemplate >= 0 && tree.mem[last + SLOT_HASH] === replayTemplate && v !== NIL) {
      pushLazy(array, replayTemplate, start, start + (chainKeys[2 * replayChain] ?? 0), start + (chainKeys[2 * replayChain + 1] ?? 0), v);
      return;
    }
    materialize(last);
  }
  const lastHash = last >= 0 && tree.mem[last + SLOT_KIND] === KIND_HASH ? (tree.mem[last + SLOT_REF] ?? 0) : -1;
  if (lastHash >= 0 && !hasKeyPath(lastHash, childStart, childEnd)) {
    const top = tree.top;
    pushedTop = -1;
    leafPushArray = -1;
    newlinesOf(start, nameEnd, classes);
    normalizeParams(lastHash, childStart, childEnd, v, replayDepth - 1, false);
    if (pushedTop === top) descendReplay(start);
    else if (leafPushArray >= 0 && tree.top === top + RECORD && lastSlot(leafPushArray) === top) replayPushTo = leafPushArray;
    return;
  }
  if (replayChain >= 0 && v !== NIL) {
    pushLazy(array, replayTemplate, start, start + (chainKeys[2 * replayChain] ?? 0), start + (chainKeys[2 * replayChain + 1] ?? 0), v);
    return;
  }
  newlinesOf(start, nameEnd, classes);
  const child = normalizeParams(newContainer(), childStart, childEnd, v, replayDepth - 1, false);
  if (child >= 0) arrayPush(array, KIND_HASH, child);
  else if (child === RETURNS_NIL) arrayPush(array, KIND_NIL, 0);
  else arrayPush(array, KIND_ARRAY, arrayOf(v));
  if (replayChain === CHAIN_UNKNOWN) {
    replayChain = child >= 0 && v !== NIL && nameEnd - start <= KEY_SPACE_LIMIT ? chainOf(child, start, v) : CHAIN_NONE;
    if (replayChain >= 0) {
      replayTemplate = addTemplate(replayChain, chainKeys);
      replayHasPath = hasKeyPath(child, childStart, childEnd);
    }
  }
}

/** The chain of one-key hashes ending in v that hash holds, into chainKeys (see replayChain); its number of hash levels, or CHAIN_NONE. */
function chainOf(hash: number, start: number, v: Leaf): number {
  const mem = tree.mem;
  let c = hash;
  for (let i = 0; i <= PARAM_DEPTH_LIMIT; i++) {
    if (mem[c + SIZE] !== 1) return CHAIN_NONE;
    const s = mem[c + FIRST] ?? 0;
    chainKeys[2 * i] = (mem[s + SLOT_KEY_START] ?? 0) - start;
    chainKeys[2 * i + 1] = (mem[s + SLOT_KEY_END] ?? 0) - start;
    const kind = mem[s + SLOT_KIND];
    if (kind === KIND_LEAF) return mem[s + SLOT_REF] === v ? i : CHAIN_NONE;
    if (kind !== KIND_HASH) return CHAIN_NONE;
    c = mem[s + SLOT_REF] ?? 0;
  }
  return CHAIN_NONE;
}

/** `Array(v)` for a String v: a new array holding v. */
function arrayOf(v: Leaf): number {
  const array = newContainer();
  arrayPush(array, KIND_LEAF, v);
  return array;
}

/** `params[k] ||= make_params` followed by the `params_hash_type?` check (ParameterTypeError). */
function hashAt(params: number, kStart: number, kEnd: number): number {
  // A hash with no keys yet (one this name has just made): the key is new.
  if ((tree.mem[params + FIRST] ?? 0) < 0 && kEnd - kStart <= KEY_SPACE_LIMIT) return addOnlyContainer(params, kStart, kEnd, KIND_HASH);
  // In an indexed hash keySlot adds a missing key as nil, which `||=` then treats as such.
  const slot = isIndexed(params) ? keySlot(params, kStart, kEnd) : findKey(params, kStart, kEnd);
  if (slot < 0) {
    const hash = newContainer();
    addKey(params, kStart, kEnd, KIND_HASH, hash);
    return hash;
  }
  const kind = tree.mem[slot + SLOT_KIND] ?? KIND_NIL;
  if (kind === KIND_NIL) {
    const hash = newContainer();
    setSlot(slot, KIND_HASH, hash);
    return hash;
  }
  if (kind !== KIND_HASH) throw typeClash('Hash', kind, kStart, kEnd);
  return tree.mem[slot + SLOT_REF] ?? 0;
}

/** `params[k] ||= []` followed by the `is_a?(Array)` check (ParameterTypeError). */
function arrayAt(params: number, kStart: number, kEnd: number): number {
  if ((tree.mem[params + FIRST] ?? 0) < 0 && kEnd - kStart <= KEY_SPACE_LIMIT) return addOnlyContainer(params, kStart, kEnd, KIND_ARRAY);
  // In an indexed hash keySlot adds a missing key as nil, which `||=` then treats as such.
  const slot = isIndexed(params) ? keySlot(params, kStart, kEnd) : findKey(params, kStart, kEnd);
  if (slot < 0) {
    const array = newContainer();
    addKey(params, kStart, kEnd, KIND_ARRAY, array);
    return array;
  }
  const kind = tree.mem[slot + SLOT_KIND] ?? KIND_NIL;
  if (kind === KIND_NIL) {
    const array = newContainer();
    setSlot(slot, KIND_ARRAY, array);
    return array;
  }
  if (kind !== KIND_ARRAY) throw typeClash('Array', kind, kStart, kEnd);
  return tree.mem[slot + SLOT_REF] ?? 0;
}

function typeClash(expected: 'Array' | 'Hash', gotKind: number, kStart: number, kEnd: number): ScratchError {
  const gotClass = gotKind === KIND_ARRAY ? 'Array' : gotKind === KIND_HASH ? 'Hash' : 'String';
  return malformed(`expected ${expected} (got ${gotClass}) for param ${excerpt(nameText(kStart, kEnd))}`);
}

/** Line starts, as Ruby's `^` sees them: after every "\n" in [from, end); -1 if none. */
function nextLineStart(b: Buffer, from: number, end: number): number {
  const newline = lineEnd(b, from, end);
  return newline === end ? -1 : newline + 1;
}

/** The first "\n" in [from, end), else end (`b` is the name's bytes, see nextNewline). */
function lineEnd(b: Buffer, from: number, end: number): number {
  if (from >= end || newlinesTo < 0) return end;
  const newline = nextNewline[from] ?? end;
  return newline < end ? newline : end;
}

/** Whether b has "[]" at `at`. */
function hasEmptyBrackets(b: Buffer, at: number): boolean {
  return b[at] === OPEN && b[at + 1] === CLOSE;
}

/** The child key arrayChildKey found: [foundStart, foundEnd). */
let foundStart = 0;
let foundEnd = 0;

/**
 * `after =~ %r(^\[\]\[([^\[\]]+)\]$) || after =~ %r(^\[\](.+)$)` and `$1`
 * (into foundStart/foundEnd), where `after` is [afterStart, end).
 *
 * In Ruby `^` and `$` are line anchors and `.` excludes only "\n", so a name
 * with an (unescaped) newline can match on a later line: "a[x\n[][y]" has
 * child key "y". Both regexes are written out by hand over "\n"-separated
 * lines.
 */
function arrayChildKey(b: Buffer, afterStart: number, end: number, laterLinesFail: boolean): boolean {
  // Whether either regex matches at a line start depends only on the text
  // from there on; with `laterLinesFail` the caller knows that every line
  // start after afterStart fails both, so only afterStart is tried.
  // First regex: "[][" + non-brackets (which may include "\n") + "]" at a line end.
  for (let line = afterStart; line >= 0; line = laterLinesFail ? -1 : nextLineStart(b, line, end)) {
    if (line + 2 >= end || !hasEmptyBrackets(b, line) || b[line + 2] !== OPEN) continue;
    const keyStart = line + 3;
    let keyEnd = keyStart;
    while (keyEnd < end && !isBracket(b[keyEnd] ?? 0)) keyEnd++;
    const lineEnds = keyEnd + 1 === end || (keyEnd + 1 < end && b[keyEnd + 1] === NEWLINE);
    if (keyEnd > keyStart && keyEnd < end && b[keyEnd] === CLOSE && lineEnds) {
      foundStart = keyStart;
      foundEnd = keyEnd;
      return true;
    }
  }
  // Second regex: "[]" + the rest of that line, at least one char.
  for (let line = afterStart; line >= 0; line = laterLinesFail ? -1 : nextLineStart(b, line, end)) {
    if (line + 1 >= end || !hasEmptyBrackets(b, line)) continue;
    const restEnd = lineEnd(b, line + 2, end);
    if (restEnd > line + 2) {
      foundStart = line + 2;
      foundEnd = restEnd;
      return true;
    }
  }
  return false;
}
