#!/usr/bin/env node
// Writes the package's machine-readable debian/copyright (DEP-5) to stdout:
//   node packaging/copyright.js packaging/debian/copyright STAGED_NODE_MODULES
// = the hand-written paragraphs (scratchd, node, librdkafka), one Files:
// paragraph per npm package actually shipped (license from its package.json,
// copyright lines from its license file), then one License: paragraph per
// license used: the texts in packaging/debian/copyright-licenses, or, for a
// license not there, the text of the first package that carries it.
// Called by scripts/build-deb.sh; fails when a package has no license.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const [headFile, nodeModules] = process.argv.slice(2);
if (!headFile || !nodeModules) {
  console.error('usage: copyright.js HEAD NODE_MODULES');
  process.exit(64);
}
const STAGED_PREFIX = 'usr/lib/scratchd/node_modules';

/** SPDX expression → DEP-5 license names (SPDX "MIT" is Debian's "Expat"). */
function debianLicense(spdx) {
  return spdx
    .replace(/^\((.*)\)$/, '$1')
    .split(/\s+(OR|AND)\s+/)
    .map((part) => (part === 'OR' ? 'or' : part === 'AND' ? 'and' : part === 'MIT' ? 'Expat' : part))
    .join(' ');
}

function licenseFile(dir) {
  const name = fs.readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.(md|txt|markdown))?$/i.test(f));
  return name === undefined ? null : path.join(dir, name);
}

function copyrightLines(text, pkg) {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^copyright\s*(\(c\)|©)/i.test(l))
    .map((l) => l.replace(/^copyright\s*(\(c\)|©)[\s,]*/i, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>'))
    .filter((l) => l !== '');
  if (lines.length > 0) return [...new Set(lines)];
  const author = typeof pkg.author === 'string' ? pkg.author : pkg.author?.name;
  return [author ? author : `the ${pkg.name} authors`];
}

/** Every package folder under node_modules, nested ones included. */
function packages(dir) {
  const found = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const full = path.join(dir, entry.name);
    if (entry.name.startsWith('@')) {
      found.push(...packages(full));
    } else if (fs.existsSync(path.join(full, 'package.json'))) {
      found.push(full);
      if (fs.existsSync(path.join(full, 'node_modules'))) found.push(...packages(path.join(full, 'node_modules')));
    }
  }
  return found;
}

/** Text as a DEP-5 continuation block. */
function indent(text) {
  return text
    .replace(/\r/g, '')
    .trim()
    .split('\n')
    .map((l) => (l.trim() === '' ? ' .' : ` ${l.replace(/\s+$/, '')}`))
    .join('\n');
}

const known = new Map();
const licensesFile = path.join(path.dirname(headFile), 'copyright-licenses');
for (const block of fs.readFileSync(licensesFile, 'utf8').split(/\n\n(?=License: )/)) {
  const name = /^License: (.+)$/m.exec(block)?.[1];
  if (name) known.set(name, block.trim());
}

// Paragraphs about files inside node_modules (librdkafka) must follow the
// generated ones: in DEP-5 the last matching Files: paragraph wins.
const head = fs.readFileSync(headFile, 'utf8').trim().split(/\n\n+/);
const late = head.filter((p) => p.startsWith(`Files: ${STAGED_PREFIX}/`));
const out = head.filter((p) => !late.includes(p));
const used = new Set(['Expat', 'BSD-2-Clause']); // the hand-written paragraphs'
const textFrom = new Map();
const problems = [];
const root = path.resolve(nodeModules);
for (const dir of packages(root).sort()) {
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const spdx = typeof pkg.license === 'string' ? pkg.license : pkg.license?.type ?? pkg.licenses?.map((l) => l.type).join(' OR ');
  if (!spdx) {
    problems.push(`${pkg.name}: no "license" in its package.json`);
    continue;
  }
  const license = debianLicense(spdx);
  const file = licenseFile(dir);
  const text = file === null ? '' : fs.readFileSync(file, 'utf8');
  for (const name of license.split(/ (?:or|and) /)) {
    used.add(name);
    if (!known.has(name) && !textFrom.has(name) && text !== '') textFrom.set(name, { pkg: pkg.name, text });
  }
  out.push(
    [
      `Files: ${STAGED_PREFIX}/${path.relative(root, dir).split(path.sep).join('/')}/*`,
      `Copyright: ${copyrightLines(text, pkg).join('\n ')}`,
      `License: ${license}`,
      `Comment: ${pkg.name} ${pkg.version}`,
    ].join('\n'),
  );
}
out.push(...late);
for (const name of [...used].sort()) {
  if (known.has(name)) out.push(known.get(name));
  else if (textFrom.has(name)) out.push(`License: ${name}\n${indent(`(The text as shipped with ${textFrom.get(name).pkg}.)\n\n${textFrom.get(name).text}`)}`);
  else problems.push(`no text for license ${name}: add it to ${licensesFile}`);
}
if (problems.length > 0) {
  console.error(`copyright.js: ${problems.join('; ')}`);
  process.exit(1);
}
process.stdout.write(`${out.join('\n\n')}\n`);
