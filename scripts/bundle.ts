// Bundles each component into one tree-shaken ES module with esbuild: dist/allocator.mjs,
// dist/lbnodeagent.mjs and dist/kubectl-purelb.mjs, plus dist/kernel.node (the native
// addon, native/kernel.c). The image, the chart and the lab all run these files; the
// source runs directly only in unit tests.
//
// The components do not load client-node (src/k8s/api.ts says why); only the CLI,
// which reads people's kubeconfigs, bundles it. The `netlink` package stays outside
// (it finds its prebuilt binary next to itself) and ships in node_modules.
//
//   node scripts/bundle.ts            build if a source is newer than the bundles; print the folder
//   node scripts/bundle.ts --force    build anyway

import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { buildAddon } from '../native/build.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DIST = join(root, 'dist');

/**
 * The bundles, by component: what `node <file>` starts. The components' bundles are
 * minified but for names, which stack traces in operators' logs need: the image is
 * smaller, and so is the process, since V8 keeps a module's source for as long as it
 * runs (the agent bundle 1.74 → 0.77 MB, with zod's locales left out).
 */
export const BUNDLES = {
  allocator: { entry: 'src/allocator/main.ts', out: 'allocator.mjs', minify: true },
  lbnodeagent: { entry: 'src/lbnodeagent/main.ts', out: 'lbnodeagent.mjs', minify: true },
  cli: { entry: 'src/cli/main.ts', out: 'kubectl-purelb.mjs', minify: false },
} as const;

/** Packages left outside the bundles: they must be in the image's node_modules. */
export const EXTERNAL = ['netlink'];

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

function upToDate(): boolean {
  const outs = [...Object.values(BUNDLES).map((b) => join(DIST, b.out)), join(DIST, 'kernel.node')];
  if (!outs.every((o) => existsSync(o))) return false;
  const built = Math.min(...outs.map((o) => statSync(o).mtimeMs));
  const inputs = Math.max(newest(join(root, 'src')), newest(join(root, 'native')), statSync(join(root, 'package-lock.json')).mtimeMs, statSync(fileURLToPath(import.meta.url)).mtimeMs);
  return built >= inputs;
}

/**
 * Node's built-in modules reach the components' bundles through require(), not ES imports: an ES
 * import of a CommonJS built-in reads every export to build its namespace, which runs
 * the lazy ones. node:http's (WebSocket, EventSource, …) load undici and the web
 * streams, node:util's the worker threads, node:crypto's WebCrypto: measured on Node 24,
 * `import 'node:http'` costs 17 MiB of RSS, require('node:http') 4 MiB. Each `node:X`
 * is aliased to a one-line CommonJS file that requires X; esbuild's interop then reads
 * an export only when the code uses it.
 */
function builtinShims(dir: string): Record<string, string> {
  mkdirSync(dir, { recursive: true });
  const alias: Record<string, string> = {};
  for (const name of builtinModules.filter((m) => !m.startsWith('_') && !m.startsWith('node:'))) {
    // A fixed path, since esbuild writes it into the bundle; concurrent builds each
    // rename an identical file into place.
    const file = join(dir, `${name.replaceAll('/', '__')}.cjs`);
    const text = `module.exports = require(${JSON.stringify(name)});\n`;
    if (!existsSync(file) || readFileSync(file, 'utf8') !== text) {
      writeFileSync(`${file}.${process.pid}.tmp`, text);
      renameSync(`${file}.${process.pid}.tmp`, file);
    }
    alias[`node:${name}`] = file;
  }
  return alias;
}

/** Builds the bundles when a source changed since; returns the folder. Concurrent callers each write their own files and rename them into place. */
export function bundle(opts: { force?: boolean } = {}): string {
  if (!opts.force && upToDate()) return DIST;
  mkdirSync(DIST, { recursive: true });
  const tmp = `.${process.pid}.tmp`;
  const alias = builtinShims(join(DIST, '.builtins'));
  for (const b of Object.values(BUNDLES)) {
    esbuild.buildSync({
      entryPoints: [join(root, b.entry)],
      // Paths in the bundle are relative to the checkout, wherever it is built from.
      absWorkingDir: root,
      outfile: join(DIST, b.out + tmp),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node24',
      external: EXTERNAL,
      alias: b.minify ? alias : {},
      // CommonJS dependencies inside an ES module call require().
      banner: { js: "import { createRequire as __purelbRequire } from 'node:module'; const require = __purelbRequire(import.meta.url);" },
      legalComments: 'none',
      minifyWhitespace: b.minify,
      minifySyntax: b.minify,
      logLevel: 'warning',
    });
  }
  copyFileSync(buildAddon(), join(DIST, `kernel.node${tmp}`));
  for (const b of Object.values(BUNDLES)) renameSync(join(DIST, b.out + tmp), join(DIST, b.out));
  renameSync(join(DIST, `kernel.node${tmp}`), join(DIST, 'kernel.node'));
  return DIST;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(bundle({ force: process.argv.includes('--force') }));
}
