/**
 * The Kafka message key (`kafka.key`): the value of one top-level query
 * parameter, read from the line's record — that is, as the query parser
 * (query.ts, Rack's rules) decoded it, with Rack's last-one-wins already
 * applied. No second decoder here: what Kafka keys by is exactly what the
 * record says. Runs only when a key is configured.
 *
 * null when the parameter is absent or its value is not a string (a bare
 * `uid` without `=` is JSON null; `uid[]=…` and `uid[a]=…` make an array or
 * an object).
 *
 * The record is `{"flavor":"…","time":"…","values":{…}}` as line.ts builds
 * it, the values written by query.ts's JSON writer (no whitespace, every key
 * once). The scan walks the top-level members of `values` and skips each value
 * by its brackets and strings, never building the object.
 */

const VALUES = '"values":';
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

export function keyFromRecord(record: string, name: string): string | null {
  // The first '"values":' is the member: the flavor name and time before it cannot contain one.
  const at = record.indexOf(VALUES);
  if (at < 0) return null;
  let i = at + VALUES.length;
  if (record.charCodeAt(i) !== OPEN_BRACE) return null;
  i++;
  const length = record.length;
  while (i < length && record.charCodeAt(i) === QUOTE) {
    const keyEnd = stringEnd(record, i + 1);
    if (keyEnd < 0 || record.charCodeAt(keyEnd + 1) !== COLON) return null;
    const valueStart = keyEnd + 2;
    const valueEnd = skipValue(record, valueStart);
    if (valueEnd < 0) return null;
    if (keyIs(record, i, keyEnd, name)) {
      if (record.charCodeAt(valueStart) !== QUOTE) return null;
      return jsonString(record, valueStart, valueEnd);
    }
    if (record.charCodeAt(valueEnd) !== COMMA) return null;
    i = valueEnd + 1;
  }
  return null;
}

/** Index of the closing quote of the JSON string whose content starts at `from`; -1 if none. */
function stringEnd(s: string, from: number): number {
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === QUOTE) return i;
    if (c === BACKSLASH) i++;
  }
  return -1;
}

/** Index just past the JSON value starting at `from`; -1 if it does not end. */
function skipValue(s: string, from: number): number {
  const first = s.charCodeAt(from);
  if (first === QUOTE) {
    const end = stringEnd(s, from + 1);
    return end < 0 ? -1 : end + 1;
  }
  if (first !== OPEN_BRACE && first !== OPEN_BRACKET) {
    // null (the parser writes no numbers or booleans): up to the next ',' or '}'.
    let i = from;
    while (i < s.length && s.charCodeAt(i) !== COMMA && s.charCodeAt(i) !== CLOSE_BRACE) i++;
    return i;
  }
  let depth = 0;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(s, i + 1);
      if (i < 0) return -1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (--depth === 0) return i + 1;
    }
  }
  return -1;
}

/** Whether the JSON string s[open, close] (quotes included) holds `name`. */
function keyIs(s: string, open: number, close: number, name: string): boolean {
  const raw = close - open - 1;
  // Escapes only make the text longer than what it holds: text as long as
  // the name matches only as the same characters, without a backslash.
  if (raw < name.length) return false;
  if (raw === name.length) return s.startsWith(name, open + 1) && !name.includes('\\');
  for (let i = open + 1; i < close; i++) {
    if (s.charCodeAt(i) === BACKSLASH) return jsonString(s, open, close + 1) === name;
  }
  return false;
}

/** The JSON string s[start, end) (quotes included), decoded. */
function jsonString(s: string, start: number, end: number): string {
  const content = s.slice(start + 1, end - 1);
  return content.includes('\\') ? (JSON.parse(s.slice(start, end)) as string) : content;
}
