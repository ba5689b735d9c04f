/**
 * TLS for edge tests: a self-signed certificate made by openssl for the test
 * flavors' hosts, and the rendering of the TLS "bind" line of a shipped
 * HAProxy file (packaging/haproxy/scratchd-tls.cfg, rollout.cfg).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hasCommand, needs } from './requires';

export const opensslAvailable = needs('openssl', hasCommand('openssl'), 'apt-get install openssl');

export interface Certificate {
  /** The certificate alone: what a client trusts (curl --cacert). */
  cert: string;
  /** Certificate and key in one file: what HAProxy's "crt" takes. */
  pem: string;
}

/** An ECDSA P-256 certificate valid for a day, with every host as a subjectAltName. */
export function makeCertificate(dir: string, hosts: readonly string[]): Certificate {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const made = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', `/CN=${hosts[0]}`,
      '-addext', `subjectAltName=${hosts.map((h) => `DNS:${h}`).join(',')}`, '-keyout', key, '-out', cert],
    { encoding: 'utf8' },
  );
  if (made.status !== 0) throw new Error(`openssl req failed: ${made.stderr}`);
  const pem = path.join(dir, 'haproxy.pem');
  fs.writeFileSync(pem, fs.readFileSync(cert, 'utf8') + fs.readFileSync(key, 'utf8'), { mode: 0o600 });
  return { cert, pem };
}

/** The shipped `bind :443 ssl crt /etc/haproxy/certs/scratchd.pem …` on the test's `bind` address (haproxy.ts EXTRA_LISTENER) with the test certificate (must match once). */
export function renderTlsBind(text: string, bind: string, pem: string): string {
  const pattern = /^( {4}bind ):443( ssl crt )\/etc\/haproxy\/certs\/scratchd\.pem( .*)$/gm;
  const count = [...text.matchAll(pattern)].length;
  if (count !== 1) throw new Error(`TLS bind line matched ${count} times, expected once`);
  return text.replace(pattern, `$1${bind}$2${pem}$3`);
}
