// The Dockerfile cannot be built here (no container engine), so this checks what a
// build would trip over: the build stage is Node 24 and bundles the components
// (scripts/bundle.ts) from the lock file's packages, then assembles the root file system
// with scripts/image/rootfs.sh, as scripts/image.sh does; the final stage starts from
// scratch (it has no shell, so it runs nothing); BIRD is a stage of its own; every COPY
// source exists and survives .dockerignore, and everything the bundles are built from —
// followed file by file from the entry points — reaches the build stage, with every npm
// package among the production dependencies. The image and the chart run the same bundles.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../lab/exec.ts';
import { render } from './chart.ts';
import { NODE_FLAGS, command } from '../../src/runtime.ts';
import { BUNDLES, EXTERNAL } from '../../scripts/bundle.ts';

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** Instructions with line continuations joined; comments dropped. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  for (const raw of text.replace(/\\\n/g, ' ').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = (m[1] as string).toUpperCase();
    if (op === 'FROM') stage++;
    out.push({ op, args: (m[2] as string).trim(), stage });
  }
  return out;
}

const dockerfile = instructions(readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8'));
const ignore = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));

/** A .dockerignore pattern as Docker reads it: `**` any path, `*` and `?` within one segment, dot files included. */
function patternRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*' && pattern[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // A pattern naming a directory covers everything below it.
  return new RegExp(`^${re}(/.*)?$`);
}

/** Docker's rule: the last matching pattern wins; `!` re-includes. */
function inContext(file: string): boolean {
  let included = true;
  for (const p of ignore) {
    const negated = p.startsWith('!');
    if (patternRegExp((negated ? p.slice(1) : p).replace(/\/$/, '')).test(file)) included = negated;
  }
  return included;
}

/** COPY sources that come from the build context, with their destinations. */
const finalStage = Math.max(...dockerfile.map((i) => i.stage));
const copies = dockerfile
  .filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))
  .map((i) => ({ stage: i.stage, parts: i.args.split(/\s+/).filter((a) => !a.startsWith('--')) }));
const buildSources = copies.filter((c) => c.stage === 0).flatMap((c) => c.parts.slice(0, -1).map((s) => s.replace(/\/$/, '')));

/** Whether the build stage, where the bundles are made, has `file`. */
function inBuild(file: string): boolean {
  return inContext(file) && buildSources.some((s) => file === s || file.startsWith(`${s}/`));
}

/** Relative imports and package names a TypeScript file names (static and dynamic imports). */
function importsOf(file: string): { files: string[]; packages: string[] } {
  const text = readFileSync(path.join(REPO_ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => (m[1] ?? m[2]) as string);
  const files: string[] = [];
  const packages: string[] = [];
  for (const s of specs) {
    if (s.startsWith('.')) files.push(path.relative(REPO_ROOT, path.resolve(path.dirname(path.join(REPO_ROOT, file)), s)));
    else if (!s.startsWith('node:')) packages.push(s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : (s.split('/')[0] as string));
  }
  return { files, packages };
}

const ENTRY_POINTS: string[] = [BUNDLES.allocator.entry, BUNDLES.lbnodeagent.entry];

test('three stages: build on Node 24, bird on Debian, the image from scratch; the bundles and the addon built at build time from the lock file', () => {
  const froms = dockerfile.filter((i) => i.op === 'FROM').map((i) => i.args);
  assert.deepEqual(froms, ['${NODE_IMAGE} AS build', '${DEBIAN_IMAGE} AS bird', 'scratch']);
  const arg = (name: string) => dockerfile.find((i) => i.op === 'ARG' && i.args.startsWith(`${name}=`))?.args ?? '';
  assert.match(arg('NODE_IMAGE'), /^NODE_IMAGE=node:24-bookworm/);
  assert.match(arg('DEBIAN_IMAGE'), /^DEBIAN_IMAGE=debian:bookworm/);
  const runs = dockerfile.filter((i) => i.op === 'RUN' && i.stage === 0).map((i) => i.args);
  assert.ok(runs.some((r) => /npm ci\b/.test(r)), 'npm ci, from the lock file');
  assert.ok(runs.some((r) => /node scripts\/bundle\.ts/.test(r)), 'the bundles and the addon are built in the build stage');
  assert.ok(runs.some((r) => /node scripts\/runtime-modules\.ts \/runtime/.test(r)), 'the run-time node_modules are picked in the build stage');
  assert.ok(dockerfile.some((i) => i.op === 'COPY' && i.stage === finalStage && /--from=build\s+\/runtime\/node_modules\/?\s/.test(i.args)), 'node_modules come from the build stage');
  const dist = dockerfile.find((i) => i.op === 'COPY' && i.stage === finalStage && i.args.includes('/app/dist/'))?.args ?? '';
  for (const f of ['allocator.mjs', 'lbnodeagent.mjs', 'kernel.node']) assert.ok(dist.includes(`/app/dist/${f}`), `dist/${f} is copied into the image`);
});

test('the root file system below /app is what scripts/image.sh builds: both run scripts/image/rootfs.sh', () => {
  // The same script, with the packages it names, the build stage's node, and the folders
  // holding the addons (kernel.node and netlink's prebuilt one), whose libraries it adds.
  const assemble = dockerfile.find((i) => i.op === 'RUN' && i.stage === 0 && i.args.includes('rootfs.sh /debs'))?.args ?? '';
  assert.match(assemble, /apt-get download \$\(bash \/app\/scripts\/image\/rootfs\.sh --packages\)/, 'the .deb files of the packages rootfs.sh names');
  assert.match(assemble, /bash \/app\/scripts\/image\/rootfs\.sh \/debs "\$\(command -v node\)" \/rootfs \/app\/dist \/runtime$/);
  const image = readFileSync(path.join(REPO_ROOT, 'scripts', 'image.sh'), 'utf8');
  assert.match(image, /bash "\$root\/scripts\/image\/rootfs\.sh" --packages/);
  assert.match(image, /bash "\$root\/scripts\/image\/rootfs\.sh" "[^"]+\/archives" "\$1\/pkg\/bin\/node" "\$1\/rootfs" "\$1\/app"$/m);
  const final = dockerfile.filter((i) => i.stage === finalStage);
  assert.deepEqual(final[1], { op: 'COPY', args: '--from=build /rootfs/ /', stage: finalStage }, 'the first layer on scratch: rootfs.sh\'s tree');
  assert.deepEqual(final.filter((i) => i.op === 'RUN'), [], 'nothing runs in the final stage: it has no shell');
});

test('every COPY source exists and is in the build context', () => {
  assert.ok(copies.length > 0);
  for (const c of copies) {
    for (const source of c.parts.slice(0, -1)) {
      const rel = source.replace(/\/$/, '');
      assert.ok(existsSync(path.join(REPO_ROOT, rel)), `COPY ${source}: missing`);
      const probe = statSync(path.join(REPO_ROOT, rel)).isDirectory() ? `${rel}/x.ts` : rel;
      assert.ok(inContext(probe), `COPY ${source}: excluded by .dockerignore`);
    }
  }
  assert.ok(!inContext('e2e/lab/lab.ts') && !inContext('.lab/admin.kubeconfig') && !inContext('node_modules/x/index.js'), 'the context stays small');
  assert.ok(!inContext('src/ipam/ipam.test.ts'), 'tests stay out of the image');
});

test('the entry points of the image and of the chart exist and run on what the image holds', async () => {
  const cmd = dockerfile.find((i) => i.op === 'CMD' && i.stage === finalStage);
  assert.deepEqual(JSON.parse(cmd?.args ?? '[]'), command('allocator'));
  const objects = await render({ 'bird.enabled': true, 'bird.peers[0].name': 'r', 'bird.peers[0].address': '192.0.2.1', 'bird.peers[0].asn': 1 });
  const commands = objects
    .filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet')
    .map((o) => ((o.spec as { template: { spec: { containers: Array<{ command: string[] }> } } }).template.spec.containers[0] as { command: string[] }).command);
  const nodeCommands = commands.filter((c) => c[0] === 'node');
  for (const c of nodeCommands) {
    const component = c.at(-1) === command('allocator').at(-1) ? 'allocator' : 'lbnodeagent';
    assert.deepEqual(c, command(component), `${c.join(' ')}: the command of src/runtime.ts`);
    assert.deepEqual(c.slice(1, -1), NODE_FLAGS[component]);
  }
  assert.deepEqual(nodeCommands.map((c) => c.at(-1)).sort(), [command('allocator').at(-1), command('lbnodeagent').at(-1)].sort());
  assert.ok(commands.some((c) => c[0] === 'bird'), 'the BIRD DaemonSet runs bird');
  const birdStage = dockerfile.find((i) => i.op === 'FROM' && / AS bird$/.test(i.args))?.stage;
  assert.ok(dockerfile.some((i) => i.op === 'RUN' && i.stage === birdStage && /apt-get install .*\bbird2\b/.test(i.args)), 'bird2 is installed in the bird stage');

  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const seen = new Set<string>();
  const queue = [...ENTRY_POINTS];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    assert.ok(existsSync(path.join(REPO_ROOT, file)), `${file} is imported but missing`);
    assert.ok(inBuild(file), `${file} is bundled but not copied into the build stage`);
    const { files, packages } = importsOf(file);
    for (const p of packages) assert.ok(p in pkg.dependencies, `${file} imports ${p}, which is not a production dependency`);
    queue.push(...files);
  }
  for (const p of EXTERNAL) assert.ok(p in pkg.dependencies, `${p} is left outside the bundles and must be a production dependency`);
  assert.ok(seen.has('native/build.ts') && inBuild('native/kernel.c'), 'the addon source reaches the build stage');
  assert.ok(['scripts/bundle.ts', 'scripts/runtime-modules.ts', 'scripts/image/rootfs.sh'].every(inBuild), 'the bundling and root file system scripts reach the build stage');
  assert.ok(seen.size > 20, `only ${seen.size} files reached from the entry points`);
});
