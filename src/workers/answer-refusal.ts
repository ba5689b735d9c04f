/**
 * What an HTTP thread (workers > 1) must refuse before it answers: it answers
 * a beacon 200 before the owner pushes the line, so a line a backend refuses
 * whatever its state (Kafka: larger than message.max.bytes) would be answered
 * 200 and then dropped, where one thread answers 503 (docs/kafka.md, "Lines
 * too large for Kafka"). Each backend says which lines those are
 * (BackendDescriptor.refusalBeforeAnswer); the thread answers them 503 and
 * still forwards them, so that the owner pushes them to every backend and
 * counts the refusal as one thread does (the owner asks the same test of a
 * line no backend took: answered 503, it is not counted in workers.not_taken).
 *
 * Decided once at start-up: null (no test on the path) unless some line that
 * can arrive under the http limits may be refused so.
 */
import type { RefusalTest } from '../backends/backend';
import { findBackend } from '../backends/registry';
import type { Config } from '../config/types';

/**
 * JSON bytes one byte of a query or body can become, at most: a one-byte
 * key without a value, `\x01&`, is `"\u0001":null,` (15 bytes for 2).
 */
const JSON_BYTES_PER_INPUT_BYTE = 8;
/** The record's frame around its values: `{"flavor":…,"time":"…","values":` and `}` (the flavor name counted apart). */
const RECORD_FRAME_BYTES = 128;

/** The test, or null when no line that can arrive is refused whatever the backends' state. */
export function answerRefusal(config: Config): RefusalTest | null {
  const longestName = Math.max(...config.flavors.map((f) => Buffer.byteLength(f.name)));
  // A GET line's values come from the request line; a POST line's from the query and one object of the body.
  const longestRecordBytes = JSON_BYTES_PER_INPUT_BYTE * (config.http.maxRequestLineBytes + config.http.maxBodyBytes + longestName) + RECORD_FRAME_BYTES;
  const tests: RefusalTest[] = [];
  for (const entry of config.backends) {
    const test = findBackend(entry.name)?.refusalBeforeAnswer?.(entry.config, { flavors: config.flavors, alone: config.backends.length === 1, longestRecordBytes });
    if (test !== null && test !== undefined) tests.push(test);
  }
  if (tests.length <= 1) return tests[0] ?? null;
  return (record, flavorName) => tests.some((test) => test(record, flavorName));
}
