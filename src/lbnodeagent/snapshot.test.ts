// Defect 1 of issue 12 through the agent's pure stages: the informers' objects (a
// ServiceGroup whose edit the allocator refused) → snapshot → desired announcements →
// kernel plan on an in-memory HostNetwork. Before, the snapshot read the raw spec and
// the VIP moved to eth0; it must stay on kube-lb0 of every node.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { DEFAULT_LBNODEAGENT_CONFIG } from '../api/normalize.ts';
import type { ServiceGroupObject } from '../api/configuration.ts';
import { MemoryNetwork } from '../netlink/memory-network.ts';
import { desiredAnnouncements } from './desired.ts';
import { planKernel } from './plan.ts';
import { buildSnapshot } from './snapshot.ts';

const LAN = '198.51.100.0/24';
const RANGE = { subnet: LAN, pool: '198.51.100.180-198.51.100.185', aggregation: '/32' };
const accepted = { remote: { v4pool: RANGE } };
const refused = { local: { v4pools: [RANGE, { subnet: LAN, pool: '198.51.100.100-198.51.100.130', aggregation: '/32' }] } };

const group = (spec: unknown, inForce: unknown): ServiceGroupObject => ({
  apiVersion: 'purelb.io/v1',
  kind: 'ServiceGroup',
  metadata: { name: 'lan', namespace: 'purelb', generation: 2 },
  spec,
  status: { inForce },
});
const service: V1Service = {
  metadata: { name: 'web', namespace: 'app', annotations: { 'purelb.io/allocated-by': 'PureLB', 'purelb.io/allocated-from': 'lan' } },
  spec: { type: 'LoadBalancer', externalTrafficPolicy: 'Local' },
  status: { loadBalancer: { ingress: [{ ip: '198.51.100.180', ipMode: 'VIP' }] } },
};
const slice: V1EndpointSlice = {
  addressType: 'IPv4',
  metadata: { namespace: 'app', labels: { 'kubernetes.io/service-name': 'web' } },
  endpoints: [
    { addresses: ['10.0.0.1'], nodeName: 'n1', conditions: { ready: true } },
    { addresses: ['10.0.0.2'], nodeName: 'n2', conditions: { ready: false, serving: true } },
    { addresses: ['10.0.0.3'], nodeName: 'n3', conditions: { ready: false } },
  ],
};
const NODES = ['n1', 'n2', 'n3'];

async function interfacesHolding(groups: ServiceGroupObject[], node: string): Promise<string[]> {
  const net = new MemoryNetwork();
  const eth0 = net.addLink('eth0');
  const lb = net.addLink('kube-lb0', 'dummy');
  const snap = buildSnapshot({
    self: { node, localInterface: { name: 'eth0', subnets: [LAN] }, dummyInterface: 'kube-lb0', eligible: true },
    services: [service],
    slices: [slice],
    groups,
    members: NODES.map((n) => ({ node: n, subnets: [LAN] })),
    deafPeers: new Set(),
  });
  const plan = planKernel(desiredAnnouncements(snap), new Map([[eth0.name, eth0], [lb.name, lb]]), [], DEFAULT_LBNODEAGENT_CONFIG, false);
  await net.addAddresses(plan.add.map((a) => a.spec));
  const byIndex = new Map([[eth0.index, 'eth0'], [lb.index, 'kube-lb0']]);
  return (await net.listAddresses({ ours: true })).map((a) => `${byIndex.get(a.ifindex)} ${a.ip}/${a.prefix}`);
}

test('a refused edit: the VIP stays on kube-lb0 of the nodes with endpoints, on no eth0', async () => {
  const groups = [group(refused, { generation: 1, spec: accepted })];
  assert.deepEqual(await interfacesHolding(groups, 'n1'), ['kube-lb0 198.51.100.180/32']);
  assert.deepEqual(await interfacesHolding(groups, 'n2'), ['kube-lb0 198.51.100.180/32'], 'serving while terminating counts');
  assert.deepEqual(await interfacesHolding(groups, 'n3'), [], 'no endpoint under externalTrafficPolicy Local');
});

test('an accepted edit to local is followed: the VIP goes on eth0 of one node', async () => {
  const local = { local: { v4pool: RANGE } };
  const groups = [group(local, { generation: 2, spec: local })];
  const held = await Promise.all(NODES.map((n) => interfacesHolding(groups, n)));
  assert.deepEqual(held.flat(), ['eth0 198.51.100.180/24']);
});

test('a Service whose group has no record (deleted, or not yet recorded after an upgrade) is announced by its address alone', async () => {
  const held = await Promise.all(NODES.map((n) => interfacesHolding([group(accepted, undefined)], n)));
  assert.deepEqual(held.flat(), ['eth0 198.51.100.180/24'], 'in a node subnet: local, on one node, not the remote spec');
});
