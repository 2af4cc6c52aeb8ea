// The images scripts/image.sh builds (no registry, no container engine) against the
// Dockerfile it stands in for: each archive is a valid OCI layout (digests, sizes,
// diff_ids). The purelb-ts image: its config has the Dockerfile final stage's CMD, USER,
// WORKDIR, ENV and EXPOSE; it is under 120 MB unpacked; its /app holds the components'
// bundles, the addon and only the files of node_modules they load; outside /app there
// is node, the libraries every ELF file in it needs (the loader's default paths find
// them) and passwd/group/tmp — no shell; and its own Node — run in the unpacked layers
// as the image's user — loads the addon and netlink and starts each bundle. The BIRD
// image has the `bird` stage's config and runs BIRD 2, which the chart's BIRD DaemonSet
// uses. The pause image is one static binary that exits 0 on SIGTERM.
// Needs root (nsenter --root). A cold build takes about a minute; a warm one seconds.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, lstatSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { addonPath } from '../../native/build.ts';
import { bundle } from '../../scripts/bundle.ts';
import { runtimeFiles, runtimePackages } from '../../scripts/runtime-modules.ts';
import { NODE_FLAGS, command } from '../../src/runtime.ts';
import { REPO_ROOT, run } from '../lab/exec.ts';
import { CHART_DIR, render } from './chart.ts';
import { UNPACKED_LIMIT_BYTES, digestOf, openArchive } from './oci.ts';
import type { Descriptor, ImageConfig } from './oci.ts';

const SCRIPT = path.join(REPO_ROOT, 'scripts', 'image.sh');
const BUILD_TIMEOUT_MS = 45 * 60_000;
/** Debian's loader searches these without /etc/ld.so.cache (amd64, the images' architecture). */
const LOADER_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib', '/usr/lib'];

interface Image {
  name: string;
  config: ImageConfig;
  rootfs: string;
  /** The sum of its uncompressed layers. */
  unpackedBytes: number;
}

/** A stage of the Dockerfile (the final one unless named): its instructions, continuations joined, comments dropped. */
function dockerfileStage(name?: string): Array<{ op: string; args: string }> {
  const text = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const stages: Array<{ name: string | undefined; instructions: Array<{ op: string; args: string }> }> = [];
  for (const raw of text.split('\n')) {
    const m = /^\s*(\w+)\s+(.*)$/.exec(raw);
    if (!m || raw.trim().startsWith('#')) continue;
    const op = (m[1] as string).toUpperCase();
    const args = (m[2] as string).trim();
    if (op === 'FROM') stages.push({ name: /\s[Aa][Ss]\s+(\S+)$/.exec(args)?.[1], instructions: [] });
    stages.at(-1)?.instructions.push({ op, args });
  }
  const stage = name === undefined ? stages.at(-1) : stages.find((s) => s.name === name);
  assert.ok(stage, `no stage ${name ?? '(final)'} in the Dockerfile`);
  return stage.instructions;
}

/** Every entry below dir that is not a directory (symbolic links included), relative to it, sorted. */
function filesBelow(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) out.push(...filesBelow(dir, r));
    else out.push(r);
  }
  return out.sort();
}

/** The file an absolute path names inside the image, its symbolic links followed as there (absolute targets from the image's root); undefined if none. */
function inImageFile(rootfs: string, p: string): string | undefined {
  let rest = p.split('/').filter(Boolean);
  let at: string[] = [];
  for (let n = 0; rest.length > 0; n++) {
    if (n > 100) return undefined;
    const part = rest.shift() as string;
    if (part === '..') {
      at.pop();
      continue;
    }
    const real = path.join(rootfs, ...at, part);
    if (!existsSync(real) && !isLink(real)) return undefined;
    if (isLink(real)) {
      const target = readlinkSync(real);
      if (target.startsWith('/')) at = [];
      rest = [...target.split('/').filter(Boolean), ...rest];
    } else at.push(part);
  }
  const file = path.join(rootfs, ...at);
  return statSync(file).isFile() ? file : undefined;
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function isElf(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const magic = Buffer.alloc(4);
    return readSync(fd, magic, 0, 4, 0) === 4 && magic.toString('latin1') === '\x7fELF';
  } finally {
    closeSync(fd);
  }
}

const work = mkdtempSync(path.join(tmpdir(), 'purelb-image-'));
const images: Record<'app' | 'bird' | 'pause', Image> = {} as Record<'app' | 'bird' | 'pause', Image>;

/** Unpacks an OCI archive, checks its blobs against their descriptors, and applies its layers in order. */
async function unpack(archive: string, dir: string): Promise<Image> {
  const rootfs = path.join(dir, 'rootfs');
  await run(['mkdir', '-p', rootfs]);
  const oci = await openArchive(archive, path.join(dir, 'oci'));
  assert.deepEqual(JSON.parse(readFileSync(path.join(oci.dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  const checked = async <T>(d: Descriptor, mediaType: string): Promise<T> => {
    assert.equal(d.mediaType, mediaType);
    assert.equal(statSync(oci.blob(d)).size, d.size, `${d.digest}: size`);
    assert.equal((await digestOf(oci.blob(d))).digest, d.digest, `${d.digest}: content`);
    return (mediaType.endsWith('+json') ? JSON.parse(readFileSync(oci.blob(d), 'utf8')) : undefined) as T;
  };
  assert.equal(oci.index.schemaVersion, 2);
  const desc = oci.manifestDescriptor;
  const name = desc.annotations?.['io.containerd.image.name'] ?? '';
  assert.equal(desc.annotations?.['org.opencontainers.image.ref.name'], name);
  const manifest = await checked<{ config: Descriptor; layers: Descriptor[] }>(desc, 'application/vnd.oci.image.manifest.v1+json');
  const config = await checked<ImageConfig>(manifest.config, 'application/vnd.oci.image.config.v1+json');
  assert.equal(config.architecture, 'amd64');
  assert.equal(config.os, 'linux');
  assert.equal(config.rootfs.diff_ids.length, manifest.layers.length);
  let unpackedBytes = 0;
  for (const [i, layer] of manifest.layers.entries()) {
    await checked(layer, 'application/vnd.oci.image.layer.v1.tar+gzip');
    const diff = await digestOf(oci.blob(layer), true);
    assert.equal(diff.digest, config.rootfs.diff_ids[i], `layer ${i}: diff_id`);
    unpackedBytes += diff.bytes;
    const list = (await run(['tar', '-tzf', oci.blob(layer)], { timeoutMs: 120_000 })).stdout;
    assert.doesNotMatch(list, /(^|\/)\.wh\./m, `layer ${i}: the layers only add files, so a plain tar -x applies them`);
    await run(['tar', '--numeric-owner', '-xpzf', oci.blob(layer), '-C', rootfs], { timeoutMs: 300_000 });
  }
  return { name, config, rootfs, unpackedBytes };
}

/**
 * Runs argv in the image's root file system as a container runtime would: the image's
 * user, working dir and environment (PATH finds argv[0] there), nothing else. The image
 * has no env or shell to set these up, so nsenter does: it opens --wd before it changes
 * root, hence the folder named from outside.
 */
function inImage(image: Image, argv: string[], timeoutMs = 60_000) {
  const c = image.config.config;
  const user = /^(\d+)(?::(\d+))?$/.exec(c.User || '0:0');
  assert.ok(user, `USER ${c.User ?? ''}: numeric uid[:gid]`);
  const env = Object.fromEntries((c.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  const wd = path.join(image.rootfs, c.WorkingDir || '/');
  return run(['nsenter', `--root=${image.rootfs}`, `--wd=${wd}`, '-S', user[1] as string, '-G', user[2] ?? (user[1] as string), ...argv], { timeoutMs, check: false, env });
}

before(async () => {
  assert.equal(process.getuid?.(), 0, 'the image test needs root (mmdebstrap, nsenter --root)');
  await run(['bash', SCRIPT], { timeoutMs: BUILD_TIMEOUT_MS });
  for (const [key, arg] of [['app', 'purelb-ts'], ['bird', 'bird'], ['pause', 'pause']] as const) {
    const archive = (await run(['bash', SCRIPT, '--print-path', arg], { timeoutMs: 60_000 })).stdout.trim();
    const image = await unpack(archive, path.join(work, key));
    assert.equal(image.name, (await run(['bash', SCRIPT, '--print-name', arg])).stdout.trim());
    images[key] = image;
  }
}, { timeout: BUILD_TIMEOUT_MS + 10 * 60_000 });

after(() => rmSync(work, { recursive: true, force: true }));

const chartVersion = () => (parse(readFileSync(path.join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { appVersion: string }).appVersion;

/** The image's config has the CMD, USER, WORKDIR, ENV and EXPOSE of the Dockerfile stage. */
function assertConfigOf(image: Image, stage: Array<{ op: string; args: string }>): void {
  const last = (op: string) => stage.filter((i) => i.op === op).at(-1)?.args;
  const c = image.config.config;
  assert.deepEqual(c.Cmd, JSON.parse(last('CMD') ?? 'null'));
  assert.equal(c.Entrypoint, undefined, 'the chart replaces the command; an entry point would be prepended to it');
  assert.equal(c.User || undefined, last('USER'));
  assert.equal(c.WorkingDir || undefined, last('WORKDIR'));
  for (const env of stage.filter((i) => i.op === 'ENV').flatMap((i) => i.args.split(/\s+/))) assert.ok(c.Env?.includes(env), `ENV ${env}`);
  const exposed = stage.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => (p.includes('/') ? p : `${p}/tcp`));
  assert.deepEqual(Object.keys(c.ExposedPorts ?? {}).sort(), exposed.sort());
}

test('the config is the Dockerfile final stage: CMD (the flags of src/runtime.ts), USER, WORKDIR, ENV, EXPOSE', () => {
  const c = images.app.config.config;
  assert.equal(images.app.name, `docker.io/library/purelb-ts:${chartVersion()}`, 'the chart default (image purelb-ts, tag appVersion) as containerd names it');
  assertConfigOf(images.app, dockerfileStage());
  assert.deepEqual(c.Cmd, command('allocator'));
  assert.ok(c.Env?.some((e) => /^PATH=(.*:)?\/usr\/local\/bin(:|$)/.test(e)), 'PATH finds /usr/local/bin/node');
});

test('the purelb-ts image is under 120 MB unpacked', () => {
  assert.ok(images.app.unpackedBytes < UNPACKED_LIMIT_BYTES, `${images.app.unpackedBytes} bytes unpacked (bench/image.ts prints each layer's share)`);
});

test('/app holds the bundles, the addon and only the files of node_modules they load: no sources, no dev dependencies', () => {
  const app = path.join(images.app.rootfs, 'app');
  const stage = dockerfileStage();
  const sources = stage.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from')).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
  assert.deepEqual(sources.sort(), ['package.json']);
  assert.deepEqual(readdirSync(app).sort(), ['dist', 'node_modules', 'package.json']);
  assert.ok(readFileSync(path.join(app, 'package.json')).equals(readFileSync(path.join(REPO_ROOT, 'package.json'))));
  // The bundles as scripts/bundle.ts builds them from this checkout, and the addon of this native/kernel.c.
  const dist = bundle();
  assert.deepEqual(readdirSync(path.join(app, 'dist')).sort(), ['allocator.mjs', 'kernel.node', 'lbnodeagent.mjs']);
  for (const f of ['allocator.mjs', 'lbnodeagent.mjs']) assert.ok(readFileSync(path.join(app, 'dist', f)).equals(readFileSync(path.join(dist, f))), `dist/${f}: this checkout's bundle`);
  assert.ok(readFileSync(path.join(app, 'dist', 'kernel.node')).equals(readFileSync(addonPath())), 'dist/kernel.node: built from this native/kernel.c');

  const modules = filesBelow(path.join(app, 'node_modules'));
  assert.deepEqual(modules, runtimeFiles(), 'node_modules: the files the bundles load, no more');
  assert.deepEqual(readdirSync(path.join(app, 'node_modules')).sort(), runtimePackages());
  assert.deepEqual(runtimePackages(), ['netlink', 'node-gyp-build'], 'node-addon-api (C++ headers) is needed only to build netlink');
  for (const f of modules) assert.doesNotMatch(f, /\.d\.ts$|\.map$|\/src\/|binding\.gyp$|README/, `${f}: not loaded at run time`);
  assert.deepEqual(modules.filter((f) => f.includes('/prebuilds/')), ['netlink/prebuilds/linux-x64/node.napi.node'], 'the prebuilt addon of the image architecture only');
  assert.ok(modules.includes('netlink/LICENSE') && modules.includes('netlink/package.json') && modules.includes('netlink/dist/index.js'));

  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  for (const d of Object.keys(pkg.devDependencies)) assert.ok(!existsSync(path.join(app, 'node_modules', d)), `${d} is a dev dependency`);
});

test('outside /app only node, the libraries, their copyrights, passwd, group and an empty /tmp: no shell', async () => {
  const root = images.app.rootfs;
  const outside = filesBelow(root).filter((f) => !f.startsWith('app/'));
  const allowed = [
    /^usr\/local\/bin\/node$/,
    /^usr\/lib\/x86_64-linux-gnu\/[^/]+\.so(\.\d+)*$/,
    /^usr\/lib64\/ld-linux-x86-64\.so\.2$/,
    /^lib(64)?$/,
    /^usr\/share\/doc\/[^/]+(\/copyright)?$/,
    /^etc\/(passwd|group)$/,
  ];
  for (const f of outside) assert.ok(allowed.some((re) => re.test(f)), `${f} is in the image`);
  assert.ok(outside.includes('usr/local/bin/node') && outside.includes('usr/lib/x86_64-linux-gnu/libc.so.6'));
  for (const lib of outside.filter((f) => f.startsWith('usr/lib/x86_64-linux-gnu/'))) {
    assert.ok(!isLink(path.join(root, lib)), `${lib}: one file under its soname`);
  }
  for (const doc of ['libc6', 'libgcc-s1', 'libstdc++6']) assert.ok(inImageFile(root, `/usr/share/doc/${doc}/copyright`), `${doc}: copyright`);
  assert.deepEqual(readdirSync(path.join(root, 'tmp')), []);
  assert.equal(statSync(path.join(root, 'tmp')).mode & 0o7777, 0o1777);
  const passwd = readFileSync(path.join(root, 'etc', 'passwd'), 'utf8');
  assert.match(passwd, /^root:x:0:0:/m);
  assert.match(passwd, /^nobody:x:65534:65534:/m);
  assert.match(readFileSync(path.join(root, 'etc', 'group'), 'utf8'), /^[a-z]+:x:65534:$/m);

  for (const sh of ['/bin/sh', '/usr/bin/sh', '/bin/bash', '/bin/busybox', '/usr/bin/env']) assert.equal(inImageFile(root, sh), undefined, `${sh} is in the image`);
  const shell = await inImage(images.app, ['sh', '-c', 'true']);
  assert.notEqual(shell.code, 0, 'sh ran in the image');
  assert.match(shell.stderr, /No such file or directory/);
});

test('every ELF file in the image finds its loader and each library it NEEDs inside the image, where the loader looks by default', async () => {
  const root = images.app.rootfs;
  const elves = filesBelow(root).filter((f) => !isLink(path.join(root, f)) && isElf(path.join(root, f)));
  for (const f of ['usr/local/bin/node', 'app/dist/kernel.node', 'app/node_modules/netlink/prebuilds/linux-x64/node.napi.node', 'usr/lib/x86_64-linux-gnu/libc.so.6']) {
    assert.ok(elves.includes(f), `${f} is an ELF file of the image`);
  }
  for (const f of elves) {
    const dynamic = (await run(['readelf', '-d', '--wide', path.join(root, f)])).stdout;
    const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1] as string);
    for (const soname of needed) {
      assert.ok(LOADER_DIRS.some((d) => inImageFile(root, `${d}/${soname}`)), `${f} needs ${soname}, which is not in the image`);
    }
    const interp = /Requesting program interpreter: ([^\]]+)\]/.exec((await run(['readelf', '-l', '--wide', path.join(root, f)])).stdout)?.[1];
    if (interp !== undefined) assert.ok(inImageFile(root, interp), `${f}: its loader ${interp} is not in the image`);
  }
  assert.equal(existsSync(path.join(root, 'etc', 'ld.so.cache')), false, 'the loader works without a cache: the next test runs node');
});

test('the chart commands resolve in the images: node on the purelb-ts image PATH, the entry points in /app, bird in the BIRD image', async () => {
  const objects = await render({ 'bird.enabled': true, 'bird.peers[0].name': 'r', 'bird.peers[0].address': '192.0.2.1', 'bird.peers[0].asn': 1 });
  const containers = objects
    .filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet')
    .flatMap((o) => (o.spec as { template: { spec: { containers: Array<{ image: string; command: string[] }> } } }).template.spec.containers);
  // containerd's name for a reference without a registry.
  const named = (ref: string) => (ref.includes('/') ? ref : `docker.io/library/${ref}`);
  const bird = containers.filter((c) => c.command[0] === 'bird');
  const node = containers.filter((c) => c.command[0] === 'node');
  assert.equal(bird.length, 1);
  assert.equal(node.length, 2);
  const searchPath = images.app.config.config.Env?.find((e) => e.startsWith('PATH='))?.slice(5).split(':') ?? [];
  for (const c of node) {
    assert.equal(named(c.image), images.app.name);
    assert.ok(searchPath.some((d) => inImageFile(images.app.rootfs, `${d}/node`)), `node not on the image's PATH ${searchPath.join(':')}`);
    assert.ok(existsSync(path.join(images.app.rootfs, 'app', c.command.at(-1) as string)), `${c.command.join(' ')}: entry point`);
  }
  assert.equal(named(bird[0]?.image ?? ''), images.bird.name, "the BIRD DaemonSet runs the BIRD image");
  const found = await inImage(images.bird, ['sh', '-c', `command -v ${bird[0]?.command[0] ?? ''}`]);
  assert.equal(found.code, 0, "bird not on the BIRD image's PATH");
});

test('the BIRD image: named after the chart default, the config of the Dockerfile bird stage, BIRD 2', async () => {
  assert.equal(images.bird.name, `docker.io/library/purelb-ts-bird:${chartVersion()}`);
  const stage = dockerfileStage('bird');
  assertConfigOf(images.bird, stage);
  assert.ok(stage.some((i) => i.op === 'RUN' && /apt-get install .*\bbird2\b/.test(i.args)), 'bird2 is installed in the bird stage');
  const version = await inImage(images.bird, ['bird', '--version']);
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout + version.stderr, /BIRD version 2\./);
});

test("the image's node is the version package-lock.json pins and runs the bundles: the addon and netlink load, each component starts", async () => {
  const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
  const version = lock.packages['node_modules/node']?.version;
  const v = await inImage(images.app, ['/usr/local/bin/node', '--version']);
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout.trim(), `v${version}`);

  // As the image's user (nobody): /app is not writable, so nothing can be built or fetched
  // now. The user and a name in the /etc/hosts a kubelet mounts come through glibc's
  // built-in lookups: the image has no nsswitch.conf and no NSS modules.
  const hosts = path.join(images.app.rootfs, 'etc', 'hosts');
  writeFileSync(hosts, '192.0.2.10 kubernetes.example.test\n');
  const script = `
    const { createRequire } = await import('node:module');
    const addon = createRequire('/app/')('/app/dist/kernel.node');
    const netlink = await import('netlink');
    const { lookup } = await import('node:dns/promises');
    const { userInfo } = await import('node:os');
    console.log(JSON.stringify({
      addon: Object.getOwnPropertyNames(addon).filter((k) => typeof addon[k] === 'function').sort(),
      netlink: typeof netlink.createNetlink,
      env: process.env.NODE_ENV,
      uid: process.getuid(),
      user: userInfo().username,
      cwd: process.cwd(),
      lookup: (await lookup('kubernetes.example.test')).address,
    }));`;
  try {
    const r = await inImage(images.app, ['node', ...NODE_FLAGS.allocator, '--input-type=module', '-e', script]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      addon: ['closeRtnetlinkListener', 'openRtnetlinkListener', 'releasePages', 'sendFrames'],
      netlink: 'function',
      env: 'production',
      uid: 65534,
      user: 'nobody',
      cwd: '/app',
      lookup: '192.0.2.10',
    });
  } finally {
    rmSync(hosts);
  }
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
