// The lab's control plane: etcd and kube-apiserver built from their Go modules
// (e2e/controlplane), started as plain processes with RBAC on, static tokens, a
// service-account issuer and dual-stack Service CIDRs. The process tier has no kubelet
// and no controller manager: tests create Nodes and EndpointSlices themselves. The
// cluster tier (e2e/cluster) passes `cluster`: node, kube-proxy and controller
// identities join the token file, the Node authorizer and NodeRestriction come on, the
// API server can reach kubelets, and kube-controller-manager and kube-scheduler run
// beside it.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { API_PORT, ETCD_CLIENT_PORT, ETCD_PEER_PORT, HOST_V4, SERVICE_CIDRS } from './plan.ts';
import { CONTROL_PLANE_DIR, LAB_DIR, REPO_ROOT, daemonAlive, logTail, readDaemons, startDaemon, stopDaemon } from './exec.ts';
import type { DaemonRecord } from './exec.ts';

const SA_ISSUER = 'https://kubernetes.default.svc.cluster.local';

/** Identities in the static token file. Component identities start with no rights. */
export const IDENTITIES = {
  admin: { user: 'lab-admin', groups: ['system:masters'] },
  allocator: { user: 'purelb-allocator', groups: ['purelb'] },
  lbnodeagent: { user: 'purelb-lbnodeagent', groups: ['purelb'] },
  nobody: { user: 'lab-nobody', groups: [] as string[] },
} as const;
export type Identity = keyof typeof IDENTITIES;

export function binDir(): string {
  return path.join(REPO_ROOT, 'e2e', 'controlplane', 'bin');
}

export function kubeconfigPath(identity: Identity = 'admin'): string {
  return path.join(LAB_DIR, identity === 'admin' ? 'admin.kubeconfig' : `${identity}.kubeconfig`);
}

const PKI_DIR = path.join(CONTROL_PLANE_DIR, 'pki');
const ETCD_DATA = path.join(CONTROL_PLANE_DIR, 'etcd-data');

export function apiServerURL(): string {
  return `https://${HOST_V4}:${API_PORT}`;
}

/** Builds the binaries if the cache lacks them (no-op when warm). */
export function buildControlPlane(): void {
  execFileSync('bash', [path.join(REPO_ROOT, 'e2e', 'controlplane', 'build.sh')], { stdio: 'inherit' });
}

function pki(dir: string): void {
  const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ossl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', '/CN=purelb-lab-ca']);
  writeFileSync(
    path.join(dir, 'server.ext'),
    `subjectAltName=IP:${HOST_V4},IP:127.0.0.1,IP:${SERVICE_CIDRS[0].replace(/0\/\d+$/, '1')},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\n`,
  );
  ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver']);
  ossl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '30', '-extfile', 'server.ext']);
  // The API server's client certificate towards kubelets (their webhook authorizer lets system:masters in).
  ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'kubelet-client.key', '-out', 'kubelet-client.csr', '-subj', '/O=system:masters/CN=kube-apiserver-kubelet-client']);
  ossl(['x509', '-req', '-in', 'kubelet-client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'kubelet-client.crt', '-days', '30']);
  ossl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key']);
  ossl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
}

type Who = { readonly user: string; readonly groups: readonly string[] };

/** The cluster tier's identities: Kubernetes' own users, bound by its default RBAC and the Node authorizer. */
export function clusterIdentities(nodes: readonly string[]): Record<string, Who> {
  const out: Record<string, Who> = {
    'kube-controller-manager': { user: 'system:kube-controller-manager', groups: [] },
    'kube-scheduler': { user: 'system:kube-scheduler', groups: [] },
    'kube-proxy': { user: 'system:kube-proxy', groups: [] },
  };
  for (const n of nodes) out[`node-${n}`] = { user: `system:node:${n}`, groups: ['system:nodes'] };
  return out;
}

function writeTokens(dir: string, extra: Record<string, Who>): Record<string, string> {
  const tokens: Record<string, string> = {};
  const lines: string[] = [];
  for (const [id, who] of Object.entries<Who>({ ...IDENTITIES, ...extra })) {
    tokens[id] = randomBytes(24).toString('hex');
    lines.push(`${tokens[id]},${who.user},${who.user},"${who.groups.join(',')}"`);
  }
  writeFileSync(path.join(dir, 'tokens.csv'), lines.join('\n') + '\n', { mode: 0o600 });
  writeFileSync(path.join(dir, 'tokens.json'), JSON.stringify(tokens, null, 2), { mode: 0o600 });
  return tokens;
}

/** The token of a lab identity, or of a cluster identity (`node-<name>`, `kube-proxy`, …). */
export function readToken(identity: Identity | (string & {})): string {
  const tokens = JSON.parse(readFileSync(path.join(PKI_DIR, 'tokens.json'), 'utf8')) as Record<string, string>;
  const t = tokens[identity];
  if (t === undefined) throw new Error(`no lab token for ${identity} (is the cluster tier up?)`);
  return t;
}

/** Files of the lab's PKI (CA, service-account keys), for the cluster tier's components. */
export const pkiFile = (name: 'ca.crt' | 'sa.key' | 'sa.pub'): string => path.join(PKI_DIR, name);

/** A kubeconfig for `user` with bearer `token` (used for static and ServiceAccount tokens). */
export function kubeconfigYAML(user: string, token: string): string {
  const ca = readFileSync(path.join(PKI_DIR, 'ca.crt')).toString('base64');
  return `apiVersion: v1
kind: Config
clusters:
- name: purelb-lab
  cluster:
    server: ${apiServerURL()}
    certificate-authority-data: ${ca}
users:
- name: ${user}
  user:
    token: ${token}
contexts:
- name: ${user}@purelb-lab
  context: {cluster: purelb-lab, user: ${user}}
current-context: ${user}@purelb-lab
`;
}

function startProcess(name: string, bin: string, args: string[]): DaemonRecord {
  // The binary path is unique to the lab's cache, so it serves as the PID marker.
  return startDaemon(name, [bin, ...args], bin, CONTROL_PLANE_DIR);
}

async function waitFor(what: string, timeoutMs: number, probe: () => Promise<boolean>, rec: DaemonRecord): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; Date.now() < deadline && attempt < 10_000; attempt++) {
    if (await probe()) return;
    if (!daemonAlive(rec)) break;
    await sleep(200);
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms; last log lines:\n${logTail(rec.log, 25)}`);
}

async function etcdHealthy(): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${ETCD_CLIENT_PORT}/health`, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

/** GET on the API server with the admin token; undefined when unreachable. */
export async function apiGet(pathname: string, identity: Identity = 'admin'): Promise<{ status: number; body: string } | undefined> {
  // The lab CA is private; curl with --cacert keeps Node's global TLS settings untouched.
  try {
    const out = execFileSync(
      'curl',
      ['-sS', '--max-time', '2', '--cacert', path.join(PKI_DIR, 'ca.crt'), '-H', `Authorization: Bearer ${readToken(identity)}`, '-w', '\n%{http_code}', `${apiServerURL()}${pathname}`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    ).toString();
    const cut = out.lastIndexOf('\n');
    return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) };
  } catch {
    return undefined;
  }
}

async function apiReady(): Promise<boolean> {
  const r = await apiGet('/readyz');
  return r?.status === 200;
}

export interface ControlPlaneOptions {
  /** The cluster tier: its node names, Service CIDRs and pod CIDRs. */
  cluster?: { nodes: readonly string[]; serviceCidrs: readonly string[]; podCidrs: readonly string[] };
}

export async function controlPlaneUp(opts: ControlPlaneOptions = {}): Promise<void> {
  buildControlPlane();
  await controlPlaneDown();
  const pkiDir = PKI_DIR;
  mkdirSync(pkiDir, { recursive: true });
  pki(pkiDir);
  const cluster = opts.cluster;
  const tokens = writeTokens(pkiDir, cluster ? clusterIdentities(cluster.nodes) : {});
  const bin = binDir();

  const etcdData = ETCD_DATA;
  const etcd = startProcess('etcd', path.join(bin, 'etcd'), [
    '--name=lab',
    `--data-dir=${etcdData}`,
    `--listen-client-urls=http://127.0.0.1:${ETCD_CLIENT_PORT}`,
    `--advertise-client-urls=http://127.0.0.1:${ETCD_CLIENT_PORT}`,
    `--listen-peer-urls=http://127.0.0.1:${ETCD_PEER_PORT}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${ETCD_PEER_PORT}`,
    `--initial-cluster=lab=http://127.0.0.1:${ETCD_PEER_PORT}`,
    '--listen-metrics-urls=',
    // The lab's data is thrown away on `down`; fsync would only slow benchmarks.
    '--unsafe-no-fsync',
    '--quota-backend-bytes=4294967296',
    '--log-level=warn',
  ]);
  await waitFor('etcd', 30_000, etcdHealthy, etcd);

  const apiServer = startProcess('kube-apiserver', path.join(bin, 'kube-apiserver'), [
    `--etcd-servers=http://127.0.0.1:${ETCD_CLIENT_PORT}`,
    `--bind-address=${HOST_V4}`,
    `--advertise-address=${HOST_V4}`,
    `--secure-port=${API_PORT}`,
    `--tls-cert-file=${pkiDir}/server.crt`,
    `--tls-private-key-file=${pkiDir}/server.key`,
    `--client-ca-file=${pkiDir}/ca.crt`,
    `--token-auth-file=${pkiDir}/tokens.csv`,
    ...(cluster
      ? [
          '--authorization-mode=Node,RBAC',
          '--enable-admission-plugins=NodeRestriction',
          // Node names do not resolve; kubectl logs/exec go to the node's LAN address.
          '--kubelet-preferred-address-types=InternalIP',
          `--kubelet-client-certificate=${pkiDir}/kubelet-client.crt`,
          `--kubelet-client-key=${pkiDir}/kubelet-client.key`,
        ]
      : ['--authorization-mode=RBAC']),
    '--anonymous-auth=false',
    `--service-account-issuer=${SA_ISSUER}`,
    `--api-audiences=${SA_ISSUER}`,
    `--service-account-key-file=${pkiDir}/sa.pub`,
    `--service-account-signing-key-file=${pkiDir}/sa.key`,
    `--service-cluster-ip-range=${(cluster?.serviceCidrs ?? SERVICE_CIDRS).join(',')}`,
    '--allow-privileged=true',
    '--profiling=false',
    // Benchmarks create thousands of objects from one client; the defaults would queue them.
    '--max-requests-inflight=2000',
    '--max-mutating-requests-inflight=1000',
    '--event-ttl=2h',
    '--v=1',
  ]);
  await waitFor('kube-apiserver', 90_000, apiReady, apiServer);

  for (const id of Object.keys(IDENTITIES) as Identity[]) {
    writeFileSync(kubeconfigPath(id), kubeconfigYAML(IDENTITIES[id].user, tokens[id] as string), { mode: 0o600 });
  }
  if (cluster) await controllersUp(cluster.podCidrs);
}

/** A kubeconfig file (under the control plane's folder) for a cluster identity's token. */
export function clusterKubeconfig(id: string): string {
  const file = path.join(CONTROL_PLANE_DIR, `${id}.kubeconfig`);
  writeFileSync(file, kubeconfigYAML(id, readToken(id)), { mode: 0o600 });
  return file;
}

/**
 * kube-controller-manager (namespaces, ServiceAccounts and their tokens, kube-root-ca.crt,
 * Deployments, DaemonSets, EndpointSlices, node lifecycle) and kube-scheduler, with their
 * secure ports off: the lab reads their work from the API server.
 */
async function controllersUp(podCidrs: readonly string[]): Promise<void> {
  const bin = path.join(REPO_ROOT, 'e2e', 'cluster', 'bin');
  const kcm = startProcess('kube-controller-manager', path.join(bin, 'kube-controller-manager'), [
    `--kubeconfig=${clusterKubeconfig('kube-controller-manager')}`,
    '--use-service-account-credentials',
    `--service-account-private-key-file=${pkiFile('sa.key')}`,
    `--root-ca-file=${pkiFile('ca.crt')}`,
    `--cluster-cidr=${podCidrs.join(',')}`,
    '--leader-elect=false',
    '--secure-port=0',
    '--controllers=*,-nodeipam,-cloud-node-lifecycle,-route,-service-lb-controller,-persistentvolume-binder,-attachdetach',
    '--concurrent-deployment-syncs=2',
    '--v=1',
  ]);
  const scheduler = startProcess('kube-scheduler', path.join(bin, 'kube-scheduler'), [
    `--kubeconfig=${clusterKubeconfig('kube-scheduler')}`,
    '--leader-elect=false',
    '--secure-port=0',
    '--v=1',
  ]);
  await waitFor('kube-controller-manager', 60_000, async () => daemonAlive(kcm) && (await apiGet('/api/v1/namespaces/default/serviceaccounts/default'))?.status === 200, kcm);
  await waitFor('kube-scheduler', 60_000, async () => daemonAlive(scheduler) && (await apiGet('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases')) !== undefined, scheduler);
}

export async function controlPlaneDown(): Promise<void> {
  // The controllers first (they would only log connection errors), etcd last.
  const rank = (name: string): number => (name === 'etcd' ? 2 : name === 'kube-apiserver' ? 1 : 0);
  const daemons = readDaemons(CONTROL_PLANE_DIR).sort((a, b) => rank(a.name) - rank(b.name));
  for (const rec of daemons) await stopDaemon(rec, 10_000);
  rmSync(ETCD_DATA, { recursive: true, force: true });
}

export function controlPlaneStatus(): { etcd: number | undefined; apiServer: number | undefined; kubeconfig: string } {
  const alive = (name: string) => readDaemons(CONTROL_PLANE_DIR).find((r) => r.name === name && daemonAlive(r))?.pid;
  return { etcd: alive('etcd'), apiServer: alive('kube-apiserver'), kubeconfig: kubeconfigPath() };
}
