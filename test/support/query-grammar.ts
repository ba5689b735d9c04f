/**
 * Generated queries for the query tests: a seeded grammar of troublesome
 * pieces (few key names, so keys collide; odd brackets; invalid %-escapes;
 * non-UTF-8 bytes; newlines; deep nesting), used by test/query/query-to-json.rack.test.ts
 * against Rack.
 */

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

  // Few names, so that keys collide: duplicates, type clashes, ||= on nil.
  private static readonly BASES = ['a', 'a', 'a', 'b', 'b', 'c', '0', '1', '10', 'x y', 'x+y', '%61', '\xc3\xa9', '%C3%A9', ''];
  private static readonly ODD_BASES = [
    '%FF', '\xff', '%0A', '\n', '\r', '%0D', '%5B', '%5D', '%', '%4', '%zz', '%2', '%E2%80%A8', '%F0%9F%98%80',
    '%ED%A0%80', '%C0%80', '%22', '\\', ' ', '%20', '%00', '%7F', '\x80', '\xe3\x81',
  ];

  private static readonly GROUPS = ['[]', '[]', '[]', '[x]', '[x]', '[y]', '[a]', '[0]', '[][x]', '[][x]', '[][y]'];
  private static readonly ODD_GROUPS = [
    '[', ']', '[[', ']]', '[]]', '[[]]', '[%5D', '%5B]', '%5B%5D', '[\n', '%0A[]', '\n[]', '[][]', 'z', '[x]]', '[]x',
    '[%FF]', '[\xc3\xa9]', '[x%0A', '%0A[][y]', '[x+y]', '[%]', '[][%0A]', '[x\r', '[%E2%80%A8',
  ];

  private static readonly VALUE_ATOMS = ['', '1', 'v', 'x+y', '\xc3\xa9', '%C3%A9', '/', '%2F', '+', '=', '%26', '%3B', ' '];
  private static readonly ODD_VALUE_ATOMS = [
    '%FF', '\xff', '%E2%80%A8', '%E2%80%A9', '%00', '%1F', '%7F', '%22', '%5C', '%', '%G1', '%ED%A0%80',
    '%F0%9F%98%80', '%C0%80', '%E3%81', '%0D%0A', '%08', '%0C', '%09', '%0B', '\x7f', '\x01', '%f4%8f%bf%bf',
    '%F4%90%80%80', '[', ']',
  ];

  private static readonly SEPARATORS = ['&', '&', '&', '&', ';'];
  private static readonly ODD_SEPARATORS = ['& ', ';  ', '&&', '&;', ' &', '& ;', '&\t'];

  name(): string {
    let name = this.chance(0.05) ? this.pick(QueryGrammar.ODD_GROUPS) : '';
    name += this.pickMostly(QueryGrammar.BASES, QueryGrammar.ODD_BASES);
    const groups = this.chance(0.03) ? 40 + this.int(70) : this.int(4);
    const deepGroup = this.pick(['[b]', '[][x]', '[]']);
    for (let i = 0; i < groups; i++) {
      name += groups > 10 ? deepGroup : this.pickMostly(QueryGrammar.GROUPS, QueryGrammar.ODD_GROUPS, 0.15);
    }
    return name;
  }

  value(): string {
    let value = '';
    for (let atoms = this.int(4); atoms > 0; atoms--) {
      value += this.pickMostly(QueryGrammar.VALUE_ATOMS, QueryGrammar.ODD_VALUE_ATOMS, 0.08);
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
    const separator = (): string => this.pickMostly(QueryGrammar.SEPARATORS, QueryGrammar.ODD_SEPARATORS, 0.15);
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
    const meaningful = '&;= [[]]]%+\n\raab0';
    let query = '';
    for (let length = this.int(24); length > 0; length--) {
      query += this.chance(0.9) ? meaningful.charAt(this.int(meaningful.length)) : String.fromCharCode(this.int(256));
    }
    return query;
  }
}

