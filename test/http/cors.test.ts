/** Origin patterns: exact, wildcard, "*", the default from hosts. */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { OriginPolicy } from '../../src/http/cors';

test('exact origins, wildcards and "*"', () => {
  const policy = new OriginPolicy(['https://www.Example.com', 'http://127.0.0.1:8080', 'https://*.shop.example', 'http://*.dev.example:3000']);
  const allowed = ['https://www.example.com', 'HTTPS://WWW.EXAMPLE.COM', 'http://127.0.0.1:8080', 'https://a.shop.example', 'https://a.b.shop.example', 'http://x.dev.example:3000'];
  const refused = [
    'http://www.example.com', 'https://www.example.com:443', 'https://example.com', 'http://127.0.0.1', 'http://127.0.0.1:8081',
    'https://shop.example', 'https://.shop.example', 'http://a.shop.example', 'https://a.shop.example:8443', 'https://ashop.example',
    'http://x.dev.example', 'http://x.dev.example:3001', 'null', '',
  ];
  for (const origin of allowed) assert.ok(policy.allows(origin), origin);
  for (const origin of refused) assert.ok(!policy.allows(origin), origin);
  assert.ok(new OriginPolicy(['*']).allows('https://anything.example'));
  assert.ok(!new OriginPolicy([]).allows('https://anything.example'));
});

test('the default: https:// and http:// of each host, no port', () => {
  const policy = OriginPolicy.fromHosts(['www.skroutz.gr', 'skroutz.gr']);
  for (const origin of ['https://www.skroutz.gr', 'http://www.skroutz.gr', 'https://skroutz.gr']) assert.ok(policy.allows(origin), origin);
  for (const origin of ['https://m.skroutz.gr', 'https://www.skroutz.gr:8443']) assert.ok(!policy.allows(origin), origin);
});
