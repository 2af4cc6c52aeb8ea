// Create → VIP trials against one agent on the kernel this process runs on, the same
// code in a lab node namespace (the host kernel) and inside Linux 5.10 under QEMU
// (bench/old-kernel.ts, e2e/lbnodeagent/old-kernel.test.ts), so the two figures are measured the same way, each on one
// clock: this process creates the Service through the API server and the kernel's own
// notification (`ip -ts monitor address`) stamps the VIP's arrival.
//
//   node e2e/lbnodeagent/vip-trials.ts CONFIG.json   (prints one JSON line: the per-trial times)
//
// It starts the agent's bundle in its own network namespace, as the DaemonSet's pod
// with hostNetwork would run, waits for it to be ready, runs the trials one at a time
// (each Service is deleted and its VIP withdrawn before the next), optionally the safety
// checks of a hand-added address equal to a VIP, then stops the agent with SIGTERM,
// waits for it to exit and lists what of the pool is left on the node.

import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Api, ApiError, PATHS } from '../../src/k8s/api.ts';
import { loadConnection } from '../../src/k8s/connection.ts';
import { ENTRY, NODE_FLAGS } from '../../src/runtime.ts';

export interface VipTrialsConfig {
  /** The admin kubeconfig (creates and deletes the Services). */
  adminKubeconfig: string;
  /** The agent's kubeconfig. */
  agentKubeconfig: string;
  /** Node name of the agent (a Node object of that name exists). */
  node: string;
  /** Namespace of the ServiceGroup, LBNodeAgent and member Leases. */
  namespace: string;
  /** Namespace of the trial Services. */
  appNamespace: string;
  serviceGroup: string;
  /** Addresses of the group's pool (IPv6, routed: the VIP goes on kube-lb0) start with this. */
  poolPrefix: string;
  trials: number;
  /** The agent's extra environment (reconcile period, …). */
  agentEnv: Record<string, string>;
  /** Bound on each wait, in ms. */
  timeoutMs: number;
  /**
   * After the trials, the safety checks: an address equal to the next VIP added by hand
   * before its Service exists is left alone through the Service's life and the agent's
   * stop, and the stop leaves none of ours.
   */
  safety?: boolean;
}

export interface SafetyResult {
  /** The hand-added address, and the VIP the Service got (the same, the pool being empty). */
  handAdded: string;
  vip: string;
  /** The agent logged it as present and not ours. */
  reportedNotOurs: boolean;
  presentAfterServiceDeleted: boolean;
  presentAfterAgentStopped: boolean;
}

export interface VipTrialsResult {
  kernel: string;
  /** How the agent told its addresses: 'marker' (IFA_PROTO) or 'record'. */
  ownership: string;
  createToVipMs: number[];
  deleteToWithdrawnMs: number[];
  agentReadyMs: number;
  /** Addresses of the pool still on the node once the agent stopped (SIGTERM withdraws ours). */
  poolAddressesAfterStop: string[];
  safety?: SafetyResult;
}

const REPO_ROOT = new URL('../..', import.meta.url).pathname;

/** Address changes in this namespace, stamped by the kernel's notification time (epoch ms). */
class Monitor {
  readonly added = new Map<string, number>();
  readonly removed = new Map<string, number>();
  private readonly child: ChildProcess;
  private waiters: Array<() => void> = [];

  constructor() {
    this.child = spawn('ip', ['-ts', 'monitor', 'address'], { stdio: ['ignore', 'pipe', 'ignore'] });
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const m = /^\[([^\]]+)\]\s+(Deleted\s+)?\d+:\s+\S+\s+inet6?\s+([0-9a-f.:]+)\//.exec(line);
      if (!m) return;
      const at = new Date((m[1] as string).replace(/(\.\d{3})\d*/, '$1')).getTime();
      (m[2] ? this.removed : this.added).set(m[3] as string, at);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Resolves with what `pick` finds, once a notification makes it find something. */
  async until<T>(what: string, timeoutMs: number, pick: () => T | undefined): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = pick();
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.child.kill();
  }
}

export async function ready(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(2000) })).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the agent was not ready (${url}) within ${timeoutMs} ms`);
}

export async function runTrials(cfg: VipTrialsConfig): Promise<VipTrialsResult> {
  const api = new Api(loadConnection(cfg.adminKubeconfig));
  const monitor = new Monitor();
  const started = performance.now();
  const agent = spawn(process.execPath, [...NODE_FLAGS.lbnodeagent, `${REPO_ROOT}${ENTRY.lbnodeagent}`], {
    env: { ...process.env, KUBECONFIG: cfg.agentKubeconfig, PURELB_NAMESPACE: cfg.namespace, NODE_NAME: cfg.node, ...cfg.agentEnv },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => agent.once('exit', () => resolve()));
  const result: VipTrialsResult = {
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    ownership: 'unknown',
    createToVipMs: [],
    deleteToWithdrawnMs: [],
    agentReadyMs: 0,
    poolAddressesAfterStop: [],
  };
  const notOurs = new Set<string>();
  // The agent logs JSON lines on stderr: its ownership mode is taken from them, the
  // last ones go into an error.
  const agentLog: string[] = [];
  createInterface({ input: agent.stderr as NodeJS.ReadableStream }).on('line', (line) => {
    agentLog.push(line);
    if (agentLog.length > 40) agentLog.shift();
    try {
      const entry = JSON.parse(line) as { message?: string; mode?: string; ip?: string };
      if (entry.message === 'address ownership' && entry.mode !== undefined) result.ownership = entry.mode;
      if (entry.message === 'address already on the node and not ours: left alone' && entry.ip !== undefined) notOurs.add(entry.ip);
    } catch {
      // not a log line
    }
  });
  try {
    await ready('http://127.0.0.1:7472/readyz', cfg.timeoutMs);
    result.agentReadyMs = performance.now() - started;
    for (let i = 0; i < cfg.trials; i++) {
      const name = `vip-trial-${i}`;
      const seen = new Set(monitor.added.keys());
      const createdAt = Date.now();
      await createService(api, cfg, name);
      const [vip, at] = await monitor
        .until(`the VIP of ${name} in the kernel`, cfg.timeoutMs, () =>
          [...monitor.added].find(([ip, t]) => ip.startsWith(cfg.poolPrefix) && !seen.has(ip) && t >= createdAt - 5),
        )
        .catch(async (err: unknown) => {
          const svc = await api.get<{ metadata?: { annotations?: unknown }; status?: unknown }>(PATHS.service(cfg.appNamespace, name));
          throw new Error(`${String(err)}; the Service: ${JSON.stringify({ annotations: svc.metadata?.annotations, status: svc.status })}`);
        });
      result.createToVipMs.push(at - createdAt);
      monitor.removed.delete(vip);
      const deletedAt = Date.now();
      await api.delete(PATHS.service(cfg.appNamespace, name));
      const gone = await monitor.until(`${vip} withdrawn`, cfg.timeoutMs, () => monitor.removed.get(vip));
      result.deleteToWithdrawnMs.push(gone - deletedAt);
      monitor.added.delete(vip);
    }
    if (cfg.safety) result.safety = await safetyChecks(api, cfg, notOurs);
  } catch (err) {
    throw new Error(`${String(err)}\nthe agent's last log lines:\n${agentLog.join('\n')}`, { cause: err });
  } finally {
    monitor.close();
    agent.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, cfg.timeoutMs))]);
    if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGKILL');
    for (const name of [...Array.from({ length: cfg.trials }, (_, i) => `vip-trial-${i}`), SAFETY_SERVICE]) {
      await api.delete(PATHS.service(cfg.appNamespace, name)).catch((err: unknown) => {
        if (!(err instanceof ApiError && err.code === 404)) throw err;
      });
    }
  }
  const onNode = poolAddresses(cfg.poolPrefix);
  if (result.safety) {
    result.safety.presentAfterAgentStopped = onNode.includes(result.safety.handAdded);
    run('ip', ['addr', 'del', `${result.safety.handAdded}/128`, 'dev', DUMMY]);
  }
  result.poolAddressesAfterStop = onNode.filter((ip) => ip !== result.safety?.handAdded);
  return result;
}

const SAFETY_SERVICE = 'vip-safety';
const DUMMY = 'kube-lb0';

async function createService(api: Api, cfg: VipTrialsConfig, name: string): Promise<void> {
  await api.create(PATHS.services(cfg.appNamespace), {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, annotations: { 'purelb.io/service-group': cfg.serviceGroup } },
    spec: { type: 'LoadBalancer', ipFamilies: ['IPv6'], ipFamilyPolicy: 'SingleStack', ports: [{ port: 80, protocol: 'TCP' }] },
  });
}

export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
}

/** The addresses starting with `prefix` on interface `dev` (of namespace `ns`, else this one), sorted. */
export function addressesOn(dev: string, prefix: string, ns?: string): string[] {
  const links = JSON.parse(run('ip', [...(ns === undefined ? [] : ['-n', ns]), '-j', 'addr', 'show', 'dev', dev])) as Array<{ addr_info?: Array<{ local: string }> }>;
  return links
    .flatMap((l) => (l.addr_info ?? []).map((a) => a.local))
    .filter((ip) => ip.startsWith(prefix))
    .sort();
}

/** The pool's addresses on this node's dummy interface. */
const poolAddresses = (prefix: string): string[] => addressesOn(DUMMY, prefix);

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The pool's first address (what the allocator gives next, the pool being empty) added
 * by hand on the dummy interface, then a Service that gets it: the agent must report
 * it as not ours and leave it, also after the Service is deleted.
 */
async function safetyChecks(api: Api, cfg: VipTrialsConfig, notOurs: ReadonlySet<string>): Promise<SafetyResult> {
  const handAdded = cfg.poolPrefix;
  run('ip', ['addr', 'add', `${handAdded}/128`, 'dev', DUMMY, 'nodad']);
  await createService(api, cfg, SAFETY_SERVICE);
  const vip = await waitFor(`an address for ${SAFETY_SERVICE}`, cfg.timeoutMs, async () => {
    const svc = await api.get<{ status?: { loadBalancer?: { ingress?: Array<{ ip?: string }> } } }>(PATHS.service(cfg.appNamespace, SAFETY_SERVICE));
    return svc.status?.loadBalancer?.ingress?.[0]?.ip;
  });
  const reportedNotOurs = await waitFor(`the agent to find ${handAdded} not ours`, cfg.timeoutMs, () => (notOurs.has(handAdded) ? true : undefined)).catch(() => false);
  await api.delete(PATHS.service(cfg.appNamespace, SAFETY_SERVICE));
  // Three passes of the agent after the delete.
  await new Promise((r) => setTimeout(r, 3 * Number(cfg.agentEnv.PURELB_RECONCILE_MS ?? 10_000)));
  return { handAdded, vip, reportedNotOurs, presentAfterServiceDeleted: poolAddresses(cfg.poolPrefix).includes(handAdded), presentAfterAgentStopped: false };
}

if (import.meta.main) {
  const cfg = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as VipTrialsConfig;
  console.log(JSON.stringify(await runTrials(cfg)));
}
