/**
 * Generated queries for the query tests: a grammar of troublesome pieces
 * (few key names, so keys collide; odd brackets; invalid %-escapes;
 * non-UTF-8 bytes; newlines; deep nesting), as fast-check arbitraries
 * (test/query/query-to-json.rack.test.ts, against Rack) and as a seeded
 * generator (QueryGrammar, for the queries and bodies of
 * test/query/body-to-json.rack.test.ts).
 */
import fc from 'fast-check';
import { MAX_QUERY_BYTES, repeatPieces } from './query-hostile';

// Few names, so that keys collide: duplicates, type clashes, ||= on nil.
const BASES = ['a', 'a', 'a', 'b', 'b', 'c', '0', '1', '10', 'x y', 'x+y', '%61', '\xc3\xa9', '%C3%A9', ''];
const ODD_BASES = [
  '%FF', '\xff', '%0A', '\n', '\r', '%0D', '%5B', '%5D', '%', '%4', '%zz', '%2', '%E2%80%A8', '%F0%9F%98%80',
  '%ED%A0%80', '%C0%80', '%22', '\\', ' ', '%20', '%00', '%7F', '\x80', '\xe3\x81',
];

const GROUPS = ['[]', '[]', '[]', '[x]', '[x]', '[y]', '[a]', '[0]', '[][x]', '[][x]', '[][y]'];
const ODD_GROUPS = [
  '[', ']', '[[', ']]', '[]]', '[[]]', '[%5D', '%5B]', '%5B%5D', '[\n', '%0A[]', '\n[]', '[][]', 'z', '[x]]', '[]x',
  '[%FF]', '[\xc3\xa9]', '[x%0A', '%0A[][y]', '[x+y]', '[%]', '[][%0A]', '[x\r', '[%E2%80%A8',
];

const VALUE_ATOMS = ['', '1', 'v', 'x+y', '\xc3\xa9', '%C3%A9', '/', '%2F', '+', '=', '%26', '%3B', ' '];
const ODD_VALUE_ATOMS = [
  '%FF', '\xff', '%E2%80%A8', '%E2%80%A9', '%00', '%1F', '%7F', '%22', '%5C', '%', '%G1', '%ED%A0%80',
  '%F0%9F%98%80', '%C0%80', '%E3%81', '%0D%0A', '%08', '%0C', '%09', '%0B', '\x7f', '\x01', '%f4%8f%bf%bf',
  '%F4%90%80%80', '[', ']',
];

const SEPARATORS = ['&', '&', '&', '&', ';'];
const ODD_SEPARATORS = ['& ', ';  ', '&&', '&;', ' &', '& ;', '&\t'];

/** Raw bytes, weighted towards the ones that mean something to Rack. */
const MEANINGFUL_BYTES = '&;= [[]]]%+\n\raab0';

/** Builds queries (latin1 strings of raw bytes) from a grammar of troublesome pieces. */
export class QueryGrammar {
  constructor(private readonly random: () => number) {}

  private int(below: number): number {
    return Math.floor(this.random() * below);
  }

  private pick(choices: readonly string[]): string {
    return choices[this.int(choices.length)] ?? '';
  }

  private chance(p: number): boolean {
    return this.random() < p;
  }

  /** Mostly `common`, sometimes `odd`: enough odd pieces to hit every rule, few enough that most queries parse. */
  private pickMostly(common: readonly string[], odd: readonly string[], oddChance = 0.06): string {
    return this.pick(this.chance(oddChance) ? odd : common);
  }

  name(): string {
    let name = this.chance(0.05) ? this.pick(ODD_GROUPS) : '';
    name += this.pickMostly(BASES, ODD_BASES);
    const groups = this.chance(0.03) ? 40 + this.int(70) : this.int(4);
    const deepGroup = this.pick(['[b]', '[][x]', '[]']);
    for (let i = 0; i < groups; i++) {
      name += groups > 10 ? deepGroup : this.pickMostly(GROUPS, ODD_GROUPS, 0.15);
    }
    return name;
  }

  value(): string {
    let value = '';
    for (let atoms = this.int(4); atoms > 0; atoms--) {
      value += this.pickMostly(VALUE_ATOMS, ODD_VALUE_ATOMS, 0.08);
    }
    return value;
  }

  pair(): string {
    switch (this.int(8)) {
      case 0:
        return this.name();
      case 1:
        return `=${this.value()}`;
      case 2:
        return '';
      default:
        return `${this.name()}=${this.value()}`;
    }
  }

  query(): string {
    const separator = (): string => this.pickMostly(SEPARATORS, ODD_SEPARATORS, 0.15);
    let query = this.chance(0.1) ? separator() : '';
    const pairs = this.int(9);
    for (let i = 0; i < pairs; i++) {
      if (i > 0) query += separator();
      query += this.pair();
    }
    if (this.chance(0.1)) query += separator();
    return query;
  }

  /** Raw bytes, weighted towards the ones that mean something to Rack. */
  bytes(): string {
    let query = '';
    for (let length = this.int(24); length > 0; length--) {
      query += this.chance(0.9) ? MEANINGFUL_BYTES.charAt(this.int(MEANINGFUL_BYTES.length)) : String.fromCharCode(this.int(256));
    }
    return query;
  }
}


// --- the same grammar as fast-check arbitraries --------------------------------

/** Mostly one of `common`, one of `odd` with about `oddChance`. */
function mostly(common: readonly string[], odd: readonly string[], oddChance: number): fc.Arbitrary<string> {
  const oddWeight = Math.round(oddChance * 100);
  return fc.oneof({ arbitrary: fc.constantFrom(...common), weight: 100 - oddWeight }, { arbitrary: fc.constantFrom(...odd), weight: oddWeight });
}

const nameArbitrary: fc.Arbitrary<string> = fc
  .tuple(
    fc.option(fc.constantFrom(...ODD_GROUPS), { freq: 20 }),
    mostly(BASES, ODD_BASES, 0.06),
    fc.oneof(
      { arbitrary: fc.array(mostly(GROUPS, ODD_GROUPS, 0.15), { maxLength: 3 }).map((groups) => groups.join('')), weight: 97 },
      // Now and then a deep one: 40 to 109 levels of one group.
      { arbitrary: fc.tuple(fc.integer({ min: 40, max: 109 }), fc.constantFrom('[b]', '[][x]', '[]')).map(([n, group]) => group.repeat(n)), weight: 3 },
    ),
  )
  .map(([lead, base, groups]) => (lead ?? '') + base + groups);

const valueArbitrary: fc.Arbitrary<string> = fc.array(mostly(VALUE_ATOMS, ODD_VALUE_ATOMS, 0.08), { maxLength: 3 }).map((atoms) => atoms.join(''));

const pairArbitrary: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: nameArbitrary, weight: 1 },
  { arbitrary: valueArbitrary.map((value) => `=${value}`), weight: 1 },
  { arbitrary: fc.constant(''), weight: 1 },
  { arbitrary: fc.tuple(nameArbitrary, valueArbitrary).map(([name, value]) => `${name}=${value}`), weight: 5 },
);

const separatorArbitrary = mostly(SEPARATORS, ODD_SEPARATORS, 0.15);

/** A query of up to 8 pairs from the grammar (what QueryGrammar#query makes). */
export const grammarQuery: fc.Arbitrary<string> = fc
  .tuple(fc.option(separatorArbitrary, { freq: 10 }), fc.array(fc.tuple(separatorArbitrary, pairArbitrary), { maxLength: 8 }), fc.option(separatorArbitrary, { freq: 10 }))
  .map(([lead, pairs, trail]) => (lead ?? '') + pairs.map(([separator, pair], i) => (i > 0 ? separator : '') + pair).join('') + (trail ?? ''));

/** Up to 23 raw bytes, mostly ones that mean something to Rack (what QueryGrammar#bytes makes). */
export const rawBytesQuery: fc.Arbitrary<string> = fc
  .array(fc.oneof({ arbitrary: fc.constantFrom(...MEANINGFUL_BYTES), weight: 9 }, { arbitrary: fc.integer({ min: 0, max: 255 }).map((b) => String.fromCharCode(b)), weight: 1 }), { maxLength: 23, size: 'max' })
  .map((bytes) => bytes.join(''));

/**
 * Random hostile queries (query-hostile.ts) for the oracle: one to
 * three pieces made of the shapes' building blocks, nested deep (up to 98
 * groups) or not, with a value or none, repeated in turn up to 1 ..
 * MAX_QUERY_BYTES bytes.
 */
const GROUP_BLOCKS = ['[]', '[b]', '[c]', '[][x]', '[][y]', '[', ']', '\n[]', '\n', '[0]', '[%5B]', 'x', '[\n]'];
const hostilePiece: fc.Arbitrary<string> = fc
  .record({
    base: fc.constantFrom('a', 'a', 'b', '0', '%61', '[a]', '\na'),
    groups: fc.oneof({ arbitrary: fc.array(fc.constantFrom(...GROUP_BLOCKS), { maxLength: 7 }), weight: 4 }, { arbitrary: fc.array(fc.constantFrom(...GROUP_BLOCKS), { maxLength: 98, size: 'max' }), weight: 1 }),
    value: fc.option(fc.constantFrom('1', '', '%22', '%E2%80%A8', 'x+y'), { freq: 10 }),
  })
  .map(({ base, groups, value }) => base + groups.join('') + (value === null ? '' : `=${value}`));

export const hostileQuery: fc.Arbitrary<string> = fc
  .tuple(fc.array(hostilePiece, { minLength: 1, maxLength: 3 }), fc.noBias(fc.integer({ min: 1, max: MAX_QUERY_BYTES })))
  .map(([pieces, bytes]) => repeatPieces((i) => pieces[i % pieces.length] ?? '', bytes));
