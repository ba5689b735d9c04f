/**
 * The hand-written query cases: each rule of Rack 2.2's parse_nested_query
 * and json 2.6.3's JSON.generate that src/query/ matches. Queries are latin1
 * strings of raw bytes ('\xff' is the byte 0xFF); expected JSON is the text
 * as a JS string (its UTF-8 encoding is what Ruby wrote).
 *
 * One table, two users: test/query/query-to-json.test.ts checks queryToJson
 * against each expectation, and test/query/query-to-json.rack.test.ts checks each
 * expectation (and queryToJson) against Rack itself.
 */

export interface QueryCase {
  /** What the case shows; also the test name. */
  why: string;
  query: string;
  /** The JSON text, or MALFORMED where Rack or JSON.generate raises (or writes bytes that are not UTF-8). */
  expected: string | typeof MALFORMED;
}

export const MALFORMED = Symbol('malformed');

const ok = (why: string, query: string, expected: string): QueryCase => ({ why, query, expected });
const bad = (why: string, query: string): QueryCase => ({ why, query, expected: MALFORMED });

/** `group` repeated `times` times. */
const nest = (group: string, times: number): string => group.repeat(times);

export const QUERY_CASES: readonly QueryCase[] = [
  // --- splitting: DEFAULT_SEP = /[&;] */n, then p.split('=', 2)
  ok('empty query', '', '{}'),
  ok('one pair', 'foo=bar', '{"foo":"bar"}'),
  ok('key without = is nil', 'foo', '{"foo":null}'),
  ok('key with = and nothing is empty string', 'foo=', '{"foo":""}'),
  ok('& separates', 'a=1&b=2', '{"a":"1","b":"2"}'),
  ok('; separates', 'a=1;b=2', '{"a":"1","b":"2"}'),
  ok('mixed separators', 'a=1;&b=2&;c', '{"a":"1","b":"2","c":null}'),
  ok('spaces after a separator are swallowed', 'a=1&   b=2', '{"a":"1","b":"2"}'),
  ok('spaces before a separator are kept', 'a=1 &b=2 ', '{"a":"1 ","b":"2 "}'),
  ok('leading space is kept', ' a=1', '{" a":"1"}'),
  ok('separator, spaces, separator', 'a=1&  ;  b=2', '{"a":"1","b":"2"}'),
  ok('empty pieces are skipped', '&&a=1&&;;', '{"a":"1"}'),
  ok('only separators', '&;&', '{}'),
  ok('only spaces is a key', '  ', '{"  ":null}'),
  ok('value keeps later =', 'a=b=c', '{"a":"b=c"}'),
  ok('empty key is dropped', '=x&b', '{"b":null}'),
  ok('lone = is dropped', '=', '{}'),
  ok('== is an empty key', '==', '{}'),
  ok('repeated key: last value wins', 'a=1&a=2', '{"a":"2"}'),
  ok('repeated key keeps its first position', 'a=1&b=2&a=3', '{"a":"3","b":"2"}'),
  ok('integer-like keys keep insertion order', 'b=1&2=x', '{"b":"1","2":"x"}'),
  ok('integer-like keys are not sorted', '10=a&2=b&1=c&x=d', '{"10":"a","2":"b","1":"c","x":"d"}'),

  // --- unescaping: URI.decode_www_form_component
  ok('+ is a space in values', 'a=x+y', '{"a":"x y"}'),
  ok('+ is a space in keys', 'a+b=c', '{"a b":"c"}'),
  ok('%XX is a byte', 'a=%41%62', '{"a":"Ab"}'),
  ok('lowercase hex', 'a=%e2%82%ac', '{"a":"€"}'),
  ok('%2B is a plus', 'a=%2B', '{"a":"+"}'),
  ok('escaped separators stay in the value', 'a=%26b%3Dc%3B', '{"a":"&b=c;"}'),
  ok('escaped = in a key', 'a%3D=b', '{"a=":"b"}'),
  ok('a %-encoded URL', 'u=https%3A%2F%2Fwww.scrooge.co.uk%2Fp%3Fq%3D1', '{"u":"https://www.scrooge.co.uk/p?q=1"}'),
  bad('% at the end', 'a=%'),
  bad('% with one hex digit', 'a=%4'),
  bad('% with non-hex digits', 'a=%zz'),
  bad('%% before a valid escape', 'a=%%41'),
  bad('invalid % in a key', '%=1'),
  bad('invalid % in an overwritten value still raises', 'a=%G0&a=2'),
  bad('invalid % in a dropped key still raises', '[%]=1'),

  // --- UTF-8: keys must be valid (regex), values only if they reach JSON
  ok('%-encoded UTF-8 value', 'a=%C3%A9', '{"a":"é"}'),
  ok('raw UTF-8 bytes in a value', 'a=\xc3\xa9', '{"a":"é"}'),
  ok('raw UTF-8 bytes in a key', '\xc3\xa9=1', '{"é":"1"}'),
  ok('4-byte UTF-8', 'a=%F0%9F%98%80', '{"a":"😀"}'),
  bad('invalid UTF-8 value', 'a=%FF'),
  bad('raw invalid byte in a value', 'a=\xff'),
  ok('invalid UTF-8 value that is overwritten', 'a=%FF&a=1', '{"a":"1"}'),
  bad('valid value overwritten by an invalid one', 'a=1&a=%FF'),
  bad('invalid UTF-8 key', '%FF=1'),
  bad('invalid UTF-8 key without value', '%FF&a=1'),
  bad('raw invalid byte in a key', '\xff=1'),
  bad('invalid UTF-8 inside brackets', 'a[%FF]=1'),
  bad('invalid UTF-8 key that would be dropped', '[%FF'),
  bad('UTF-16 surrogate encoded in UTF-8', 'a=%ED%A0%80'),
  bad('overlong encoding', 'a=%C0%80'),
  bad('above U+10FFFF', 'a=%F4%90%80%80'),
  bad('truncated sequence', 'a=%E3%81'),
  ok('smallest 2-byte character', 'a=%C2%80', '{"a":"\u0080"}'),
  bad('overlong 2-byte lead C1', 'a=%C1%BF'),
  ok('smallest 3-byte character', 'a=%E0%A0%80', '{"a":"\u0800"}'),
  bad('overlong 3-byte', 'a=%E0%9F%BF'),
  ok('last character before the surrogates', 'a=%ED%9F%BF', '{"a":"\ud7ff"}'),
  ok('first character after the surrogates', 'a=%EE%80%80', '{"a":"\ue000"}'),
  bad('overlong 4-byte', 'a=%F0%8F%BF%BF'),
  ok('smallest 4-byte character', 'a=%F0%90%80%80', '{"a":"\u{10000}"}'),
  ok('U+10FFFF', 'a=%F4%8F%BF%BF', '{"a":"\u{10ffff}"}'),
  bad('lead byte F5', 'a=%F5%80%80%80'),
  bad('lone continuation byte', 'a=%80'),
  bad('ASCII inside a sequence', 'a=%C3A'),
  bad('an escaped quote inside a sequence', 'a=%C3%22'),
  bad('a sequence cut short in a key', '%E2%82=1'),
  // json 2.6.3 copies these out raw (its isLegalUTF8 misses the ASCII byte
  // after ED or F4); no JS string encodes to that, so they are malformed here.
  bad('ED, ASCII, continuation: Ruby writes non-UTF-8', 'a=%ED%7F%80'),
  bad('F4, quote, continuations: Ruby writes broken JSON', 'a=%F4%22%80%80'),
  bad('invalid value kept in an array', 'a[]=%FF&a[]=1'),
  ok('invalid nested value that is overwritten', 'a[b]=%FF&a[b]=1', '{"a":{"b":"1"}}'),
  bad('an invalid value is still a String for type clashes', 'a=%FF&a[]=1'),
  ok('invalid value replaced by a string', 'a[]=%FF&a=1', '{"a":"1"}'),

  // --- JSON.generate escaping
  ok('quote, backslash, slash', 'a=%22%5C%2F', '{"a":"\\"\\\\/"}'),
  ok('control characters', 'a=%00%01%08%09%0A%0B%0C%0D%1F', '{"a":"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f"}'),
  ok('DEL is not escaped', 'a=%7F', '{"a":"\x7f"}'),
  ok('U+2028 and U+2029 are not escaped', 'a=%E2%80%A8%E2%80%A9', '{"a":"\u2028\u2029"}'),
  ok('escapes in keys', '%22%0A=1', '{"\\"\\n":"1"}'),
  ok('2-, 3- and 4-byte UTF-8 in keys', '%C3%A9%E2%82%AC%F0%9F%98%80=1', '{"é€😀":"1"}'),
  ok('DEL, U+2028 and controls in keys', '%7F%E2%80%A8%01%09=1', '{"\x7f\u2028\\u0001\\t":"1"}'),
  ok('escaped and unescaped in one value', 'a=%22+%C3%A9%5C\xc3\xa9%1F', '{"a":"\\" é\\\\é\\u001f"}'),

  // --- normalize_params: arrays and hashes
  ok('array', 'a[]=1&a[]=2', '{"a":["1","2"]}'),
  ok('hash', 'a[b]=c', '{"a":{"b":"c"}}'),
  ok('nested hash', 'a[b][c]=d', '{"a":{"b":{"c":"d"}}}'),
  ok('array of hashes', 'a[][x]=1&a[][y]=2&a[][x]=3', '{"a":[{"x":"1","y":"2"},{"x":"3"}]}'),
  ok('beacon items list', 'items[][id]=7&items[][qty]=2&items[][id]=9&items[][qty]=1', '{"items":[{"id":"7","qty":"2"},{"id":"9","qty":"1"}]}'),
  ok('array without value', 'a[]', '{"a":[null]}'),
  ok('hash without value', 'a[b]', '{"a":{"b":null}}'),
  ok('hash key repeated: last wins', 'a[b]=1&a[c]=2&a[b]=3', '{"a":{"b":"3","c":"2"}}'),
  bad('string then array', 'a=1&a[]=2'),
  bad('string then hash', 'a=1&a[b]=2'),
  bad('hash then array', 'a[b]=1&a[]=2'),
  bad('array then hash', 'a[]=1&a[b]=2'),
  bad('string then array of hashes', 'a=1&a[][b]=2'),
  ok('array then string: the string replaces it', 'a[]=1&a=2', '{"a":"2"}'),
  ok('nil then array (||= sees nil)', 'a&a[]=1', '{"a":["1"]}'),
  ok('nil then hash (||= sees nil)', 'a&a[b]=1', '{"a":{"b":"1"}}'),
  ok('nested nil then hash', 'a[b]&a[b][c]=1', '{"a":{"b":{"c":"1"}}}'),
  bad('nested type clash', 'x[y]=1&x[y][]=2'),

  // --- normalize_params: odd names
  ok('[] alone is dropped', '[]=1', '{}'),
  ok('[] without value is dropped', '[]', '{}'),
  ok('leading brackets are skipped', '[a]=1', '{"a":"1"}'),
  ok('brackets around are skipped', ']]a]]=1', '{"a":"1"}'),
  ok('trailing ] is skipped', 'a]=1', '{"a":"1"}'),
  ok('after == "[" keeps the whole name', 'a[=1', '{"a[":"1"}'),
  ok('whole name with leading bracket', '[a[=1', '{"[a[":"1"}'),
  ok('whole name with ]', 'a][=1', '{"a][":"1"}'),
  ok('nested name without key stores nil', 'a[[]=1', '{"a":null}'),
  ok('a[]] appends nil', 'a[]]=1', '{"a":[null]}'),
  ok('a[][] appends Array(v)', 'a[][]=1', '{"a":[["1"]]}'),
  ok('a[][] without value appends nil', 'a[][]', '{"a":[null]}'),
  ok('text after ] continues the hash', 'a[x]y=1', '{"a":{"x":{"y":"1"}}}'),
  ok('text after [] is a child key', 'a[]x=1', '{"a":[{"x":"1"}]}'),
  bad('child key into a string', 'a[][x]=1&a[][x][y]=2'),
  ok('child key adds to the last hash', 'a[][x][y]=1&a[][x][z]=2', '{"a":[{"x":{"y":"1","z":"2"}}]}'),
  ok('child key already there starts a new hash', 'a[][x][y]=1&a[][x][y]=2', '{"a":[{"x":{"y":"1"}},{"x":{"y":"2"}}]}'),
  ok('a[][] into a hash is discarded', 'a[][x]=1&a[][]=2', '{"a":[{"x":"1"}]}'),
  ok('child key "]" appends nil', 'a[][x]=1&a[]]=2', '{"a":[{"x":"1"},null]}'),

  // --- Ruby's ^ and $ are line anchors; only "\n" ends a line
  ok('[][y] on a later line is an array child', 'a[x%0A[][y]=1', '{"a":[{"y":"1"}]}'),
  ok('[][c] after a newline', 'a[b]%0A[][c]=1', '{"a":[{"c":"1"}]}'),
  ok('raw newline works the same', 'a[x\n[][y]=1', '{"a":[{"y":"1"}]}'),
  ok('\\r is not a line end', 'a[x%0D[][y]=1', '{"a":{"x\\r":[{"y":"1"}]}}'),
  ok('U+2028 is not a line end', 'a[x%E2%80%A8[][y]=1', '{"a":{"x\u2028":[{"y":"1"}]}}'),
  ok('[^\\[\\]]+ spans lines', 'a[][x%0Ay]=1', '{"a":[{"x\\ny":"1"}]}'),
  ok('$ matches before a newline', 'a[][x%0Ay]%0Aq=1', '{"a":[{"x\\ny":"1"}]}'),
  ok('newline belongs to the key', 'a%0A[]=1', '{"a\\n":["1"]}'),
  ok('[] then newline is not an array', 'a[]%0Ax=1', '{"a":{"\\nx":"1"}}'),

  // --- shortcuts of src/query/: "k[]c", the hash-branch loop, new one-key hashes
  ok('"k[]c" is "k[][c]" (second array regex)', 'a[]x=1&a[]y=2&a[]x=3', '{"a":[{"x":"1","y":"2"},{"x":"3"}]}'),
  ok('"k[]c" and "k[][c]" share the last hash', 'a[]x=1&a[][x]=2&a[]y=3', '{"a":[{"x":"1"},{"x":"2","y":"3"}]}'),
  ok('hash-branch levels down existing and new hashes', 'a[b][c][d]=1&a[b][c][e]=2&a[b][f]=3', '{"a":{"b":{"c":{"d":"1","e":"2"},"f":"3"}}}'),
  bad('hash-branch level meets a string', 'a[b][c]=1&a[b][c][d]=2'),
  ok('"[]" before a newline takes the hash branch', 'a\n[]\n[]=1&a\n[]\n[]=2', '{"a\\n":{"\\n":["1","2"]}}'),
  ok('"[]" then a newline deeper in a hash chain', 'a[b][]\n[c]=1', '{"a":{"b":{"\\n":{"c":"1"}}}}'),
  ok('array regex after hash-branch levels', 'a[b][][c]=1&a[b][][d]=2', '{"a":{"b":[{"c":"1","d":"2"}]}}'),
  ok('"[" after hash-branch levels', 'a[b][c][=1', '{"a":{"b":{"[c][":"1"}}}'),
  ok('no key after hash-branch levels', 'a[b][c][[]=1', '{"a":{"b":{"c":null}}}'),
  // --- a name repeated piece after piece (replayed from where its last walk ended)
  ok('a repeated hash-branch name assigns its key again', 'a[b][c]=1&a[b][c]=2&a[b][c]', '{"a":{"b":{"c":null}}}'),
  bad('a repeated name after a clash in between', 'a[b][c]=1&a[b]=2&a[b][c]=3'),
  ok('a repeated name, escaped and not', 'a%5Bb%5D[c]=1&a[b][c]=2&a%5Bb%5D[c]=3', '{"a":{"b":{"c":"3"}}}'),
  ok('a repeated name ending in "[]"', 'a[b][]=1&a[b][]=2&a[b][]&a[c][]=3', '{"a":{"b":["1","2",null],"c":["3"]}}'),
  ok('a repeated name in the array branch', 'a[][b][c]=1&a[][b][c]=2&a[][b][d]=3&a[][b][d]=4', '{"a":[{"b":{"c":"1"}},{"b":{"c":"2","d":"3"}},{"b":{"d":"4"}}]}'),
  ok('a repeated array-branch name after hash levels', 'a[x][][b]]=1&a[x][][b]]=2&a[x][][c]=3&a[x][][c]=4', '{"a":{"x":[{"b":"1"},{"b":"2","c":"3"},{"c":"4"}]}}'),
  ok('a repeated array-branch name whose child is dropped', 'a[][[]=1&a[][[]=2', '{"a":[null,null]}'),
  ok('a repeated name with newlines', 'a\n[][x]=1&a\n[][x]=2&a[x\n[][y]=3&a[x\n[][y]=4', '{"a\\n":[{"x":"1"},{"x":"2"}],"a":[{"y":"3"},{"y":"4"}]}'),
  ok('a repeated name that yields no key', 'a[[]=1&a[[]=2&a[=3&a[=4', '{"a":null,"a[":"4"}'),
  ok('a repeated array-branch name builds the same new hash each time', 'a[][b][c]=1&a[][b][c]=2&a[][b][c]=3&a[][b][c]&a[][b][c]=5', '{"a":[{"b":{"c":"1"}},{"b":{"c":"2"}},{"b":{"c":"3"}},{"b":{"c":null}},{"b":{"c":"5"}}]}'),
  ok('a repeated array-branch name whose new hash holds nil', 'a[][b][[]=1&a[][b][[]=2&a[][b][[]=3', '{"a":[{"b":null}]}'),
  ok('a repeated array-branch name whose child is the whole rest', 'a[][b][=1&a[][b][=2&a[][b][=3', '{"a":[{"[b][":"3"}]}'),
  ok('a repeated array-branch name whose child makes an array', 'a[][b][]=1&a[][b][]=2&a[][b][]=3', '{"a":[{"b":["1","2","3"]}]}'),
  ok('a repeated array-branch name that appends into the last hash, replayed as a push, nil too, and after another key', 'a[][b][]=1&a[][b][]=2&a[][b][]&a[][b][]=4&a[][c]=5&a[][b][]=6&a[][b][]=7', '{"a":[{"b":["1","2",null,"4","6","7"],"c":"5"}]}'),
  bad('a repeated array-branch name replayed as a push, then a clash', 'a[][b][]=1&a[][b][]=2&a[][b][]=3&a[][b]=4&a[][b][]=5'),
  ok('a repeated name down the last hashes that appends, replayed as a push', 'a[][x][][b][]=1&a[][x][][b][]=2&a[][x][][b][]=3&a[][x][][c]=4&a[][x][][b][]=5', '{"a":[{"x":[{"b":["1","2","3","5"],"c":"4"}]}]}'),
  ok('new "k[][c]" hashes left unbuilt, then another key fills the last', 'a[][x]=1&a[][x]=2&a[][x]=3&a[][y]=4&a[]x', '{"a":[{"x":"1"},{"x":"2"},{"x":"3","y":"4"},{"x":null}]}'),
  ok('chains left unbuilt, then a name fills the last', 'a[][b][c]=1&a[][b][c]=2&a[][b][c]=3&a[][b][c]=4&a[][b][d]=5', '{"a":[{"b":{"c":"1"}},{"b":{"c":"2"}},{"b":{"c":"3"}},{"b":{"c":"4","d":"5"}}]}'),
  ok('chains left unbuilt, with nil values', 'a[][b][c]=1&a[][b][c]=2&a[][b][c]=3&a[][b][c]&a[][b][c]&a[][b][c]=6', '{"a":[{"b":{"c":"1"}},{"b":{"c":"2"}},{"b":{"c":"3"}},{"b":{"c":null}},{"b":{"c":null}},{"b":{"c":"6"}}]}'),
  ok('chains left unbuilt, 100 JSON levels', `a[]${nest('[b]', 98)}=1&`.repeat(3), `{"a":[${Array.from({ length: 3 }, () => `${'{"b":'.repeat(98)}"1"${'}'.repeat(98)}`).join(',')}]}`),
  bad('chains left unbuilt, 101 JSON levels', `a[]${nest('[b]', 99)}=1&`.repeat(3)),
  ok('a repeated name down the last hashes, replayed from the deepest array', 'a[][x][][x]=1&a[][x][][x]=2&a[][x][][x]=3&a[][x][][y]=4&a[][x][][x]=5&a[][x][][x]', '{"a":[{"x":[{"x":"1"},{"x":"2"},{"x":"3","y":"4"},{"x":"5"},{"x":null}]}]}'),
  ok('the deepest array\'s chains left unbuilt, then filled in, then another name', 'a[][x][][b][c]=1&a[][x][][b][c]=2&a[][x][][b][c]=3&a[][x][][b][c]=4&a[][x][][b][d]=5&a[][z]=6&a[][x][][b][c]=7', '{"a":[{"x":[{"b":{"c":"1"}},{"b":{"c":"2"}},{"b":{"c":"3"}},{"b":{"c":"4","d":"5"}},{"b":{"c":"7"}}],"z":"6"}]}'),
  ok('a new chain under the last hash, then into it', 'a[][b][c]=1&a[][b][c]=2&a[][b][d]=3', '{"a":[{"b":{"c":"1"}},{"b":{"c":"2","d":"3"}}]}'),

  // --- limits
  ok('nesting 99 deep', `a${nest('[b]', 99)}=1`, `{"a":${'{"b":'.repeat(99)}"1"${'}'.repeat(100)}`),
  bad('nesting 100 deep (ParamsTooDeepError)', `a${nest('[b]', 100)}=1`),
  bad('nesting 100 deep without value', `a${nest('[b]', 100)}`),
  ok('99 deep then a dropped name', `a${nest('[b]', 98)}[[]=1`, `{"a":${'{"b":'.repeat(97)}{"b":null}${'}'.repeat(98)}`),
  bad('depth limit raises where JSON nesting would not', `a${nest('[b]', 99)}[[]=1`),
  ok('arrays of hashes 49 deep', `a${nest('[][x]', 49)}=1`, `{"a":${'[{"x":'.repeat(49)}"1"${'}]'.repeat(49)}}`),
  bad('arrays of hashes 50 deep (JSON NestingError)', `a${nest('[][x]', 50)}=1`),
  ok('100 JSON levels ending in an array', `a${nest('[b]', 98)}[]=1`, `{"a":${'{"b":'.repeat(98)}["1"]${'}'.repeat(99)}`),
  bad('101 JSON levels ending in an array', `a${nest('[b]', 99)}[]=1`),
  ok('4095 separators', `a=1${'&'.repeat(4095)}`, '{"a":"1"}'),
  bad('4096 separators', `a=1${'&'.repeat(4096)}`),
  bad('4096 separators, mixed', `a=1${'&;'.repeat(2048)}`),
  ok('4 MiB query', `a=${'x'.repeat(4_194_302)}`, `{"a":"${'x'.repeat(4_194_302)}"}`),
  bad('4 MiB + 1 byte query', `a=${'x'.repeat(4_194_303)}`),
  ok('key space: one key of 65536 chars', `${'k'.repeat(65_536)}=1`, `{"${'k'.repeat(65_536)}":"1"}`),
  bad('key space: one key of 65537 chars', `${'k'.repeat(65_537)}=1`),
  bad('key space: two keys over the limit', `${'k'.repeat(40_000)}=1&${'j'.repeat(40_000)}=2`),
  ok('key space: a repeated key counts once', `${'k'.repeat(40_000)}=1&${'k'.repeat(40_000)}=2`, `{"${'k'.repeat(40_000)}":"2"}`),
  ok(
    'key space: nested hashes have their own',
    `a[${'k'.repeat(40_000)}]=1&${'b'.repeat(40_000)}=2`,
    `{"a":{"${'k'.repeat(40_000)}":"1"},"${'b'.repeat(40_000)}":"2"}`,
  ),
  ok('key space counts characters, not bytes', `${'\xc3\xa9'.repeat(65_536)}=1`, `{"${'é'.repeat(65_536)}":"1"}`),
  bad('key space: 65537 two-byte characters', `${'\xc3\xa9'.repeat(65_537)}=1`),
  ok('key space: astral characters count once', `${'%F0%9F%98%80'.repeat(65_536)}=1`, `{"${'😀'.repeat(65_536)}":"1"}`),
  bad('key space: 65537 astral characters', `${'%F0%9F%98%80'.repeat(65_537)}=1`),
];
