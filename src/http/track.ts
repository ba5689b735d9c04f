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
 * 'block' refused it (docs/buffering.md).
 * Only the parser's own QUERY_MALFORMED becomes a 400: any other exception is
 * a bug and propagates (the server answers 500 and counts internal_error).
 */
import type { Backend } from '../backends/backend';
import type { SanityChecks } from '../checks';
import type { FlavorTable } from '../flavor';
import { isScratchError } from '../errors';
import { makeLine } from '../line';
import { queryToJson } from '../query';
import type { RequestCounters } from '../telemetry';
import { Answer } from './responses';
import type { BeaconHandler, ClientAddress } from './server';

export class TrackHandler implements BeaconHandler {
  private readonly checks: SanityChecks | null;

  constructor(
    private readonly flavors: FlavorTable,
    private readonly backends: readonly Backend[],
    checks: SanityChecks | null,
    private readonly requests: RequestCounters,
    private readonly now: () => number = Date.now,
  ) {
    this.checks = checks?.enabled === true ? checks : null;
  }

  track(isHead: boolean, query: string, host: string | undefined, client: ClientAddress): Answer {
    const flavor = host === undefined ? undefined : this.flavors.byHost(host);
    if (flavor === undefined) {
      this.requests.unknown_flavor++;
      return Answer.unknownHost;
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
    if (this.checks !== null) {
      const verdict = this.checks.judge(flavor.index, client.address(), query, timeMs);
      if (verdict !== 'ok') {
        this.requests[verdict]++;
        return Answer.gif;
      }
    }
    const line = makeLine(flavor, timeMs, values);
    // A 200 promises the line will be saved (docs/buffering.md): some backend
    // took it and no backend whose whenFull is 'block' refused it.
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
    }
    if (refused || !taken) {
      this.requests.unavailable++;
      return Answer.unavailable;
    }
    return Answer.gif;
  }
}
