#!/usr/bin/env node
// The runner behind `npm test` (after type-check, lint and build):
// 1. makes sure the Debian tools the tests use are there (scripts/debian-deps.sh;
//    installs them as root, else says what is missing: those tests then skip,
//    or fail under CI=true);
// 2. runs node:test over every compiled test, build/test/**/*.test.js, or over
//    the files given as arguments (`npm test -- build/test/kv.test.js`),
//    with a Kafka broker started for the run (step 3) and stopped after it.
//
// 4. runs the integration suites that exercise what `workers` changes a second
//    time with SCRATCHD_TEST_WORKERS=2 (test/support/scratchd.ts), after the
//    full run only (WORKER_SUITES below; about a minute more, most of it the
//    restart suite).
//
// `node test/run.js --unit` (npm run test:unit) runs only the unit tests, and
// skips steps 1 and 3: no Debian tools, no broker. Which file is which is
// decided by its place and name (docs/development.md, "Test layout"):
// - integration: everything under test/integration/ and test/packaging/,
//   and any file with a second suffix naming what it needs,
//   `<name>.<needs>.test.ts` (query/query-to-json.rack.test.ts: Ruby's Rack;
//   replay.scratchd.test.ts: a scratchd child process);
// - unit: every other `<name>.test.ts` — hermetic (temp files, sockets on
//   port 0, at most a short-lived `node build/src/main.js <tool>`), together
//   well under a minute.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
// The tests run on the project's Node (scripts/runtime.js), whichever node runs this file.
const { nodeBin } = require('../scripts/runtime');

const root = path.resolve(__dirname, '..');

function findTests(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return findTests(full);
    return entry.name.endsWith('.test.js') ? [full] : [];
  });
}

const INTEGRATION_DIRS = ['integration', 'packaging'];

/**
 * Run again with 2 workers: restarts behind the socket holder, systemd socket
 * activation, signals and SIGHUP, the shutdown drain, backpressure, checks,
 * stats and metrics, POST (serve), replay and a HAProxy rollout. Not the
 * Kafka outage suite (its fault cases take ~100 s; restart.test covers Kafka
 * with 2 workers).
 */
const WORKER_SUITES = [
  'integration/serve',
  'integration/restart',
  'integration/systemd',
  'integration/haproxy-rollout',
  'http/backpressure.scratchd',
  'tools/replay.scratchd',
].map((name) => path.join(root, 'build', 'test', `${name}.test.js`));

/** Whether a compiled test file is a unit test (see the rules above). */
function isUnit(file) {
  const relative = path.relative(path.join(root, 'build', 'test'), file).split(path.sep);
  if (INTEGRATION_DIRS.includes(relative[0])) return false;
  // "<name>.<needs>.test.js": a second suffix says what else it needs.
  return !/\.[^./]+\.test\.js$/.test(relative[relative.length - 1]);
}

const args = process.argv.slice(2);
const unitOnly = args[0] === '--unit';
if (unitOnly) args.shift();

const files = args.length > 0 ? args : findTests(path.join(root, 'build', 'test')).filter((f) => !unitOnly || isUnit(f)).sort();
if (files.length === 0) {
  console.error('test/run.js: no compiled tests under build/test (run `npm run build` first)');
  process.exit(1);
}
if (unitOnly) {
  // node:test's default concurrency (cores - 1): the pacing tests measure time, and a crowded CPU makes them flaky.
  const result = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit', cwd: root });
  process.exit(result.status ?? 1);
}

const deps = spawnSync('bash', [path.join(root, 'scripts', 'debian-deps.sh'), 'test'], { stdio: 'inherit' });
if (deps.status !== 0 && process.env.CI === 'true') process.exit(deps.status ?? 1);
// 3. One Kafka broker for the whole run (tests that break brokers start their
//    own). Its own state dir, so a broker a developer runs is left alone.
const env = { ...process.env };
// `node` in what the tests spawn (scripts, npx) is the project's too.
env.PATH = `${path.dirname(nodeBin())}${path.delimiter}${env.PATH ?? ''}`;
const brokerEnv = { ...process.env, KAFKA_STATE_DIR: path.join(root, '.cache', 'kafka', 'npm-test') };
const broker = path.join(root, 'test', 'kafka', 'broker.sh');
let startedBroker = false;
if (env.KAFKA_BROKERS === undefined) {
  const started = spawnSync('bash', [broker, 'start'], { env: brokerEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (started.status === 0) {
    env.KAFKA_BROKERS = started.stdout.trim();
    startedBroker = true;
    console.error(`test/run.js: Kafka broker at ${env.KAFKA_BROKERS}`);
  } else {
    console.error(`test/run.js: no Kafka broker (broker.sh exit ${started.status}): Kafka tests will ${env.CI === 'true' ? 'fail' : 'skip'}`);
  }
}

let status;
try {
  const result = spawnSync(nodeBin(), ['--test', '--test-concurrency=3', ...files], { stdio: 'inherit', cwd: root, env });
  status = result.status ?? 1;
  if (args.length === 0 && process.env.SCRATCHD_TEST_WORKERS === undefined) {
    console.error('test/run.js: the integration suites again with workers: 2');
    const again = spawnSync(nodeBin(), ['--test', '--test-concurrency=3', ...WORKER_SUITES], { stdio: 'inherit', cwd: root, env: { ...env, SCRATCHD_TEST_WORKERS: '2' } });
    if (status === 0) status = again.status ?? 1;
  }
} finally {
  if (startedBroker) spawnSync('bash', [broker, 'stop'], { env: brokerEnv, stdio: ['ignore', 'ignore', 'inherit'] });
}
process.exit(status);
