/**
 * Differential test of the request-head parser against llhttp, through
 * node:http (strict) as the reference (test/http/reference.ts): the same
 * bytes, split the same way, must get the same verdict (accepted, rejected,
 * or not complete yet) and, when accepted, the same method, target and host,
 * except where scratchd deliberately differs. Each deliberate deviation is
 * named, recognized by a rule on the input, and listed with its RFC section
 * in docs/http.md; the test asserts that every disagreement is one of them and
 * that every listed deviation still occurs (the list is exact, not a
 * catch-all).
 *
 * The corpus: hand-written heads (the cases of issue 10 and the usual
 * smuggling shapes), llhttp's own request tests (test/http/llhttp-requests.json,
 * MIT, extracted from nodejs/llhttp test/request/*.md), and seeded mutations
 * of valid beacon heads (a byte inserted, deleted or replaced, one to three
 * times), each fed to both parsers in the same random pieces.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { FAILED, HeadParser, NEED_MORE } from '../../src/http/request-head';
import { repoRoot, testFile } from '../support/paths';
import * as path from 'node:path';
import { prng } from '../support/prng';
import { reference, type RefOutcome } from './reference';

type Outcome = RefOutcome;

const bytes = (s: string) => Buffer.from(s, 'latin1');

/** scratchd's verdict, with the method as the token on the wire. */
function ours(pieces: Buffer[]): Outcome {
  const parser = new HeadParser(8192, 16384, false);
  for (const piece of pieces) {
    const r = parser.execute(piece, 0, piece.length);
    if (r === FAILED) return { kind: 'reject', code: String(parser.error) };
    if (r !== NEED_MORE) {
      const line = Buffer.concat(pieces).toString('latin1').replace(/^(\r\n)*/, '');
      return { kind: 'accept', method: line.slice(0, line.indexOf(' ')), url: parser.target, host: parser.host };
    }
  }
  return { kind: 'incomplete' };
}

function same(a: Outcome, b: Outcome): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind !== 'accept' || b.kind !== 'accept') return true;
  return a.method === b.method && a.url === b.url && a.host === b.host;
}

/** The request line and the fields of a head (as latin1), for the deviation rules. */
function anatomy(input: string) {
  const text = input.replace(/^(\r\n)*/, '');
  const headEnd = text.indexOf('\r\n\r\n');
  const lines = (headEnd === -1 ? text : text.slice(0, headEnd)).split('\r\n');
  const requestLine = lines[0] ?? '';
  const fields = lines.slice(1).map((l) => {
    const colon = l.indexOf(':');
    return { name: l.slice(0, colon).toLowerCase(), value: l.slice(colon + 1).trim() };
  });
  return { requestLine, fields, values: (name: string) => fields.filter((f) => f.name === name).map((f) => f.value) };
}

/**
 * The deliberate deviations from llhttp: the name, the RFC rule, and when it
 * applies. A disagreement is explained by the first deviation whose rule
 * matches the input and the two outcomes; docs/http.md lists the same names.
 */
export const DEVIATIONS: { name: string; rfc: string; applies: (input: string, ref: Outcome, mine: Outcome) => boolean }[] = [
  {
    name: 'absolute-form host',
    rfc: 'RFC 9112 §3.2.2: the host of an absolute-form target is the host, not the Host header; the target is used in origin form',
    applies: (input, ref, mine) =>
      ref.kind === 'accept' && mine.kind === 'accept' && /^https?:\/\//i.test(ref.url) && ref.method === mine.method,
  },
  {
    name: 'any method token',
    rfc: 'RFC 9110 §9.1: a method is any token; scratchd parses the head and answers 405 (llhttp rejects methods it does not know)',
    applies: (input, ref, mine) => ref.kind === 'reject' && mine.kind !== 'reject' && !http.METHODS.includes(anatomy(input).requestLine.split(' ')[0]!),
  },
  {
    name: 'HTTP version not 1.0/1.1',
    rfc: 'RFC 9110 §15.6.6 / RFC 9112 §2.3: 505 for HTTP/0.9 and HTTP/2.0 request lines, which llhttp accepts',
    applies: (input, ref, mine) => ref.kind === 'accept' && mine.kind === 'reject' && !/ HTTP\/1\.[01]$/.test(anatomy(input).requestLine),
  },
  {
    name: 'one space between request-line parts',
    rfc: 'RFC 9112 §3: request-line = method SP request-target SP HTTP-version; llhttp allows several spaces',
    applies: (input, ref, mine) => ref.kind === 'accept' && mine.kind === 'reject' && / {2}/.test(anatomy(input).requestLine),
  },
  {
    name: 'Host invalid',
    rfc: 'RFC 9110 §7.2, RFC 3986 §3.2.2: Host (or the authority of an absolute-form target) = uri-host [":" port]; anything else is 400 (llhttp does not look at Host)',
    applies: (input, ref, mine) => {
      if (ref.kind === 'reject' || mine.kind !== 'reject') return false;
      const authority = /^https?:\/\/([^/?]*)/i.exec(anatomy(input).requestLine.split(' ')[1] ?? '')?.[1];
      return anatomy(input).values('host').some((v) => !validHostSyntax(v)) || (authority !== undefined && !validHostSyntax(authority));
    },
  },
  {
    name: 'Host missing',
    rfc: 'RFC 9112 §3.2: an HTTP/1.1 request without Host is 400 (node:http checks this, but not for requests that ask for an Upgrade)',
    applies: (input, ref, mine) => ref.kind === 'accept' && mine.kind === 'reject' && / HTTP\/1\.1$/.test(anatomy(input).requestLine) && anatomy(input).values('host').length === 0,
  },
  {
    name: 'Host twice',
    rfc: 'RFC 9112 §3.2: a request with more than one Host field is 400 (llhttp keeps the first)',
    applies: (input, ref, mine) => ref.kind !== 'reject' && mine.kind === 'reject' && anatomy(input).values('host').length > 1,
  },
  {
    name: 'transfer coding other than chunked',
    rfc: 'RFC 9112 §6.1: 501 for a transfer coding the server does not understand (llhttp accepts the head)',
    applies: (input, ref, mine) =>
      ref.kind === 'accept' && mine.kind === 'reject' && anatomy(input).values('transfer-encoding').some((v) => v.split(',').some((c) => c.trim() !== '' && c.trim().toLowerCase() !== 'chunked')),
  },
  {
    name: 'Transfer-Encoding in HTTP/1.0',
    rfc: 'RFC 9112 §6.1: a Transfer-Encoding in an HTTP/1.0 request means faulty framing: 400 and close',
    applies: (input, ref, mine) => ref.kind === 'accept' && mine.kind === 'reject' && / HTTP\/1\.0$/.test(anatomy(input).requestLine) && anatomy(input).values('transfer-encoding').length > 0,
  },
  {
    name: 'target form',
    rfc: 'RFC 9112 §3.2: origin-form, absolute-form (http/https, no userinfo) or "*" only; authority-form is for CONNECT, which scratchd does not serve',
    applies: (input, ref, mine) => ref.kind === 'accept' && mine.kind === 'reject' && !/^(\/|\*$|https?:\/\/[^@/?]+([/?]|$))/i.test(ref.url),
  },
];

/** The Host syntax, written apart from the parser's own validHost (a second opinion). */
function validHostSyntax(v: string): boolean {
  return /^(\[[0-9A-Fa-f:.]+\]|\[v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(:[0-9]*)?$/.test(v);
}

/** Hand-written: the shapes named in issue 10, and the classic smuggling and robustness cases. */
const HANDWRITTEN: string[] = [
  'GET /track?a=1 HTTP/1.1\r\nHost: www.skroutz.gr\r\n\r\n',
  'GET /track?a=1 HTTP/1.0\r\n\r\n',
  'HEAD /track HTTP/1.1\r\nHost: www.skroutz.gr\r\nConnection: close\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: www.skroutz.gr:8080\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n',
  'GET * HTTP/1.1\r\nHost: a\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n',
  '\r\nGET /track HTTP/1.1\r\nHost: a\r\n\r\n',
  '\r\n\r\n\r\nGET /track HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\n\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nUser-Agent: caf\xe9\r\n\r\n',
  // Bytes in the target, a name, a value.
  'GET /tr\x00ack HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET /tr\rack HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET /tr\tack HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET /tr\x01ack HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET /tr\x7fack HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET /tr\xe9ack HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nX-\x00: 1\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nX: 1\x002\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\n\rX: 1\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nX\rForwarded\rFor: 1.2.3.4\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nX-Forwarded-For : 1.2.3.4\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n',
  'GET /track HTTP/1.1\nHost: a\n\n',
  'GET /track HTTP/1.1\r\nHost: a\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nX: 1\r2\r\n\r\n',
  // Message length.
  'GET /track HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc',
  'GET /track HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n',
  'GET /track HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n',
  // Absolute form.
  'GET http://www.skroutz.gr/track?a=1 HTTP/1.1\r\nHost: www.skroutz.gr\r\n\r\n',
  'GET http://www.skroutz.gr/track?a=1 HTTP/1.1\r\nHost: other\r\n\r\n',
  'GET HTTPS://www.skroutz.gr:443/track HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET http://u@www.skroutz.gr/track HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET ftp://www.skroutz.gr/track HTTP/1.1\r\nHost: a\r\n\r\n',
  // Host.
  'GET /track HTTP/1.1\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a:xyz\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost: a b\r\n\r\n',
  'GET /track HTTP/1.1\r\nHost:\r\n\r\n',
  // Versions and the request line.
  'GET /track HTTP/2.0\r\nHost: a\r\n\r\n',
  'GET /track HTTP/1.2\r\nHost: a\r\n\r\n',
  'GET /track HTTP/0.9\r\n\r\n',
  'GET /track\r\n\r\n',
  'GET  /track HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET /track  HTTP/1.1\r\nHost: a\r\n\r\n',
  'FOO /track HTTP/1.1\r\nHost: a\r\n\r\n',
  'get /track HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET /track HTTP/1.1 \r\nHost: a\r\n\r\n',
];

/** Valid beacon heads that the mutations start from. */
const BASES: string[] = [
  'GET /track?v=2&tid=SC-1&items[][id]=1 HTTP/1.1\r\nHost: www.skroutz.gr\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: image/*\r\n\r\n',
  'HEAD /track HTTP/1.1\r\nHost: www.skroutz.gr:8080\r\nConnection: close\r\n\r\n',
  'GET /track?a=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
  'GET http://www.skroutz.gr/track?a=1 HTTP/1.1\r\nHost: www.skroutz.gr\r\n\r\n',
  'GET /track?a=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n',
  'GET /track?a=1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n',
];
/** What a mutation inserts or writes: the bytes that matter to the grammar, and some that do not. */
const ALPHABET = bytes('\r\n \t:,;/?@[]%\x00\x01\x0b\x7f\x80\xffaZ09-_.~"()HTTP1');

function mutate(base: string, random: () => number): Buffer {
  let buf = bytes(base);
  const edits = 1 + Math.floor(random() * 3);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(random() * buf.length);
    const b = random() < 0.8 ? ALPHABET[Math.floor(random() * ALPHABET.length)]! : Math.floor(random() * 256);
    const kind = Math.floor(random() * 3);
    if (kind === 0) buf = Buffer.concat([buf.subarray(0, at), Buffer.from([b]), buf.subarray(at)]);
    else if (kind === 1) buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1)]);
    else {
      buf = Buffer.from(buf);
      buf[at] = b;
    }
  }
  return buf;
}

function split(buf: Buffer, random: () => number): Buffer[] {
  const cuts = Math.floor(random() * 6);
  const points = Array.from({ length: cuts }, () => 1 + Math.floor(random() * Math.max(1, buf.length - 1))).sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    if (p > at) pieces.push(buf.subarray(at, p));
    at = Math.max(at, p);
  }
  pieces.push(buf.subarray(at));
  return pieces.filter((p) => p.length > 0);
}

interface Tally {
  cases: number;
  agreed: number;
  deviations: Map<string, number>;
  /** The first input of each deviation, to show. */
  examples: Map<string, string>;
  unexplained: string[];
}

async function compare(tally: Tally, pieces: Buffer[]): Promise<void> {
  let ref = await reference(pieces);
  let mine = ours(pieces);
  tally.cases++;
  if ((ref.kind === 'incomplete') !== (mine.kind === 'incomplete') && ref.kind !== 'accept' && mine.kind !== 'accept') {
    // One parser rejects a head the other still waits on (it finds the fault
    // at another byte): the verdict on the completed head is what counts.
    const completed = [...pieces, bytes('\r\n\r\n')];
    ref = await reference(completed);
    mine = ours(completed);
  }
  if (same(ref, mine)) {
    tally.agreed++;
    return;
  }
  const input = Buffer.concat(pieces).toString('latin1');
  const deviation = DEVIATIONS.find((d) => d.applies(input, ref, mine));
  if (deviation === undefined) tally.unexplained.push(`${JSON.stringify(input)}: llhttp ${JSON.stringify(ref)}, scratchd ${JSON.stringify(mine)}`);
  else {
    tally.deviations.set(deviation.name, (tally.deviations.get(deviation.name) ?? 0) + 1);
    if (!tally.examples.has(deviation.name)) tally.examples.set(deviation.name, `${JSON.stringify(input)}: llhttp ${JSON.stringify(ref)}, scratchd ${JSON.stringify(mine)}`);
  }
}

const newTally = (): Tally => ({ cases: 0, agreed: 0, deviations: new Map(), examples: new Map(), unexplained: [] });

function report(t: { diagnostic(message: string): void }, what: string, tally: Tally): void {
  const rate = ((100 * tally.agreed) / tally.cases).toFixed(1);
  const deviations = [...tally.deviations].map(([name, n]) => `${name} ${n}`).join(', ');
  t.diagnostic(`${what}: ${tally.cases} cases, ${tally.agreed} agree with llhttp (${rate}%), deliberate deviations: ${deviations || 'none'}`);
}

const all = newTally();

describe('differential: scratchd vs llhttp (node:http, strict)', () => {
  test('hand-written heads', async (t) => {
    const tally = newTally();
    for (const raw of HANDWRITTEN) await compare(tally, [bytes(raw)]);
    report(t, 'hand-written', tally);
    merge(all, tally);
    assert.deepEqual(tally.unexplained, []);
  });

  test("llhttp's own request tests (test/http/llhttp-requests.json)", async (t) => {
    const data = JSON.parse(fs.readFileSync(testFile('http', 'llhttp-requests.json'), 'utf8')) as { cases: { input: string }[] };
    assert.ok(data.cases.length > 150);
    const tally = newTally();
    for (const c of data.cases) await compare(tally, [bytes(c.input)]);
    report(t, 'llhttp request tests', tally);
    merge(all, tally);
    assert.deepEqual(tally.unexplained, []);
  });

  test('seeded mutations of valid heads, split at random points', async (t) => {
    const random = prng(0x11a77b);
    const tally = newTally();
    for (let n = 0; n < 4000; n++) {
      const input = mutate(BASES[n % BASES.length]!, random);
      await compare(tally, split(input, random));
    }
    report(t, 'mutations', tally);
    merge(all, tally);
    assert.deepEqual(tally.unexplained.slice(0, 20), []);
  });

  test('docs/http.md lists the same deviations', () => {
    const doc = fs.readFileSync(path.join(repoRoot, 'docs', 'http.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## Deliberate deviations from llhttp'));
    const table = section.slice(0, section.indexOf('\n\n', section.indexOf('| deviation |')));
    const names = [...table.matchAll(/^\| ([^|]+?) \|/gm)].map((m) => m[1]!).filter((n) => n !== 'deviation' && !n.startsWith('---'));
    assert.deepEqual(names.sort(), DEVIATIONS.map((d) => d.name).sort());
  });

  test('the list of deviations is exact: each one occurs', (t) => {
    report(t, 'whole corpus', all);
    for (const [name, example] of all.examples) t.diagnostic(`e.g. ${name}: ${example}`);
    assert.deepEqual([...all.deviations.keys()].sort(), DEVIATIONS.map((d) => d.name).sort());
  });
});

function merge(into: Tally, from: Tally): void {
  into.cases += from.cases;
  into.agreed += from.agreed;
  for (const [k, v] of from.deviations) into.deviations.set(k, (into.deviations.get(k) ?? 0) + v);
  for (const [k, v] of from.examples) if (!into.examples.has(k)) into.examples.set(k, v);
  into.unexplained.push(...from.unexplained);
}
