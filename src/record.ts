/**
 * The record: the one serialized form of a line, written to the log files
 * (plus "\n"), sent to Kafka (as is), kept in the spool, and read back by
 * `scratchd diff` and `scratchd restore`:
 *
 *   {"flavor":"<name>","time":"<local ISO time>","values":<query JSON>}
 *
 * This module is the only place that knows that shape; everything else
 * builds and reads records through it.
 *
 * - Building is split in two because the head is constant per flavor:
 *   `recordHead(name)` once at start-up (Flavor keeps it), then
 *   `buildRecord(head, time, values)` per beacon — three concatenations,
 *   no JSON.stringify on the hot path (docs/architecture.md).
 * - `time` and the flavor name between the quotes are never escaped by
 *   buildRecord: the time is a clock stamp (digits, `-:.+T`), the head was
 *   escaped by recordHead.
 * - Parsing never decodes `values`: diff compares its bytes, and a parse
 *   plus re-serialization could change them.
 */

const FLAVOR_PREFIX = '{"flavor":"';
const TIME_INFIX = '","time":"';
const VALUES_INFIX = '","values":';

/** `{"flavor":"<name>","time":"` — the constant start of every record of a flavor. */
export function recordHead(flavorName: string): string {
  return `{"flavor":${JSON.stringify(flavorName)},"time":"`;
}

/** The record of one beacon; `head` from recordHead, `valuesJson` a JSON object's text. */
export function buildRecord(head: string, time: string, valuesJson: string): string {
  return head + time + VALUES_INFIX + valuesJson + '}';
}

/**
 * Whether `text` looks like a record of the flavor whose head is `head`
 * (starts with the head, ends with the record's closing brace). A cheap
 * check for records read back from storage, not a full parse.
 */
export function isRecordOf(head: string, text: string): boolean {
  return text.startsWith(head) && text.endsWith('}');
}

/**
 * Splits a record into its flavor (as written between the quotes, not
 * JSON-decoded) and the text of its values, or null if the text has not
 * exactly the shape buildRecord writes.
 */
export function splitRecord(line: string): { flavor: string; values: string } | null {
  if (!line.startsWith(FLAVOR_PREFIX)) return null;
  const flavorEnd = line.indexOf('"', FLAVOR_PREFIX.length);
  if (flavorEnd <= FLAVOR_PREFIX.length || !line.startsWith(TIME_INFIX, flavorEnd)) return null;
  const timeStart = flavorEnd + TIME_INFIX.length;
  const timeEnd = line.indexOf('"', timeStart);
  if (timeEnd <= timeStart || !line.startsWith(VALUES_INFIX, timeEnd)) return null;
  const valuesStart = timeEnd + VALUES_INFIX.length;
  // values is a JSON object: "{...}" then the record's own "}".
  if (line.charCodeAt(valuesStart) !== 0x7b || line.length < valuesStart + 3 || !line.endsWith('}}')) return null;
  const flavor = line.slice(FLAVOR_PREFIX.length, flavorEnd);
  // A backslash would mean the quote found above was escaped, not the end.
  if (flavor.includes('\\') || line.lastIndexOf('\\', timeEnd) > timeStart) return null;
  return { flavor, values: line.slice(valuesStart, line.length - 1) };
}
