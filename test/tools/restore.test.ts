/** restore's order: each process's write order, processes merged by time (the Kafka tests restore real topics). */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { orderAsWritten, type Found } from '../../src/tools/restore';

const line = (boot: number, counter: number, timeMs: number): Found => ({ boot, counter, timeMs, value: `${boot}-${counter}@${timeMs}` });
const values = (found: Found[]) => found.map((f) => f.value);

test('one process: its write order, even where times go back (lines forwarded by an HTTP thread arrive a little late)', () => {
  const written = [line(7, 0, 100), line(7, 1, 103), line(7, 2, 101), line(7, 3, 102), line(7, 4, 104)];
  const shuffled = [written[3]!, written[0]!, written[4]!, written[2]!, written[1]!];
  assert.deepEqual(values(orderAsWritten(shuffled)), values(written));
});

test('two processes that overlapped (a restart): merged by time, each in its own order; ties go to the older boot', () => {
  const old = [line(1, 10, 100), line(1, 11, 102), line(1, 12, 105)];
  const next = [line(2, 0, 102), line(2, 1, 103), line(2, 2, 101)];
  assert.deepEqual(values(orderAsWritten([...next, ...old])), ['1-10@100', '1-11@102', '2-0@102', '2-1@103', '2-2@101', '1-12@105']);
});

test('lines without a seq header (boot 0) go by time, then offset', () => {
  assert.deepEqual(values(orderAsWritten([line(0, 5, 200), line(0, 3, 100), line(0, 4, 100)])), ['0-3@100', '0-4@100', '0-5@200']);
});
