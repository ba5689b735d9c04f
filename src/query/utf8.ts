/**
 * UTF-8, as Ruby and json 2.6.3 see it: the validity check Ruby makes before
 * a regex match (names) and json makes before writing a string (values).
 */

/**
 * Whether bytes[from, to) is well-formed UTF-8 (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF). That is what Ruby checks before a
 * regex match, and what json 2.6.3's isLegalUTF8 checks on output but for
 * the ED/F4 slip described in query-to-json.ts. (node:buffer isUtf8 agrees, but needs
 * a subarray, ~80 ns for a short span.)
 */
export function isWellFormedUtf8(bytes: Buffer, from: number, to: number): boolean {
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
