/**
 * record.ts: the one place that builds and reads the record
 * {"flavor":"<name>","time":"<time>","values":<json>}.
 */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { buildRecord, isRecordOf, recordHead, splitRecord } from '../src/record';

const record = (values: string, flavor = 'skroutz', time = '2026-11-29T22:41:03.123+02:00') => `{"flavor":"${flavor}","time":"${time}","values":${values}}`;

describe('buildRecord', () => {
  test('writes the documented shape, byte for byte', () => {
    const head = recordHead('skroutz');
    assert.equal(head, '{"flavor":"skroutz","time":"');
    assert.equal(buildRecord(head, '2026-11-29T22:41:03.123+02:00', '{"a":"1"}'), record('{"a":"1"}'));
    assert.deepEqual(JSON.parse(buildRecord(recordHead('a"b\\c'), 't', '{}')), { flavor: 'a"b\\c', time: 't', values: {} });
  });

  test('splitRecord and isRecordOf read back what buildRecord writes', () => {
    const text = buildRecord(recordHead('alve'), '2026-01-01T00:00:00.000+02:00', '{"x":["1",{"y":"}"}]}');
    assert.deepEqual(splitRecord(text), { flavor: 'alve', values: '{"x":["1",{"y":"}"}]}' });
    assert.ok(isRecordOf(recordHead('alve'), text));
    assert.ok(!isRecordOf(recordHead('skroutz'), text));
    assert.ok(!isRecordOf(recordHead('alve'), `${text} `));
  });
});

describe('splitRecord', () => {
  test('takes the values text as written, and rejects other shapes', () => {
    assert.deepEqual(splitRecord(record('{"a":"}}"}')), { flavor: 'skroutz', values: '{"a":"}}"}' });
    assert.deepEqual(splitRecord(record('{}', 'alve')), { flavor: 'alve', values: '{}' });
    const bad = [
      '',
      'not json',
      '{"flavor":"skroutz","values":{"a":"1"}}',
      '{"time":"t","flavor":"skroutz","values":{}}',
      '{"flavor":"skroutz","time":"t","values":{"a":"1"}',
      '{"flavor":"skroutz","time":"t","values":["a"]}',
      '{"flavor":"skroutz","time":"t","values":{"a":"1"}} ',
      '{"flavor":"skroutz","time":"t","values":{"a":"1"}}\r',
      '{"flavor":"","time":"t","values":{}}',
      '{"flavor":"s\\"k","time":"t","values":{}}',
      '{"flavor":"skroutz","time":"t\\"","values":{}}',
      ' {"flavor":"skroutz","time":"t","values":{}}',
    ];
    for (const line of bad) assert.equal(splitRecord(line), null, line);
  });
});

