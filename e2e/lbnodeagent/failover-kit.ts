// Failover on the wire, shared by the failover lab test and `npm run bench -- failover`:
// a client in its own namespace probes a VIP with TCP connects (its ARP cache follows
// the gratuitous ARP); the VIP's holder is failed hard (its switch port goes down) or
// stopped gracefully (SIGTERM); the gap is measured from the fault to the first answer
// from another node.

import { CoreV1Api } from '@kubernetes/client-node';
import { winner } from '../../src/election/winner.ts';
import { startAgent, startAllocator, stopAllComponents } from '../lab/components.ts';
import type { Component } from '../lab/components.ts';
import { kubeConfig } from '../lab/kube.ts';
import { clientConnect, clientProbe, failNode, healAll, nsExec, restoreNode, waitForBgp } from '../lab/network.ts';
import { labNodes } from '../lab/plan.ts';
import { applyCRDs, applyServiceGroup, ensureHeartbeatSecret, ensureNamespace, freePort, httpStatus, kubectl, waitUntil } from '../lab/testkit.ts';

export const SG_NS = 'plb-failover';
export const APP_NS = 'plb-failover-app';
export const NODES = labNodes(3).map((n) => n.name);
// The lab's agents run their periodic work sooner than the defaults: the reconcile (10 s),
// the Lease (10 s, renewed every 2 s), and the release of unused memory (src/memory.ts:
// 30 s, then every 5 minutes), so that tests and benches see each in seconds.
export const AGENT_ENV = {
  PURELB_RECONCILE_MS: '2000',
  PURELB_MEMBER_LEASE_MS: '4000',
  PURELB_MEMBER_RENEW_MS: '1000',
  PURELB_MEMORY_RELEASE_FIRST_MS: '5000',
  PURELB_MEMORY_RELEASE_EVERY_MS: '10000',
};

export interface FailoverLab {
  vips: string[];
  agents: Map<string, Component>;
  allocator: Component;
  /** `default` timings: the agent runs with the components' own periods, not AGENT_ENV's. */
  restartAgent(node: string, timings?: 'lab' | 'default'): Component;
  close(): Promise<void>;
}

export interface Trial {
  mode: 'hard' | 'graceful';
  vip: string;
  from: string;
  to: string | undefined;
  /** Fault to the first answer from another node; undefined when none came. */
  gapMs: number | undefined;
}

async function ipsOn(ns: string, ifname: string): Promise<string[]> {
  const r = await nsExec(ns, ['ip', '-j', 'addr', 'show']);
  const links = JSON.parse(r.stdout) as Array<{ ifname: string; addr_info: Array<{ local: string }> }>;
  return links.filter((l) => l.ifname === ifname).flatMap((l) => l.addr_info.map((a) => a.local));
}

/** Nodes whose `ifname` (eth0 unless told) carries `ip`; a node without that interface carries nothing. */
export async function holdersOf(ip: string, nodes: readonly string[] = NODES, ifname = 'eth0'): Promise<string[]> {
  const out: string[] = [];
  for (const n of nodes) if ((await ipsOn(n, ifname)).includes(ip)) out.push(n);
  return out;
}

export interface FailoverLabOptions {
  /** false: agents run on Lease expiry alone (the way PureLB detects failures), for comparison. */
  heartbeats?: boolean;
  memberLeaseMs?: number;
  /** More environment for every agent (a benchmark's diagnostics). */
  agentEnv?: Record<string, string>;
}

/**
 * A clean start for a test of the agents: no component of another test running, no
 * fault left, BGP up, the CRDs, both namespaces, the heartbeat Secret, none of
 * `appKinds` left in `appNs` and, with `clearGroups`, no ServiceGroup or LBNodeAgent in `sgNs`.
 */
export async function freshAgentLab(sgNs: string, appNs: string, opts: { appKinds: string; clearGroups: boolean }): Promise<void> {
  await stopAllComponents();
  await healAll(NODES);
  await waitForBgp(30_000);
  await applyCRDs();
  await ensureNamespace(sgNs);
  await ensureNamespace(appNs);
  await ensureHeartbeatSecret(sgNs);
  await kubectl(['delete', opts.appKinds, '--all', '-n', appNs, '--wait=true']);
  if (opts.clearGroups) await kubectl(['delete', 'servicegroups,lbnodeagents', '--all', '-n', sgNs]);
}

export async function setUpFailoverLab(vipCount = 6, opts: FailoverLabOptions = {}): Promise<FailoverLab> {
  const env = {
    ...AGENT_ENV,
    ...(opts.memberLeaseMs === undefined ? {} : { PURELB_MEMBER_LEASE_MS: String(opts.memberLeaseMs) }),
    ...(opts.heartbeats === false ? { PURELB_HEARTBEAT_SECRET: 'purelb-heartbeats-disabled' } : {}),
    ...opts.agentEnv,
  };
  await freshAgentLab(SG_NS, APP_NS, { appKinds: 'svc', clearGroups: false });
  await applyServiceGroup(SG_NS, 'failover-pool', { local: { v4pool: { subnet: '198.51.100.0/24', pool: '198.51.100.180-198.51.100.199', aggregation: 'default' } } });
  const allocatorPort = freePort();
  const allocator = startAllocator({ id: 'failover', namespace: SG_NS, metricsPort: allocatorPort });
  const agents = new Map<string, Component>();
  const restartAgent = (node: string, timings: 'lab' | 'default' = 'lab'): Component => {
    const chosen = timings === 'lab' ? env : Object.fromEntries(Object.entries(env).filter(([k]) => !Object.hasOwn(AGENT_ENV, k)));
    const a = startAgent({ node, namespace: SG_NS, env: chosen });
    agents.set(node, a);
    return a;
  };
  for (const n of NODES) restartAgent(n);
  // Ready before the first Service, so that no trial waits for a start-up.
  await waitUntil('the allocator to lead', 30_000, async () => (await httpStatus(`http://127.0.0.1:${allocatorPort}/leader`)) === 200);
  for (const n of labNodes(3)) await waitUntil(`the agent on ${n.name} to be ready`, 30_000, async () => (await httpStatus(`http://${n.v4}:7472/readyz`)) === 200);
  for (let i = 0; i < vipCount; i++) {
    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `fo-${i}`, namespace: APP_NS, annotations: { 'purelb.io/service-group': 'failover-pool' } },
        spec: { type: 'LoadBalancer', ports: [{ port: 80, protocol: 'TCP' }] },
      }),
    });
  }
  const core = kubeConfig().makeApiClient(CoreV1Api);
  let vips: string[] = [];
  await waitUntil('failover VIPs allocated', 30_000, async () => {
    const list = await core.listNamespacedService({ namespace: APP_NS });
    vips = list.items.map((s) => s.status?.loadBalancer?.ingress?.[0]?.ip ?? '').filter((ip) => ip !== '');
    return vips.length === vipCount;
  });
  for (const vip of vips) await waitSettled(vip);
  return {
    vips,
    agents,
    allocator,
    restartAgent,
    close: async () => {
      await healAll(NODES);
      await Promise.allSettled([allocator.stop(), ...[...agents.values()].map((a) => a.stop())]);
      await kubectl(['delete', 'svc', '--all', '-n', APP_NS, '--wait=false'], { check: false });
    },
  };
}

/** Waits until only the hash winner holds `vip` and the client reaches it there. */
export async function waitSettled(vip: string, timeoutMs = 30_000): Promise<string> {
  const w = winner(NODES, vip) as string;
  await waitUntil(`${vip} settled on ${w}`, timeoutMs, async () => (await holdersOf(vip)).join() === w, 100);
  await waitUntil(`client reaches ${vip} on ${w}`, timeoutMs, async () => (await clientConnect(vip, 80, 500).catch(() => '')) === w, 100);
  return w;
}

/** One failover: fault the VIP's holder, measure the gap, then heal and let it settle back. */
export async function failoverTrial(lab: FailoverLab, vip: string, mode: Trial['mode'], probeMs = 5000): Promise<Trial> {
  const from = await waitSettled(vip);
  const probe = clientProbe(vip, { attemptTimeoutMs: 50, intervalMs: 2, durationMs: probeMs, stopWhenNot: from });
  await new Promise((r) => setTimeout(r, 300));
  const faultAt = Date.now();
  if (mode === 'hard') await failNode(from, 'link-down');
  else process.kill((lab.agents.get(from) as Component).rec.pid, 'SIGTERM');
  const attempts = await probe;
  const first = attempts.find((a) => a.ok && a.node !== undefined && a.node !== from);
  const trial: Trial = { mode, vip, from, to: first?.node, gapMs: first ? first.at + first.ms - faultAt : undefined };
  if (mode === 'hard') await restoreNode(from);
  else {
    await waitUntil(`agent on ${from} stopped`, 10_000, () => !(lab.agents.get(from) as Component).alive());
    lab.restartAgent(from);
  }
  await waitSettled(vip);
  return trial;
}
