/**
 * The largest line Kafka takes (docs/kafka.md, "Lines too large for Kafka"):
 * librdkafka refuses a message whose payload, key and headers together exceed
 * its `message.max.bytes` (1,000,000 unless kafka.librdkafka sets it), and it
 * would refuse it again at every try, so such a line must not go to the
 * spool, where it would come back at every drain. The backend refuses it at
 * push() instead: counted as `too_large`, logged; another backend may still
 * take it (the beacon is then answered 200, else 503).
 *
 * `fits()` is one comparison for every line a default config allows (the
 * longest record is ~6 bytes per body byte, ~400 KB at http.maxBodyBytes
 * 64 KiB); only a record that might not fit is measured in UTF-8 bytes.
 */
import { logger } from '../../log';
import { keyFromRecord } from './message-key';
import { producerSettings } from './settings';
import type { KafkaConfig } from './types';

const log = logger('kafka');
/** librdkafka's default message.max.bytes. */
const LIBRDKAFKA_MESSAGE_MAX_BYTES = 1_000_000;
/**
 * What librdkafka adds to payload and key before comparing with
 * message.max.bytes (rd_kafka_msg_new0: rd_kafka_msg_max_wire_size), besides
 * the flavor name: the record's framing at its largest
 * (RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD, 36) and the two headers serialized —
 * "flavor" (6) and "seq" (3) with a length varint each (≤ 2 bytes), the value
 * varints (≤ 2 each) and the seq itself, at most 33 characters
 * (`<boot ≤ 16>-<n ≤ 16>`, spool.ts checks it): 36 + 9 + 8 + 33 = 86.
 */
const OVERHEAD_BYTES = 86;

export class MessageSizeLimit {
  /** Kafka's limit for payload + key + headers. */
  readonly maxBytes: number;
  /** Records at most this long (UTF-16 units) fit whatever their bytes: ≤ 3 bytes per unit, the key at most as long again. */
  private readonly alwaysFitsChars: number;

  constructor(private readonly config: KafkaConfig, longestFlavorName: number) {
    const setting = Number(producerSettings(config)['message.max.bytes'] ?? LIBRDKAFKA_MESSAGE_MAX_BYTES);
    this.maxBytes = Number.isFinite(setting) && setting > 0 ? setting : LIBRDKAFKA_MESSAGE_MAX_BYTES;
    this.alwaysFitsChars = Math.floor((this.maxBytes - OVERHEAD_BYTES - 3 * longestFlavorName) / 6);
  }

  /**
   * Whether some record of at most `longestRecordBytes` UTF-8 bytes might not
   * fit (the key, a value of the record, at most as long again): false lets a
   * caller skip fits() altogether (workers/answer-refusal.ts).
   */
  mayRefuse(longestRecordBytes: number, longestFlavorName: number): boolean {
    return (this.config.key === null ? 1 : 2) * longestRecordBytes + 3 * longestFlavorName + OVERHEAD_BYTES > this.maxBytes;
  }

  /** Whether librdkafka takes this record as a message of a flavor (its name is in the headers). */
  /** `key`: the message's key when known (a spooled entry's, from the config of its time), else read from the record. */
  fits(record: string, flavorName: string, key?: string | null): boolean {
    return record.length <= this.alwaysFitsChars || this.bytesOf(record, flavorName, key) <= this.maxBytes;
  }

  /** The message's bytes as librdkafka counts them against maxBytes, at most (the seq at its longest). */
  bytesOf(record: string, flavorName: string, key = this.config.key === null ? null : keyFromRecord(record, this.config.key)): number {
    return Buffer.byteLength(record) + (key === null ? 0 : Buffer.byteLength(key)) + Buffer.byteLength(flavorName) + OVERHEAD_BYTES;
  }

  /** Logs (at most every 10 s) a record fits() refused: its size and the flavor's name only, no request data. */
  logRefusal(record: string, flavorName: string, key?: string | null): void {
    log.every('too-large', 10_000, `a line of ${this.bytesOf(record, flavorName, key)} bytes (flavor ${flavorName}) is larger than kafka.librdkafka["message.max.bytes"] (${this.maxBytes}): not sent to Kafka, counted as too_large`);
  }
}
