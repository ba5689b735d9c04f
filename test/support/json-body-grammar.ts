/**
 * Generated JSON bodies for test/query/body-to-json.rack.test.ts: a seeded
 * grammar of what Ruby's json parser treats specially (duplicate and
 * integer-like keys, every kind of escape and surrogate, floats at the edges
 * of Float#to_s's notations, bignums, comments, deep nesting), and random
 * byte mutations of them for the error paths. Bodies are latin1 strings of
 * raw bytes.
 */
export class JsonBodyGrammar {
  constructor(private readonly random: () => number) {}

  private int(below: number): number {
    return Math.floor(this.random() * below);
  }

  private pick<T>(choices: readonly T[]): T {
    return choices[this.int(choices.length)]!;
  }

  private chance(p: number): boolean {
    return this.random() < p;
  }

  private static readonly KEYS = ['a', 'a', 'b', 'c', '1', '10', '2', '', 'x y', '\xc3\xa9', '\\u00e9', 'a\\"b', 'k\\n', '\\/', 'a[b]', '\\u0000'];
  private static readonly STRINGS = [
    '', 'v', 'x y', '\xc3\xa9', '\xf0\x9f\x98\x80', '\\u00e9', '\\ud83d\\ude00', '\\ud800\\u0041', '\\udc00', '\\ud800abcdefg',
    '\\ud800\\\\abcde', '\\ud800x', '\\x', '\\/', '/', '\\"', '\\\\', '\\b\\f\\n\\r\\t', '\\u001f', '\\u007f', '\x7f', '\\u2028',
    '\xff', '\xc3', '\xed\xa0\x80', 'a\\u0000b', '\\q', '\\\xc3\xa9', '\\U0041', '\\u00', '\t', '\x01',
  ];
  private static readonly NUMBERS = [
    '0', '-0', '1', '-1', '12345678901234567890123456789', '-98765432109876543210', '1.0', '-0.0', '0.0', '1e2', '1E2', '1e+2',
    '1.5e-5', '0.0001', '0.00012345', '1e14', '1e15', '1e16', '123456789012345.0', '1234567890123456.0', '12345678901234567.0',
    '1.7976931348623157e308', '5e-324', '1e400', '-1e400', '1e-400', '0.1', '2.5', '100.0', '1.0e+20', '3.14159', '01', '1.',
    '.5', '-', '1e', '+1', '0x10', '1.5.2', 'NaN', 'Infinity', '-Infinity',
  ];
  private static readonly SPACES = ['', '', '', ' ', '\n', '\t', '\r\n', '/* c */', '// c\n', '/**/', '//\n', '/* * / */', '/'];

  private space(): string {
    return this.chance(0.2) ? this.pick(JsonBodyGrammar.SPACES) : '';
  }

  private key(): string {
    return `"${this.pick(JsonBodyGrammar.KEYS)}"`;
  }

  value(depth: number): string {
    const r = this.random();
    if (depth < 4 && r < 0.12) return this.object(depth + 1);
    if (depth < 4 && r < 0.22) return this.array(depth + 1);
    if (r < 0.5) return `"${this.pick(JsonBodyGrammar.STRINGS)}${this.chance(0.3) ? this.pick(JsonBodyGrammar.STRINGS) : ''}"`;
    if (r < 0.85) return this.pick(JsonBodyGrammar.NUMBERS);
    return this.pick(['true', 'false', 'null', 'tru', 'nul']);
  }

  object(depth = 1): string {
    const n = this.int(5);
    const members: string[] = [];
    for (let i = 0; i < n; i++) members.push(`${this.space()}${this.key()}${this.space()}:${this.space()}${this.value(depth)}${this.space()}`);
    return `{${members.join(',')}${this.space()}}`;
  }

  private array(depth: number): string {
    const n = this.int(4);
    const items: string[] = [];
    for (let i = 0; i < n; i++) items.push(`${this.space()}${this.value(depth)}${this.space()}`);
    return `[${items.join(',')}]`;
  }

  /** A whole body: mostly an object, some arrays of objects, deep nesting, odd tops, mutations. */
  body(): string {
    const r = this.random();
    let body: string;
    if (r < 0.6) {
      body = this.object();
    } else if (r < 0.8) {
      const n = this.int(4);
      const items: string[] = [];
      for (let i = 0; i < n; i++) items.push(this.chance(0.95) ? this.object() : this.value(1));
      body = `[${items.join(',')}]`;
    } else if (r < 0.88) {
      // Nesting around json's max_nesting (100).
      const depth = 96 + this.int(8);
      body = `{"d":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;
    } else if (r < 0.92) {
      body = this.pick(['1', '"s"', 'null', '[]', '{}', '', ' ', '[1]', '{}x', '{} // end', '{} // end\n', '{},{}']);
    } else {
      body = this.object();
    }
    body = `${this.space()}${body}${this.space()}`;
    if (this.chance(0.15)) body = this.mutate(body);
    return body;
  }

  private mutate(body: string): string {
    const at = this.int(body.length + 1);
    const byte = String.fromCharCode(this.pick([0x22, 0x5c, 0x2c, 0x3a, 0x7d, 0x5d, 0x20, 0x00, 0x0a, 0x2f, 0x2a, 0xff, this.int(256)]));
    switch (this.int(3)) {
      case 0:
        return body.slice(0, at) + byte + body.slice(at);
      case 1:
        return body.slice(0, at) + body.slice(at + 1);
      default:
        return body.slice(0, at) + byte + body.slice(at + 1);
    }
  }
}
