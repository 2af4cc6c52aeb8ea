// MetalLB itself in the process lab, for the takeover from MetalLB (issue #13): its real
// controller and speakers, built from their Go module by scripts/metallb.sh, as plain
// processes like the lab's own components.
//
//   controller: in the root namespace, with the lab's admin kubeconfig, webhooks off.
//   speaker:    one per node, inside the node's namespace (as a hostNetwork DaemonSet Pod
//               runs), HTTP on NODE_V4:7473 (purelb-ts's agent has 7472), memberlist
//               on NODE_V4:7946 with a key from a file.
//
// What a cluster would otherwise make, made here through the API: the namespace, a
// ServiceAccount, and a Pod per speaker (there is no kubelet: the Pod is created bound to
// its node and its status written Running and Ready with the node's address as pod IP),
// because memberlist finds its peers by listing the speaker Pods (--ml-labels) and the
// speaker names its Pod as owner of its ServiceL2Status objects.
//
// Every process is recorded by PID (exec.ts startDaemon, logs in .lab/net/metallb-*.log)
// and stopped by PID; `lab down` stops whatever a crashed run left. metallbDown() removes
// the processes, every metallb.io object, the CRDs and the namespace (finalized by hand:
// the process lab has no namespace controller).
//
// Layer 2 needs a ready endpoint for a Service; the process lab has no kubelets, so tests
// give their Services an EndpointSlice (kube.ts setEndpoints). With `lbClass` MetalLB
// serves only Services of that spec.loadBalancerClass and leaves every other lab test's
// Services alone; without it, it takes every class-less LoadBalancer Service of the
// cluster, so metallbUp refuses to start class-less while such Services exist outside
// the namespaces it is told it may touch.

import { CoreV1Api } from '@kubernetes/client-node';
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { kubeconfigPath } from './controlplane.ts';
import { NET_DIR, REPO_ROOT, daemonAlive, logTail, nsExec, readDaemons, run, startDaemon, stopDaemon, waitUntil } from './exec.ts';
import type { DaemonRecord } from './exec.ts';
import { kubeConfig } from './kube.ts';
import { labNodes } from './plan.ts';
import type { LabNode } from './plan.ts';
import { freePort, kubectl } from './testkit.ts';

export const METALLB_VERSION = 'v0.15.2';
export const METALLB_NS = 'metallb-system';
/** The speakers' HTTP (metrics) port: 7472, MetalLB's default, is purelb-ts's agent's. */
export const SPEAKER_PORT = 7473;
export const MEMBERLIST_PORT = 7946;
const SPEAKER_LABELS = { app: 'metallb', component: 'speaker' } as const;
const ML_LABELS = Object.entries(SPEAKER_LABELS).map(([k, v]) => `${k}=${v}`).join(',');
const ML_KEY_DIR = path.join(NET_DIR, 'metallb-memberlist');
const DAEMON_PREFIX = 'metallb-';
const CONTROLLER_NAME = 'metallb-controller';
const speakerName = (node: string): string => `metallb-speaker-${node}`;

/** The cache folder with controller, speaker and crds/ (built by scripts/metallb.sh); throws when not built. */
export async function metallbDir(): Promise<string> {
  const r = await run(['bash', path.join(REPO_ROOT, 'scripts', 'metallb.sh'), '--print-path'], { check: false, env: { ...process.env, PURELB_METALLB_VERSION: METALLB_VERSION } });
  if (r.code !== 0) throw new Error(`MetalLB ${METALLB_VERSION} is not built: run scripts/metallb.sh (scripts/setup.sh does). ${r.stderr.trim()}`);
  return r.stdout.trim();
}

const core = (): CoreV1Api => kubeConfig().makeApiClient(CoreV1Api);

function isCode(err: unknown, code: number): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && (err as { code: unknown }).code === code;
}

/** MetalLB's CRDs from the cache, applied and Established. */
export async function applyMetalLBCRDs(dir?: string): Promise<void> {
  const crds = path.join(dir ?? (await metallbDir()), 'crds');
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', crds]);
  await kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd/ipaddresspools.metallb.io', 'crd/l2advertisements.metallb.io', 'crd/servicel2statuses.metallb.io']);
}

async function ensureNamespace(name: string): Promise<void> {
  try {
    await core().createNamespace({ body: { metadata: { name } } });
  } catch (err) {
    if (!isCode(err, 409)) throw err;
  }
  // A namespace left Terminating by an earlier teardown that failed half-way: finish it first.
  const ns = await core().readNamespace({ name });
  if (ns.metadata?.deletionTimestamp) throw new Error(`namespace ${name} is being deleted (left by an earlier run); metallbDown() clears it`);
}

function speakerPod(n: LabNode): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `speaker-${n.name}`, namespace: METALLB_NS, labels: { ...SPEAKER_LABELS, 'purelb.io/lab': 'metallb' } },
    spec: {
      nodeName: n.name,
      hostNetwork: true,
      serviceAccountName: 'speaker',
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 0,
      containers: [{ name: 'speaker', image: `quay.io/metallb/speaker:${METALLB_VERSION}` }],
    },
  };
}

/** The speaker's Pod object, Running and Ready with the node's address, as a kubelet would report it. */
async function ensureSpeakerPod(n: LabNode): Promise<void> {
  const api = core();
  const body = speakerPod(n);
  const name = body.metadata?.name as string;
  try {
    await api.createNamespacedPod({ namespace: METALLB_NS, body });
  } catch (err) {
    if (!isCode(err, 409)) throw err;
  }
  const now = new Date();
  const pod = await api.readNamespacedPod({ name, namespace: METALLB_NS });
  pod.status = {
    phase: 'Running',
    hostIP: n.v4,
    hostIPs: [{ ip: n.v4 }],
    podIP: n.v4,
    podIPs: [{ ip: n.v4 }],
    startTime: now,
    conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({ type, status: 'True', lastTransitionTime: now })),
    containerStatuses: [{ name: 'speaker', image: body.spec?.containers[0]?.image ?? '', imageID: '', ready: true, restartCount: 0, started: true, state: { running: { startedAt: now } } }],
  };
  await api.replaceNamespacedPodStatus({ name, namespace: METALLB_NS, body: pod });
}

/** The memberlist key the speakers share (MetalLB's controller makes it as a Secret; here a file like the mounted Secret). */
function memberlistKeyDir(): string {
  mkdirSync(ML_KEY_DIR, { recursive: true, mode: 0o700 });
  const file = path.join(ML_KEY_DIR, 'secretkey');
  try {
    if (readFileSync(file).length > 0) return ML_KEY_DIR;
  } catch {
    /* made below */
  }
  writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600 });
  return ML_KEY_DIR;
}

export interface MetalLBOptions {
  /** Nodes that run a speaker (default: every node of the 3-node lab). */
  nodes?: readonly LabNode[];
  /** spec.loadBalancerClass MetalLB serves (--lb-class); undefined: class-less Services, as MetalLB users have them. */
  lbClass?: string;
  /**
   * Without lbClass: the namespaces whose class-less LoadBalancer Services MetalLB may
   * take. Any such Service elsewhere makes metallbUp fail (MetalLB would clear its address).
   */
  serviceNamespaces?: readonly string[];
  /** Memberlist between the speakers (default true): without it each speaker assumes one on every Node. */
  memberlist?: boolean;
  logLevel?: 'debug' | 'info';
  /** Bound for the readiness waits (default 60 s). */
  timeoutMs?: number;
}

export interface MetalLB {
  controller: DaemonRecord | undefined;
  speakers: Map<string, DaemonRecord>;
  nodes: readonly LabNode[];
  lbClass: string | undefined;
  controllerPort: number;
}

/** Class-less LoadBalancer Services outside `allowed` (which a class-less MetalLB would take). */
export async function classlessServicesOutside(allowed: readonly string[]): Promise<string[]> {
  const list = await core().listServiceForAllNamespaces();
  return list.items
    .filter((s: V1Service) => s.spec?.type === 'LoadBalancer' && !s.spec.loadBalancerClass && !allowed.includes(s.metadata?.namespace ?? ''))
    .map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`);
}

async function httpOk(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

/** Starts MetalLB's controller (root namespace). */
export async function startMetalLBController(m: Pick<MetalLB, 'lbClass' | 'controllerPort'>, opts: { logLevel?: string; timeoutMs?: number } = {}): Promise<DaemonRecord> {
  const dir = await metallbDir();
  const bin = path.join(dir, 'controller');
  const argv = [
    'env',
    `KUBECONFIG=${kubeconfigPath('admin')}`,
    bin,
    `--namespace=${METALLB_NS}`,
    '--webhook-mode=disabled',
    '--disable-cert-rotation',
    `--port=${m.controllerPort}`,
    `--log-level=${opts.logLevel ?? 'info'}`,
    ...(m.lbClass === undefined ? [] : [`--lb-class=${m.lbClass}`]),
  ];
  const rec = startDaemon(CONTROLLER_NAME, argv, bin);
  await waitUntil(
    async () => {
      if (!daemonAlive(rec)) throw new Error(`MetalLB's controller exited: ${logTail(rec.log, 20)}`);
      return httpOk(`http://127.0.0.1:${m.controllerPort}/metrics`);
    },
    { timeoutMs: opts.timeoutMs ?? 60_000, intervalMs: 200, what: "MetalLB's controller to serve /metrics" },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n${logTail(rec.log, 20)}`, { cause: err });
  });
  return rec;
}

/** Starts one speaker inside the node's namespace. */
export async function startSpeaker(n: LabNode, m: Pick<MetalLB, 'lbClass'>, opts: { memberlist?: boolean; logLevel?: string; timeoutMs?: number } = {}): Promise<DaemonRecord> {
  const dir = await metallbDir();
  const bin = path.join(dir, 'speaker');
  await ensureSpeakerPod(n);
  const marker = `--pod-name=speaker-${n.name}`;
  const ml = opts.memberlist ?? true;
  const argv = [
    'ip', 'netns', 'exec', n.name,
    'env', `KUBECONFIG=${kubeconfigPath('admin')}`,
    bin,
    `--node-name=${n.name}`,
    marker,
    `--namespace=${METALLB_NS}`,
    `--host=${n.v4}`,
    `--port=${SPEAKER_PORT}`,
    `--log-level=${opts.logLevel ?? 'debug'}`,
    ...(ml ? [`--ml-bindaddr=${n.v4}`, `--ml-bindport=${MEMBERLIST_PORT}`, `--ml-labels=${ML_LABELS}`, `--ml-secret-key-path=${memberlistKeyDir()}`] : []),
    ...(m.lbClass === undefined ? [] : [`--lb-class=${m.lbClass}`]),
  ];
  const rec = startDaemon(speakerName(n.name), argv, marker);
  await waitUntil(
    async () => {
      if (!daemonAlive(rec)) throw new Error(`MetalLB's speaker on ${n.name} exited: ${logTail(rec.log, 20)}`);
      return httpOk(`http://${n.v4}:${SPEAKER_PORT}/metrics`);
    },
    { timeoutMs: opts.timeoutMs ?? 60_000, intervalMs: 200, what: `MetalLB's speaker on ${n.name} to serve /metrics` },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n${logTail(rec.log, 20)}`, { cause: err });
  });
  return rec;
}

/**
 * MetalLB up: CRDs, namespace, ServiceAccount, controller, a speaker per node (with its
 * Pod). On any failure whatever it started is torn down (metallbDown) and it throws
 * with the logs.
 */
export async function metallbUp(opts: MetalLBOptions = {}): Promise<MetalLB> {
  const nodes = opts.nodes ?? labNodes(3);
  const dir = await metallbDir();
  if (opts.lbClass === undefined) {
    const others = await classlessServicesOutside(opts.serviceNamespaces ?? []);
    if (others.length > 0) {
      throw new Error(`metallbUp: a class-less MetalLB would take these class-less LoadBalancer Services of other tests (and clear their addresses): ${others.slice(0, 20).join(', ')}`);
    }
  }
  const m: MetalLB = { controller: undefined, speakers: new Map(), nodes, lbClass: opts.lbClass, controllerPort: freePort() };
  try {
    await applyMetalLBCRDs(dir);
    await ensureNamespace(METALLB_NS);
    try {
      await core().createNamespacedServiceAccount({ namespace: METALLB_NS, body: { metadata: { name: 'speaker', namespace: METALLB_NS } } });
    } catch (err) {
      if (!isCode(err, 409)) throw err;
    }
    m.controller = await startMetalLBController(m, { ...(opts.logLevel ? { logLevel: opts.logLevel } : {}), ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
    const started = await Promise.all(nodes.map(async (n) => [n.name, await startSpeaker(n, m, { ...opts })] as const));
    for (const [name, rec] of started) m.speakers.set(name, rec);
    return m;
  } catch (err) {
    const logs = readDaemons()
      .filter((d) => d.name.startsWith(DAEMON_PREFIX))
      .map((d) => `--- ${d.name} (${d.log})\n${logTail(d.log, 15)}`)
      .join('\n');
    await metallbDown().catch((e: unknown) => console.error(`metallbUp: teardown after the failure failed too: ${String(e)}`));
    throw new Error(`metallbUp failed: ${err instanceof Error ? err.message : String(err)}\n${logs}`, { cause: err });
  }
}

/** Stops MetalLB's controller (what scaling its Deployment to 0 does). */
export async function stopMetalLBController(): Promise<void> {
  await Promise.all(readDaemons().filter((d) => d.name === CONTROLLER_NAME).map((d) => stopDaemon(d, 5000)));
}

/**
 * Stops the speakers of `nodes` (default all), all at once, as deleting the DaemonSet
 * does, and deletes their Pods.
 */
export async function stopSpeakers(nodes?: readonly string[]): Promise<void> {
  const names = nodes?.map(speakerName);
  const recs = readDaemons().filter((d) => d.name.startsWith('metallb-speaker-') && (names === undefined || names.includes(d.name)));
  await Promise.all(recs.map((d) => stopDaemon(d, 5000)));
  const api = core();
  for (const d of recs) {
    const node = d.name.slice('metallb-speaker-'.length);
    await api.deleteNamespacedPod({ name: `speaker-${node}`, namespace: METALLB_NS, gracePeriodSeconds: 0 }).catch((err: unknown) => {
      if (!isCode(err, 404)) throw err;
    });
    // The garbage collector's part (the process lab has none): the speaker's ServiceL2Status
    // objects go with their owner, the Pod.
    await kubectl(['delete', 'servicel2statuses.metallb.io', '-n', METALLB_NS, '-l', `metallb.io/node=${node}`, '--wait=false']);
  }
}

/** The MetalLB processes still running (names as recorded). */
export function metallbProcesses(): string[] {
  return readDaemons().filter((d) => d.name.startsWith(DAEMON_PREFIX) && daemonAlive(d)).map((d) => d.name);
}

/** The log of MetalLB's speaker on `node` (empty when there is none). */
export function speakerLog(node: string): string {
  try {
    return readFileSync(path.join(NET_DIR, `${speakerName(node)}.log`), 'utf8');
  } catch {
    return '';
  }
}

export interface L2PoolOptions {
  /** MetalLB's autoAssign (default true). */
  autoAssign?: boolean;
  /** serviceAllocation.namespaces: the pool serves only these. */
  serviceNamespaces?: readonly string[];
}

/** An IPAddressPool `name` with one range and an L2Advertisement of the same name selecting it. */
export async function applyL2Pool(name: string, range: string, opts: L2PoolOptions = {}): Promise<void> {
  const pool = {
    apiVersion: 'metallb.io/v1beta1',
    kind: 'IPAddressPool',
    metadata: { name, namespace: METALLB_NS },
    spec: {
      addresses: [range],
      autoAssign: opts.autoAssign ?? true,
      ...(opts.serviceNamespaces ? { serviceAllocation: { namespaces: [...opts.serviceNamespaces] } } : {}),
    },
  };
  const adv = { apiVersion: 'metallb.io/v1beta1', kind: 'L2Advertisement', metadata: { name, namespace: METALLB_NS }, spec: { ipAddressPools: [name] } };
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [pool, adv] }) });
}

/** The node MetalLB's ServiceL2Status objects name as announcing the Service (undefined: none). */
export async function l2StatusNode(namespace: string, service: string): Promise<string[]> {
  const r = await kubectl(['get', 'servicel2statuses.metallb.io', '-n', METALLB_NS, '-o', 'json']);
  const items = (JSON.parse(r.stdout) as { items: Array<{ status?: { node?: string; serviceName?: string; serviceNamespace?: string } }> }).items;
  return items.filter((i) => i.status?.serviceName === service && i.status.serviceNamespace === namespace).map((i) => i.status?.node ?? '').filter((x) => x !== '');
}

/**
 * Tears MetalLB down and leaves nothing: its processes (by PID), the speaker Pods, every
 * metallb.io object, the CRDs, the namespace (finalized: no namespace controller here),
 * the memberlist key. Succeeds when nothing is there.
 */
export async function metallbDown(): Promise<void> {
  await Promise.all(readDaemons().filter((d) => d.name.startsWith(DAEMON_PREFIX)).map((d) => stopDaemon(d, 5000)));
  rmSync(ML_KEY_DIR, { recursive: true, force: true });
  const api = core();
  const crds = await kubectl(['get', 'crds', '-o', 'name'], { check: false });
  const ours = crds.stdout.split('\n').map((l) => l.trim()).filter((l) => l.endsWith('.metallb.io'));
  // Objects of MetalLB's kinds, in every namespace, before their CRDs.
  for (const crd of ours) await kubectl(['delete', crd.replace(/^customresourcedefinition\.apiextensions\.k8s\.io\//, ''), '--all', '-A', '--wait=true', '--timeout=30s'], { check: false });
  if (ours.length > 0) await kubectl(['delete', ...ours, '--wait=true', '--timeout=60s']);
  let nsExists = true;
  try {
    await api.readNamespace({ name: METALLB_NS });
  } catch (err) {
    if (!isCode(err, 404)) throw err;
    nsExists = false;
  }
  if (nsExists) {
    await api.deleteCollectionNamespacedPod({ namespace: METALLB_NS, gracePeriodSeconds: 0 });
    for (const kind of ['secrets', 'configmaps', 'serviceaccounts', 'events.events.k8s.io']) {
      await kubectl(['delete', kind, '--all', '-n', METALLB_NS, '--wait=false'], { check: false });
    }
    await api.deleteNamespace({ name: METALLB_NS }).catch((err: unknown) => {
      if (!isCode(err, 404)) throw err;
    });
    // No namespace controller: the namespace waits for its `kubernetes` finalizer forever.
    await waitUntil(
      async () => {
        let ns;
        try {
          ns = await api.readNamespace({ name: METALLB_NS });
        } catch (err) {
          if (isCode(err, 404)) return true;
          throw err;
        }
        if ((ns.spec?.finalizers ?? []).length > 0) {
          ns.spec = { ...ns.spec, finalizers: [] };
          await api.replaceNamespaceFinalize({ name: METALLB_NS, body: ns }).catch((err: unknown) => {
            if (!isCode(err, 404) && !isCode(err, 409)) throw err;
          });
        }
        return false;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: `namespace ${METALLB_NS} to be gone` },
    );
  }
  const left = metallbProcesses();
  if (left.length > 0) throw new Error(`metallbDown: still running: ${left.join(', ')}`);
}

// ---------------------------------------------------------------------------------
// kube-proxy's part, emulated: each node forwards a VIP's port to its responder.

const KPROXY_TABLE = 'plb-metallb-kproxy';

/**
 * In every node of `nodes`, DNAT of TCP `vips`:port to the node's own address (where the
 * lab's responder listens), as kube-proxy does for a LoadBalancer IP on every node: a
 * node that receives the VIP's traffic answers it, whoever announced the address.
 */
export async function kubeProxyUp(vips: readonly string[], nodes: readonly LabNode[] = labNodes(3), port = 80): Promise<void> {
  if (vips.length === 0) throw new Error('kubeProxyUp: no VIP');
  for (const n of nodes) {
    await nsExec(n.name, ['nft', 'delete', 'table', 'ip', KPROXY_TABLE], { check: false });
    const rules = `table ip ${KPROXY_TABLE} {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr { ${vips.join(', ')} } tcp dport ${port} dnat to ${n.v4}:${port}
  }
}
`;
    await nsExec(n.name, ['nft', '-f', '-'], { input: rules });
  }
}

/** Removes kubeProxyUp's table from every node (no error when absent). */
export async function kubeProxyDown(nodes: readonly LabNode[] = labNodes(3)): Promise<void> {
  for (const n of nodes) await nsExec(n.name, ['nft', 'delete', 'table', 'ip', KPROXY_TABLE], { check: false });
}
