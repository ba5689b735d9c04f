/**
 * The param tree Rack builds, as a flat arena of typed arrays: no object per
 * hash, array or entry, no string per key.
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
 *   than LINEAR_SEARCH_MAX_KEYS keys is indexed in one open-addressing table
 *   shared by all hashes, keyed by (hash, key bytes). Its entries carry the
 *   number of the call that wrote them, so nothing is cleared between calls.
 *
 * Everything lives in module-level buffers reused by every call (valid until
 * the next call), grown when a large query needs more.
 */
import * as bytesModule from './bytes';
import * as limitsModule from './limits';

// Local copies of what is imported: TypeScript's CommonJS output reads a named
// import as a property of the module object at every use, while a module-level
// const is a constant to the JIT (the split into modules cost a beacon ~20%
// without this).
const { NEEDS_JSON_ESCAPE, NEEDS_UNESCAPE } = bytesModule;
const { KEY_SPACE_LIMIT, PARAMS_LIMIT, malformed } = limitsModule;

/** A value handed to normalize_params: a leaf number (see leafRanges), or NIL for Ruby's nil. */
export type Leaf = number;
export const NIL = -1;

/** What a slot holds. */
export const KIND_NIL = 0;
export const KIND_LEAF = 1;
export const KIND_HASH = 2;
export const KIND_ARRAY = 3;

/**
 * The byte ranges of this call's values, with the classes of their bytes.
 * There is at most one value per piece, and at most PARAMS_LIMIT pieces
 * (check_query_string raises on the PARAMS_LIMIT-th separator).
 */
export const leafRanges = {
  start: new Int32Array(PARAMS_LIMIT),
  end: new Int32Array(PARAMS_LIMIT),
  classes: new Uint8Array(PARAMS_LIMIT),
  count: 0,
};

export function addValue(start: number, end: number, classes: number): Leaf {
  const leaf = leafRanges.count++;
  leafRanges.start[leaf] = start;
  leafRanges.end[leaf] = end;
  leafRanges.classes[leaf] = classes & (NEEDS_UNESCAPE | NEEDS_JSON_ESCAPE);
  return leaf;
}

/** Up to this many keys a hash is searched linearly; past it, its keys go into the shared table. */
const LINEAR_SEARCH_MAX_KEYS = 8;
const INITIAL_SLOTS = 1024;
const INITIAL_TABLE = 4096;

/**
 * The arena. Fields are read by the JSON writer; only this module writes them.
 * Slot and container arrays grow together with `grow`, so a field read once
 * into a local stays valid until the next slot or container is made.
 */
export const tree = {
  /** The bytes keys are ranges of (this call's input). */
  keyBytes: Buffer.alloc(0) as Buffer,
  // Slots.
  slotKind: new Uint8Array(INITIAL_SLOTS),
  slotRef: new Int32Array(INITIAL_SLOTS),
  slotKeyStart: new Int32Array(INITIAL_SLOTS),
  slotKeyEnd: new Int32Array(INITIAL_SLOTS),
  slotNext: new Int32Array(INITIAL_SLOTS),
  slotHash: new Int32Array(INITIAL_SLOTS),
  slotOwner: new Int32Array(INITIAL_SLOTS),
  slotCount: 0,
  // Containers.
  first: new Int32Array(INITIAL_SLOTS),
  last: new Int32Array(INITIAL_SLOTS),
  size: new Int32Array(INITIAL_SLOTS),
  /** Key space charged so far: UTF-8 bytes (an upper bound on characters) until exact. */
  keySpace: new Int32Array(INITIAL_SLOTS),
  /** 1: keySpace counts characters exactly; 2: the hash's keys are in the shared table (bit flags). */
  flags: new Uint8Array(INITIAL_SLOTS),
  containerCount: 0,
  // The shared table of large hashes' keys: slot + 1, valid where tableCall === call.
  tableSlot: new Int32Array(INITIAL_TABLE),
  tableCall: new Int32Array(INITIAL_TABLE),
  tableMask: INITIAL_TABLE - 1,
  tableEntries: 0,
  call: 1,
};

const EXACT = 1;
const INDEXED = 2;

/** Starts a new tree whose keys are ranges of `keyBytes`; returns the root hash. */
export function resetTree(keyBytes: Buffer): number {
  tree.keyBytes = keyBytes;
  tree.slotCount = 0;
  tree.containerCount = 0;
  tree.tableEntries = 0;
  leafRanges.count = 0;
  if (++tree.call === 0x7fffffff) {
    tree.tableCall.fill(0);
    tree.call = 1;
  }
  return newContainer();
}

function growSlots(): void {
  const t = tree;
  const n = t.slotKind.length * 2;
  t.slotKind = copyInto(new Uint8Array(n), t.slotKind);
  t.slotRef = copyInto(new Int32Array(n), t.slotRef);
  t.slotKeyStart = copyInto(new Int32Array(n), t.slotKeyStart);
  t.slotKeyEnd = copyInto(new Int32Array(n), t.slotKeyEnd);
  t.slotNext = copyInto(new Int32Array(n), t.slotNext);
  t.slotHash = copyInto(new Int32Array(n), t.slotHash);
  t.slotOwner = copyInto(new Int32Array(n), t.slotOwner);
}

function growContainers(): void {
  const t = tree;
  const n = t.first.length * 2;
  t.first = copyInto(new Int32Array(n), t.first);
  t.last = copyInto(new Int32Array(n), t.last);
  t.size = copyInto(new Int32Array(n), t.size);
  t.keySpace = copyInto(new Int32Array(n), t.keySpace);
  t.flags = copyInto(new Uint8Array(n), t.flags);
}

function copyInto<T extends Uint8Array | Int32Array>(target: T, source: T): T {
  target.set(source);
  return target;
}

/** A new, empty container (a hash or an array: the slot that holds it says which). */
export function newContainer(): number {
  const t = tree;
  const c = t.containerCount++;
  if (c === t.first.length) growContainers();
  t.first[c] = -1;
  t.last[c] = -1;
  t.size[c] = 0;
  t.keySpace[c] = 0;
  t.flags[c] = 0;
  return c;
}

/** Appends a slot to container c. */
function newSlot(c: number, kind: number, ref: number, keyStart: number, keyEnd: number, hash: number): number {
  const t = tree;
  const s = t.slotCount++;
  if (s === t.slotKind.length) growSlots();
  t.slotKind[s] = kind;
  t.slotRef[s] = ref;
  t.slotKeyStart[s] = keyStart;
  t.slotKeyEnd[s] = keyEnd;
  t.slotNext[s] = -1;
  t.slotHash[s] = hash;
  t.slotOwner[s] = c;
  const last = t.last[c] ?? -1;
  if (last < 0) t.first[c] = s;
  else t.slotNext[last] = s;
  t.last[c] = s;
  t.size[c] = (t.size[c] ?? 0) + 1;
  return s;
}

/** Array#push. */
export function arrayPush(array: number, kind: number, ref: number): void {
  newSlot(array, kind, ref, -1, -1, 0);
}

/** The last slot of a container, or -1. */
export function lastSlot(c: number): number {
  return tree.last[c] ?? -1;
}

/** Whether bytes [a, a + length) and [b, b + length) of the key bytes are equal. */
function sameBytes(bytes: Buffer, a: number, b: number, length: number): boolean {
  if (a === b) return true;
  for (let i = 0; i < length; i++) if (bytes[a + i] !== bytes[b + i]) return false;
  return true;
}

function keyHash(c: number, start: number, end: number): number {
  const bytes = tree.keyBytes;
  let h = Math.imul(c + 1, 0x9e3779b1) ^ (end - start);
  for (let i = start; i < end; i++) h = Math.imul(h ^ (bytes[i] ?? 0), 0x01000193);
  return h ^ (h >>> 15);
}

/** The slot of key [start, end) in hash c, or -1. */
export function findKey(c: number, start: number, end: number): number {
  const t = tree;
  const bytes = t.keyBytes;
  const length = end - start;
  if (((t.flags[c] ?? 0) & INDEXED) === 0) {
    const keyStart = t.slotKeyStart;
    const keyEnd = t.slotKeyEnd;
    const next = t.slotNext;
    for (let s = t.first[c] ?? -1; s >= 0; s = next[s] ?? -1) {
      const ks = keyStart[s] ?? 0;
      if ((keyEnd[s] ?? 0) - ks === length && sameBytes(bytes, ks, start, length)) return s;
    }
    return -1;
  }
  return findIndexed(c, start, end, keyHash(c, start, end));
}

function findIndexed(c: number, start: number, end: number, hash: number): number {
  const t = tree;
  const bytes = t.keyBytes;
  const length = end - start;
  const mask = t.tableMask;
  const call = t.call;
  for (let i = hash & mask; ; i = (i + 1) & mask) {
    if (t.tableCall[i] !== call) return -1;
    const s = (t.tableSlot[i] ?? 0) - 1;
    const ks = t.slotKeyStart[s] ?? 0;
    if (t.slotHash[s] === hash && t.slotOwner[s] === c && (t.slotKeyEnd[s] ?? 0) - ks === length && sameBytes(bytes, ks, start, length)) {
      return s;
    }
  }
}

/** Puts slot s (a key of an indexed hash) into the shared table at its place. */
function index(s: number): void {
  const t = tree;
  if (2 * (t.tableEntries + 1) > t.tableMask + 1) growTable();
  const mask = t.tableMask;
  let i = (t.slotHash[s] ?? 0) & mask;
  while (t.tableCall[i] === t.call) i = (i + 1) & mask;
  t.tableSlot[i] = s + 1;
  t.tableCall[i] = t.call;
  t.tableEntries++;
}

function growTable(): void {
  const t = tree;
  const old = t.tableSlot;
  const oldCall = t.tableCall;
  const call = t.call;
  const n = old.length * 2;
  t.tableSlot = new Int32Array(n);
  t.tableCall = new Int32Array(n);
  t.tableMask = n - 1;
  for (let i = 0; i < old.length; i++) {
    if (oldCall[i] !== call) continue;
    const s = (old[i] ?? 0) - 1;
    let j = (t.slotHash[s] ?? 0) & t.tableMask;
    while (t.tableCall[j] === call) j = (j + 1) & t.tableMask;
    t.tableSlot[j] = s + 1;
    t.tableCall[j] = call;
  }
}

/**
 * Params#[]=: `@size += key.size if !@params.key?(key); raise if @size > @limit`;
 * a repeated key keeps its first position, as a Ruby Hash does. Returns the slot.
 */
export function setKey(c: number, start: number, end: number, kind: number, ref: number): number {
  const t = tree;
  const existing = findKey(c, start, end);
  if (existing >= 0) {
    t.slotKind[existing] = kind;
    t.slotRef[existing] = ref;
    return existing;
  }
  return addKey(c, start, end, kind, ref);
}

/** Adds a key that findKey has just found missing from hash c. */
export function addKey(c: number, start: number, end: number, kind: number, ref: number): number {
  const t = tree;
  chargeKey(c, start, end);
  const indexed = ((t.flags[c] ?? 0) & INDEXED) !== 0;
  const s = newSlot(c, kind, ref, start, end, indexed ? keyHash(c, start, end) : 0);
  if (indexed) {
    index(s);
  } else if ((t.size[c] ?? 0) > LINEAR_SEARCH_MAX_KEYS) {
    t.flags[c] = (t.flags[c] ?? 0) | INDEXED;
    for (let k = t.first[c] ?? -1; k >= 0; k = t.slotNext[k] ?? -1) {
      t.slotHash[k] = keyHash(c, t.slotKeyStart[k] ?? 0, t.slotKeyEnd[k] ?? 0);
      index(k);
    }
  }
  return s;
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
  const t = tree;
  const exact = ((t.flags[c] ?? 0) & EXACT) !== 0;
  const space = (t.keySpace[c] ?? 0) + (exact ? characterCount(t.keyBytes, start, end) : end - start);
  t.keySpace[c] = space;
  if (space <= KEY_SPACE_LIMIT) return;
  if (!exact) {
    t.flags[c] = (t.flags[c] ?? 0) | EXACT;
    let counted = characterCount(t.keyBytes, start, end);
    for (let k = t.first[c] ?? -1; k >= 0; k = t.slotNext[k] ?? -1) counted += characterCount(t.keyBytes, t.slotKeyStart[k] ?? 0, t.slotKeyEnd[k] ?? 0);
    t.keySpace[c] = counted;
    if (counted <= KEY_SPACE_LIMIT) return;
  }
  throw malformed(`parameter key space exceeds ${KEY_SPACE_LIMIT} characters`);
}
