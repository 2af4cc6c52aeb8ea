import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseServiceGroupSpec } from '../ipam/group.ts';
import type { PoolConfig } from '../ipam/group.ts';
import { winner } from '../election/winner.ts';
import { desiredAnnouncements } from './desired.ts';
import type { Member, ServiceView, Snapshot } from './desired.ts';

function group(spec: unknown): PoolConfig {
  const parsed = parseServiceGroupSpec(spec);
  if (!parsed.ok) assert.fail(parsed.errors.map((e) => e.message).join('; '));
  return parsed.value;
}

const groups = new Map<string, PoolConfig>([
  ['layer2', group({ local: { v4pool: { subnet: '198.51.100.64/26', pool: '198.51.100.64-198.51.100.126', aggregation: '/32' } } })],
  ['bgp', group({ local: { v4pool: { subnet: '203.0.113.0/24', pool: '203.0.113.0/24', aggregation: '/24' } } })],
  ['remote', group({ remote: { v4pool: { subnet: '198.51.100.128/26', pool: '198.51.100.128/26', aggregation: '/32' } } })],
]);
const lan = ['198.51.100.0/24', '2001:db8:100::/64'];
const nodes = ['plb-node1', 'plb-node2', 'plb-node3'];
const members: Member[] = nodes.map((node) => ({ node, subnets: lan }));

function svc(key: string, ips: string[], groupName: string, local = false, endpointNodes: string[] = []): ServiceView {
  return { key, ips, group: groupName, local, endpointNodes: new Set(endpointNodes) };
}

function snapshot(node: string, services: ServiceView[], live: Member[] = members): Snapshot {
  return {
    self: { node, localInterface: { name: 'eth0', subnets: lan }, dummyInterface: 'kube-lb0', eligible: true },
    members: live,
    services,
    groups,
  };
}

test('a local address is announced by exactly one node, the hash winner, with the subnet prefix', () => {
  const services = [svc('ns/a', ['198.51.100.64'], 'layer2'), svc('ns/b', ['198.51.100.65'], 'layer2'), svc('ns/c', ['198.51.100.66'], 'layer2')];
  for (const s of services) {
    const holders = nodes.filter((n) => desiredAnnouncements(snapshot(n, services)).some((a) => a.ip === s.ips[0]));
    assert.deepEqual(holders, [winner(nodes, s.ips[0] as string)]);
  }
  const mine = desiredAnnouncements(snapshot(winner(nodes, '198.51.100.64') as string, services)).find((a) => a.ip === '198.51.100.64');
  assert.deepEqual(mine, { service: 'ns/a', ip: '198.51.100.64', family: 'IPv4', kind: 'local', interface: 'eth0', prefix: 24 });
});

test('a foreign address goes on the dummy interface of every node with the aggregation', () => {
  const services = [svc('ns/e', ['203.0.113.0'], 'bgp')];
  for (const n of nodes) {
    assert.deepEqual(desiredAnnouncements(snapshot(n, services)), [{ service: 'ns/e', ip: '203.0.113.0', family: 'IPv4', kind: 'nonlocal', interface: 'kube-lb0', prefix: 24 }]);
  }
});

test('a remote group goes on the dummy interface even when the address is in the local subnet', () => {
  const a = desiredAnnouncements(snapshot('plb-node1', [svc('ns/r', ['198.51.100.130'], 'remote')]));
  assert.deepEqual(a.map((x) => [x.kind, x.interface, x.prefix]), [['nonlocal', 'kube-lb0', 32]]);
});

test('when the winner leaves, the runner-up takes the address', () => {
  const ip = '198.51.100.70';
  const services = [svc('ns/a', [ip], 'layer2')];
  const first = winner(nodes, ip) as string;
  const rest = members.filter((m) => m.node !== first);
  const second = winner(rest.map((m) => m.node), ip) as string;
  assert.equal(desiredAnnouncements(snapshot(second, services, rest)).length, 1);
  assert.equal(desiredAnnouncements(snapshot(second, services, members)).length, 0);
});

test('externalTrafficPolicy Local: only nodes with endpoints are candidates, none means nobody announces', () => {
  const ip = '198.51.100.71';
  const withEndpoint = nodes.find((n) => n !== winner(nodes, ip)) as string;
  const services = [svc('ns/l', [ip], 'layer2', true, [withEndpoint])];
  const holders = nodes.filter((n) => desiredAnnouncements(snapshot(n, services)).length > 0);
  assert.deepEqual(holders, [withEndpoint]);
  const none = [svc('ns/l', [ip], 'layer2', true, [])];
  assert.deepEqual(nodes.filter((n) => desiredAnnouncements(snapshot(n, none)).length > 0), []);
  const routed = [svc('ns/m', ['203.0.113.9'], 'bgp', true, ['plb-node2', 'plb-node3'])];
  assert.deepEqual(nodes.filter((n) => desiredAnnouncements(snapshot(n, routed)).length > 0), ['plb-node2', 'plb-node3']);
});

test('a node left out by the nodeSelector announces nothing', () => {
  const s = snapshot('plb-node1', [svc('ns/e', ['203.0.113.0'], 'bgp')]);
  assert.deepEqual(desiredAnnouncements({ ...s, self: { ...s.self, eligible: false } }), []);
});

test('an IPv6 address in the LAN is local with the /64 prefix', () => {
  const ip = '2001:db8:100::1:5';
  const w = winner(nodes, ip) as string;
  const a = desiredAnnouncements(snapshot(w, [svc('ns/v6', [ip], 'unknown-group')]));
  assert.deepEqual(a.map((x) => [x.family, x.kind, x.prefix]), [['IPv6', 'local', 64]]);
});
