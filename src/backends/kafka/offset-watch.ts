/**
 * The offsets of successful delivery reports, per topic partition
 * (docs/kafka.md, "What is produced"): they only grow. librdkafka reports a
 * partition's messages in the order they were produced (in-flight.ts), and
 * the broker gives each message it appends the next offset; a retried batch
 * the broker had appended already is answered with its first offsets, which
 * were never reported. So an offset already reported means the broker
 * answered with an earlier message's place: it took this message for a
 * duplicate of an earlier batch and did not keep it — the known cause is an
 * idempotent producer that reused sequence numbers (librdkafka issues #3712,
 * #4134). Such a line was answered 200 and may not be in Kafka: counted in
 * `repeats` (/stats `delivery_offset_repeats`, expected 0).
 */
export class OffsetWatch {
  /** Successful reports whose offset was not after one already reported in their partition. */
  repeats = 0;
  /** By topic, then partition (no key string built per report: the hot path). */
  private readonly last = new Map<string, number[]>();

  /** Whether a successful report's offset is after every one reported before in its partition; false counts a repeat. */
  advanced(topic: string, partition: number, offset: number): boolean {
    if (offset < 0) return true; // not given (acks=0)
    let partitions = this.last.get(topic);
    if (partitions === undefined) {
      partitions = [];
      this.last.set(topic, partitions);
    }
    const last = partitions[partition];
    if (last !== undefined && offset <= last) {
      this.repeats++;
      return false;
    }
    partitions[partition] = offset;
    return true;
  }
}
