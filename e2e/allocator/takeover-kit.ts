// The takeover from a real MetalLB (issue #13), shared by e2e/allocator/takeover.test.ts
// and `npm run bench -- takeover`, as docs/migration.md "Moving over,
// keeping every address" describes it, with the client's outage measured: MetalLB's
// controller and speakers (e2e/lab/metallb.ts) give class-less Services addresses and
// announce them in layer 2; every node forwards the VIPs' port 80 to its responder (what
// kube-proxy does on every node); a client in plb-client connects to every VIP without
// pause. Then the switch: MetalLB's controller stops, `kubectl purelb migrate
// --from-cluster --apply` converts its pool, purelb-ts's allocator (class-less) adopts
// the addresses, MetalLB's speakers are removed and purelb-ts's agents start, in the
// doc's order (speakers first) and the other way round (agents first).
//
// The client keeps its ARP entry for some VIPs (warm: it goes on sending to the node it
// knew, which forwards whoever announces) and forgets it for the others at the moment
// the speakers stop (cold: as a new client, or one whose entry expired, it must resolve
// the address while it may be unannounced). Measured per VIP: the longest time between
// two answers through the switch. Asserted: no Service changes address (every version
// the API server shows), every VIP answers afterwards from the node purelb-ts elects
// (MetalLB's election is the same hash, so that is the node MetalLB had).
//
// MetalLB runs class-less here, as its users have it: metallbUp refuses to start while
// another namespace has class-less LoadBalancer Services (it would clear their
// addresses). Pool 198.51.100.56/29 is used by no other test.

import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import type { V1Service } from '@kubernetes/client-node';
import { winner } from '../../src/election/winner.ts';
import { PATHS } from '../../src/k8s/api.ts';
import { loadConnection } from '../../src/k8s/connection.ts';
import { Informer } from '../../src/k8s/informer.ts';
import { longestGap } from '../cluster/kit.ts';
import { startAgent } from '../lab/components.ts';
import type { Component } from '../lab/components.ts';
import { kubeconfigPath } from '../lab/controlplane.ts';
import { REPO_ROOT, run } from '../lab/exec.ts';
import { kubeConfig, setEndpoints } from '../lab/kube.ts';
import { percentile } from '../lab/measure.ts';
import { applyL2Pool, kubeProxyDown, kubeProxyUp, l2StatusNode, metallbDown, metallbUp, stopMetalLBController, stopSpeakers } from '../lab/metallb.ts';
import { clientConnect, clientFlushNeighbor, clientProbe, nsExec } from '../lab/network.ts';
import type { ConnectResult } from '../lab/network.ts';
import { labNodes } from '../lab/plan.ts';
import { FAST_LEASE_ENV, freePort, httpStatus, kubectl, waitUntil } from '../lab/testkit.ts';
import { AGENT_ENV, freshAgentLab, holdersOf } from '../lbnodeagent/failover-kit.ts';
import { AddressLedger, answers, startTestAllocator, waitForEventBy } from './kit.ts';
import type { AllocatorProcess } from './kit.ts';

export const APP_NS = 'plb-takeover';
export const SG_NS = 'plb-takeover-sg';
const POOL_NAME = 'takeover-pool';
const POOL = '198.51.100.56/29';
const VIP_COUNT = 6;
/** The last WARM VIPs keep the client's ARP entry through the switch; the others lose it when the speakers stop. */
const WARM = 2;
const ID = `takeover-${process.pid}`;
const IDENTITY = `allocator-${ID}`;
const CLI = path.join(REPO_ROOT, 'bin', 'kubectl-purelb');
const nodes = labNodes(3);
const names = nodes.map((n) => n.name);
const core = kubeConfig().makeApiClient(CoreV1Api);
const inPool = (ip: string): boolean => /^198\.51\.100\.(5[6-9]|6[0-3])$/.test(ip);

let allocator: AllocatorProcess | undefined;
const agents: Component[] = [];

function service(name: string): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: APP_NS },
    spec: { type: 'LoadBalancer', allocateLoadBalancerNodePorts: false, ipFamilyPolicy: 'SingleStack', ipFamilies: ['IPv4'], ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
  };
}

async function services(): Promise<V1Service[]> {
  return (await core.listNamespacedService({ namespace: APP_NS })).items;
}

const ipOf = (s: V1Service): string => s.status?.loadBalancer?.ingress?.[0]?.ip ?? '';

/** `node ip` for every address of the pool on a node's eth0. */
async function poolAddressesOnNodes(): Promise<string[]> {
  const out: string[] = [];
  for (const n of names) {
    const r = await nsExec(n, ['ip', '-j', '-4', 'addr', 'show', 'dev', 'eth0']);
    const links = JSON.parse(r.stdout) as Array<{ addr_info: Array<{ local: string }> }>;
    for (const a of links.flatMap((l) => l.addr_info)) if (inPool(a.local)) out.push(`${n} ${a.local}`);
  }
  return out;
}

async function stopPurelb(): Promise<void> {
  await Promise.allSettled([allocator?.stop(), ...agents.map((a) => a.stop())]);
  allocator = undefined;
  agents.length = 0;
}

/** Everything this file makes, gone: Services first (so agents withdraw their VIPs), then the processes, MetalLB, the groups, the forwarding. */
export async function cleanUp(): Promise<void> {
  await kubectl(['delete', 'svc,endpointslices', '--all', '-n', APP_NS, '--wait=true', '--timeout=30s'], { check: false });
  if (agents.length > 0) {
    await waitUntil('the agents withdraw every VIP of the pool', 15_000, async () => (await poolAddressesOnNodes()).length === 0, 200).catch(async () => {
      console.error(`takeover: VIPs left on nodes after the Services were deleted: ${(await poolAddressesOnNodes()).join(', ')}`);
    });
  }
  await stopPurelb();
  await metallbDown();
  await kubectl(['delete', 'servicegroups,lbnodeagents', '--all', '-n', SG_NS], { check: false });
  await kubeProxyDown(nodes);
}

/** A clean start: no MetalLB, no other test's allocator or agent, the namespaces, nothing of this kit left. */
export async function setUpTakeoverLab(): Promise<void> {
  await metallbDown();
  await freshAgentLab(SG_NS, APP_NS, { appKinds: 'svc,endpointslices', clearGroups: true });
  await kubeProxyDown(nodes);
}

const ATTEMPT_MS = 200;

/** Probes `vip` from the client, 2-second rounds, until `stop.done` (at most 150 rounds). */
async function probeUntil(vip: string, stop: { done: boolean }): Promise<ConnectResult[]> {
  const out: ConnectResult[] = [];
  for (let i = 0; i < 150 && !stop.done; i++) out.push(...(await clientProbe(vip, { durationMs: 2000, attemptTimeoutMs: ATTEMPT_MS, intervalMs: 20 })));
  // A round's last attempt may be cut short by the round's end: not an answer missed.
  return out.filter((x) => {
    const cut = /^timeout after ([\d.]+) ms$/.exec(x.error ?? '');
    return x.ok || cut === null || Number(cut[1]) >= ATTEMPT_MS;
  });
}

function startAgents(): void {
  for (const n of names) agents.push(startAgent({ node: n, namespace: SG_NS, env: AGENT_ENV }));
}

async function agentsReady(): Promise<void> {
  for (const n of nodes) await waitUntil(`the agent on ${n.name} to be ready`, 30_000, async () => (await httpStatus(`http://${n.v4}:7472/readyz`)) === 200, 100);
}

export type Order = 'speakers first' | 'agents first';

export interface Outcome {
  order: Order;
  /** Longest gap (ms) per VIP whose ARP entry the client lost when the speakers stopped. */
  cold: number[];
  /** … and per VIP whose entry it kept. */
  warm: number[];
  /** From MetalLB's controller stopping to every VIP answering from purelb-ts's node. */
  switchMs: number;
  /** The longest gap of any VIP in the second before the switch (the probe's own pace, the machine's load). */
  baseline: number;
}

/**
 * One takeover from MetalLB, from MetalLB's install to purelb-ts serving every address,
 * asserting what must hold; `say` gets the figures. Cleans up after itself, also on failure.
 */
export async function takeover(order: Order, say: (line: string) => void = () => undefined): Promise<Outcome> {
  // MetalLB, as the cluster has it before the move.
  await metallbUp({ nodes, serviceNamespaces: [APP_NS] });
  await applyL2Pool(POOL_NAME, POOL);
  const svcNames = Array.from({ length: VIP_COUNT }, (_, i) => `web-${i}`);
  for (const name of svcNames) {
    await core.createNamespacedService({ namespace: APP_NS, body: service(name) });
    await setEndpoints(APP_NS, name, [{ node: 'plb-node1', address: nodes[0]?.v4 ?? '' }]);
  }
  const before = new Map<string, string>();
  await waitUntil('MetalLB gives every Service an address', 30_000, async () => {
    for (const s of await services()) if (inPool(ipOf(s))) before.set(s.metadata?.name ?? '', ipOf(s));
    return before.size === VIP_COUNT;
  }, 200);
  const vips = svcNames.map((n) => before.get(n) as string);
  assert.equal(new Set(vips).size, VIP_COUNT, `distinct addresses: ${vips.join(', ')}`);
  for (const s of await services()) assert.equal(s.metadata?.annotations?.['purelb.io/allocated-by'], undefined, 'MetalLB gave it, not purelb-ts');
  await kubeProxyUp(vips, nodes);
  for (const [i, vip] of vips.entries()) {
    const w = winner(names, vip) as string;
    await waitUntil(`MetalLB announces ${vip} from ${w}`, 30_000, async () => (await l2StatusNode(APP_NS, svcNames[i] as string)).join() === w, 250);
    await waitUntil(`the client reaches ${vip} on ${w}`, 10_000, async () => (await clientConnect(vip, 80, 500).catch(() => '')) === w, 100);
  }

  // Every version of every Service from here on, checked for a changed address.
  const ledger = new AddressLedger();
  const watcher = new Informer<V1Service>(loadConnection(kubeconfigPath('admin')), { name: 'takeover-services', path: PATHS.services(APP_NS) });
  watcher.on((e) => ledger.observe(e.type, e.obj));
  await watcher.start();
  const stop = { done: false };
  const probes = vips.map((vip) => probeUntil(vip, stop));
  try {
    await sleep(1000);
    const switchAt = Date.now();
    // 3. Hand over allocation.
    await stopMetalLBController();
    const migrated = await run([CLI, 'migrate', '--from-cluster', '--apply', '-n', SG_NS, '--kubeconfig', kubeconfigPath('admin')], { check: false, timeoutMs: 60_000 });
    assert.equal(migrated.code, 0, `migrate: ${migrated.stderr}`);
    say(`${order}: migrate's warnings: ${migrated.stderr.trim().split('\n').filter((l) => l !== '').length}`);
    const metricsPort = freePort();
    allocator = startTestAllocator({ id: ID, namespace: SG_NS, metricsPort, env: { ...FAST_LEASE_ENV, PURELB_CLASSLESS: 'true', PURELB_DEFAULT_GROUP: POOL_NAME } });
    await waitUntil('the allocator leads', 30_000, () => answers(metricsPort), 100);
    await waitUntil('purelb-ts has adopted every address', 30_000, async () => {
      const list = await services();
      return list.length === VIP_COUNT && list.every((s) => s.metadata?.annotations?.['purelb.io/allocated-by'] === 'PureLB' && ipOf(s) === before.get(s.metadata?.name ?? ''));
    }, 200);
    const first = await core.readNamespacedService({ name: svcNames[0] as string, namespace: APP_NS });
    await waitForEventBy(core, IDENTITY, APP_NS, 'Service', first, 'Normal', 'AddressAdopted', new RegExp(`Kept ${(vips[0] as string).replace(/\./g, '\\.')}, given by another controller, in pool ${POOL_NAME}`));

    // 4./5. The speakers go, the agents come (in one order or the other).
    const coldVips = vips.slice(0, VIP_COUNT - WARM);
    const removeSpeakers = async (): Promise<void> => {
      await stopSpeakers();
      for (const vip of coldVips) await clientFlushNeighbor(vip);
    };
    if (order === 'speakers first') {
      await removeSpeakers();
      startAgents();
    } else {
      startAgents();
      await agentsReady();
    }
    for (const vip of vips) {
      const w = winner(names, vip) as string;
      await waitUntil(`${vip} on ${w}'s eth0 alone`, 30_000, async () => (await holdersOf(vip, names)).join() === w, 100);
    }
    if (order === 'agents first') await removeSpeakers();
    for (const vip of vips) {
      const w = winner(names, vip) as string;
      await waitUntil(`the client reaches ${vip} on ${w}`, 15_000, async () => (await clientConnect(vip, 80, 500).catch(() => '')) === w, 50);
    }
    const settledAt = Date.now();
    const switchMs = settledAt - switchAt;
    await sleep(1500);
    stop.done = true;
    const attempts = await Promise.all(probes);

    const gaps = attempts.map((a) => longestGap(a.filter((x) => x.at >= switchAt - 500)));
    // The same measure over the second before the switch: what the probe's own pace and the machine's load give.
    const baseline = Math.round(Math.max(...attempts.map((a) => longestGap(a.filter((x) => x.at < switchAt)))));
    for (const [i, vip] of vips.entries()) {
      const a = attempts[i] as ConnectResult[];
      const last = a.filter((x) => x.at >= settledAt);
      const wrong = last.filter((x) => !x.ok || x.node !== winner(names, vip));
      assert.ok(last.length > 10 && wrong.length === 0, `${vip}: after the switch every answer comes from ${winner(names, vip)}: ${last.length} attempts, these not: ${JSON.stringify(wrong.slice(0, 3))}`);
      assert.ok(a.filter((x) => x.ok).length > 0, `${vip} answered at all`);
    }
    await watcher.stop();
    assert.deepEqual(ledger.violations, [], 'no Service changed its address');
    for (const s of await services()) assert.equal(ipOf(s), before.get(s.metadata?.name ?? ''), `${s.metadata?.name} kept its address`);
    const cold = gaps.slice(0, VIP_COUNT - WARM).map(Math.round);
    const warm = gaps.slice(VIP_COUNT - WARM).map(Math.round);
    say(`${order}: switch ${switchMs} ms; longest gap per VIP, client that must ARP: p50 ${percentile(cold, 50)} ms, max ${Math.max(...cold)} ms (${cold.join(', ')}); client that keeps its ARP entry: p50 ${percentile(warm, 50)} ms, max ${Math.max(...warm)} ms (${warm.join(', ')}); before the switch at most ${baseline} ms; versions observed ${ledger.versions}`);
    return { order, cold, warm, switchMs, baseline };
  } finally {
    stop.done = true;
    await Promise.allSettled(probes);
    await watcher.stop().catch(() => undefined);
    await cleanUp();
  }
}

