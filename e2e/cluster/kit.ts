// Helpers for the cluster tier's tests and benchmark: purelb-ts installed by its own chart
// from the image the lab imported, the reference scenario with real backends, and what a
// client in the client namespace sees through the VIPs.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { kubeconfigPath } from '../lab/controlplane.ts';
import { REPO_ROOT, nsExec } from '../lab/exec.ts';
import type { ConnectResult } from '../lab/network.ts';
import { CLIENT } from '../lab/plan.ts';
import { kubectl, referenceManifest, waitUntil } from '../lab/testkit.ts';
import { CHART_DIR, helm, setArgs } from '../install/chart.ts';
import { readClusterState } from './state.ts';
import { clusterNodes, nodePaths } from './plan.ts';

export const PURELB_NS = 'purelb';
export const APP_NS = 'nginx-quic';
export const RELEASE = 'purelb';
export const NODE_NAMES = clusterNodes().map((n) => n.name);

/** Fails loudly (never skips) when the cluster tier is not up: a test that cannot run is a failure. */
export async function requireCluster(): Promise<void> {
  const state = readClusterState();
  assert.ok(state, 'the cluster lab is not up: run `npm run lab -- up --cluster` (npm test does)');
  const r = await kubectl(['get', 'nodes', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}'], { check: false });
  assert.equal(r.code, 0, `the cluster lab's API server does not answer: ${r.stderr}`);
  for (const n of state.nodes) assert.match(r.stdout, new RegExp(`\\b${n}=True\\b`), `Node ${n} is not Ready: ${r.stdout}`);
}

/** The image reference the chart is given: the archive's name, as the kubelets know it. */
export function purelbImage(): { repository: string; tag: string } {
  const image = readClusterState()?.images.find((i) => i.name.includes('purelb-ts'));
  assert.ok(image, 'the cluster lab imported no purelb-ts image');
  const ref = image.name.replace(/^docker\.io\/library\//, '');
  const cut = ref.lastIndexOf(':');
  return { repository: ref.slice(0, cut), tag: ref.slice(cut + 1) };
}

export function clusterHelm(args: readonly string[], opts: { check?: boolean; timeoutMs?: number } = {}) {
  return helm(['--kubeconfig', kubeconfigPath('admin'), ...args], { timeoutMs: opts.timeoutMs ?? 300_000, ...opts });
}

/** The chart's values the lab always sets: the imported image, never pulled. */
export function labValues(): Record<string, string | number | boolean> {
  const { repository, tag } = purelbImage();
  return { 'image.repository': repository, 'image.tag': tag, 'image.pullPolicy': 'Never' };
}

/** `helm upgrade --install` of helm/purelb with the lab's values plus `values`, waiting for every pod. */
export async function installPurelb(values: Record<string, string | number | boolean> = {}): Promise<number> {
  const t0 = performance.now();
  await clusterHelm(['upgrade', '--install', RELEASE, CHART_DIR, '-n', PURELB_NS, '--create-namespace', '--wait', '--timeout', '4m', ...setArgs({ ...labValues(), ...values })]);
  return performance.now() - t0;
}

export async function releaseInstalled(): Promise<boolean> {
  const r = await clusterHelm(['status', RELEASE, '-n', PURELB_NS], { check: false, timeoutMs: 30_000 });
  return r.code === 0;
}

/** The scenario's ServiceGroups (the chart brings the LBNodeAgent), the backends, then the six Services. */
export async function applyScenario(): Promise<void> {
  const groups = parseAllDocuments(referenceManifest('servicegroups.yaml'))
    .map((d) => d.toJS() as { kind: string })
    .filter((o) => o.kind === 'ServiceGroup');
  await kubectl(['apply', '-f', '-'], { input: groups.map((g) => JSON.stringify(g)).join('\n') });
  const services = referenceManifest('services.yaml');
  // The Namespace first (it heads services.yaml), then the backends, then the Services.
  await kubectl(['apply', '-f', '-'], { input: parseAllDocuments(services).filter((d) => (d.toJS() as { kind: string }).kind === 'Namespace').map((d) => d.toString()).join('---\n') });
  await kubectl(['apply', '-f', path.join(REPO_ROOT, 'examples', 'backends.yaml')]);
  await kubectl(['apply', '-f', '-'], { input: services });
  await kubectl(['rollout', 'status', '-n', APP_NS, 'deployment/nginx-lb', '--timeout=120s'], { timeoutMs: 130_000 });
}

/** One HTTP GET from the client namespace; the backend's `<pod> <node>`, or undefined. */
export async function clientGet(ip: string, timeoutMs = 2000): Promise<string | undefined> {
  const host = ip.includes(':') ? `[${ip}]` : ip;
  const r = await nsExec(CLIENT.ns, ['curl', '-sS', '--max-time', String(timeoutMs / 1000), `http://${host}/`], { check: false, timeoutMs: timeoutMs + 5000 });
  return r.code === 0 ? r.stdout.trim() : undefined;
}

/** Waits until the client gets an HTTP answer through ip; returns it. */
export async function waitForAnswer(ip: string, timeoutMs = 30_000): Promise<string> {
  let answer: string | undefined;
  await waitUntil(`an HTTP answer through ${ip}`, timeoutMs, async () => (answer = await clientGet(ip, 1000)) !== undefined, 200);
  return answer as string;
}

/** `node,interface` of every node namespace holding ip, sorted. */
export async function holdersOf(ip: string): Promise<string[]> {
  const found: string[] = [];
  for (const node of NODE_NAMES) {
    const links = JSON.parse((await nsExec(node, ['ip', '-j', 'addr', 'show'])).stdout) as Array<{ ifname: string; addr_info: Array<{ local: string }> }>;
    for (const l of links) if (l.addr_info.some((a) => a.local === ip)) found.push(`${node},${l.ifname}`);
  }
  return found.sort();
}

/** Every address on any node that is not the node's own (eth0's LAN addresses, link-locals, loopback). */
export async function foreignAddresses(): Promise<string[]> {
  const found: string[] = [];
  const own = new Set(clusterNodes().flatMap((n) => [n.v4, n.v6]));
  for (const node of NODE_NAMES) {
    const links = JSON.parse((await nsExec(node, ['ip', '-j', 'addr', 'show'])).stdout) as Array<{ ifname: string; addr_info: Array<{ local: string; scope: string }> }>;
    for (const l of links) {
      if (l.ifname === 'lo' || l.ifname === 'cni0' || l.ifname.startsWith('veth')) continue;
      for (const a of l.addr_info) if (a.scope === 'global' && !own.has(a.local)) found.push(`${node},${l.ifname},${a.local}`);
    }
  }
  return found.sort();
}

export interface PodInfo {
  name: string;
  node: string;
  ready: boolean;
  uid: string;
  containerIds: string[];
}

export async function pods(namespace: string, selector: string): Promise<PodInfo[]> {
  const r = await kubectl(['get', 'pods', '-n', namespace, '-l', selector, '-o', 'json']);
  const items = (JSON.parse(r.stdout) as { items: Array<{ metadata: { name: string; uid: string; deletionTimestamp?: string }; spec: { nodeName?: string }; status: { conditions?: Array<{ type: string; status: string }>; containerStatuses?: Array<{ containerID?: string }> } }> }).items;
  return items
    .filter((p) => p.metadata.deletionTimestamp === undefined)
    .map((p) => ({
      name: p.metadata.name,
      uid: p.metadata.uid,
      node: p.spec.nodeName ?? '',
      ready: p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
      containerIds: (p.status.containerStatuses ?? []).flatMap((c) => (c.containerID ? [c.containerID.replace(/^containerd:\/\//, '')] : [])),
    }));
}

/** The Services' ingress addresses by name. */
export async function ingressByService(namespace = APP_NS): Promise<Map<string, string[]>> {
  const r = await kubectl(['get', 'svc', '-n', namespace, '-o', 'json']);
  const items = (JSON.parse(r.stdout) as { items: Array<{ metadata: { name: string }; status?: { loadBalancer?: { ingress?: Array<{ ip?: string }> } } }> }).items;
  return new Map(items.map((s) => [s.metadata.name, (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '')]));
}

/** The PID (in the root namespace) of a container's first process, from runc's state (containerd's namespace k8s.io). */
export function containerPid(node: string, containerId: string): number {
  const statePath = path.join(nodePaths(node).runcRoot, 'k8s.io', containerId, 'state.json');
  const state = JSON.parse(readFileSync(statePath, 'utf8')) as { init_process_pid: number };
  return state.init_process_pid;
}

/** The longest time without a successful answer, over back-to-back attempts. */
export function longestGap(attempts: readonly ConnectResult[]): number {
  let longest = 0;
  let lastOk: number | undefined;
  for (const a of [...attempts].sort((x, y) => x.at - y.at)) {
    if (!a.ok) continue;
    if (lastOk !== undefined) longest = Math.max(longest, a.at - lastOk);
    lastOk = a.at + a.ms;
  }
  return longest;
}
