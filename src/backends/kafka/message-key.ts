/**
 * The Kafka message key: the value of one plain query parameter
 * (`kafka.key`), decoded as Rack does (`+` and %XX, UTF-8), the last
 * occurrence winning as in parse_nested_query. Runs only when a key is
 * configured. Returns null when the parameter is absent, has no `=`, or
 * does not decode to UTF-8.
 */

import { isUtf8 } from 'node:buffer';

const SEPARATOR = /[&;] */;

export function keyFromQuery(query: string, name: string): string | null {
  let found: string | null = null;
  for (const pair of query.split(SEPARATOR)) {
    const eq = pair.indexOf('=');
    const rawKey = eq === -1 ? pair : pair.slice(0, eq);
    if (decode(rawKey) !== name) continue;
    found = eq === -1 ? null : decode(pair.slice(eq + 1));
  }
  return found;
}

/** URI.decode_www_form_component on a latin1 (byte) string; null if invalid. */
function decode(text: string): string | null {
  if (!/[%+\x80-\xff]/.test(text)) return text;
  if (/%(?![0-9A-Fa-f]{2})/.test(text)) return null;
  const bytes = Buffer.from(text.replace(/\+/g, ' ').replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
  return isUtf8(bytes) ? bytes.toString('utf8') : null;
}
