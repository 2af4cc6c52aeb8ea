// Builds native/kernel.c into an N-API addon with the C compiler alone. Not node-gyp:
// it would try to download Node's headers, and the addon needs only node_api.h and
// uv.h, which ship with every Node.js. `npm install` / `npm ci` run this as the
// package's install step; src/netlink/native.ts also calls it on first use, so a
// checkout whose node_modules predates this file still works. The output is named
// after a hash of the source and flags: an edited kernel.c is rebuilt, and a stale
// build is never loaded.
//
//   node native/build.ts        build if needed and print the addon's path

import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const source = join(here, 'kernel.c');
const flags = ['-std=gnu11', '-O2', '-Wall', '-Wextra', '-shared', '-fPIC', '-fvisibility=hidden'];

/**
 * Folders that may hold node_api.h and uv.h: the running Node's own first (its libuv is
 * the one the addon links against), the npm `node` package's, the system's.
 */
function headerCandidates(): string[] {
  return [
    resolve(dirname(process.execPath), '..', 'include', 'node'),
    join(root, 'node_modules', 'node', 'node_modules', `node-${process.platform}-${process.arch}`, 'include', 'node'),
    '/usr/local/include/node',
    '/usr/include/node',
  ];
}

export function addonPath(): string {
  const hash = createHash('sha256').update(readFileSync(source)).update(flags.join(' ')).digest('hex').slice(0, 16);
  return join(root, 'node_modules', '.cache', 'purelb-ts', `kernel-${hash}.node`);
}

/** Returns the path of the built addon, compiling it first if needed. */
export function buildAddon(): string {
  const out = addonPath();
  if (existsSync(out)) return out;
  const include = headerCandidates().find((d) => existsSync(join(d, 'node_api.h')));
  if (include === undefined) {
    throw new Error(`native/kernel.c: node_api.h not found in any of ${headerCandidates().join(', ')}`);
  }
  const compiler = process.env['CC'] ?? 'cc';
  mkdirSync(dirname(out), { recursive: true });
  // Concurrent builds (parallel test files) each write their own file; rename is atomic.
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    execFileSync(compiler, [...flags, `-I${include}`, source, '-o', tmp], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    renameSync(tmp, out);
  } catch (error) {
    rmSync(tmp, { force: true });
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`building native/kernel.c with ${compiler} failed${stderr ? `:\n${stderr}` : `: ${String(error)}`}`, { cause: error });
  }
  return out;
}

// Run as `node native/build.ts`; not when bundled into a component (scripts/bundle.ts).
if (import.meta.main && import.meta.filename.endsWith('build.ts')) {
  console.log(buildAddon());
}
