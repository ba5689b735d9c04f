/**
 * Choosing the partition in scratchd (in-flight.ts says why), the way
 * librdkafka's default partitioner does: a message with a key goes to
 * crc32(key) % partitions ("consistent_random"), so one key stays on one
 * partition; a message without a key sticks to one partition for a run of
 * messages, then moves to another at random (sticky partitioning: bigger
 * batches than spreading every message).
 */

const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3, as zlib's crc32) of the key's UTF-8 bytes. */
export function crc32(text: string): number {
  const bytes = Buffer.from(text, 'utf8');
  let crc = -1;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

export const STICKY_RUN = 1000;

export class StickyPartition {
  private current = -1;
  private left = 0;

  constructor(private readonly random: () => number = Math.random) {}

  next(partitions: number): number {
    if (this.left <= 0 || this.current >= partitions) {
      let next = Math.floor(this.random() * partitions);
      if (partitions > 1 && next === this.current) next = (next + 1) % partitions;
      this.current = next;
      this.left = STICKY_RUN;
    }
    this.left--;
    return this.current;
  }
}

export function partitionFor(key: string | null, partitions: number, sticky: StickyPartition): number {
  return key === null || key === '' ? sticky.next(partitions) : crc32(key) % partitions;
}
