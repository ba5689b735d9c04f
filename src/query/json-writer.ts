/**
 * JSON.generate (json 2.6.3 generator.c) of a parsed query, written as UTF-8
 * bytes into one buffer that becomes a string once.
 */
import * as bytesModule from './bytes';
import * as limitsModule from './limits';
import * as paramsModule from './params';
import * as utf8Module from './utf8';

// Local copies of what is imported: TypeScript's CommonJS output reads a named
// import as a property of the module object at every use, while a module-level
// const is a constant to the JIT (the split into modules cost a beacon ~20%
// without this).
const { CHAR_CLASS, CLOSE, CLOSE_BRACE, COLON, COMMA, NEEDS_JSON_ESCAPE, OPEN, OPEN_BRACE, PERCENT, PLUS, QUOTE, BACKSLASH, SPACE, escapedByte } = bytesModule;
const { JSON_MAX_NESTING, SHARED_BUFFER_BYTES, excerpt, malformed } = limitsModule;
const { recordCount, FIRST, KIND_ARRAY, KIND_HASH, KIND_LAZY, KIND_LEAF, LEAF_CLASSES, LEAF_END, LEAF_START, NIL, SLOT_BASE, SLOT_HASH, SLOT_KEY_END, SLOT_KEY_START, SLOT_KIND, SLOT_NEXT, SLOT_PLAIN, SLOT_REF, leafRanges, tree } = paramsModule;
const { isWellFormedUtf8 } = utf8Module;

let sharedOutput = Buffer.allocUnsafe(SHARED_BUFFER_BYTES);
/** The shared output buffer grows up to this for texts that need it; bigger ones get their own. */
const MAX_SHARED_OUTPUT_BYTES = 1 << 20;

/**
 * Writes the JSON as UTF-8 bytes into one buffer, which becomes a string once.
 *
 * json 2.6.3 escapes '"', '\\', \b \f \n \r \t and other controls as \u00xx
 * (lowercase hex), and leaves '/', DEL, U+2028/2029 and all other non-ASCII
 * bytes as they are, after checking that the string is valid UTF-8
 * (GeneratorError "source sequence is illegal/malformed utf-8" otherwise;
 * see the contract in query-to-json.ts for the sequences its check lets through).
 * Objects and arrays nested deeper than max_nesting raise NestingError.
 */
class JsonWriter {
  private buffer = sharedOutput;
  private at = 0;
  /** Whether any byte >= 0x80 was written: decides how the bytes become a string. */
  private nonAscii = false;
  /** The query's bytes, which the values are ranges of (any Buffer of the same kind as the input until reset). */
  private input: Buffer = sharedOutput;

  /**
   * Starts a new text of at most `bound` bytes (one writer serves every call:
   * no allocation per call). With room for the whole text made here, no
   * write checks for room.
   */
  reset(input: Buffer, bound: number): void {
    if (bound > sharedOutput.length) {
      if (bound <= MAX_SHARED_OUTPUT_BYTES) sharedOutput = Buffer.allocUnsafe(Math.max(bound, 2 * sharedOutput.length));
      else this.buffer = Buffer.allocUnsafe(bound);
    }
    if (bound <= sharedOutput.length) this.buffer = sharedOutput;
    this.at = 0;
    this.nonAscii = false;
    this.input = input;
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

  /**
   * The hash `root` (params.ts) and everything under it, in document order,
   * as generate_json_object/array would write it. A loop over the tree with
   * its own stack rather than a call per container: an 8 KB query can nest
   * thousands of one-key hashes. `depth` is the nesting of the container
   * being written, checked on entry as generator.c does
   * (`if (max_nesting != 0 && depth > max_nesting)`).
   */
  object(root: number): void {
    const mem = tree.mem;
    const input = this.input;
    const out = this.buffer;
    const resume = resumeStack;
    const inHash = inHashStack;
    let at = this.at;
    let depth = 1;
    out[at++] = OPEN_BRACE;
    let isHash = true;
    let s = mem[root + FIRST] ?? -1;
    for (;;) {
      if (s < 0) {
        // The end of the container at `depth`.
        out[at++] = isHash ? CLOSE_BRACE : CLOSE;
        if (--depth === 0) break;
        s = resume[depth] ?? -1;
        isHash = inHash[depth] === 1;
        if (s >= 0) out[at++] = COMMA;
        continue;
      }
      if (isHash) {
        // The key and its ':', from its bytes (the name, unescaped in place
        // in the input by the parser, and valid UTF-8 by now, or Rack's regex
        // would have raised): at most 6 output bytes per input byte.
        out[at++] = QUOTE;
        const end = mem[s + SLOT_KEY_END] ?? 0;
        if (mem[s + SLOT_PLAIN] === 1) {
          // A plain name's key (SLOT_PLAIN): ASCII, nothing to escape.
          for (let i = mem[s + SLOT_KEY_START] ?? 0; i < end; i++) out[at++] = input[i] ?? 0;
        } else {
          at = this.keyBytes(at, mem[s + SLOT_KEY_START] ?? 0, end);
        }
        out[at++] = QUOTE;
        out[at++] = COLON;
      }
      const kind = mem[s + SLOT_KIND] ?? 0;
      const next = mem[s + SLOT_NEXT] ?? -1;
      if (kind === KIND_HASH || kind === KIND_ARRAY) {
        if (depth + 1 > JSON_MAX_NESTING) throw malformed(`JSON nesting deeper than ${JSON_MAX_NESTING}`);
        // Where to go on at this depth once the child is written.
        resume[depth] = next;
        inHash[depth] = isHash ? 1 : 0;
        depth++;
        isHash = kind === KIND_HASH;
        out[at++] = isHash ? OPEN_BRACE : OPEN;
        s = mem[(mem[s + SLOT_REF] ?? 0) + FIRST] ?? -1;
        continue;
      }
      // A value: a leaf, or the one of the unbuilt `{"c":v}` of a plain
      // `k[][c]` or `k[]c` name (params.ts KIND_LAZY), the element
      // `a[]x=1&a[]x=1…` makes per piece, written here after its `{"c":`
      // (without lazyHash's call and template).
      let plainLazy = false;
      if (kind === KIND_LAZY && mem[s + SLOT_HASH] === -1 && mem[s + SLOT_REF] !== NIL) {
        if (depth + 1 > JSON_MAX_NESTING) throw malformed(`JSON nesting deeper than ${JSON_MAX_NESTING}`);
        plainLazy = true;
        // openPlainKey() written out: its call cost a[]x=1 ~5% (medians of 3 alternating runs).
        out[at++] = OPEN_BRACE;
        out[at++] = QUOTE;
        const keyEnd = mem[s + SLOT_KEY_END] ?? 0;
        for (let i = mem[s + SLOT_KEY_START] ?? 0; i < keyEnd; i++) out[at++] = input[i] ?? 0;
        out[at++] = QUOTE;
        out[at++] = COLON;
      }
      if (kind === KIND_LEAF || plainLazy) {
        const leaf = mem[s + SLOT_REF] ?? 0;
        const valueEnd = leafRanges[leaf + LEAF_END] ?? 0;
        const valueStart = leafRanges[leaf + LEAF_START] ?? 0;
        if (leafRanges[leaf + LEAF_CLASSES] === 0 && valueEnd - valueStart <= 48) {
          // A short value whose bytes are its JSON text (the common one, and
          // one per piece of the flat hostile shapes): copied here, without
          // leaf()'s call.
          out[at++] = QUOTE;
          for (let i = valueStart; i < valueEnd; i++) out[at++] = input[i] ?? 0;
          out[at++] = QUOTE;
        } else {
          this.at = at;
          this.leaf(leaf);
          at = this.at;
        }
        if (plainLazy) out[at++] = CLOSE_BRACE;
      } else if (kind === KIND_LAZY) {
        this.at = at;
        this.lazyHash(s, depth);
        at = this.at;
      } else {
        out[at] = 0x6e; // n
        out[at + 1] = 0x75; // u
        out[at + 2] = 0x6c; // l
        out[at + 3] = 0x6c; // l
        at += 4;
      }
      s = next;
      if (s >= 0) out[at++] = COMMA;
    }
    this.at = at;
  }

  /** Writes `{"c":` for unbuilt slot `s` at `at` (its key plain: no escapes needed); returns where writing goes on. */
  private openPlainKey(s: number, at: number): number {
    const mem = tree.mem;
    const input = this.input;
    const out = this.buffer;
    out[at++] = OPEN_BRACE;
    out[at++] = QUOTE;
    const end = mem[s + SLOT_KEY_END] ?? 0;
    for (let i = mem[s + SLOT_KEY_START] ?? 0; i < end; i++) out[at++] = input[i] ?? 0;
    out[at++] = QUOTE;
    out[at++] = COLON;
    return at;
  }

  /**
   * An unbuilt hash (params.ts KIND_LAZY), an element of the array at
   * `depth`: its hash levels' keys, then its last key and value, and the
   * closing braces, as object() would write the built chain (the nesting
   * checked the same way, each hash a level deeper).
   */
  private lazyHash(s: number, depth: number): void {
    const mem = tree.mem;
    const template = mem[s + SLOT_HASH] ?? -1;
    const templates = tree.templates;
    const levels = template < 0 ? 0 : (templates[template] ?? 0);
    if (depth + 1 + levels > JSON_MAX_NESTING) throw malformed(`JSON nesting deeper than ${JSON_MAX_NESTING}`);
    if (template < 0) {
      // No template: a `k[][c]` or `k[]c` name's (parser.ts normalizeCommonName), plain.
      this.at = this.openPlainKey(s, this.at);
    } else {
      const base = mem[s + SLOT_BASE] ?? 0;
      for (let i = 0; i < levels; i++) this.key(base + (templates[template + 1 + 2 * i] ?? 0), base + (templates[template + 2 + 2 * i] ?? 0));
      this.key(mem[s + SLOT_KEY_START] ?? 0, mem[s + SLOT_KEY_END] ?? 0);
    }
    const v = mem[s + SLOT_REF] ?? NIL;
    if (v === NIL) {
      const out = this.buffer;
      const at = this.at;
      out[at] = 0x6e; // n
      out[at + 1] = 0x75; // u
      out[at + 2] = 0x6c; // l
      out[at + 3] = 0x6c; // l
      this.at = at + 4;
    } else {
      this.leaf(v);
    }
    const out = this.buffer;
    let at = this.at;
    for (let i = 0; i <= levels; i++) out[at++] = CLOSE_BRACE;
    this.at = at;
  }

  /** `{"key":` for the key bytes [start, end) (as object() writes a key). */
  private key(start: number, end: number): void {
    const out = this.buffer;
    let at = this.at;
    out[at++] = OPEN_BRACE;
    out[at++] = QUOTE;
    at = this.keyBytes(at, start, end);
    out[at++] = QUOTE;
    out[at++] = COLON;
    this.at = at;
  }

  /**
   * A key's bytes [start, end) JSON-escaped into the buffer at `at` (the
   * name, unescaped in place by the parser: valid UTF-8 by now); returns the
   * new end. Notes non-ASCII for text().
   */
  private keyBytes(at: number, start: number, end: number): number {
    const input = this.input;
    const out = this.buffer;
    let allBits = 0;
    for (let i = start; i < end; i++) {
      const c = input[i] ?? 0;
      allBits |= c;
      if ((CHAR_CLASS[c] ?? 0) & NEEDS_JSON_ESCAPE) at = writeEscape(out, at, c);
      else out[at++] = c;
    }
    if (allBits >= 0x80) this.nonAscii = true;
    return at;
  }

  /**
   * A value: its input bytes, unescaped (decode_www_form_component) and
   * JSON-escaped in one pass. At most 6 output bytes per input byte
   * ("\u0000" for a raw NUL), plus the quotes.
   */
  private leaf(leaf: number): void {
    const input = this.input;
    const start = leafRanges[leaf + LEAF_START] ?? 0;
    const end = leafRanges[leaf + LEAF_END] ?? 0;
    const classes = leafRanges[leaf + LEAF_CLASSES] ?? 0;
    const out = this.buffer;
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
}

/** The object writer's stack: per open container depth, the slot to go on with and whether it is a hash's. */
const resumeStack = new Int32Array(JSON_MAX_NESTING + 2);
const inHashStack = new Uint8Array(JSON_MAX_NESTING + 2);

const writer = new JsonWriter();

/**
 * The JSON of the tree parseQuery built (root: its root hash), whose keys and
 * values are ranges of `input` (the first `inputLength` bytes).
 *
 * The text is at most 6 bytes per input byte plus 10 per record of the tree:
 * every key and every value is written once, from its own bytes of the input
 * (keys are disjoint ranges of the names, each value belongs to one piece),
 * at most 6 bytes per byte ("\u0001" for a raw control char, the same for
 * %01); a slot adds at most `,"":null` around them and a container `{}`.
 */
export function writeJson(root: number, input: Buffer, inputLength: number): string {
  writer.reset(input, 6 * inputLength + 10 * recordCount() + 16);
  writer.object(root);
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

