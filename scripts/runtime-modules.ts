// Copies what the bundles load from node_modules at run time — the packages
// scripts/bundle.ts leaves outside (EXTERNAL) and what they require in turn — from this
// checkout's node_modules to <dest>/node_modules, file by file: the JavaScript that
// require() reaches from each package's entry point (resolved as Node resolves it), each
// package's package.json and licence, and the prebuilt addon of this platform only
// (node-gyp-build loads prebuilds/<platform>-<arch>/). Declared dependencies that no
// file requires (netlink's node-addon-api: C++ headers for building its addon) stay
// out, and so do type declarations, source maps and sources. The image ships only these
// files; everything else is inside the bundles.
//
//   node scripts/runtime-modules.ts <dest>

import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXTERNAL } from './bundle.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** require() calls with a literal name: how CommonJS packages load their files and dependencies. */
const REQUIRE = /\brequire\(\s*(['"])([^'"]+)\1\s*\)/g;

/** The package a path below node_modules belongs to: `name` or `@scope/name`. */
function packageOf(rel: string): string {
  const parts = rel.split(sep);
  return (parts[0]?.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join('/');
}

/**
 * The files the bundles load, relative to `from` (a node_modules folder), sorted.
 * ES imports of EXTERNAL resolve as require() does here: none of them has conditional exports.
 */
export function runtimeFiles(from = join(root, 'node_modules'), platform = `${process.platform}-${process.arch}`): string[] {
  const files = new Set<string>();
  const packages = new Set<string>();
  const scanned = new Set<string>();
  const queue: string[] = [];
  const take = (file: string, by: string) => {
    const rel = relative(from, file);
    if (rel.startsWith('..') || rel.split(sep).includes('node_modules')) throw new Error(`runtime-modules: ${by} loads ${file}, not a package at the top of ${from}`);
    files.add(rel);
    const name = packageOf(rel);
    if (!packages.has(name)) {
      packages.add(name);
      for (const f of readdirSync(join(from, name))) if (f === 'package.json' || /^licen[cs]e/i.test(f)) files.add(join(name, f));
      const prebuilds = join(name, 'prebuilds', platform);
      if (existsSync(join(from, prebuilds))) for (const f of readdirSync(join(from, prebuilds))) files.add(join(prebuilds, f));
    }
    if (file.endsWith('.js') && !scanned.has(file)) queue.push(file);
  };
  const fromBundle = createRequire(join(dirname(from), 'bundle.mjs'));
  for (const name of EXTERNAL) take(fromBundle.resolve(name), 'a bundle');
  for (let n = 0; queue.length > 0 && n < 10_000; n++) {
    const file = queue.shift() as string;
    scanned.add(file);
    const req = createRequire(file);
    for (const m of readFileSync(file, 'utf8').matchAll(REQUIRE)) {
      const spec = m[2] as string;
      if (!isBuiltin(spec)) take(req.resolve(spec), relative(from, file));
    }
  }
  return [...files].sort();
}

/** The packages the bundles load (EXTERNAL and what they require), sorted. */
export function runtimePackages(from = join(root, 'node_modules')): string[] {
  return [...new Set(runtimeFiles(from).map(packageOf))].sort();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dest = process.argv[2];
  if (!dest) {
    console.error('usage: node scripts/runtime-modules.ts <dest>');
    process.exit(2);
  }
  for (const file of runtimeFiles()) {
    mkdirSync(dirname(join(dest, 'node_modules', file)), { recursive: true });
    cpSync(join(root, 'node_modules', file), join(dest, 'node_modules', file));
    console.log(file);
  }
}
