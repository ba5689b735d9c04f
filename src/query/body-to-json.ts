/**
 * POST bodies → the `values` JSON, byte-identical to what the legacy Rails
 * stack would have made of them (docs/beacons.md lists the rules):
 *
 * - form bodies: Rack 2.2's Rack::Request#params, that is
 *   `self.GET.merge(self.POST)`, where POST is
 *   `parse_nested_query(body, '&')` (split on '&' only; a trailing NUL
 *   dropped, request.rb "Fix for Safari Ajax postings"), then JSON.generate;
 * - JSON bodies: `JSON.generate(query_params.merge(JSON.parse(body)))`
 *   with json 2.6.1 (Debian's Ruby 3.1): parse rules, escapes and numbers as
 *   its parser.rl and generator.c have them (see RubyJson below).
 *
 * Hash#merge is shallow: a body key replaces the query's value at the
 * query key's position; new keys follow in body order. Both sides are JSON
 * texts written by the same rules, so two keys are the same string exactly
 * when their JSON texts are equal: the merge works on texts.
 *
 * Texts here are "byte strings" (one char per UTF-8 byte, latin1) until the
 * end, so that bytes that are not UTF-8 can be held, and found, before the
 * final check.
 */
import * as limitsModule from './limits';
import * as queryModule from './query-to-json';
import * as utf8Module from './utf8';

const { JSON_MAX_NESTING, malformed } = limitsModule;
const { queryToJson } = queryModule;
const { isWellFormedUtf8 } = utf8Module;

/**
 * Marks a value that holds a string which is not UTF-8, or an infinite
 * float: JSON.generate raises on it, but only if it is still there when
 * written (a later duplicate key may replace it). A NUL never appears raw in
 * a generated text.
 */
const INVALID = '\u0000';

/** Rack::Request#params of a form body, merged over the query's params. */
export function formBodyToJson(query: string, body: Buffer): string {
  let length = body.length;
  if (length > 0 && body[length - 1] === 0) length--;
  // parse_nested_query(body, '&'): ';' is no separator, so it is fed to the
  // query parser as "%3B", which decodes to the same byte in names and
  // values, and which the parser neither splits on nor counts.
  let raw = body.toString('latin1', 0, length);
  if (raw.includes(';')) raw = raw.replaceAll(';', '%3B');
  const bodyJson = queryToJson(raw);
  if (query.length === 0) return bodyJson;
  const queryJson = queryToJson(query);
  if (bodyJson === '{}') return queryJson;
  if (queryJson === '{}') return bodyJson;
  const merged = splitObject(queryJson);
  for (const [key, value] of splitObject(bodyJson)) merged.set(key, value);
  return render(merged);
}

/**
 * `JSON.parse(body)` merged into the query's params: one text for an
 * object, one per element for an array of objects (at most `maxBatch`,
 * else null: too many). Anything else is malformed.
 */
export function jsonBodyToJson(query: string, body: Buffer, maxBatch: number): string[] | null {
  const top = new RubyJson(body).parse();
  const queryPairs = query.length === 0 ? null : splitObject(toBytes(queryToJson(query)));
  const one = (members: Map<string, string>): string => {
    let pairs = members;
    if (queryPairs !== null) {
      pairs = new Map(queryPairs);
      for (const [key, value] of members) pairs.set(key, value);
    }
    return fromBytes(render(pairs));
  };
  if (top instanceof Map) return [one(top)];
  if (top.length > maxBatch) return null;
  return top.map(one);
}

/** A JSON object text written by our own writers → its members' texts, in order. */
function splitObject(json: string): Map<string, string> {
  const pairs = new Map<string, string>();
  let i = 1;
  const end = json.length - 1;
  while (i < end) {
    const keyStart = i;
    i++; // the opening quote
    while (json.charCodeAt(i) !== 0x22) i += json.charCodeAt(i) === 0x5c ? 2 : 1;
    const key = json.slice(keyStart, i + 1);
    i += 2; // the closing quote and ':'
    const valueStart = i;
    let depth = 0;
    for (; i < end || depth > 0; i++) {
      const c = json.charCodeAt(i);
      if (c === 0x22) {
        i++;
        while (json.charCodeAt(i) !== 0x22) i += json.charCodeAt(i) === 0x5c ? 2 : 1;
      } else if (c === 0x7b || c === 0x5b) {
        depth++;
      } else if (c === 0x7d || c === 0x5d) {
        depth--;
      } else if (c === 0x2c && depth === 0) {
        break;
      }
    }
    pairs.set(key, json.slice(valueStart, i));
    i++; // the ','
  }
  return pairs;
}

function render(pairs: Map<string, string>): string {
  let out = '{';
  for (const [key, value] of pairs) {
    if (out.length > 1) out += ',';
    out += key + ':' + value;
  }
  return out + '}';
}

function toBytes(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** The final text: malformed if a string that is not UTF-8 is still in it. */
function fromBytes(bytes: string): string {
  if (bytes.includes(INVALID)) throw malformed('a JSON string is not valid UTF-8');
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

const HEX_VALUE = (() => {
  const table = new Int8Array(256).fill(-1);
  for (let d = 0; d < 10; d++) table[0x30 + d] = d;
  for (let d = 0; d < 6; d++) table[0x41 + d] = table[0x61 + d] = 10 + d;
  return table;
})();

const ESCAPES: Record<number, string> = { 0x22: '\\"', 0x5c: '\\\\', 0x08: '\\b', 0x0c: '\\f', 0x0a: '\\n', 0x0d: '\\r', 0x09: '\\t' };

/**
 * json 2.6.1's parser (ext/json/ext/parser/parser.rl) with JSON.parse's
 * defaults (max_nesting 100, allow_nan false, no create_additions), each
 * value turned at once into the text its generator writes:
 *
 * - whitespace is SP, HTAB, CR, LF, and comments: `/* … *\/` and `// …`
 *   ended by a LF (JSON_common's `ignore`);
 * - numbers are strict JSON; an integer is written as read (a bignum stays
 *   exact, "-0" is 0), a float as Ruby's Float#to_s (rubyFloat); a float out
 *   of range is Infinity, which the generator refuses (if a later duplicate
 *   key has not replaced it);
 * - strings: raw control characters are refused; `\` before any other
 *   character stands for that character (`\x` → x); `\u` needs four hex
 *   digits; a high surrogate takes the next `\uXXXX` as its pair whatever it
 *   is, and is "?" (eating the next character) when not followed by one
 *   (json_string_unescape); the result must be UTF-8 for the generator;
 * - objects: the last of duplicate keys wins, at the first one's position
 *   (Hash#[]=); nesting deeper than 100 raises NestingError.
 */
class RubyJson {
  private i = 0;

  constructor(private readonly b: Buffer) {}

  /** An object's members, or an array of objects' members; anything else is malformed. */
  parse(): Map<string, string> | Map<string, string>[] {
    this.ignore();
    let top: Map<string, string> | Map<string, string>[];
    const c = this.b[this.i];
    if (c === 0x7b) {
      top = this.object(1);
    } else if (c === 0x5b) {
      top = [];
      this.i++;
      this.ignore();
      if (this.b[this.i] !== 0x5d) {
        for (;;) {
          this.ignore();
          if (this.b[this.i] !== 0x7b) throw malformed('a JSON array body must hold objects only');
          top.push(this.object(2));
          this.ignore();
          const next = this.b[this.i];
          if (next === 0x5d) break;
          if (next !== 0x2c) throw this.unexpected();
          this.i++;
        }
      }
      this.i++;
    } else {
      throw malformed('a JSON body must be an object or an array of objects');
    }
    this.ignore();
    if (this.i !== this.b.length) throw this.unexpected();
    return top;
  }

  private unexpected(): Error {
    return malformed(`unexpected byte in JSON body at ${this.i}`);
  }

  /** JSON_common `ignore*`: whitespace and comments. */
  private ignore(): void {
    const b = this.b;
    for (;;) {
      const c = b[this.i];
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
        this.i++;
      } else if (c === 0x2f /* / */) {
        const next = b[this.i + 1];
        if (next === 0x2a) {
          const close = b.indexOf('*/', this.i + 2, 'latin1');
          if (close === -1) throw this.unexpected();
          this.i = close + 2;
        } else if (next === 0x2f) {
          const lf = b.indexOf(0x0a, this.i + 2);
          if (lf === -1) throw this.unexpected();
          this.i = lf + 1;
        } else {
          throw this.unexpected();
        }
      } else {
        return;
      }
    }
  }

  private value(depth: number): string {
    const b = this.b;
    const c = b[this.i];
    switch (c) {
      case 0x22:
        return this.string();
      case 0x7b:
        return render(this.object(depth + 1));
      case 0x5b:
        return this.array(depth + 1);
      case 0x74:
        return this.literal('true');
      case 0x66:
        return this.literal('false');
      case 0x6e:
        return this.literal('null');
    }
    if (c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39)) return this.number();
    throw this.unexpected();
  }

  private literal(word: string): string {
    if (this.b.toString('latin1', this.i, this.i + word.length) !== word) throw this.unexpected();
    this.i += word.length;
    return word;
  }

  private nest(depth: number): void {
    if (depth > JSON_MAX_NESTING) throw malformed(`JSON nesting deeper than ${JSON_MAX_NESTING}`);
  }

  private object(depth: number): Map<string, string> {
    this.nest(depth);
    const members = new Map<string, string>();
    this.i++; // {
    this.ignore();
    if (this.b[this.i] === 0x7d) {
      this.i++;
      return members;
    }
    for (;;) {
      if (this.b[this.i] !== 0x22) throw this.unexpected();
      const key = this.string();
      this.ignore();
      if (this.b[this.i] !== 0x3a) throw this.unexpected();
      this.i++;
      this.ignore();
      const value = this.value(depth);
      // An invalid key is in the output whatever follows: mark the value.
      members.set(key, key.includes(INVALID) ? INVALID : value);
      this.ignore();
      const next = this.b[this.i];
      this.i++;
      if (next === 0x7d) return members;
      if (next !== 0x2c) {
        this.i--;
        throw this.unexpected();
      }
      this.ignore();
    }
  }

  private array(depth: number): string {
    this.nest(depth);
    this.i++; // [
    this.ignore();
    let out = '[';
    if (this.b[this.i] === 0x5d) {
      this.i++;
      return '[]';
    }
    for (;;) {
      const value = this.value(depth);
      if (out.length > 1) out += ',';
      out += value;
      this.ignore();
      const next = this.b[this.i];
      this.i++;
      if (next === 0x5d) return out + ']';
      if (next !== 0x2c) {
        this.i--;
        throw this.unexpected();
      }
      this.ignore();
    }
  }

  /** JSON_integer / JSON_float, written as Ruby writes the Integer or Float. */
  private number(): string {
    const b = this.b;
    const start = this.i;
    let i = start;
    if (b[i] === 0x2d) i++;
    const digits = (): void => {
      const from = i;
      while (i < b.length && b[i]! >= 0x30 && b[i]! <= 0x39) i++;
      if (i === from) throw this.unexpected();
    };
    if (b[i] === 0x30) i++;
    else digits();
    let float = false;
    if (b[i] === 0x2e) {
      float = true;
      i++;
      digits();
    }
    if (b[i] === 0x65 || b[i] === 0x45) {
      float = true;
      i++;
      if (b[i] === 0x2b || b[i] === 0x2d) i++;
      digits();
    }
    // Ragel's exit: the byte after a number may not continue one ("01", "1.5.", "1e5e").
    const after = b[i];
    if (after !== undefined && ((after >= 0x30 && after <= 0x39) || after === 0x2e || after === 0x65 || after === 0x45 || after === 0x2d)) {
      throw this.unexpected();
    }
    this.i = i;
    const text = b.toString('latin1', start, i);
    if (!float) return text === '-0' ? '0' : text;
    const x = Number(text);
    // Out of range: Infinity, which the generator refuses, if it is still there then.
    return Number.isFinite(x) ? rubyFloat(x) : INVALID;
  }

  /** A string → its generated text, or INVALID if it is not UTF-8. */
  private string(): string {
    const b = this.b;
    // The string machine first finds the end and validates the escapes.
    const start = this.i + 1;
    let i = start;
    let escapes = false;
    let high = 0;
    for (;;) {
      if (i >= b.length) throw this.unexpected();
      const c = b[i]!;
      high |= c;
      if (c === 0x22) break;
      if (c < 0x20) throw this.unexpected();
      if (c === 0x5c) {
        escapes = true;
        const n = b[i + 1];
        if (n === undefined || n < 0x20) throw this.unexpected();
        if (n === 0x75) {
          for (let k = 2; k < 6; k++) if ((HEX_VALUE[b[i + k] ?? 0] ?? -1) < 0) throw this.unexpected();
          i += 6;
        } else {
          i += 2;
        }
      } else {
        i++;
      }
    }
    const stop = i;
    this.i = stop + 1;
    if (!escapes) {
      // The common string: no backslash, no control byte (refused above), so
      // the generator writes its bytes as they are, quotes included.
      if (high >= 0x80 && !isWellFormedUtf8(b, start, stop)) return INVALID;
      return b.toString('latin1', start - 1, stop + 1);
    }
    const bytes = unescape(b, start, stop);
    if (!isWellFormedUtf8(bytes, 0, bytes.length)) return INVALID;
    let out = '"';
    let from = 0;
    for (let k = 0; k < bytes.length; k++) {
      const c = bytes[k]!;
      if (c >= 0x20 && c !== 0x22 && c !== 0x5c) continue;
      out += bytes.toString('latin1', from, k) + (ESCAPES[c] ?? `\\u00${c.toString(16).padStart(2, '0')}`);
      from = k + 1;
    }
    return out + bytes.toString('latin1', from, bytes.length) + '"';
  }
}

/** json_string_unescape of b[start, stop), whose escapes are valid. */
function unescape(b: Buffer, start: number, stop: number): Buffer {
  const out = Buffer.allocUnsafe(stop - start);
  let at = 0;
  let pe = start;
  let p = start;
  const hex4 = (k: number): number =>
    (HEX_VALUE[b[k]!]! << 12) | (HEX_VALUE[b[k + 1]!]! << 8) | (HEX_VALUE[b[k + 2]!]! << 4) | HEX_VALUE[b[k + 3]!]!;
  while (pe < stop) {
    if (b[pe] !== 0x5c) {
      pe++;
      continue;
    }
    at += b.copy(out, at, p, pe);
    pe++;
    const n = b[pe]!;
    switch (n) {
      case 0x6e:
        out[at++] = 0x0a;
        break;
      case 0x72:
        out[at++] = 0x0d;
        break;
      case 0x74:
        out[at++] = 0x09;
        break;
      case 0x22:
      case 0x5c:
        out[at++] = n;
        break;
      case 0x62:
        out[at++] = 0x08;
        break;
      case 0x66:
        out[at++] = 0x0c;
        break;
      case 0x75: {
        let ch = hex4(pe + 1);
        pe += 4; // on the last hex digit
        if ((ch & 0xfc00) === 0xd800) {
          pe++;
          if (pe > stop - 6) throw malformed('incomplete surrogate pair in a JSON string');
          if (b[pe] === 0x5c && b[pe + 1] === 0x75) {
            const sur = hex4(pe + 2);
            ch = ((ch & 0x3f) << 10) | ((((ch >> 6) & 0xf) + 1) << 16) | (sur & 0x3ff);
            pe += 5;
          } else {
            // "?" in place of the lone surrogate, and the next character skipped (p = ++pe).
            out[at++] = 0x3f;
            p = ++pe;
            continue;
          }
        }
        at = writeCodePoint(out, at, ch);
        break;
      }
      default:
        // Any other escaped character stands for itself: the backslash is dropped.
        p = pe;
        continue;
    }
    p = ++pe;
  }
  at += b.copy(out, at, p, stop);
  return out.subarray(0, at);
}

/** convert_UTF32_to_UTF8: surrogates come out as their 3 bytes (not UTF-8: the generator refuses them). */
function writeCodePoint(out: Buffer, at: number, ch: number): number {
  if (ch < 0x80) {
    out[at++] = ch;
  } else if (ch < 0x800) {
    out[at++] = 0xc0 | (ch >> 6);
    out[at++] = 0x80 | (ch & 0x3f);
  } else if (ch < 0x10000) {
    out[at++] = 0xe0 | (ch >> 12);
    out[at++] = 0x80 | ((ch >> 6) & 0x3f);
    out[at++] = 0x80 | (ch & 0x3f);
  } else {
    out[at++] = 0xf0 | (ch >> 18);
    out[at++] = 0x80 | ((ch >> 12) & 0x3f);
    out[at++] = 0x80 | ((ch >> 6) & 0x3f);
    out[at++] = 0x80 | (ch & 0x3f);
  }
  return at;
}

/**
 * Ruby's Float#to_s (numeric.c flo_to_s): the shortest digits that read
 * back as the same double (as JavaScript's), in fixed notation with at
 * least one decimal ("100.0", "0.0001") when the decimal exponent is in
 * -3..15, else "d.ddde+XX" with at least two exponent digits ("1.0e+20",
 * "1.5e-05"). NaN and ±Infinity cannot be generated (allow_nan false).
 */
export function rubyFloat(x: number): string {
  if (!Number.isFinite(x)) throw malformed(`${x} is not allowed in JSON`);
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const [mantissa, exponent] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = mantissa.replace('.', '');
  const decpt = Number(exponent) + 1;
  if (decpt < -3 || decpt > 16 - 1) {
    const e = decpt - 1;
    const magnitude = String(Math.abs(e)).padStart(2, '0');
    return `${sign}${digits[0]}.${digits.length > 1 ? digits.slice(1) : '0'}e${e < 0 ? '-' : '+'}${magnitude}`;
  }
  if (decpt <= 0) return `${sign}0.${'0'.repeat(-decpt)}${digits}`;
  if (digits.length <= decpt) return `${sign}${digits}${'0'.repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}
