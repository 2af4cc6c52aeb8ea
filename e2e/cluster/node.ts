// One node of the cluster tier: inside the lab's node network namespace, a containerd, a
// kubelet and a kube-proxy (nftables mode), pods on a bridge (CNI `bridge` + `host-local`).
//
// What this machine needs, each learnt from a failure:
// - Every node has a persistent mount namespace of its own, shared by containerd and
//   kubelet (runc must see kubelet's tmpfs volumes), entered with nsenter: `ip netns exec`
//   would remount /sys and hide the cgroup mounts. nsenter resets the working directory,
//   so every path is absolute.
// - kubelet writes a few global sysctls at start when they differ from what it wants; in
//   the node's mount namespace files holding exactly those values are bound over the
//   /proc/sys entries (plan.ts KUBELET_SYSCTLS), so it finds them right and writes nothing.
// - The places containerd and kubelet would share between nodes (/run/containerd for the
//   shims' sockets, /var/log/containers for log links) get a tmpfs per node there too.
// - cgroup v1 without systemd: cgroupfs driver, and a cgroup root per node created in
//   every hierarchy below the lab's own cgroup (so pods count against the lab), with the
//   cpuset copied from the parent.
// - No CAP_SYS_RESOURCE: containerd must not set the sandbox's oom_score_adj
//   (restrict_oom_score_adj), else every sandbox fails in runc.
// - State is per node everywhere: containerd root/state/socket, netns mounts under its
//   state, runc root, CNI config and IPAM data, kubelet root, certificates, volume plugins
//   and pod logs (kubelet's log GC deletes directories of pods it does not know).
// - No registry: images come from OCI archives imported with ctr; the pause image is the
//   pinned sandbox image, and image GC is off (a collected image could not come back).

import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { clusterKubeconfig, pkiFile } from '../lab/controlplane.ts';
import { LAB_DIR, REPO_ROOT, daemonAlive, logTail, nsExec, readDaemons, run, startDaemon, stopDaemon, stopPid, waitUntil } from '../lab/exec.ts';
import type { DaemonRecord } from '../lab/exec.ts';
import { CLUSTER_POD_CIDRS, CLUSTER_RUN, CLUSTER_VAR, KUBELET_SYSCTLS, MOUNT_NS_DIR, PAUSE_IMAGE, nodePaths } from './plan.ts';
import type { ClusterNode } from './plan.ts';

/** Where the cluster tier records its node processes (apart from the network's and the control plane's). */
export const CLUSTER_DIR = path.join(LAB_DIR, 'cluster');
export const CLUSTER_BIN = path.join(REPO_ROOT, 'e2e', 'cluster', 'bin');
const CNI_BIN = '/usr/lib/cni';
const CNI_NETWORK = 'purelb-lab-pods';
/** Host paths that containerd and kubelet use whatever they are told; a tmpfs per node covers each. */
const SHARED_HOST_DIRS = ['/run/containerd', '/var/log/containers'];

// ---------------------------------------------------------------------------------
// cgroups

/** Mount points of the cgroup hierarchies (v1 controllers, the named systemd one, the v2 one). */
export function cgroupHierarchies(): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'cgroup' || f[2] === 'cgroup2')
    .map((f) => f[1] as string);
}

/** The lab's own cgroup (the memory controller's path of this process): node cgroups go below it. */
export function labCgroupBase(): string {
  const line = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[1]?.split(',').includes('memory'));
  return line?.split(':')[2]?.replace(/\/$/, '') ?? '';
}

function ensureCgroup(root: string): void {
  for (const h of cgroupHierarchies()) {
    const dir = path.join(h, root);
    mkdirSync(dir, { recursive: true });
    if (!existsSync(path.join(h, 'cpuset.cpus'))) continue;
    // A new v1 cpuset has no CPUs and no memory nodes: copy them down from the top.
    let parent = h;
    for (const part of root.split('/').filter(Boolean)) {
      const child = path.join(parent, part);
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        if (readFileSync(path.join(child, f), 'utf8').trim() === '') writeFileSync(path.join(child, f), readFileSync(path.join(parent, f), 'utf8'));
      }
      parent = child;
    }
  }
}

/** PIDs in a cgroup subtree of one hierarchy. */
function cgroupPids(dir: string, out = new Set<number>(), depth = 0): Set<number> {
  if (depth > 12 || !existsSync(dir)) return out;
  try {
    for (const p of readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (/^\d+$/.test(p)) out.add(Number(p));
  } catch {
    /* gone meanwhile */
  }
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) cgroupPids(path.join(dir, e.name), out, depth + 1);
  return out;
}

function rmdirQuiet(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    /* not empty (another node's cgroup is still there) or gone */
  }
}

/** Removes a cgroup subtree in every hierarchy, deepest first; true when nothing is left. */
function removeCgroup(root: string): boolean {
  let clean = true;
  const rm = (dir: string, depth: number): void => {
    if (depth > 12) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rm(path.join(dir, e.name), depth + 1);
    try {
      rmdirSync(dir);
    } catch {
      clean = false;
    }
  };
  for (const h of cgroupHierarchies()) {
    const dir = path.join(h, root);
    if (existsSync(dir)) rm(dir, 0);
  }
  return clean;
}

/** Host values of the sysctls kubelet and kube-proxy care about (read in the root namespaces). */
export function hostSysctls(): Record<string, string> {
  const keys = [...Object.keys(KUBELET_SYSCTLS), 'net/ipv4/ip_forward', 'net/ipv6/conf/all/forwarding', 'net/netfilter/nf_conntrack_max', 'net/bridge/bridge-nf-call-iptables', 'net/ipv4/conf/all/route_localnet'];
  return Object.fromEntries(keys.filter((k) => existsSync(`/proc/sys/${k}`)).map((k) => [k, readFileSync(`/proc/sys/${k}`, 'utf8').trim()]));
}

// ---------------------------------------------------------------------------------
// The node's mount namespace

async function isMountPoint(p: string): Promise<boolean> {
  return (await run(['mountpoint', '-q', p], { check: false })).code === 0;
}

/** A file to bind a namespace to must sit on a private mount: make MOUNT_NS_DIR one. */
async function ensureMountNsDir(): Promise<void> {
  mkdirSync(MOUNT_NS_DIR, { recursive: true });
  if (!(await isMountPoint(MOUNT_NS_DIR))) await run(['mount', '--bind', MOUNT_NS_DIR, MOUNT_NS_DIR]);
  await run(['mount', '--make-private', MOUNT_NS_DIR]);
}

async function createMountNamespace(node: string): Promise<void> {
  const p = nodePaths(node);
  await ensureMountNsDir();
  mkdirSync(p.sysctlPins, { recursive: true });
  const script: string[] = ['set -e'];
  for (const [key, value] of Object.entries(KUBELET_SYSCTLS)) {
    const pin = path.join(p.sysctlPins, key.replaceAll('/', '.'));
    writeFileSync(pin, `${value}\n`);
    script.push(`mount --bind ${pin} /proc/sys/${key}`);
  }
  for (const dir of SHARED_HOST_DIRS) script.push(`mount -t tmpfs -o mode=0755,size=64m purelb-lab ${dir}`);
  writeFileSync(p.mountNs, '');
  await run(['unshare', `--mount=${p.mountNs}`, '--propagation', 'private', '--', 'sh', '-c', script.join('\n')]);
}

/** argv that runs inside the node: its network and mount namespaces, absolute paths only. */
export function inNode(node: string, argv: readonly string[]): string[] {
  return ['nsenter', `--net=/run/netns/${node}`, `--mount=${nodePaths(node).mountNs}`, '--', 'env', `PATH=${CLUSTER_BIN}:/usr/sbin:/usr/bin:/sbin:/bin`, ...argv];
}

// ---------------------------------------------------------------------------------
// Configuration files

function containerdToml(node: string): string {
  const p = nodePaths(node);
  const q = (s: string) => `'${s}'`;
  return `# containerd of lab node ${node} (written by e2e/cluster/node.ts)
version = 3
root = ${q(p.containerdRoot)}
state = ${q(p.containerdState)}
disabled_plugins = ['io.containerd.nri.v1.nri', 'io.containerd.tracing.processor.v1.otlp', 'io.containerd.internal.v1.tracing', 'io.containerd.snapshotter.v1.blockfile', 'io.containerd.snapshotter.v1.erofs']
imports = []

[grpc]
  address = ${q(p.containerdSocket)}
[ttrpc]
  address = ${q(`${p.containerdSocket}.ttrpc`)}
[debug]
  address = ''
[metrics]
  address = ''

[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = ${q(path.join(p.vari, 'opt'))}
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = ${q(PAUSE_IMAGE)}
  [plugins.'io.containerd.cri.v1.runtime']
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    enable_criu = false
    cdi_spec_dirs = []
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = ${q(path.join(CLUSTER_BIN, 'runc'))}
          Root = ${q(p.runcRoot)}
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = [${q(CNI_BIN)}]
      conf_dir = ${q(p.cniConfDir)}
      max_conf_num = 1
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
`;
}

function cniConflist(n: ClusterNode): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: CNI_NETWORK,
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          // No masquerading: the LAN routes the pod subnets (see plan.ts).
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            dataDir: nodePaths(n.name).cniDataDir,
            ranges: [[{ subnet: n.podV4 }], [{ subnet: n.podV6 }]],
            routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

function kubeletYaml(n: ClusterNode, cgroupRoot: string): string {
  const p = nodePaths(n.name);
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 and no systemd on these machines.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: ${cgroupRoot}
containerRuntimeEndpoint: unix://${p.containerdSocket}
address: ${n.v4}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${pkiFile('ca.crt')}}
authorization:
  mode: Webhook
clusterDomain: cluster.local
# No cluster DNS, and not the host's resolvers: lab pods resolve nothing.
resolvConf: ""
failSwapOn: false
podLogsDir: ${p.podLogs}
volumePluginDir: ${p.volumePlugins}
# A collected image could not be pulled again: no registry.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
imageMinimumGCAge: 87600h
# Evict only when the machine is really out of room, and never for images.
evictionHard: {memory.available: 64Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
maxPods: 40
serializeImagePulls: false
registerNode: true
protectKernelDefaults: false
makeIPTablesUtilChains: false
localStorageCapacityIsolation: true
shutdownGracePeriod: 0s
`;
}

function kubeProxyYaml(n: ClusterNode, kubeconfig: string): string {
  return `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
hostnameOverride: ${n.name}
bindAddress: 0.0.0.0
clientConnection:
  kubeconfig: ${kubeconfig}
clusterCIDR: ${CLUSTER_POD_CIDRS.join(',')}
detectLocalMode: ClusterCIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# 0 leaves the kernel's conntrack settings alone: several of them are global.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
  udpTimeout: 0s
  udpStreamTimeout: 0s
`;
}

// ---------------------------------------------------------------------------------
// Up

function startInNode(n: ClusterNode, name: string, argv: string[], marker: string): DaemonRecord {
  return startDaemon(`${name}-${n.name}`, inNode(n.name, argv), marker, CLUSTER_DIR);
}

async function waitAlive(rec: DaemonRecord, what: string, timeoutMs: number, probe: () => Promise<boolean> | boolean): Promise<void> {
  try {
    await waitUntil(
      async () => {
        if (!daemonAlive(rec)) throw new Error(`${rec.name} exited`);
        return probe();
      },
      { timeoutMs, intervalMs: 200, what },
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- ${rec.log}:\n${logTail(rec.log, 20)}`, { cause: e });
  }
}

/** ctr against a node's containerd (from the root namespace: the socket is on the shared /run). */
export function ctr(node: string, args: readonly string[], timeoutMs = 120_000) {
  return run([path.join(CLUSTER_BIN, 'ctr'), '--address', nodePaths(node).containerdSocket, '-n', 'k8s.io', ...args], { timeoutMs });
}

/** Writes a node's files, starts containerd, imports the images, starts kubelet and kube-proxy. */
export async function nodeUp(n: ClusterNode, all: readonly ClusterNode[], images: readonly string[], cgroupRoot: string): Promise<void> {
  const p = nodePaths(n.name);
  for (const d of [p.run, p.vari, p.containerdState, p.containerdRoot, p.runcRoot, p.cniConfDir, p.cniDataDir, p.kubeletRoot, p.kubeletCerts, p.podLogs, p.volumePlugins]) {
    mkdirSync(d, { recursive: true });
  }
  ensureCgroup(cgroupRoot);
  await createMountNamespace(n.name);

  // Pod routing: every other node's pod subnets over the LAN, from the node and from the
  // root namespace (where the API server answers pods).
  await nsExec(n.name, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  const routes: string[] = [];
  for (const o of all) if (o.name !== n.name) routes.push(`route replace ${o.podV4} via ${o.v4}`, `route replace ${o.podV6} via ${o.v6}`);
  if (routes.length > 0) await run(['ip', '-n', n.name, '-batch', '-'], { input: routes.join('\n') + '\n' });
  await run(['ip', 'route', 'replace', n.podV4, 'via', n.v4]);
  await run(['ip', '-6', 'route', 'replace', n.podV6, 'via', n.v6]);

  writeFileSync(path.join(p.cniConfDir, '10-purelb-lab.conflist'), cniConflist(n));
  writeFileSync(p.containerdConfig, containerdToml(n.name));
  const containerd = startInNode(n, 'containerd', [path.join(CLUSTER_BIN, 'containerd'), '--config', p.containerdConfig], p.containerdConfig);
  await waitAlive(containerd, `containerd of ${n.name}`, 30_000, async () => existsSync(p.containerdSocket) && (await ctr(n.name, ['version'], 5000).then(() => true, () => false)));
  for (const archive of images) await ctr(n.name, ['images', 'import', '--no-unpack=false', archive], 300_000);

  writeFileSync(p.kubeletConfig, kubeletYaml(n, cgroupRoot));
  writeFileSync(p.kubeletKubeconfig, readFileSync(clusterKubeconfig(`node-${n.name}`)));
  const kubelet = startInNode(
    n,
    'kubelet',
    [
      path.join(CLUSTER_BIN, 'kubelet'),
      `--config=${p.kubeletConfig}`,
      `--kubeconfig=${p.kubeletKubeconfig}`,
      `--root-dir=${p.kubeletRoot}`,
      `--cert-dir=${p.kubeletCerts}`,
      `--hostname-override=${n.name}`,
      `--node-ip=${n.v4},${n.v6}`,
      '--v=1',
    ],
    p.kubeletConfig,
  );
  const proxyKubeconfig = clusterKubeconfig('kube-proxy');
  writeFileSync(p.proxyConfig, kubeProxyYaml(n, proxyKubeconfig));
  const proxy = startInNode(n, 'kube-proxy', [path.join(CLUSTER_BIN, 'kube-proxy'), `--config=${p.proxyConfig}`, '--v=1'], p.proxyConfig);
  await waitAlive(kubelet, `kubelet of ${n.name} healthy`, 60_000, async () => (await run(['ip', 'netns', 'exec', n.name, 'curl', '-sf', '--max-time', '1', 'http://127.0.0.1:10248/healthz'], { check: false })).code === 0);
  await waitAlive(proxy, `kube-proxy of ${n.name} healthy`, 60_000, async () => (await run(['ip', 'netns', 'exec', n.name, 'curl', '-sf', '--max-time', '1', 'http://127.0.0.1:10256/healthz'], { check: false })).code === 0);
}

// ---------------------------------------------------------------------------------
// Down

function mountNsInode(node: string): number | undefined {
  try {
    return statSync(nodePaths(node).mountNs).ino;
  } catch {
    return undefined;
  }
}

/** PIDs whose mount namespace is the node's (containerd, its shims, kubelet, kube-proxy). */
function pidsInMountNs(ino: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      // stat follows the ns link to the namespace itself, whose inode names it.
      if (statSync(`/proc/${e}/ns/mnt`).ino === ino) out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}

export interface NodeDownResult {
  stopped: string[];
  killed: number;
  leftovers: string[];
}

/**
 * Stops a node's daemons (by their recorded PIDs), then every process left in its cgroups
 * (the pods) and in its mount namespace (the shims), releases the namespace, and removes
 * its cgroups, state and routes. Idempotent; works after a crash from what is on disk.
 */
export async function nodeDown(node: string, cgroupRoot: string | undefined): Promise<NodeDownResult> {
  const result: NodeDownResult = { stopped: [], killed: 0, leftovers: [] };
  const mine = readDaemons(CLUSTER_DIR).filter((r) => r.name.endsWith(`-${node}`));
  // kubelet first, so that it restarts nothing; containerd last.
  const order = (r: DaemonRecord) => (r.name.startsWith('kubelet') ? 0 : r.name.startsWith('kube-proxy') ? 1 : 2);
  for (const rec of mine.sort((a, b) => order(a) - order(b))) if (await stopDaemon(rec, 8000)) result.stopped.push(rec.name);

  const victims = new Set<number>();
  if (cgroupRoot) for (const h of cgroupHierarchies()) for (const pid of cgroupPids(path.join(h, cgroupRoot))) victims.add(pid);
  const ino = mountNsInode(node);
  if (ino !== undefined) for (const pid of pidsInMountNs(ino)) victims.add(pid);
  victims.delete(process.pid);
  await Promise.all([...victims].slice(0, 2000).map((pid) => stopPid(pid, undefined, 3000)));
  result.killed = victims.size;

  const p = nodePaths(node);
  removeCniResults(sandboxIds(node));
  if (existsSync(p.mountNs)) {
    await run(['umount', p.mountNs], { check: false });
    rmSync(p.mountNs, { force: true });
  }
  if (cgroupRoot && !removeCgroup(cgroupRoot)) result.leftovers.push(`cgroup ${cgroupRoot}`);
  // The lab's parent cgroup goes with its last node.
  if (cgroupRoot) for (const h of cgroupHierarchies()) rmdirQuiet(path.join(h, path.dirname(cgroupRoot)));
  for (const dir of [p.run, p.vari]) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (e) {
      result.leftovers.push(`${dir}: ${(e as Error).message}`);
    }
  }
  return result;
}

/** libcni's cache of every attachment's result; containerd cannot be told another place. */
export const CNI_CACHE = '/var/lib/cni';

/** The pod sandboxes a node's containerd made, from its state (each has CNI results: the pod network's and loopback's). */
export function sandboxIds(node: string): string[] {
  const dir = path.join(nodePaths(node).containerdState, 'io.containerd.grpc.v1.cri', 'sandboxes');
  try {
    return readdirSync(dir).filter((d) => /^[0-9a-f]{64}$/.test(d));
  } catch {
    return [];
  }
}

/** Removes CNI's cached results of these sandboxes (`<network>-<sandbox id>-<interface>`). */
function removeCniResults(ids: readonly string[]): void {
  const results = path.join(CNI_CACHE, 'results');
  if (ids.length === 0 || !existsSync(results)) return;
  const mine = new Set(ids);
  for (const f of readdirSync(results)) {
    const id = /-([0-9a-f]{64})-[^-]+$/.exec(f)?.[1];
    if (id !== undefined && mine.has(id)) rmSync(path.join(results, f), { force: true });
  }
}

/**
 * After every node: the private mount for the namespace files, the shared folders and
 * CNI's result cache: all of it when the lab made it (`ownCniCache`), else only the
 * entries of the lab's network.
 */
export async function clusterFilesDown(ownCniCache: boolean): Promise<string[]> {
  const left: string[] = [];
  if (existsSync(MOUNT_NS_DIR)) {
    if (readdirSync(MOUNT_NS_DIR).length > 0) left.push(`${MOUNT_NS_DIR} not empty`);
    else {
      for (let i = 0; i < 5 && (await isMountPoint(MOUNT_NS_DIR)); i++) await run(['umount', MOUNT_NS_DIR], { check: false });
      rmSync(MOUNT_NS_DIR, { recursive: true, force: true });
    }
  }
  if (ownCniCache) rmSync(CNI_CACHE, { recursive: true, force: true });
  else {
    const results = path.join(CNI_CACHE, 'results');
    if (existsSync(results)) for (const f of readdirSync(results)) if (f.startsWith(`${CNI_NETWORK}-`)) rmSync(path.join(results, f), { force: true });
  }
  // Folders the lab's pods made and nothing else uses go when they are empty.
  for (const dir of [path.join(CNI_CACHE, 'results'), CNI_CACHE, ...SHARED_HOST_DIRS, CLUSTER_RUN, CLUSTER_VAR]) {
    try {
      if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
    } catch {
      /* in use: reported below */
    }
  }
  for (const dir of [CLUSTER_RUN, CLUSTER_VAR]) if (existsSync(dir)) left.push(`${dir} still has ${readdirSync(dir).join(', ')}`);
  return left;
}

/** The mount points a shared host folder needs inside node mount namespaces. */
export function ensureSharedHostDirs(): void {
  for (const dir of SHARED_HOST_DIRS) mkdirSync(dir, { recursive: true });
}
