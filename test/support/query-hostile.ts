/**
 * Hostile query shapes: the most expensive queries a request line allows
 * (http.maxRequestLineBytes, 8192 by default, leaves 8170 bytes of query
 * after "GET /track?" and " HTTP/1.1\r\n"). Used by bench/query.bench.ts to
 * measure the hostile-input budget (docs/query.md) and by
 * test/query/query-to-json.rack.test.ts to prove the parser still agrees with Rack on
 * them (with random shapes like them: query-grammar.ts hostileQuery).
 *
 * Each shape repeats one piece (or a family of pieces) up to the byte
 * budget; the families cover what makes Rack's algorithm work: deep
 * nesting, array pushes that test the last hash, key collisions, many keys,
 * long keys, %-escapes, newlines in names (Ruby's line anchors).
 */

/** The query bytes a default request line leaves: 8192 - "GET /track?" - " HTTP/1.1\r\n". */
export const MAX_QUERY_BYTES = 8192 - 'GET /track?'.length - ' HTTP/1.1\r\n'.length;

/** Pieces joined by '&' while they fit in `bytes`. */
export function repeatPieces(piece: (i: number) => string, bytes = MAX_QUERY_BYTES): string {
  let query = '';
  for (let i = 0; ; i++) {
    const next = query === '' ? piece(i) : `${query}&${piece(i)}`;
    if (next.length > bytes || next === query) return query;
    query = next;
  }
}

export interface HostileShape {
  name: string;
  query: string;
}

const deep = (group: string, times: number): string => group.repeat(times);

/** The named shapes, each filled to MAX_QUERY_BYTES. */
export function hostileShapes(bytes = MAX_QUERY_BYTES): HostileShape[] {
  const fill = (piece: (i: number) => string): string => repeatPieces(piece, bytes);
  const same = (piece: string): string => fill(() => piece);
  return [
    { name: 'k<i>=v (distinct flat keys)', query: fill((i) => `k${i}=v`) },
    { name: 'a=1 (one key, repeated)', query: same('a=1') },
    { name: 'a[]=1 (array pushes)', query: same('a[]=1') },
    { name: 'a[][x]=1 (same child key)', query: same('a[][x]=1') },
    { name: 'a[][x]=1&a[][y]=2', query: fill((i) => (i % 2 ? 'a[][y]=2' : 'a[][x]=1')) },
    { name: 'a[][b][c][d][e][f]=1', query: same('a[][b][c][d][e][f]=1') },
    { name: 'a[][b][c]=1', query: same('a[][b][c]=1') },
    { name: 'a[][b][]=1', query: same('a[][b][]=1') },
    { name: 'a[][][]=1', query: same('a[][][]=1') },
    { name: 'a[]x=1', query: same('a[]x=1') },
    { name: 'a[b]*98=1 (depth limit)', query: same(`a${deep('[b]', 98)}=1`) },
    { name: 'a[b]*97[c<i>]=1', query: fill((i) => `a${deep('[b]', 97)}[c${i}]=1`) },
    { name: 'a[][b]*97=1', query: same(`a[]${deep('[b]', 97)}=1`) },
    { name: 'a[]*98=1', query: same(`a${deep('[]', 98)}=1`) },
    { name: 'a[][x]*30=1', query: same(`a${deep('[][x]', 30)}=1`) },
    { name: 'a[][b]*20=1 (last-hash walk)', query: same(`a[]${deep('[b]', 20)}=1`) },
    { name: 'a[][b][c]*40=1 (last-hash walk)', query: same(`a[][b]${deep('[c]', 40)}=1`) },
    { name: 'a[x<i>]=1 (one wide hash)', query: fill((i) => `a[x${i}]=1`) },
    { name: 'a[<i%50>][x<i>]=1', query: fill((i) => `a[${i % 50}][x${i}]=1`) },
    { name: '<i*1024>=1 (integer keys)', query: fill((i) => `${i * 1024}=1`) },
    { name: '<i*4096>=1 (integer keys)', query: fill((i) => `${i * 4096}=1`) },
    { name: 'a[<i*4096>]=1', query: fill((i) => `a[${i * 4096}]=1`) },
    { name: 'one long key', query: `${'a'.repeat(bytes - 2)}=1` },
    { name: 'one long %-escaped key', query: `${'%61'.repeat(Math.floor((bytes - 2) / 3))}=1`.slice(0, bytes) },
    { name: 'value of %22 (quotes)', query: `a=${'%22'.repeat(Math.floor((bytes - 2) / 3))}` },
    { name: 'value of %E2%80%A8', query: `a=${'%E2%80%A8'.repeat(Math.floor((bytes - 2) / 9))}` },
    { name: 'value of %01 (controls)', query: `a=${'%01'.repeat(Math.floor((bytes - 2) / 3))}` },
    { name: '%61<i>=%22 (escaped keys)', query: fill((i) => `%61${i}=%22`) },
    { name: '%61[]=%22', query: same('%61[]=%22') },
    { name: '& only', query: '&'.repeat(4095) },
    { name: '[ only', query: '['.repeat(bytes) },
    { name: '[]*n=1', query: `${deep('[]', Math.floor((bytes - 2) / 2))}=1` },
    { name: 'a[*50=1', query: same(`a${deep('[', 50)}=1`) },
    { name: 'a]*50=1', query: same(`a${deep(']', 50)}=1`) },
    { name: 'a[x\\n[][y]=1 (newline anchors)', query: same('a[x\n[][y]=1') },
    { name: 'a(\\n[])*20=1 (newline anchors)', query: same(`a${deep('\n[]', 20)}=1`) },
    { name: 'a(\\n[])*98=1 (newline anchors)', query: same(`a${deep('\n[]', 98)}=1`) },
    { name: 'a[](x\\n)*20=1', query: same(`a[]${deep('x\n', 20)}=1`) },
    { name: 'a(\\n[][x])*30=1', query: same(`a${deep('\n[][x]', 30)}=1`) },
    { name: 'spaces after separators', query: fill(() => '  a=1') },
    { name: 'long-name[]=1', query: same(`${'a'.repeat(26)}[]=1`) },
    { name: 'x{4}H=1 after x{4}<A-G> (8 keys)', query: fill((i) => `${'x'.repeat(4)}${'ABCDEFGH'[Math.min(i, 7)]}=1`) },
    { name: 'x{7}D=1 after x{7}<A-C> (linear search)', query: fill((i) => `${'x'.repeat(7)}${'ABCD'[Math.min(i, 3)]}=1`) },
    { name: 'xH=1 after x<A-G> (8 short keys)', query: fill((i) => `x${'ABCDEFGH'[Math.min(i, 7)]}=1`) },
    { name: 'x{40}H=1 after x{40}<A-G> (8 long keys)', query: fill((i) => `${'x'.repeat(40)}${'ABCDEFGH'[Math.min(i, 7)]}=1`) },
    { name: 'keys in one bucket (unseeded hash)', query: fill((i) => `${collidingKeys()[i] ?? `z${i}`}=1`) },
    // The shortest pieces that each make something new: an 8 KB query holds
    // ~2,700 distinct keys of 1–2 bytes, more than twice the pieces of
    // `k<i>=v`, and the cost of a query is mostly its number of pieces.
    { name: '<i in base 62> (shortest distinct keys)', query: fill(base62) },
    { name: '<i in base 62>=', query: fill((i) => `${base62(i)}=`) },
    { name: '<i in base 62>[]', query: fill((i) => `${base62(i)}[]`) },
    { name: 'a[<i in base 62>]', query: fill((i) => `a[${base62(i)}]`) },
    { name: 'a[]<i in base 62>', query: fill((i) => `a[]${base62(i)}`) },
    { name: 'a[] (array pushes of nil)', query: same('a[]') },
  ];
}

const BASE_62_DIGITS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** i written in base 62 with letters and digits: the shortest distinct keys that need no escape. */
function base62(i: number): string {
  let digits = '';
  do {
    digits = `${BASE_62_DIGITS[i % 62] ?? ''}${digits}`;
    i = Math.floor(i / 62);
  } while (i > 0);
  return digits;
}

let colliding: string[] | undefined;

/**
 * 1,100 five-char keys that the key table's hash as it was before it had a
 * seed (src/query/params.ts keyHash) puts in one bucket of the root hash's
 * table: each insert probed past all the keys before it (hash flooding,
 * ~1.7 ms for 8 KB). With the per-process seed they are ordinary distinct
 * keys. A search of a few million candidates (~0.5 s), done once.
 */
function collidingKeys(): string[] {
  if (colliding !== undefined) return colliding;
  const chars = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const buckets = new Map<number, string[]>();
  for (let i = 0; ; i++) {
    let key = '';
    for (let k = 0, x = i; k < 5; k++, x = Math.floor(x / 36)) key += chars[x % 36];
    // The unseeded hash of key in container 0 (the root), its low 12 bits (the table's first size).
    let h = Math.imul(1, 0x9e3779b1) ^ key.length;
    for (let k = 0; k < key.length; k++) h = Math.imul(h ^ key.charCodeAt(k), 0x01000193);
    const bucket = (h ^ (h >>> 15)) & 4095;
    let keys = buckets.get(bucket);
    if (keys === undefined) buckets.set(bucket, (keys = []));
    keys.push(key);
    if (keys.length === 1100) return (colliding = keys);
  }
}
