/**
 * Which page origins may send beacons to a flavor (the Fetch standard's CORS
 * protocol, https://fetch.spec.whatwg.org/#http-cors-protocol), decided once
 * per request from a table built at start-up.
 *
 * A pattern is "*" (any origin), an exact origin "https://www.example.com"
 * or "http://127.0.0.1:8080", or a wildcard "https://*.example.com" that
 * matches every subdomain of example.com (not example.com itself), with the
 * same scheme and port. Origins compare case-insensitively (RFC 6454 §6.2
 * serializes scheme and host in lower case). Without a configured list, a
 * flavor allows https:// and http:// of each of its hosts (no port).
 *
 * sendBeacon always sends credentials (cookies), so an answer names the
 * exact origin with Access-Control-Allow-Credentials: true: browsers refuse
 * "*" for a credentialed request.
 */

interface Wildcard {
  /** "https://" */
  scheme: string;
  /** ".example.com" */
  suffix: string;
  /** ":8080" or "" */
  port: string;
}

export class OriginPolicy {
  private readonly any: boolean;
  private readonly exact = new Set<string>();
  private readonly wildcards: Wildcard[] = [];

  constructor(patterns: readonly string[]) {
    let any = false;
    for (const raw of patterns) {
      const pattern = raw.toLowerCase();
      if (pattern === '*') {
        any = true;
        continue;
      }
      const star = pattern.indexOf('://*.');
      if (star === -1) {
        this.exact.add(pattern);
        continue;
      }
      const rest = pattern.slice(star + 4); // ".example.com[:port]"
      const colon = rest.indexOf(':');
      this.wildcards.push({
        scheme: pattern.slice(0, star + 3),
        suffix: colon === -1 ? rest : rest.slice(0, colon),
        port: colon === -1 ? '' : rest.slice(colon),
      });
    }
    this.any = any;
  }

  /** The default list: https:// and http:// of each host. */
  static fromHosts(hosts: readonly string[]): OriginPolicy {
    return new OriginPolicy(hosts.flatMap((host) => [`https://${host}`, `http://${host}`]));
  }

  allows(origin: string): boolean {
    if (this.any) return true;
    const lower = origin.toLowerCase();
    if (this.exact.has(lower)) return true;
    for (const w of this.wildcards) {
      if (!lower.startsWith(w.scheme)) continue;
      const colon = lower.indexOf(':', w.scheme.length);
      const host = colon === -1 ? lower.slice(w.scheme.length) : lower.slice(w.scheme.length, colon);
      const port = colon === -1 ? '' : lower.slice(colon);
      if (port === w.port && host.length > w.suffix.length && host.endsWith(w.suffix) && host.charCodeAt(0) !== 46 /* . */) return true;
    }
    return false;
  }
}
