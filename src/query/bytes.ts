/**
 * The bytes the query scanners and the JSON writer look for, the class table
 * that lets an ordinary byte cost one load and one compare, and Ruby's `\h`.
 */
import * as limitsModule from './limits';

// Local copies of what is imported: TypeScript's CommonJS output reads a named
// import as a property of the module object at every use, while a module-level
// const is a constant to the JIT (the split into modules cost a beacon ~20%
// without this).
const { excerpt, malformed } = limitsModule;

export const NEWLINE = 0x0a;
export const SPACE = 0x20;
export const QUOTE = 0x22; // "
export const PERCENT = 0x25; // %
export const PLUS = 0x2b; // +
export const COMMA = 0x2c; // ,
export const COLON = 0x3a; // :
export const OPEN = 0x5b; // [
export const BACKSLASH = 0x5c; // \
export const CLOSE = 0x5d; // ]
export const OPEN_BRACE = 0x7b; // {
export const CLOSE_BRACE = 0x7d; // }

// What a byte means, as bit flags, so that scanning an ordinary byte (class
// 0) is one table load and one compare.
/** '&' or ';': DEFAULT_SEP. */
export const SEPARATOR = 1;
/** '=': `p.split('=', 2)`. */
export const EQUALS_SIGN = 2;
/** '%', '+' or a byte >= 0x80: the component is not its own unescaped ASCII text. */
export const NEEDS_UNESCAPE = 4;
/** A control char, '"' or '\\': JSON.generate escapes it. */
export const NEEDS_JSON_ESCAPE = 8;
/** '[' or ']': the name may be nested. */
export const BRACKET = 16;
/** '%': must be followed by two hex digits. */
export const PERCENT_SIGN = 32;

export const CHAR_CLASS = (() => {
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

// Exported apart: an `export const` is read off `exports` at every use in this module.
export { HEX_VALUE };

/**
 * decode_www_form_component raises ArgumentError "invalid %-encoding" if
 * `/%(?!\h\h)/` matches the component, even one that is later overwritten,
 * so every '%' is checked here, during the scan. A component ends at '=',
 * '&', ';' or the end, none of them hex, so looking past the component's end
 * within the query gives the same answer as looking within the component.
 */
export function checkEscape(input: Buffer, at: number, length: number): void {
  if (at + 2 < length && (HEX_VALUE[input[at + 1] ?? 0] ?? -1) >= 0 && (HEX_VALUE[input[at + 2] ?? 0] ?? -1) >= 0) {
    return;
  }
  throw malformed(`invalid %-encoding at byte ${at}: ${excerpt(input.toString('latin1', at, Math.min(at + 3, length)))}`);
}

/** The byte `%XX` at input[at - 1] stands for; checkEscape has already validated it. */
export function escapedByte(input: Buffer, at: number): number {
  return ((HEX_VALUE[input[at] ?? 0] ?? 0) << 4) | (HEX_VALUE[input[at + 1] ?? 0] ?? 0);
}
