// A ServiceGroup edit the allocator refuses changes nothing on any node: the agents
// announce what the group's status records as in force (status.inForce), never the
// spec itself. The case of issue 12: a v2 `remote` group in the LAN subnet, edited to
// `local` with a second range overlapping layer2-ippool. Also after the edit: an agent
// started later, and a restarted allocator, keep the accepted configuration; an edit
// the allocator accepts is followed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { winner } from '../../src/election/winner.ts';
import { startAgent, startAllocator } from '../lab/components.ts';
import type { Component } from '../lab/components.ts';
import { kubeConfig } from '../lab/kube.ts';
import { FAST_LEASE_ENV, applyServiceGroup, freePort, httpStatus, kubectl, waitUntil } from '../lab/testkit.ts';
import { AGENT_ENV, NODES, freshAgentLab, holdersOf } from './failover-kit.ts';

const SG_NS = 'plb-config';
const APP_NS = 'plb-config-app';
const kc = kubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const LAN = '198.51.100.0/24';
const LAN_RANGE = { subnet: LAN, pool: '198.51.100.180-198.51.100.185', aggregation: '/32' };
/** Overlaps layer2-ippool (198.51.100.64-198.51.100.126). */
const OVERLAPPING = { subnet: LAN, pool: '198.51.100.100-198.51.100.130', aggregation: '/32' };
const agents = new Map<string, Component>();
let allocator: Component | undefined;
let allocatorPort = 0;
let vip = '';

interface GroupObject {
  metadata: { generation: number };
  status?: { observedGeneration?: number; inForce?: { generation: number; spec: Record<string, unknown> }; conditions?: Array<{ type: string; status: string; reason: string }> };
}

const readGroup = async (name: string) =>
  (await custom.getNamespacedCustomObject({ group: 'purelb.io', version: 'v2', namespace: SG_NS, plural: 'servicegroups', name })) as GroupObject;

async function waitForConditions(name: string, want: Record<string, [string, string]>): Promise<GroupObject> {
  let last: GroupObject | undefined;
  await waitUntil(`ServiceGroup ${name}: ${JSON.stringify(want)}`, 20_000, async () => {
    last = await readGroup(name);
    if (last.status?.observedGeneration !== last.metadata.generation) return false;
    return Object.entries(want).every(([type, [status, reason]]) => last?.status?.conditions?.some((c) => c.type === type && c.status === status && c.reason === reason));
  }, 200);
  return last as GroupObject;
}

const onDummy = async () => (await holdersOf(vip, NODES, 'kube-lb0')).length === NODES.length;
const onEth0 = () => holdersOf(vip, NODES, 'eth0');

/** The VIP stays on kube-lb0 of every node and on no eth0 for `ms` (several reconcile periods). */
async function staysRouted(ms: number, why: string): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    assert.ok(await onDummy(), `${why}: ${vip} left kube-lb0 of some node`);
    assert.deepEqual(await onEth0(), [], `${why}: ${vip} appeared on eth0`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function restartAllocator(): void {
  allocatorPort = freePort();
  allocator = startAllocator({ id: 'config', namespace: SG_NS, metricsPort: allocatorPort, env: FAST_LEASE_ENV });
}

before(async () => {
  await freshAgentLab(SG_NS, APP_NS, { appKinds: 'svc', clearGroups: true });
  await applyServiceGroup(SG_NS, 'layer2-ippool', { local: { v4pool: { subnet: '198.51.100.64/26', pool: '198.51.100.64-198.51.100.126', aggregation: '/32' } } });
  await applyServiceGroup(SG_NS, 'lan', { remote: { v4pool: LAN_RANGE } }, 'purelb.io/v2');
  restartAllocator();
  for (const n of NODES) agents.set(n, startAgent({ node: n, namespace: SG_NS, env: AGENT_ENV }));
  await waitUntil('the allocator to lead', 30_000, async () => (await httpStatus(`http://127.0.0.1:${allocatorPort}/leader`)) === 200);
  await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'routed', namespace: APP_NS, annotations: { 'purelb.io/service-group': 'lan' } },
      spec: { type: 'LoadBalancer', ports: [{ port: 80, protocol: 'TCP' }] },
    }),
  });
  await waitUntil('routed has an address', 20_000, async () => {
    vip = (await core.readNamespacedService({ name: 'routed', namespace: APP_NS })).status?.loadBalancer?.ingress?.[0]?.ip ?? '';
    return vip !== '';
  });
});

after(async () => {
  await Promise.allSettled([allocator?.stop(), ...[...agents.values()].map((a) => a.stop())]);
  await kubectl(['delete', 'svc', '--all', '-n', APP_NS, '--wait=false'], { check: false });
});

test('the remote group is accepted and recorded; its VIP is on kube-lb0 of every node', async () => {
  const lan = await waitForConditions('lan', { Ready: ['True', 'InUse'], Conflict: ['False', 'NoConflict'] });
  assert.equal(lan.status?.inForce?.generation, lan.metadata.generation);
  assert.deepEqual(lan.status?.inForce?.spec, { remote: { v4pool: LAN_RANGE } });
  assert.ok(vip >= '198.51.100.180' && vip <= '198.51.100.185', vip);
  await waitUntil(`${vip} on kube-lb0 of every node`, 20_000, onDummy, 100);
  assert.deepEqual(await onEth0(), []);
});

test('an edit the allocator refuses (to local, overlapping layer2-ippool) changes nothing on any node', async () => {
  const accepted = await readGroup('lan');
  await custom.patchNamespacedCustomObject(
    { group: 'purelb.io', version: 'v2', namespace: SG_NS, plural: 'servicegroups', name: 'lan', body: { spec: { remote: null, local: { v4pools: [LAN_RANGE, OVERLAPPING] } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  const refused = await waitForConditions('lan', { Ready: ['False', 'LastGoodKept'], Conflict: ['True', 'Overlap'] });
  assert.deepEqual(refused.status?.inForce, accepted.status?.inForce, 'the record of what is in force must not move');
  // PURELB_RECONCILE_MS is 2 s: four reconcile periods and more.
  await staysRouted(10_000, 'after the refused edit');
});

test('an agent started after the refused edit, and a restarted allocator, keep the accepted configuration', async () => {
  const node = NODES[0] as string;
  await agents.get(node)?.stop();
  agents.set(node, startAgent({ node, namespace: SG_NS, env: AGENT_ENV }));
  await allocator?.stop();
  restartAllocator();
  await waitUntil('the restarted allocator to lead', 30_000, async () => (await httpStatus(`http://127.0.0.1:${allocatorPort}/leader`)) === 200);
  await waitUntil(`${vip} back on kube-lb0 of ${node}`, 20_000, onDummy, 100);
  await staysRouted(8000, 'after the restarts');
  await waitForConditions('lan', { Ready: ['False', 'LastGoodKept'], Conflict: ['True', 'Overlap'] });
});

test('an edit the allocator accepts is followed: the VIP moves to eth0 of the hash winner', async () => {
  await custom.patchNamespacedCustomObject(
    { group: 'purelb.io', version: 'v2', namespace: SG_NS, plural: 'servicegroups', name: 'lan', body: { spec: { local: { v4pools: [LAN_RANGE] } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  const lan = await waitForConditions('lan', { Ready: ['True', 'InUse'], Conflict: ['False', 'NoConflict'] });
  assert.equal(lan.status?.inForce?.generation, lan.metadata.generation);
  const w = winner(NODES, vip) as string;
  await waitUntil(`${vip} on eth0 of ${w} only`, 20_000, async () => (await onEth0()).join() === w, 100);
  assert.deepEqual(await holdersOf(vip, NODES, 'kube-lb0'), []);
});
