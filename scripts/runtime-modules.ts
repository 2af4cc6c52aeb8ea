// Copies what the bundles load from node_modules at run time — the packages
// scripts/bundle.ts leaves outside (EXTERNAL) and their dependencies — from this
// checkout's node_modules to <dest>/node_modules. The image ships only these; everything
// else is inside the bundles.
//
//   node scripts/runtime-modules.ts <dest>

import { cpSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXTERNAL } from './bundle.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The packages to ship: EXTERNAL and what they depend on, without type packages. */
export function runtimePackages(from = join(root, 'node_modules')): string[] {
  const seen = new Set<string>();
  const queue = [...EXTERNAL];
  for (let n = 0; queue.length > 0 && n < 1000; n++) {
    const name = queue.shift() as string;
    if (seen.has(name) || name.startsWith('@types/')) continue;
    const manifest = join(from, name, 'package.json');
    if (!existsSync(manifest)) throw new Error(`runtime-modules: ${name} is not in ${from}`);
    seen.add(name);
    const deps = (JSON.parse(readFileSync(manifest, 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {};
    queue.push(...Object.keys(deps));
  }
  return [...seen].sort();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dest = process.argv[2];
  if (!dest) {
    console.error('usage: node scripts/runtime-modules.ts <dest>');
    process.exit(2);
  }
  for (const name of runtimePackages()) {
    const from = join(root, 'node_modules', name);
    mkdirSync(dirname(join(dest, 'node_modules', name)), { recursive: true });
    // Type packages nested inside are not needed at run time.
    cpSync(from, join(dest, 'node_modules', name), { recursive: true, filter: (src) => !src.slice(from.length).includes('/node_modules/@types') });
    console.log(name);
  }
}
