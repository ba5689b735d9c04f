/**
 * The beacon logic: Host → flavor, query → JSON, the sanity checks, one Line
 * pushed to every backend. Runs once per request; everything it needs was
 * resolved at start-up (flavor table, backend list, checks on or off).
 *
 * Outcomes (counted in telemetry.requests): unknown Host → 404
 * unknown_flavor; malformed query → 400 malformed; duplicate/malicious → 200
 * but not persisted; HEAD → 200 headers, nothing recorded; else pushed to
 * every backend: tracked when some backend took the line, and 503
 * unavailable (Retry-After) when none did or a backend whose whenFull is
 * 'block' refused it (docs/buffering.md). A line no backend took is
 * forgotten by the checks, so that the client's retry is saved rather than
 * answered 200 as a duplicate of a line that never was (one some backend
 * took stays seen: its retry is a duplicate, as with workers > 1).
 * Only the parser's own QUERY_MALFORMED becomes a 400: any other exception is
 * a bug and propagates (the server answers 500 and counts internal_error).
 *
 * On an HTTP thread (workers > 1) the handler has a `forwarder` instead of
 * backends and checks: it builds the line, answers 200 and forwards it; the
 * owner thread runs the checks and pushes it (`takeForwarded`), counting it
 * there as tracked, duplicate or malicious.
 */
import type { Backend } from '../backends/backend';
import type { SanityChecks } from '../checks';
import type { Flavor, FlavorTable } from '../flavor';
import { isScratchError } from '../errors';
import { makeLine, type Line } from '../line';
import { queryToJson } from '../query';
import { formBodyToJson, jsonBodyToJson } from '../query/body-to-json';
import type { RequestCounters } from '../telemetry';
import { Answer } from './responses';
import type { BeaconHandler, ClientAddress } from './server';

/** Where an HTTP thread sends the beacons it answered (workers/forwarder.ts). */
export interface LineForwarder {
  /**
   * `checkKey`: what the duplicate check compares (the query of a GET, the
   * values of a POST line). False: a backend refuses the line whatever its
   * state and the answer must be 503, as one thread would answer it
   * (workers/answer-refusal.ts); the line is forwarded all the same.
   */
  forward(flavor: Flavor, timeMs: number, values: string, client: ClientAddress, checkKey: string): boolean;
}

/** What became of a forwarded line on the owner thread. */
export type ForwardedOutcome = 'tracked' | 'duplicate' | 'malicious' | 'not_taken';

export class TrackHandler implements BeaconHandler {
  private readonly checks: SanityChecks | null;
  /**
   * Called when a backend whose whenFull is 'block' refused a line here (the
   * rare path): with workers > 1 the owner raises the HTTP threads' refusal
   * flag at once (workers/http-threads.ts), rather than at their next batch.
   */
  onBlockRefusal: (() => void) | null = null;
  /**
   * Outcomes counted for the lines of POST bodies judged here (tracked,
   * duplicate, malicious: one per line, beside the request's own `post`), so
   * that requests can be told from lines (/stats workers.requests).
   */
  postLineOutcomes = 0;

  constructor(
    private readonly flavors: FlavorTable,
    private readonly backends: readonly Backend[],
    checks: SanityChecks | null,
    private readonly requests: RequestCounters,
    private readonly now: () => number = Date.now,
    private readonly forwarder: LineForwarder | null = null,
  ) {
    this.checks = checks?.enabled === true ? checks : null;
  }

  track(isHead: boolean, query: string, host: string | undefined, client: ClientAddress, path?: string): Answer {
    const flavor = host === undefined ? undefined : this.flavors.byHost(host);
    if (flavor === undefined) {
      this.requests.unknown_flavor++;
      return Answer.unknownHost;
    }
    // Given only when flavors have different paths.
    if (path !== undefined && !flavor.paths.has(path)) {
      this.requests.not_found++;
      return Answer.notFound;
    }
    if (isHead) {
      this.requests.head++;
      return Answer.gifHead;
    }
    let values: string;
    try {
      values = queryToJson(query);
    } catch (err) {
      if (!isScratchError(err, 'QUERY_MALFORMED')) throw err;
      this.requests.malformed++;
      return Answer.malformedQuery;
    }
    const timeMs = this.now();
    if (this.forwarder !== null) {
      if (!this.forwarder.forward(flavor, timeMs, values, client, query)) {
        this.requests.unavailable++;
        return Answer.unavailable;
      }
      this.requests.tracked++; // here: answered and forwarded (the owner counts what became of it)
      return Answer.gif;
    }
    if (this.checks !== null) {
      const verdict = this.checks.judge(flavor.index, client.address(), query, timeMs);
      if (verdict !== 'ok') {
        this.requests[verdict]++;
        return Answer.gif;
      }
    }
    if (!this.persist(flavor, makeLine(flavor, timeMs, values), client, query)) {
      this.requests.unavailable++;
      return Answer.unavailable;
    }
    return Answer.gif;
  }

  /**
   * Pushes a line to every backend, counting it tracked when some backend
   * took it. True when the answer may promise it will be saved
   * (docs/buffering.md): some backend took it and no backend whose whenFull
   * is 'block' refused it. A line no backend took is retracted from the
   * checks (`checkKey`: what judge() was given).
   */
  private persist(flavor: Flavor, line: Line, client: ClientAddress, checkKey: string): boolean {
    let taken = this.backends.length === 0;
    let refused = false;
    for (let i = 0; i < this.backends.length; i++) {
      const backend = this.backends[i]!;
      if (backend.push(line)) taken = true;
      else if (backend.whenFull === 'block') refused = true;
    }
    if (taken) {
      flavor.tracked++;
      this.requests.tracked++;
    } else {
      this.checks?.retract(flavor.index, client.address(), checkKey, line.timeMs);
    }
    if (refused && this.onBlockRefusal !== null) this.onBlockRefusal();
    return taken && !refused;
  }

  /**
   * Owner thread: a line an HTTP thread answered 200 and forwarded (its
   * `record` built there; `client` and `key` what the checks need). The
   * checks see it like any other; the backends take it as answered
   * (Backend.push). Counts `flavor.tracked`; the caller counts the outcome.
   */
  takeForwarded(flavorIndex: number, timeMs: number, record: string, client: string, key: string): ForwardedOutcome {
    if (this.checks !== null) {
      const verdict = this.checks.judgeKeyed(flavorIndex, client, key, timeMs);
      if (verdict !== 'ok') return verdict;
    }
    const flavor = this.flavors.all[flavorIndex]!;
    flavor.clock.stamp(timeMs); // sets clock.date: the line's {date}
    const line: Line = { flavor, timeMs, date: flavor.clock.date, record };
    let taken = this.backends.length === 0;
    for (let i = 0; i < this.backends.length; i++) {
      if (this.backends[i]!.push(line, true)) taken = true;
    }
    if (!taken) return 'not_taken';
    flavor.tracked++;
    return 'tracked';
  }

  /**
   * A POST beacon's body (decoded) for its flavor: one line per object, the
   * query's params merged with each (query/body-to-json.ts), through the
   * same checks and backends as a GET. The body type decides the parser:
   * form-encoded (or no Content-Type) → Rack's form rules; application/json
   * → JSON; text/plain → JSON if it starts with '{' or '[', else form.
   */
  post(flavor: Flavor, query: string, contentType: BodyType, body: Buffer, maxBatch: number, client: ClientAddress): PostOutcome {
    let lines: string[];
    try {
      if (body.length === 0) {
        lines = [queryToJson(query)];
      } else if (contentType === BodyType.json || (contentType === BodyType.text && (body[0] === 0x7b || body[0] === 0x5b))) {
        const batch = jsonBodyToJson(query, body, maxBatch);
        if (batch === null) {
          this.requests.too_large++;
          return PostOutcome.tooMany;
        }
        lines = batch;
      } else {
        lines = [formBodyToJson(query, body)];
      }
    } catch (err) {
      if (!isScratchError(err, 'QUERY_MALFORMED')) throw err;
      this.requests.malformed++;
      return PostOutcome.malformed;
    }
    this.requests.post++;
    const timeMs = this.now();
    let refused = false;
    const r = this.requests;
    const linesBefore = r.tracked + r.duplicate + r.malicious;
    for (const values of lines) {
      if (this.forwarder !== null) {
        if (!this.forwarder.forward(flavor, timeMs, values, client, values)) refused = true;
        continue;
      }
      if (this.checks !== null) {
        // The values stand for the query in the duplicate check.
        const verdict = this.checks.judge(flavor.index, client.address(), values, timeMs);
        if (verdict !== 'ok') {
          this.requests[verdict]++;
          continue;
        }
      }
      if (!this.persist(flavor, makeLine(flavor, timeMs, values), client, values)) refused = true;
    }
    this.postLineOutcomes += r.tracked + r.duplicate + r.malicious - linesBefore;
    if (refused) {
      this.requests.unavailable++;
      return PostOutcome.unavailable;
    }
    return PostOutcome.accepted;
  }
}

/** How a POST body is parsed, from its Content-Type. */
export const BodyType = { form: 0, json: 1, text: 2, unsupported: 3 } as const;
export type BodyType = (typeof BodyType)[keyof typeof BodyType];

/** The media type of a Content-Type value (RFC 9110 §8.3.1: parameters dropped, case-insensitive). */
export function bodyTypeOf(contentType: string | undefined): BodyType {
  if (contentType === undefined) return BodyType.form; // Rack: a POST without a type is form data
  const semicolon = contentType.indexOf(';');
  const media = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  switch (media) {
    case 'application/x-www-form-urlencoded':
      return BodyType.form;
    case 'application/json':
      return BodyType.json;
    case 'text/plain':
      return BodyType.text;
  }
  return BodyType.unsupported;
}

/** unavailable: a backend could not take a line (503, as for GET; lines other backends took are kept). */
export const PostOutcome = { accepted: 0, malformed: 1, tooMany: 2, unavailable: 3 } as const;
export type PostOutcome = (typeof PostOutcome)[keyof typeof PostOutcome];
