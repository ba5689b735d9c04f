/** The Kafka message key: one plain query parameter, decoded as Rack does. */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { keyFromQuery } from '../../../src/backends/kafka/message-key';

test('keyFromQuery', () => {
  const cases: [string, string, string | null][] = [
    ['uid=42&x=1', 'uid', '42'],
    ['x=1;uid=a+b%20c', 'uid', 'a b c'],
    ['uid=1&uid=2', 'uid', '2'],
    ['uid', 'uid', null],
    ['x=1', 'uid', null],
    ['', 'uid', null],
    ['u%69d=7', 'uid', '7'],
    ['uid=%CE%B1', 'uid', 'α'],
    ['uid=%FF', 'uid', null],
    ['uid=%zz', 'uid', null],
    ['uid[]=1', 'uid', null],
    ['a=1&  uid=5', 'uid', '5'],
  ];
  for (const [query, name, expected] of cases) assert.equal(keyFromQuery(query, name), expected, query);
});
