// The image scripts/image.sh builds (no registry, no container engine) against the
// Dockerfile it stands in for: the archive is a valid OCI layout (digests, sizes,
// diff_ids), its config has the Dockerfile's CMD, USER, WORKDIR, ENV and EXPOSE, its
// /app holds the components' bundles, the addon and only the run-time node_modules, and
// its own Node — run in a chroot of the unpacked layers as the image's user — loads the
// addon and netlink and starts each bundle. The pause image is one static binary that exits 0 on SIGTERM.
// Needs root (chroot). A cold build takes minutes; a warm one seconds.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, closeSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { parse } from 'yaml';
import { addonPath } from '../../native/build.ts';
import { bundle } from '../../scripts/bundle.ts';
import { runtimePackages } from '../../scripts/runtime-modules.ts';
import { NODE_FLAGS, command } from '../../src/runtime.ts';
import { REPO_ROOT, run } from '../lab/exec.ts';
import { CHART_DIR, render } from './chart.ts';

const SCRIPT = path.join(REPO_ROOT, 'scripts', 'image.sh');
const BUILD_TIMEOUT_MS = 45 * 60_000;

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}
interface ImageConfig {
  architecture: string;
  os: string;
  config: { User?: string; WorkingDir?: string; Env?: string[]; Cmd?: string[]; Entrypoint?: string[]; ExposedPorts?: Record<string, object> };
  rootfs: { type: string; diff_ids: string[] };
}
interface Image {
  name: string;
  config: ImageConfig;
  rootfs: string;
}

/** The final stage of the Dockerfile: its instructions, continuations joined, comments dropped. */
function dockerfileFinalStage(): Array<{ op: string; args: string }> {
  const text = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  let stage: Array<{ op: string; args: string }> = [];
  for (const raw of text.split('\n')) {
    const m = /^\s*(\w+)\s+(.*)$/.exec(raw);
    if (!m || raw.trim().startsWith('#')) continue;
    const op = (m[1] as string).toUpperCase();
    if (op === 'FROM') stage = [];
    stage.push({ op, args: (m[2] as string).trim() });
  }
  return stage;
}

function sha256File(file: string, gunzip = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const input = createReadStream(file);
    const stream = gunzip ? input.pipe(createGunzip()) : input;
    input.on('error', reject);
    stream.on('error', reject);
    stream.on('data', (b: Buffer) => hash.update(b));
    stream.on('end', () => resolve(`sha256:${hash.digest('hex')}`));
  });
}

/** Every file below dir, relative to it, sorted. */
function filesBelow(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) out.push(...filesBelow(dir, r));
    else out.push(r);
  }
  return out.sort();
}

const work = mkdtempSync(path.join(tmpdir(), 'purelb-image-'));
const images: Record<'app' | 'pause', Image> = {} as Record<'app' | 'pause', Image>;

/** Unpacks an OCI archive, checks its blobs against their descriptors, and applies its layers in order. */
async function unpack(archive: string, dir: string): Promise<Image> {
  const oci = path.join(dir, 'oci');
  const rootfs = path.join(dir, 'rootfs');
  await run(['mkdir', '-p', oci, rootfs]);
  await run(['tar', '-xf', archive, '-C', oci], { timeoutMs: 300_000 });
  assert.deepEqual(JSON.parse(readFileSync(path.join(oci, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  const blob = (d: Descriptor) => path.join(oci, 'blobs', ...d.digest.split(':'));
  const checked = async <T>(d: Descriptor, mediaType: string): Promise<T> => {
    assert.equal(d.mediaType, mediaType);
    assert.equal(statSync(blob(d)).size, d.size, `${d.digest}: size`);
    assert.equal(await sha256File(blob(d)), d.digest, `${d.digest}: content`);
    return (mediaType.endsWith('+json') ? JSON.parse(readFileSync(blob(d), 'utf8')) : undefined) as T;
  };
  const index = JSON.parse(readFileSync(path.join(oci, 'index.json'), 'utf8')) as { schemaVersion: number; manifests: Descriptor[] };
  assert.equal(index.schemaVersion, 2);
  assert.equal(index.manifests.length, 1);
  const desc = index.manifests[0] as Descriptor;
  const name = desc.annotations?.['io.containerd.image.name'] ?? '';
  assert.equal(desc.annotations?.['org.opencontainers.image.ref.name'], name);
  const manifest = await checked<{ config: Descriptor; layers: Descriptor[] }>(desc, 'application/vnd.oci.image.manifest.v1+json');
  const config = await checked<ImageConfig>(manifest.config, 'application/vnd.oci.image.config.v1+json');
  assert.equal(config.architecture, 'amd64');
  assert.equal(config.os, 'linux');
  assert.equal(config.rootfs.diff_ids.length, manifest.layers.length);
  for (const [i, layer] of manifest.layers.entries()) {
    await checked(layer, 'application/vnd.oci.image.layer.v1.tar+gzip');
    assert.equal(await sha256File(blob(layer), true), config.rootfs.diff_ids[i], `layer ${i}: diff_id`);
    const list = (await run(['tar', '-tzf', blob(layer)], { timeoutMs: 120_000 })).stdout;
    assert.doesNotMatch(list, /(^|\/)\.wh\./m, `layer ${i}: the layers only add files, so a plain tar -x applies them`);
    await run(['tar', '--numeric-owner', '-xpzf', blob(layer), '-C', rootfs], { timeoutMs: 300_000 });
  }
  return { name, config, rootfs };
}

/** Runs argv in a chroot of the image's root file system, with the image's user, working dir and environment. */
function inImage(image: Image, argv: string[], timeoutMs = 60_000) {
  const c = image.config.config;
  return run(['chroot', `--userspec=${c.User ?? '0:0'}`, image.rootfs, '/usr/bin/env', '-i', '-C', c.WorkingDir ?? '/', ...(c.Env ?? []), ...argv], { timeoutMs, check: false });
}

before(async () => {
  assert.equal(process.getuid?.(), 0, 'the image test needs root (mmdebstrap, chroot)');
  await run(['bash', SCRIPT], { timeoutMs: BUILD_TIMEOUT_MS });
  for (const [key, arg] of [['app', 'purelb-ts'], ['pause', 'pause']] as const) {
    const archive = (await run(['bash', SCRIPT, '--print-path', arg], { timeoutMs: 60_000 })).stdout.trim();
    const image = await unpack(archive, path.join(work, key));
    assert.equal(image.name, (await run(['bash', SCRIPT, '--print-name', arg])).stdout.trim());
    images[key] = image;
  }
}, { timeout: BUILD_TIMEOUT_MS + 10 * 60_000 });

after(() => rmSync(work, { recursive: true, force: true }));

test('the config is the Dockerfile final stage: CMD (the flags of src/runtime.ts), USER, WORKDIR, ENV, EXPOSE', () => {
  const stage = dockerfileFinalStage();
  const last = (op: string) => stage.filter((i) => i.op === op).at(-1)?.args;
  const c = images.app.config.config;
  const chart = parse(readFileSync(path.join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { appVersion: string };
  assert.equal(images.app.name, `docker.io/library/purelb-ts:${chart.appVersion}`, 'the chart default (image purelb-ts, tag appVersion) as containerd names it');
  assert.deepEqual(c.Cmd, JSON.parse(last('CMD') ?? 'null'));
  assert.deepEqual(c.Cmd, command('allocator'));
  assert.equal(c.Entrypoint, undefined, 'the chart replaces the command; an entry point would be prepended to it');
  assert.equal(c.User, last('USER'));
  assert.equal(c.WorkingDir, last('WORKDIR'));
  for (const env of stage.filter((i) => i.op === 'ENV').flatMap((i) => i.args.split(/\s+/))) assert.ok(c.Env?.includes(env), `ENV ${env}`);
  assert.ok(c.Env?.some((e) => /^PATH=(.*:)?\/usr\/local\/bin(:|$)/.test(e)), 'PATH finds /usr/local/bin/node');
  const exposed = stage.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => (p.includes('/') ? p : `${p}/tcp`));
  assert.deepEqual(Object.keys(c.ExposedPorts ?? {}).sort(), exposed.sort());
});

test('/app holds the bundles, the addon and only the run-time node_modules: no sources, no dev dependencies', () => {
  const app = path.join(images.app.rootfs, 'app');
  const stage = dockerfileFinalStage();
  const sources = stage.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from')).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
  assert.deepEqual(sources.sort(), ['package.json']);
  assert.deepEqual(readdirSync(app).sort(), ['dist', 'node_modules', 'package.json']);
  assert.ok(readFileSync(path.join(app, 'package.json')).equals(readFileSync(path.join(REPO_ROOT, 'package.json'))));
  // The bundles as scripts/bundle.ts builds them from this checkout, and the addon of this native/kernel.c.
  const dist = bundle();
  assert.deepEqual(readdirSync(path.join(app, 'dist')).sort(), ['allocator.mjs', 'kernel.node', 'lbnodeagent.mjs']);
  for (const f of ['allocator.mjs', 'lbnodeagent.mjs']) assert.ok(readFileSync(path.join(app, 'dist', f)).equals(readFileSync(path.join(dist, f))), `dist/${f}: this checkout's bundle`);
  assert.ok(readFileSync(path.join(app, 'dist', 'kernel.node')).equals(readFileSync(addonPath())), 'dist/kernel.node: built from this native/kernel.c');
  assert.deepEqual(readdirSync(path.join(app, 'node_modules')).sort(), runtimePackages(), 'node_modules: what the bundles load, no more');

  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  for (const d of Object.keys(pkg.devDependencies)) assert.ok(!existsSync(path.join(app, 'node_modules', d)), `${d} is a dev dependency`);
});

test('the chart commands resolve in the image: node and bird on PATH, the entry points in /app', async () => {
  const objects = await render({ 'bird.enabled': true, 'bird.peers[0].name': 'r', 'bird.peers[0].address': '192.0.2.1', 'bird.peers[0].asn': 1 });
  const commands = objects
    .filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet')
    .flatMap((o) => (o.spec as { template: { spec: { containers: Array<{ command: string[] }> } } }).template.spec.containers.map((c) => c.command));
  assert.ok(commands.some((c) => c[0] === 'bird') && commands.some((c) => c[0] === 'node'));
  const root = images.app.rootfs;
  for (const c of commands) {
    const found = await inImage(images.app, ['sh', '-c', `command -v ${c[0] as string}`]);
    assert.equal(found.code, 0, `${c[0] as string} not on the image's PATH`);
    if (c[0] === 'node') assert.ok(existsSync(path.join(root, 'app', c.at(-1) as string)), `${c.join(' ')}: entry point`);
  }
  const bird = await inImage(images.app, ['bird', '--version']);
  assert.equal(bird.code, 0, bird.stderr);
  assert.match(bird.stdout + bird.stderr, /BIRD version 2\./);
});

test("the image's node is the version package-lock.json pins and runs the bundles: the addon and netlink load, each component starts", async () => {
  const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
  const version = lock.packages['node_modules/node']?.version;
  const v = await inImage(images.app, ['/usr/local/bin/node', '--version']);
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout.trim(), `v${version}`);

  // As the image's user (nobody): /app is not writable, so nothing can be built or fetched now.
  const script = `
    const { createRequire } = await import('node:module');
    const addon = createRequire('/app/')('/app/dist/kernel.node');
    const netlink = await import('netlink');
    console.log(JSON.stringify({
      addon: Object.getOwnPropertyNames(addon).filter((k) => typeof addon[k] === 'function').sort(),
      netlink: typeof netlink.createNetlink,
      env: process.env.NODE_ENV,
      uid: process.getuid(),
    }));`;
  const r = await inImage(images.app, ['node', ...NODE_FLAGS.allocator, '--input-type=module', '-e', script]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    addon: ['closeRtnetlinkListener', 'openRtnetlinkListener', 'sendFrames'],
    netlink: 'function',
    env: 'production',
    uid: 65534,
  });
  // Each bundle loads everything it needs and stops with its own message: outside a Pod
  // and with no kubeconfig there is no API server to reach.
  for (const component of ['allocator', 'lbnodeagent'] as const) {
    const started = await inImage(images.app, command(component));
    assert.equal(started.code, 1, `${component}: ${started.stdout}${started.stderr}`);
    assert.match(started.stderr, /not in a Pod \(KUBERNETES_SERVICE_HOST\/PORT unset\) and no KUBECONFIG given/, `${component}: ${started.stderr}`);
  }
});

/** True when the ELF file has a PT_INTERP program header (it needs a dynamic loader). */
function hasInterpreter(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const header = Buffer.alloc(64);
    readSync(fd, header, 0, 64, 0);
    assert.equal(header.toString('latin1', 0, 4), '\x7fELF');
    assert.equal(header[4], 2, 'ELF64');
    assert.equal(header[5], 1, 'little-endian');
    const phoff = Number(header.readBigUInt64LE(32));
    const phentsize = header.readUInt16LE(54);
    const phnum = header.readUInt16LE(56);
    assert.ok(phnum > 0 && phnum < 100);
    const table = Buffer.alloc(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    const PT_INTERP = 3;
    return Array.from({ length: phnum }, (_, i) => table.readUInt32LE(i * phentsize)).includes(PT_INTERP);
  } finally {
    closeSync(fd);
  }
}

test('the pause image: /pause alone, static, as 65535; it waits and exits 0 on SIGTERM', async () => {
  const { config, rootfs } = images.pause;
  assert.deepEqual(config.config.Entrypoint, ['/pause']);
  assert.equal(config.config.User, '65535:65535');
  assert.deepEqual(filesBelow(rootfs), ['pause']);
  const pause = path.join(rootfs, 'pause');
  assert.equal(hasInterpreter(pause), false, '/pause needs a dynamic loader');
  assert.match((await run(['file', '-b', pause])).stdout, /statically linked/);

  const child = spawn('chroot', ['--userspec=65535:65535', rootfs, '/pause'], { stdio: 'ignore' });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const timeout = (ms: number) => new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms).unref());
  try {
    assert.equal(await Promise.race([exited, timeout(500)]), 'timeout', '/pause exited by itself');
    child.kill('SIGTERM');
    assert.deepEqual(await Promise.race([exited, timeout(5000)]), { code: 0, signal: null });
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
