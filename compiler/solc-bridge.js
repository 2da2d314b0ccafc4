#!/usr/bin/env node
// Offline Solidity compiler bridge: makes the official solc-js (WebAssembly build, npm `solc`)
// answer like a native `solc` binary, so that py-solc-x and ape-solidity can use it.
//
// Why this file exists: native solc cannot be downloaded on our machines, and solc-js's own CLI,
// piped, truncates large outputs at 128 KiB and prints an extra SMT line before the JSON.
// This bridge speaks the two modes py-solc-x uses (`--version` and `--standard-json`) and
// writes its output with synchronous writes to fd 1, so nothing is cut.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const args = process.argv.slice(2);

function nativeVersion() {
  // solc-js reports e.g. "0.8.30+commit.73712a01.Emscripten.clang"; native solc prints
  // "Version: 0.8.30+commit.73712a01.Linux.g++", which is what py-solc-x parses.
  return solc.version().replace('.Emscripten.clang', '.Linux.g++');
}

function writeAll(text) {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) off += fs.writeSync(1, buf, off, buf.length - off);
}

function optionValues(name) {
  const out = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name && i + 1 < args.length) out.push(args[i + 1]);
    else if (args[i].startsWith(name + '=')) out.push(args[i].slice(name.length + 1));
  }
  return out.flatMap((v) => v.split(',')).filter((v) => v.length > 0);
}

if (args.includes('--version')) {
  writeAll('solc, the solidity compiler commandline interface\nVersion: ' + nativeVersion() + '\n');
  process.exit(0);
}

if (!args.includes('--standard-json')) {
  process.stderr.write('solc-bridge: only --version and --standard-json are supported\n');
  process.exit(2);
}

const roots = [...optionValues('--base-path'), ...optionValues('--include-path'), process.cwd()];

function findImport(importPath) {
  const candidates = path.isAbsolute(importPath)
    ? [importPath]
    : roots.map((root) => path.resolve(root, importPath));
  for (const candidate of candidates) {
    try {
      return { contents: fs.readFileSync(candidate, 'utf8') };
    } catch (_) {
      // try the next root
    }
  }
  return { error: 'File not found in base or include paths: ' + importPath };
}

const input = fs.readFileSync(0, 'utf8');
writeAll(solc.compile(input, { import: findImport }));
