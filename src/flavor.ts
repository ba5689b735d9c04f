/**
 * Flavors at run time: a site with its Host names and its own clock.
 * `FlavorTable.byHost(hostHeader)` maps a raw Host header value to its flavor,
 * ignoring the port and case (RFC 9110 §4.2.3: host names are
 * case-insensitive) and one trailing dot (an absolute DNS name).
 */
import type { FlavorConfig } from './config/types';
import { ZonedClock } from './clock';
import { OriginPolicy } from './http/cors';
import { recordHead } from './record';

export class Flavor {
  readonly clock: ZonedClock;
  /** `{"flavor":"<name>","time":"` — the constant head of every line of this flavor (record.ts). */
  readonly recordHead: string;
  /** Beacons of this flavor accepted since start. */
  tracked = 0;
  /** The beacon paths (flavors[].paths, else [http.path]). */
  readonly paths: ReadonlySet<string>;
  /** Which page origins may POST beacons (http/cors.ts). */
  readonly origins: OriginPolicy;
  /** The status of an accepted POST. */
  readonly postStatus: 200 | 204;

  constructor(
    readonly name: string,
    readonly index: number,
    readonly timezone: string,
    readonly hosts: readonly string[],
    options: { paths?: readonly string[]; origins?: readonly string[]; postStatus?: 200 | 204 } = {},
  ) {
    this.clock = new ZonedClock(timezone);
    this.recordHead = recordHead(name);
    this.paths = new Set(options.paths ?? ['/track']);
    this.origins = options.origins === undefined ? OriginPolicy.fromHosts(hosts) : new OriginPolicy(options.origins);
    this.postStatus = options.postStatus ?? 204;
  }
}

export class FlavorTable {
  readonly all: readonly Flavor[];
  /** Every beacon path of every flavor. */
  readonly paths = new Set<string>();
  private readonly hosts = new Map<string, Flavor>();

  /** `defaultPath`: http.path, the paths of a flavor without its own. */
  constructor(configs: readonly FlavorConfig[], defaultPath = '/track') {
    this.all = configs.map(
      (c, i) =>
        new Flavor(c.name, i, c.timezone, c.hosts, {
          paths: c.paths ?? [defaultPath],
          ...(c.cors === undefined ? {} : { origins: c.cors.origins }),
          ...(c.postStatus === undefined ? {} : { postStatus: c.postStatus }),
        }),
    );
    for (const flavor of this.all) {
      for (const path of flavor.paths) this.paths.add(path);
      for (const host of flavor.hosts) this.hosts.set(host.toLowerCase(), flavor);
    }
  }


  byName(name: string): Flavor | undefined {
    return this.all.find((f) => f.name === name);
  }

  /** The flavor for a Host header value ("www.skroutz.gr:8080", "WWW.Skroutz.GR."), or undefined. */
  byHost(header: string): Flavor | undefined {
    // Most browsers send the host exactly as configured: try that before normalizing.
    const exact = this.hosts.get(header);
    if (exact !== undefined) return exact;
    let host = header;
    const colon = host.lastIndexOf(':');
    if (colon !== -1 && host.indexOf(']') < colon) host = host.slice(0, colon);
    if (host.endsWith('.')) host = host.slice(0, -1);
    return this.hosts.get(host.toLowerCase());
  }
}
