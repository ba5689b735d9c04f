/**
 * The param tree Rack builds, as a flat arena: records of one Int32Array, no
 * JS object per hash, array or entry, no string per key (an 8 KB query can
 * make Rack build thousands of nested hashes; see the hostile-input budget
 * in docs/query.md).
 *
 * - A value as Rack holds it is nil or a String (kept as the number of a byte
 *   range of the input, see `leafRanges`: nothing in Rack looks inside a
 *   value, so it is decoded only when written out), a hash or an array.
 * - A container (query_parser.rb `Params`, an insertion-ordered hash with a
 *   key space limit, or an Array) is a number: its entries are slots chained
 *   first → next in insertion order.
 * - A slot is one entry: a value (kind + ref) and, in a hash, its key as a
 *   byte range of the key bytes (the input, where names are unescaped in
 *   place: see parser.ts). Keys are compared as bytes, which for valid UTF-8
 *   is comparing the strings Rack compares.
 * - Small hashes are searched linearly along their chain; a hash with more
 *   than LINEAR_SEARCH_MAX_KEYS keys (or LINEAR_SEARCH_MAX_KEY_BYTES of keys) is indexed in one open-addressing table
 *   shared by all hashes, keyed by (hash, key bytes). Its entries carry the
 *   number of the call that wrote them, so nothing is cleared between calls.
 *
 * Everything lives in module-level buffers reused by every call (valid until
 * the next call), grown when a large query needs more.
 */
import * as crypto from 'node:crypto';
import * as bytesModule from './bytes';
import * as limitsModule from './limits';

// Local copies of what is imported: TypeScript's CommonJS output reads a named
// import as a property of the module object at every use, while a module-level
// const is a constant to the JIT (the split into modules cost a beacon ~20%
// without this).
const { CLOSE, NEEDS_JSON_ESCAPE, NEEDS_UNESCAPE, OPEN } = bytesModule;
const { KEY_SPACE_LIMIT, PARAMS_LIMIT, malformed } = limitsModule;

/** A value handed to normalize_params: a leaf number (see leafRanges), or NIL for Ruby's nil. */
export type Leaf = number;
const NIL = -1;

/** What a slot holds. */
const KIND_NIL = 0;
const KIND_LEAF = 1;
const KIND_HASH = 2;
const KIND_ARRAY = 3;
/**
 * A new hash not built yet, only ever an element of an array: a chain of
 * one-key hashes ending in one key that holds the slot's value (`{"b":{"c":v}}`,
 * or `{"c":v}` with no hash levels). Rack makes such a hash for every
 * piece of `a[][b][c]=1&a[][b][c]=1…` or `a[][x]=1&a[][x]=1…`, and nothing
 * looks into it again unless it is still the array's last element when
 * the next name comes (only the last element of an array is ever reached:
 * normalize_params' `params[k].last`). So it stays a slot, written to the
 * JSON straight from its keys' bytes, and is built (`materialize`) only when
 * a name has to look into it. Fields: SLOT_REF the value (a leaf or NIL);
 * [SLOT_KEY_START, SLOT_KEY_END) the last key; SLOT_HASH the template of
 * the hash levels' keys and SLOT_BASE what its offsets count from, or -1:
 * no hash levels, and the key is a plain name's (ASCII, nothing to escape:
 * only the parser's normalizeCommonName makes those).
 */
const KIND_LAZY = 4;

/**
 * The byte ranges of this call's values, with the classes of their bytes:
 * leaf number l is the value [leafRanges[l + LEAF_START], leafRanges[l +
 * LEAF_END]) with classes leafRanges[l + LEAF_CLASSES], side by side so
 * that writing a value loads one cache line. There is at most one value per
 * piece, and at most PARAMS_LIMIT pieces (check_query_string raises on the
 * PARAMS_LIMIT-th separator).
 */
const LEAF_START = 0;
const LEAF_END = 1;
const LEAF_CLASSES = 2;
const LEAF_FIELDS = 3;
const leafRanges = new Int32Array(LEAF_FIELDS * PARAMS_LIMIT);
let leafTop = 0;

export function addValue(start: number, end: number, classes: number): Leaf {
  const leaf = leafTop;
  leafTop = leaf + LEAF_FIELDS;
  leafRanges[leaf + LEAF_START] = start;
  leafRanges[leaf + LEAF_END] = end;
  leafRanges[leaf + LEAF_CLASSES] = classes & (NEEDS_UNESCAPE | NEEDS_JSON_ESCAPE);
  return leaf;
}

/**
 * Up to this many keys, and this many bytes of keys, a hash is searched
 * linearly; past either, its keys go into the shared table. A linear step
 * is a walk down the slot chain (dependent loads) and a compare, an indexed
 * lookup a hash of the key and one probe: measured, the table wins from
 * about 3 keys on (8 keys `xA`…`xH`, then `xH` again and again: 38× a
 * beacon searched linearly, 24× indexed; docs/query.md). The bytes bound
 * what one lookup compares: keys of one length that differ only at the end
 * (`x…xA`, … then `x…xD` again and again) cost a compare of every key's
 * bytes per lookup.
 */
const LINEAR_SEARCH_MAX_KEYS = 4;
const LINEAR_SEARCH_MAX_KEY_BYTES = 32;
const INITIAL_RECORDS = 2048;
const INITIAL_TABLE = 4096;
/** Up to this many records (1 MB; a request line's query needs at most about half) the arena stays as big as it grew. */
const MAX_KEPT_RECORDS = 32 * 1024;

/**
 * Slots and containers are records of RECORD int32s in one array (`tree.mem`;
 * one array, so that making a record costs one bounds check, not one per
 * field), numbered by their offset in it. -1 is "none".
 */
const RECORD = 8;
/** Slot fields: what it holds, and the leaf or container number. */
const SLOT_KIND = 0;
const SLOT_REF = 1;
/** A hash slot's key: bytes [SLOT_KEY_START, SLOT_KEY_END) of tree.keyBytes. */
const SLOT_KEY_START = 2;
const SLOT_KEY_END = 3;
/** The next slot of the same container. */
const SLOT_NEXT = 4;
/** The key's hash, once its hash is indexed, and the container the slot belongs to. */
const SLOT_HASH = 5;
const SLOT_OWNER = 6;
/**
 * A KIND_LAZY slot's base position for its template's key offsets (only
 * ever in an array); in a hash's slot, SLOT_PLAIN: 1 if the key's bytes are
 * their own JSON text (ASCII, nothing to escape), so the writer copies them.
 */
const SLOT_BASE = 7;
const SLOT_PLAIN = 7;
/** Container fields: its first and last slot, its number of entries. */
const FIRST = 0;
const LAST = 1;
const SIZE = 2;
/** Key space charged so far: UTF-8 bytes (an upper bound on characters) until exact. */
const KEY_SPACE = 3;
/** EXACT | INDEXED. */
const FLAGS = 4;
/** KEY_SPACE counts characters exactly. */
const EXACT = 1;
/** The hash's keys are in the shared table. */
const INDEXED = 2;

/** The arena. The JSON writer reads it; only this module writes it. */
const tree = {
  /** The bytes keys are ranges of (this call's input). */
  keyBytes: Buffer.alloc(0) as Buffer,
  mem: new Int32Array(INITIAL_RECORDS * RECORD),
  /** The offset of the next record. */
  top: 0,
  // The shared table of large hashes' keys: entry i is table[2i] the call
  // that wrote it (valid where it is this call) and table[2i + 1] its slot
  // + 1, side by side so that a probe loads one cache line, not two.
  table: new Int32Array(2 * INITIAL_TABLE),
  tableMask: INITIAL_TABLE - 1,
  tableEntries: 0,
  call: 1,
  /**
   * The templates of KIND_LAZY slots: at t, the number of hash levels n,
   * then n key ranges as offsets [start, end) from the slot's SLOT_BASE.
   */
  templates: new Int32Array(1024),
  templateTop: 0,
  /** SLOT_PLAIN for the keys made now: 1 while the name being normalized is plain ASCII with nothing to escape (the parser sets it). */
  plainKeys: 0,
  /** The records the KIND_LAZY slots of this call would take built (the JSON writer's bound counts them). */
  lazyRecords: 0,
  /** Whether the last keySlot call added its key. */
  keyAdded: false,
};

/** Starts a new tree whose keys are ranges of `keyBytes`; returns the root hash. */
export function resetTree(keyBytes: Buffer): number {
  // What a huge query made the arena grow to is not kept for the next calls.
  if (tree.mem.length > MAX_KEPT_RECORDS * RECORD) tree.mem = new Int32Array(INITIAL_RECORDS * RECORD);
  if (tree.table.length > 4 * MAX_KEPT_RECORDS) {
    tree.table = new Int32Array(2 * INITIAL_TABLE);
    tree.tableMask = INITIAL_TABLE - 1;
  }
  if (tree.templates.length > MAX_KEPT_RECORDS) tree.templates = new Int32Array(1024);
  tree.keyBytes = keyBytes;
  tree.top = 0;
  tree.templateTop = 0;
  tree.lazyRecords = 0;
  tree.tableEntries = 0;
  leafTop = 0;
  if (++tree.call === 0x7fffffff) {
    tree.table.fill(0);
    tree.call = 1;
  }
  return newContainer();
}

/** How many slots and containers this call's tree has. */
export function recordCount(): number {
  return tree.top / RECORD + tree.lazyRecords;
}

/** A new record's offset. */
function allocate(): number {
  const at = tree.top;
  tree.top = at + RECORD;
  if (at + RECORD > tree.mem.length) {
    const bigger = new Int32Array(tree.mem.length * 2);
    bigger.set(tree.mem);
    tree.mem = bigger;
  }
  return at;
}

/** A new, empty container (a hash or an array: the slot that holds it says which). */
export function newContainer(): number {
  const c = allocate();
  const mem = tree.mem;
  mem[c + FIRST] = -1;
  mem[c + LAST] = -1;
  mem[c + SIZE] = 0;
  mem[c + KEY_SPACE] = 0;
  mem[c + FLAGS] = 0;
  return c;
}

/** Appends a slot to container c. */
function newSlot(c: number, kind: number, ref: number, keyStart: number, keyEnd: number): number {
  const s = allocate();
  const mem = tree.mem;
  mem[s + SLOT_KIND] = kind;
  mem[s + SLOT_REF] = ref;
  mem[s + SLOT_KEY_START] = keyStart;
  mem[s + SLOT_KEY_END] = keyEnd;
  mem[s + SLOT_NEXT] = -1;
  mem[s + SLOT_OWNER] = c;
  mem[s + SLOT_PLAIN] = tree.plainKeys;
  const last = mem[c + LAST] ?? -1;
  if (last < 0) mem[c + FIRST] = s;
  else mem[last + SLOT_NEXT] = s;
  mem[c + LAST] = s;
  mem[c + SIZE] = (mem[c + SIZE] ?? 0) + 1;
  return s;
}

/** Array#push. */
export function arrayPush(array: number, kind: number, ref: number): void {
  newSlot(array, kind, ref, -1, -1);
}

/** The last slot of a container, or -1. */
export function lastSlot(c: number): number {
  return tree.mem[c + LAST] ?? -1;
}

/** Whether bytes [a, a + length) and [b, b + length) of the key bytes are equal. */
function sameBytes(bytes: Buffer, a: number, b: number, length: number): boolean {
  if (a === b) return true;
  for (let i = 0; i < length; i++) if (bytes[a + i] !== bytes[b + i]) return false;
  return true;
}

/**
 * The key table's hash seed, random per process. The keys are the
 * client's: with a hash anyone can compute, a query of ~1,000 keys chosen
 * to land in one bucket makes every insert probe past all the others
 * (hash flooding: 8 KB cost ~1.7 ms, ~900 beacons, before the seed; see the
 * hostile-input budget in docs/query.md). With the seed unknown, where a
 * key lands cannot be chosen.
 */
const HASH_SEED = crypto.getRandomValues(new Int32Array(1))[0] ?? 0;

function keyHash(c: number, start: number, end: number): number {
  const bytes = tree.keyBytes;
  let h = Math.imul((c + 1) ^ HASH_SEED, 0x9e3779b1) ^ (end - start);
  for (let i = start; i < end; i++) h = Math.imul(h ^ (bytes[i] ?? 0), 0x01000193);
  // MurmurHash3's fmix32: every bit of h, the seed's included, reaches the
  // low bits the table indexes by (a product's low bits see only low bits).
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** The slot of key [start, end) in hash c, or -1. */
export function findKey(c: number, start: number, end: number): number {
  const mem = tree.mem;
  if (((mem[c + FLAGS] ?? 0) & INDEXED) === 0) {
    const bytes = tree.keyBytes;
    const length = end - start;
    for (let s = mem[c + FIRST] ?? -1; s >= 0; s = mem[s + SLOT_NEXT] ?? -1) {
      const ks = mem[s + SLOT_KEY_START] ?? 0;
      if ((mem[s + SLOT_KEY_END] ?? 0) - ks !== length) continue;
      // Compared here, not by a call: most small hashes are looked up once per piece.
      let i = 0;
      while (i < length && bytes[ks + i] === bytes[start + i]) i++;
      if (i === length) return s;
    }
    return -1;
  }
  const hash = keyHash(c, start, end);
  missHash = hash;
  return findIndexed(c, start, end, hash);
}

/**
 * query_parser.rb params_hash_has_key?(hash, key) for the key bytes
 * [start, end): false if the key contains "[]"; otherwise walk
 * `key.split(/[\[\]]+/)`, skipping empty parts, requiring each part to be a
 * key (even one holding nil) of a hash. One pass: "[]" can only sit in a run
 * of brackets, so each run is checked as the walk crosses it (every way out
 * but the end answers false, so the order of the checks does not matter),
 * and small hashes are searched here rather than through findKey.
 */
export function hasKeyPath(hash: number, start: number, end: number): boolean {
  const bytes = tree.keyBytes;
  const mem = tree.mem;
  let node = hash;
  let kind = KIND_HASH;
  let i = start;
  for (;;) {
    let previous = 0;
    for (; i < end; i++) {
      const c = bytes[i] ?? 0;
      if (c === CLOSE) {
        if (previous === OPEN) return false;
      } else if (c !== OPEN) {
        break;
      }
      previous = c;
    }
    if (i === end) return true;
    let partEnd = i + 1;
    for (; partEnd < end; partEnd++) {
      const c = bytes[partEnd] ?? 0;
      if (c === OPEN || c === CLOSE) break;
    }
    if (kind !== KIND_HASH) return false;
    let s: number;
    if (((mem[node + FLAGS] ?? 0) & INDEXED) === 0) {
      const length = partEnd - i;
      for (s = mem[node + FIRST] ?? -1; s >= 0; s = mem[s + SLOT_NEXT] ?? -1) {
        const ks = mem[s + SLOT_KEY_START] ?? 0;
        if ((mem[s + SLOT_KEY_END] ?? 0) - ks === length && sameBytes(bytes, ks, i, length)) break;
      }
    } else {
      s = findKey(node, i, partEnd);
    }
    if (s < 0) return false;
    kind = mem[s + SLOT_KIND] ?? KIND_NIL;
    node = mem[s + SLOT_REF] ?? 0;
    i = partEnd;
  }
}

/**
 * The hash of the key findKey last looked up in an indexed hash, which addKey
 * reuses when it adds that key (setKey, hashAt and arrayAt add right after a
 * miss).
 */
let missHash = 0;

function findIndexed(c: number, start: number, end: number, hash: number): number {
  const t = tree;
  const mem = t.mem;
  const bytes = t.keyBytes;
  const length = end - start;
  const mask = t.tableMask;
  const call = t.call;
  const table = t.table;
  for (let i = hash & mask; ; i = (i + 1) & mask) {
    if (table[2 * i] !== call) return -1;
    const s = (table[2 * i + 1] ?? 0) - 1;
    const ks = mem[s + SLOT_KEY_START] ?? 0;
    if (mem[s + SLOT_HASH] === hash && mem[s + SLOT_OWNER] === c && (mem[s + SLOT_KEY_END] ?? 0) - ks === length && sameBytes(bytes, ks, start, length)) {
      return s;
    }
  }
}

/** Puts slot s (a key of an indexed hash, its hash set) into the shared table. */
function index(s: number): void {
  const t = tree;
  if (2 * (t.tableEntries + 1) > t.tableMask + 1) growTable();
  const mask = t.tableMask;
  const table = t.table;
  const call = t.call;
  let i = (t.mem[s + SLOT_HASH] ?? 0) & mask;
  while (table[2 * i] === call) i = (i + 1) & mask;
  table[2 * i] = call;
  table[2 * i + 1] = s + 1;
  t.tableEntries++;
}

function growTable(): void {
  const t = tree;
  const old = t.table;
  const call = t.call;
  const entries = old.length; // twice as many as before: 2 ints an entry
  const table = new Int32Array(2 * entries);
  const mask = entries - 1;
  for (let i = 0; i < old.length; i += 2) {
    if (old[i] !== call) continue;
    const s = (old[i + 1] ?? 0) - 1;
    let j = (t.mem[s + SLOT_HASH] ?? 0) & mask;
    while (table[2 * j] === call) j = (j + 1) & mask;
    table[2 * j] = call;
    table[2 * j + 1] = s + 1;
  }
  t.table = table;
  t.tableMask = mask;
}

/**
 * Params#[]=: `@size += key.size if !@params.key?(key); raise if @size > @limit`;
 * a repeated key keeps its first position, as a Ruby Hash does. Returns the slot.
 */
export function setKey(c: number, start: number, end: number, kind: number, ref: number): number {
  const existing = ((tree.mem[c + FLAGS] ?? 0) & INDEXED) !== 0 ? keySlot(c, start, end) : findKey(c, start, end);
  if (existing >= 0) {
    const mem = tree.mem;
    mem[existing + SLOT_KIND] = kind;
    mem[existing + SLOT_REF] = ref;
    return existing;
  }
  return addKey(c, start, end, kind, ref);
}

/** Whether hash c's keys are in the key table (then keySlot, rather than findKey and addKey). */
export function isIndexed(c: number): boolean {
  return ((tree.mem[c + FLAGS] ?? 0) & INDEXED) !== 0;
}

/**
 * The slot of key [start, end) in the indexed hash c, added (holding nil)
 * if c lacks it; tree.keyAdded says which. `params[k] ||= …` and
 * `params[k] = v` treat a missing key and a nil one alike, so the callers
 * need no lookup and insert apart: one probe finds the key's entry or the
 * empty one a new key takes (nothing writes the table in between), where
 * findKey and addKey probed twice, through two calls. (Small hashes keep
 * findKey and addKey: routing them through here made `a=1` repeated 18%
 * slower.)
 */
export function keySlot(c: number, start: number, end: number): number {
  const t = tree;
  const hash = keyHash(c, start, end);
  const bytes = t.keyBytes;
  const length = end - start;
  const mask = t.tableMask;
  const call = t.call;
  const table = t.table;
  let i = hash & mask;
  for (; table[2 * i] === call; i = (i + 1) & mask) {
    const mem = t.mem;
    const s = (table[2 * i + 1] ?? 0) - 1;
    const ks = mem[s + SLOT_KEY_START] ?? 0;
    if (mem[s + SLOT_HASH] === hash && mem[s + SLOT_OWNER] === c && (mem[s + SLOT_KEY_END] ?? 0) - ks === length && sameBytes(bytes, ks, start, length)) {
      t.keyAdded = false;
      return s;
    }
  }
  chargeKey(c, start, end);
  const s = newSlot(c, KIND_NIL, 0, start, end);
  t.mem[s + SLOT_HASH] = hash;
  if (2 * (t.tableEntries + 1) > mask + 1) {
    index(s);
  } else {
    table[2 * i] = call;
    table[2 * i + 1] = s + 1;
    t.tableEntries++;
  }
  t.keyAdded = true;
  return s;
}

/**
 * Adds the first key of the empty hash c, holding a new empty container
 * (of the kind the caller stores there), and returns that container: what
 * `params[k] ||= make_params` (or `||= []`) does once a name has left the
 * existing tree, where every level makes a new hash with one key. One
 * allocation for both records, and no lookup, key space check or index:
 * c has no keys, and the caller checks that the key is within
 * KEY_SPACE_LIMIT.
 */
export function addOnlyContainer(c: number, start: number, end: number, kind: number): number {
  const s = tree.top;
  const child = s + RECORD;
  const top = child + RECORD;
  tree.top = top;
  if (top > tree.mem.length) {
    const bigger = new Int32Array(Math.max(top, tree.mem.length * 2));
    bigger.set(tree.mem);
    tree.mem = bigger;
  }
  const mem = tree.mem;
  mem[s + SLOT_KIND] = kind;
  mem[s + SLOT_REF] = child;
  mem[s + SLOT_KEY_START] = start;
  mem[s + SLOT_KEY_END] = end;
  mem[s + SLOT_NEXT] = -1;
  mem[s + SLOT_OWNER] = c;
  mem[s + SLOT_PLAIN] = tree.plainKeys;
  mem[c + FIRST] = s;
  mem[c + LAST] = s;
  mem[c + SIZE] = 1;
  mem[c + KEY_SPACE] = end - start;
  mem[child + FIRST] = -1;
  mem[child + LAST] = -1;
  mem[child + SIZE] = 0;
  mem[child + KEY_SPACE] = 0;
  mem[child + FLAGS] = 0;
  return child;
}

/** Sets what slot s holds. */
export function setSlot(s: number, kind: number, ref: number): void {
  const mem = tree.mem;
  mem[s + SLOT_KIND] = kind;
  mem[s + SLOT_REF] = ref;
}

/** Adds a key that findKey has just found missing from hash c (the last findKey call: see missHash). */
export function addKey(c: number, start: number, end: number, kind: number, ref: number): number {
  chargeKey(c, start, end);
  const s = newSlot(c, kind, ref, start, end);
  const mem = tree.mem;
  const flags = mem[c + FLAGS] ?? 0;
  if (flags & INDEXED) {
    mem[s + SLOT_HASH] = missHash;
    index(s);
  } else if ((mem[c + SIZE] ?? 0) > LINEAR_SEARCH_MAX_KEYS || ((mem[c + KEY_SPACE] ?? 0) > LINEAR_SEARCH_MAX_KEY_BYTES && (mem[c + SIZE] ?? 0) > 1)) {
    mem[c + FLAGS] = flags | INDEXED;
    for (let k = mem[c + FIRST] ?? -1; k >= 0; k = mem[k + SLOT_NEXT] ?? -1) {
      mem[k + SLOT_HASH] = keyHash(c, mem[k + SLOT_KEY_START] ?? 0, mem[k + SLOT_KEY_END] ?? 0);
      index(k);
    }
  }
  return s;
}

/** A template of `levels` hash keys, at `keys[2i]`, `keys[2i + 1]` (offsets from a base); returns its number. */
export function addTemplate(levels: number, keys: Int32Array): number {
  const t = tree.templateTop;
  const size = 1 + 2 * levels;
  if (t + size > tree.templates.length) {
    const bigger = new Int32Array(Math.max(t + size, 2 * tree.templates.length));
    bigger.set(tree.templates);
    tree.templates = bigger;
  }
  tree.templates[t] = levels;
  for (let i = 0; i < 2 * levels; i++) tree.templates[t + 1 + i] = keys[i] ?? 0;
  tree.templateTop = t + size;
  return t;
}

/**
 * Array#push of a new hash, left unbuilt (KIND_LAZY): the hash levels of
 * `template` (or none: -1) from `base`, then the key [keyStart, keyEnd)
 * holding v. The caller knows each key is within KEY_SPACE_LIMIT (each
 * hash has only that key).
 */
export function pushLazy(array: number, template: number, base: number, keyStart: number, keyEnd: number, v: Leaf): void {
  // allocate(), written out: one per piece of `a[]x=1&a[]x=1…`, where the
  // JIT did not inline the call.
  const s = tree.top;
  tree.top = s + RECORD;
  if (s + RECORD > tree.mem.length) {
    const bigger = new Int32Array(tree.mem.length * 2);
    bigger.set(tree.mem);
    tree.mem = bigger;
  }
  const mem = tree.mem;
  mem[s + SLOT_KIND] = KIND_LAZY;
  mem[s + SLOT_REF] = v;
  mem[s + SLOT_KEY_START] = keyStart;
  mem[s + SLOT_KEY_END] = keyEnd;
  mem[s + SLOT_NEXT] = -1;
  mem[s + SLOT_HASH] = template;
  mem[s + SLOT_OWNER] = array;
  mem[s + SLOT_BASE] = base;
  const last = mem[array + LAST] ?? -1;
  if (last < 0) mem[array + FIRST] = s;
  else mem[last + SLOT_NEXT] = s;
  mem[array + LAST] = s;
  mem[array + SIZE] = (mem[array + SIZE] ?? 0) + 1;
  tree.lazyRecords += 2 + 2 * (template < 0 ? 0 : (tree.templates[template] ?? 0));
}

/** The hash of the KIND_LAZY slot s, built as Rack built it; s then holds it (KIND_HASH). Returns it. */
export function materialize(s: number): number {
  // The keys are another piece's: written with the escape checks.
  const plainKeys = tree.plainKeys;
  tree.plainKeys = 0;
  const mem = tree.mem;
  const template = mem[s + SLOT_HASH] ?? -1;
  const base = mem[s + SLOT_BASE] ?? 0;
  const v = mem[s + SLOT_REF] ?? NIL;
  const hash = newContainer();
  let c = hash;
  if (template >= 0) {
    const t = tree.templates;
    const levels = t[template] ?? 0;
    for (let i = 0; i < levels; i++) c = addOnlyContainer(c, base + (t[template + 1 + 2 * i] ?? 0), base + (t[template + 2 + 2 * i] ?? 0), KIND_HASH);
  }
  addKey(c, tree.mem[s + SLOT_KEY_START] ?? 0, tree.mem[s + SLOT_KEY_END] ?? 0, v === NIL ? KIND_NIL : KIND_LEAF, v);
  // addOnlyContainer and addKey may have grown the arena.
  tree.mem[s + SLOT_KIND] = KIND_HASH;
  tree.mem[s + SLOT_REF] = hash;
  tree.plainKeys = plainKeys;
  return hash;
}

/**
 * materialize(s) followed by addKey of [start, end) holding v, for a
 * KIND_LAZY slot with no hash levels whose key is not [start, end) (the
 * caller checked): `{"x":…}` becomes `{"x":…,"y":v}` in one go. Returns
 * false, with nothing done, if the two keys would pass the key space limit.
 */
export function materializeWithKey(s: number, start: number, end: number, v: Leaf): boolean {
  const mem = tree.mem;
  const keyStart = mem[s + SLOT_KEY_START] ?? 0;
  const keyEnd = mem[s + SLOT_KEY_END] ?? 0;
  if (keyEnd - keyStart + (end - start) > KEY_SPACE_LIMIT) return false;
  const first = mem[s + SLOT_REF] ?? NIL;
  const plainKeys = tree.plainKeys;
  const hash = newContainer();
  tree.plainKeys = 0;
  newSlot(hash, first === NIL ? KIND_NIL : KIND_LEAF, first, keyStart, keyEnd);
  tree.plainKeys = plainKeys;
  newSlot(hash, v === NIL ? KIND_NIL : KIND_LEAF, v, start, end);
  tree.mem[hash + KEY_SPACE] = keyEnd - keyStart + (end - start);
  tree.mem[s + SLOT_KIND] = KIND_HASH;
  tree.mem[s + SLOT_REF] = hash;
  return true;
}

/** The first key of the hash a KIND_LAZY slot stands for: [lazyKeyStart, lazyKeyEnd). */
let lazyKeyStart = 0;
let lazyKeyEnd = 0;
function lazyFirstKey(s: number): void {
  const mem = tree.mem;
  const template = mem[s + SLOT_HASH] ?? -1;
  if (template >= 0 && (tree.templates[template] ?? 0) > 0) {
    const base = mem[s + SLOT_BASE] ?? 0;
    lazyKeyStart = base + (tree.templates[template + 1] ?? 0);
    lazyKeyEnd = base + (tree.templates[template + 2] ?? 0);
  } else {
    lazyKeyStart = mem[s + SLOT_KEY_START] ?? 0;
    lazyKeyEnd = mem[s + SLOT_KEY_END] ?? 0;
  }
}

/** Whether the hash the KIND_LAZY slot s stands for has the key [start, end) (its only key). */
export function lazyHasKey(s: number, start: number, end: number): boolean {
  const mem = tree.mem;
  if (mem[s + SLOT_HASH] === -1) {
    // No hash levels (`{"c":v}`, one per piece of `a[]x=1&a[]x=1…`): its key is the slot's.
    lazyKeyStart = mem[s + SLOT_KEY_START] ?? 0;
    lazyKeyEnd = mem[s + SLOT_KEY_END] ?? 0;
  } else {
    lazyFirstKey(s);
  }
  const length = end - start;
  if (lazyKeyEnd - lazyKeyStart !== length) return false;
  const bytes = tree.keyBytes;
  let i = 0;
  while (i < length && bytes[lazyKeyStart + i] === bytes[start + i]) i++;
  return i === length;
}

/** Ruby String#size of valid UTF-8 bytes: the bytes that are not continuation bytes. */
function characterCount(bytes: Buffer, start: number, end: number): number {
  let count = 0;
  for (let i = start; i < end; i++) if (((bytes[i] ?? 0) & 0xc0) !== 0x80) count++;
  return count;
}

/**
 * The key space charge is kept in bytes, an upper bound on characters, until
 * it passes the limit; only then are characters counted exactly, once, and
 * exactly from there on. That keeps the common case free of counting.
 */
function chargeKey(c: number, start: number, end: number): void {
  const mem = tree.mem;
  const flags = mem[c + FLAGS] ?? 0;
  const exact = (flags & EXACT) !== 0;
  const space = (mem[c + KEY_SPACE] ?? 0) + (exact ? characterCount(tree.keyBytes, start, end) : end - start);
  mem[c + KEY_SPACE] = space;
  if (space <= KEY_SPACE_LIMIT) return;
  if (!exact) {
    mem[c + FLAGS] = flags | EXACT;
    let counted = characterCount(tree.keyBytes, start, end);
    for (let k = mem[c + FIRST] ?? -1; k >= 0; k = mem[k + SLOT_NEXT] ?? -1) {
      counted += characterCount(tree.keyBytes, mem[k + SLOT_KEY_START] ?? 0, mem[k + SLOT_KEY_END] ?? 0);
    }
    mem[c + KEY_SPACE] = counted;
    if (counted <= KEY_SPACE_LIMIT) return;
  }
  throw malformed(`parameter key space exceeds ${KEY_SPACE_LIMIT} characters`);
}

// Exported after their declarations: TypeScript's CommonJS output would make every
// use of an `export const` inside this module a property load on `exports`.
export { RECORD, NIL, KIND_NIL, KIND_LEAF, KIND_HASH, KIND_ARRAY, KIND_LAZY, LEAF_START, LEAF_END, LEAF_CLASSES, leafRanges, SLOT_KIND, SLOT_REF, SLOT_KEY_START, SLOT_KEY_END, SLOT_NEXT, SLOT_HASH, SLOT_BASE, SLOT_PLAIN, FIRST, SIZE, tree };
