/**
 * replay's input side: access-log lines → Jobs (the bytes of one request),
 * read ahead of the sender and bounded.
 *
 * Contract: RequestSource.read() runs alongside the sender and keeps at
 * most READ_AHEAD parsed jobs ready; it waits for room, so memory does not
 * depend on the input size. `take()` is synchronous; when it finds nothing,
 * the sender sets `onReady` and is called once more jobs (or the end)
 * arrive. Lines are counted (lines, malformed, method) as they are parsed;
 * past `limit` jobs, the rest of the input is left unread and uncounted.
 */
import { type LineReader, parseRequestLine, requestBytes, type ParseOptions } from '../request-log';

/** Parsed requests read ahead of the sender (bounded read-ahead of the input). */
const READ_AHEAD = 8192;
/** Longest input line kept; longer ones are counted malformed. */
export const MAX_LINE_BYTES = 1024 * 1024;

/** One request to send. */
export interface Job {
  readonly bytes: Buffer;
  readonly head: boolean;
  /** performance.now() of the intended send: latency starts here. */
  intended: number;
  retried: boolean;
}

/** A FIFO with O(1) shift (Array#shift is O(n) on large arrays). */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private first = 0;

  get length(): number {
    return this.items.length - this.first;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.first >= this.items.length) return undefined;
    const item = this.items[this.first];
    this.items[this.first++] = undefined;
    if (this.first >= 1024 && this.first * 2 >= this.items.length) {
      this.items = this.items.slice(this.first);
      this.first = 0;
    }
    return item;
  }
}

/** Reads and parses input lines into Jobs ahead of the sender (see the contract above). */
export class RequestSource {
  lines = 0;
  malformed = 0;
  method = 0;
  ended = false;
  error: Error | null = null;
  onReady: (() => void) | null = null;
  private readonly ready = new Fifo<Job>();
  private taken = 0;
  private room: (() => void) | null = null;

  constructor(
    readonly reader: LineReader,
    private readonly parse: ParseOptions,
    private readonly limit: number,
    private readonly reportMalformed: (line: number, reason: string, text: string | null) => void,
  ) {}

  async read(): Promise<void> {
    try {
      while (this.taken + this.ready.length < this.limit) {
        if (this.ready.length >= READ_AHEAD) await new Promise<void>((resolve) => (this.room = resolve));
        const batch = await this.reader.next();
        if (batch === null) break;
        this.add(batch.firstLine, batch.lines);
        this.notify();
      }
    } catch (err) {
      this.error = err as Error;
    }
    this.ended = true;
    this.notify();
  }

  private add(firstLine: number, lines: (string | null)[]): void {
    for (let i = 0; i < lines.length; i++) {
      this.lines++;
      const text = lines[i]!;
      if (text === null) {
        this.malformed++;
        this.reportMalformed(firstLine + i, `line longer than ${MAX_LINE_BYTES} bytes`, null);
        continue;
      }
      const parsed = parseRequestLine(text, this.parse);
      if (parsed.kind === 'request') {
        // Past the limit, lines of this batch are left unread (and uncounted).
        if (this.taken + this.ready.length >= this.limit) {
          this.lines--;
          return;
        }
        this.ready.push({ bytes: requestBytes(parsed.method, parsed.target, parsed.host), head: parsed.method === 'HEAD', intended: 0, retried: false });
      } else if (parsed.kind === 'malformed') {
        this.malformed++;
        this.reportMalformed(firstLine + i, parsed.reason, text);
      } else if (parsed.kind === 'skip') {
        this.method++;
      }
    }
  }

  private notify(): void {
    const ready = this.onReady;
    this.onReady = null;
    ready?.();
  }

  /** Parsed requests not taken yet. */
  get pending(): number {
    return this.ready.length;
  }

  take(): Job | undefined {
    const job = this.ready.shift();
    if (job !== undefined) this.taken++;
    if (this.room !== null && this.ready.length <= READ_AHEAD / 2) {
      const room = this.room;
      this.room = null;
      room();
    }
    return job;
  }

  /** Lets a pending read() finish after the sender stopped early. */
  release(): void {
    this.room?.();
    this.room = null;
  }
}
