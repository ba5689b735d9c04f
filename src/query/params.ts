/**
 * The param tree Rack builds: values as byte ranges of the input (`Leaf`),
 * arrays, and `Params`, query_parser.rb's insertion-ordered hash with its
 * key space limit.
 */
import * as bytesModule from './bytes';
import * as limitsModule from './limits';
import * as utf8Module from './utf8';

// Local copies of what is imported: TypeScript's CommonJS output reads a named
// import as a property of the module object at every use, while a module-level
// const is a constant to the JIT (the split into modules cost a beacon ~20%
// without this).
const { NEEDS_JSON_ESCAPE, NEEDS_UNESCAPE } = bytesModule;
const { KEY_SPACE_LIMIT, PARAMS_LIMIT, malformed } = limitsModule;
const { characterCount } = utf8Module;

/**
 * A value as Rack holds it: nil (a piece without '='), or a String, kept here
 * as the number of a byte range of the input (see `leafRanges`). Nothing in Rack
 * looks inside a value, so it is decoded only when written out; a value
 * overwritten later is never decoded at all.
 */
export type Leaf = number | null;
export type Value = Leaf | Value[] | Params;

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
export class Params {
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
