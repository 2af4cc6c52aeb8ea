// The node agents in the lab's node namespaces, with the allocator, against the real
// API server and the real kernel: the reference layer-2 and routed scenarios, ETP
// Local, dual-stack, and the safety rules (node addresses untouched, drift repaired,
// no flap on restart).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api } from '@kubernetes/client-node';
import type { V1Service } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { winner } from '../../src/election/winner.ts';
import { startAgent, startAllocator } from '../lab/components.ts';
import type { Component } from '../lab/components.ts';
import { kubeConfig, setEndpoints } from '../lab/kube.ts';
import { clientConnect, clientNeighbor, labMac, nsExec, routerRoutes, startCapture } from '../lab/network.ts';
import { labNodes } from '../lab/plan.ts';
import { FAST_LEASE_ENV, freePort, kubectl, referenceManifest, waitUntil } from '../lab/testkit.ts';
import { freshAgentLab } from './failover-kit.ts';

const core = kubeConfig().makeApiClient(CoreV1Api);
const APP_NS = 'nginx-quic';
const SG_NS = 'purelb';
const nodes = labNodes(3);
const names = nodes.map((n) => n.name);
const components: Component[] = [];
const agents = new Map<string, Component>();
const fastAgent = { PURELB_RECONCILE_MS: '2000', PURELB_MEMBER_LEASE_MS: '4000', PURELB_MEMBER_RENEW_MS: '1000' };

interface IpAddr {
  ifname: string;
  addr_info: Array<{ local: string; prefixlen: number; family: string }>;
}

async function addressesOf(ns: string): Promise<Array<{ ifname: string; ip: string; prefix: number }>> {
  const r = await nsExec(ns, ['ip', '-j', 'addr', 'show']);
  return (JSON.parse(r.stdout) as IpAddr[]).flatMap((l) => l.addr_info.map((a) => ({ ifname: l.ifname, ip: a.local, prefix: a.prefixlen })));
}

async function holders(ip: string, ifname: string): Promise<string[]> {
  const found: string[] = [];
  for (const n of names) if ((await addressesOf(n)).some((a) => a.ip === ip && a.ifname === ifname)) found.push(n);
  return found;
}

async function ingressOf(name: string): Promise<string[]> {
  const svc = await core.readNamespacedService({ name, namespace: APP_NS });
  return (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '');
}

function service(name: string, extra: Partial<V1Service['spec']> = {}, annotations: Record<string, string> = {}): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: APP_NS, annotations },
    spec: { type: 'LoadBalancer', ports: [{ port: 80, protocol: 'TCP' }], ...extra },
  };
}

async function apply(obj: unknown): Promise<void> {
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify(obj) });
}

before(async () => {
  await freshAgentLab(SG_NS, APP_NS, { appKinds: 'svc,endpointslices', clearGroups: true });
  await kubectl(['apply', '-f', '-'], { input: referenceManifest('servicegroups.yaml') });
  await apply({
    apiVersion: 'purelb.io/v1',
    kind: 'ServiceGroup',
    metadata: { name: 'dual', namespace: SG_NS },
    spec: { local: { v4pool: { subnet: '198.51.100.128/26', pool: '198.51.100.160-198.51.100.170', aggregation: 'default' }, v6pool: { subnet: '2001:db8:100::/64', pool: '2001:db8:100::1:0-2001:db8:100::1:ff', aggregation: 'default' } } },
  });
  components.push(startAllocator({ id: 'agents', namespace: SG_NS, metricsPort: freePort(), env: FAST_LEASE_ENV }));
  for (const n of names) {
    const a = startAgent({ node: n, namespace: SG_NS, env: fastAgent });
    agents.set(n, a);
    components.push(a);
  }
  await waitUntil('three member leases', 20_000, async () => {
    const out = await kubectl(['get', 'leases', '-n', SG_NS, '-l', 'purelb.io/component=lbnodeagent', '-o', 'name']);
    return out.stdout.trim().split('\n').filter((l) => l !== '').length === 3;
  });
});

after(async () => {
  await Promise.allSettled(components.map((c) => c.stop()));
  await kubectl(['delete', 'svc', '--all', '-n', APP_NS, '--wait=false'], { check: false });
});

test('layer 2: each VIP sits on the eth0 of exactly the hash winner, ARP-resolves to its MAC and reaches its responder', async () => {
  const capture = await startCapture({ ns: 'plb-client', iface: 'eth0', filter: 'arp', maxDurationMs: 60_000 });
  const docs = parseAllDocuments(referenceManifest('services.yaml')).map((d) => d.toJSON() as V1Service);
  for (const svc of docs.filter((d) => d.kind === 'Service').slice(0, 3)) {
    await apply(svc);
    const name = svc.metadata?.name ?? '';
    await waitUntil(`${name} allocated`, 15_000, async () => (await ingressOf(name)).length > 0);
  }
  const vips = ['198.51.100.64', '198.51.100.65', '198.51.100.66'];
  for (const vip of vips) {
    const w = winner(names, vip) as string;
    await waitUntil(`${vip} on ${w}`, 10_000, async () => (await holders(vip, 'eth0')).join() === w, 100);
    const onNode = (await addressesOf(w)).find((a) => a.ip === vip);
    assert.equal(onNode?.prefix, 24, 'a local VIP carries the prefix of the node subnet');
    assert.equal(await clientConnect(vip), w, `${vip} answered by the wrong node`);
    const index = nodes.find((n) => n.name === w)?.index ?? 0;
    assert.equal(await clientNeighbor(vip), labMac('node', index));
  }
  const spread = new Set(vips.map((v) => winner(names, v)));
  assert.ok(spread.size >= 2, 'the three VIPs should not all land on one node');
  await waitUntil('gratuitous ARP for every VIP seen by the client', 5000, async () => {
    const seen = capture.frames().filter((f) => f.arp && f.arp.senderIp === f.arp.targetIp);
    return vips.every((v) => seen.some((f) => f.arp?.senderIp === v));
  });
  const garp = capture.frames().find((f) => f.arp?.senderIp === '198.51.100.64');
  const w64 = nodes.find((n) => n.name === winner(names, '198.51.100.64'))?.index ?? 0;
  assert.equal(garp?.arp?.senderMac, labMac('node', w64));
  await capture.stop();

  const svc = await core.readNamespacedService({ name: 'nginx-lb-service', namespace: APP_NS });
  assert.equal(svc.metadata?.annotations?.['purelb.io/announcing-IPv4'], `${winner(names, '198.51.100.64')},eth0`);
  await waitUntil('AnnouncingLocal event', 5000, async () => {
    const ev = await core.listNamespacedEvent({ namespace: APP_NS, fieldSelector: 'involvedObject.name=nginx-lb-service' });
    return ev.items.some((e) => e.reason === 'AnnouncingLocal' && /Node plb-node\d announcing 198\.51\.100\.64 on interface eth0/.test(e.message ?? ''));
  });
});

test('routed: a foreign VIP is on kube-lb0 of every node as /32 and the router has one ECMP route over all nodes', async () => {
  const docs = parseAllDocuments(referenceManifest('services.yaml')).map((d) => d.toJSON() as V1Service);
  for (const svc of docs.filter((d) => d.kind === 'Service').slice(4)) await apply(svc);
  for (const vip of ['203.0.113.0', '203.0.113.100']) {
    await waitUntil(`${vip} on every kube-lb0`, 15_000, async () => (await holders(vip, 'kube-lb0')).length === 3, 100);
    for (const n of names) assert.equal((await addressesOf(n)).find((a) => a.ip === vip)?.prefix, 32);
  }
  await waitUntil('router: ECMP route for 203.0.113.0/32 with 3 next hops', 15_000, async () => {
    const r = await routerRoutes('203.0.113.0/32');
    return r[0]?.nexthops.length === 3;
  });
  const svc = await core.readNamespacedService({ name: 'nginx-lb5-service', namespace: APP_NS });
  const entries = (svc.metadata?.annotations?.['purelb.io/announcing-IPv4'] ?? '').split(' ').sort();
  assert.deepEqual(entries, names.map((n) => `${n},kube-lb0`));
});

test('externalTrafficPolicy Local: only nodes with a ready endpoint announce', async () => {
  await apply(service('etp-routed', { externalTrafficPolicy: 'Local' }, { 'purelb.io/service-group': 'bgp-ippool' }));
  await apply(service('etp-l2', { externalTrafficPolicy: 'Local' }, { 'purelb.io/service-group': 'layer2-ippool' }));
  await waitUntil('etp services allocated', 15_000, async () => (await ingressOf('etp-routed')).length > 0 && (await ingressOf('etp-l2')).length > 0);
  const [routed] = await ingressOf('etp-routed');
  const [l2] = await ingressOf('etp-l2');
  // No endpoints anywhere: nobody announces (honest ETP Local).
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual(await holders(routed as string, 'kube-lb0'), []);
  assert.deepEqual(await holders(l2 as string, 'eth0'), []);
  await setEndpoints(APP_NS, 'etp-routed', [{ node: 'plb-node2', address: '10.244.2.5' }, { node: 'plb-node3', address: '10.244.3.5' }]);
  const notWinner = names.find((n) => n !== winner(names, l2 as string)) as string;
  await setEndpoints(APP_NS, 'etp-l2', [{ node: notWinner, address: '10.244.9.5' }]);
  await waitUntil('routed VIP on node2 and node3 only', 10_000, async () => (await holders(routed as string, 'kube-lb0')).join() === 'plb-node2,plb-node3', 100);
  await waitUntil('router next hops are the endpoint nodes', 15_000, async () => (await routerRoutes(`${routed}/32`))[0]?.nexthops.length === 2);
  await waitUntil('layer-2 VIP on the endpoint node', 10_000, async () => (await holders(l2 as string, 'eth0')).join() === notWinner, 100);
  assert.equal(await clientConnect(l2 as string), notWinner);
  const spec = (await core.readNamespacedService({ name: 'etp-l2', namespace: APP_NS })).spec;
  assert.equal(spec?.externalTrafficPolicy, 'Local', 'the user spec must not be rewritten');
});

test('dual-stack: both families announced, the IPv6 VIP reachable through NDP', async () => {
  await apply(service('dual', { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] }, { 'purelb.io/service-group': 'dual' }));
  await waitUntil('dual allocated', 15_000, async () => (await ingressOf('dual')).length === 2);
  const [v4, v6] = await ingressOf('dual');
  assert.equal(v4, '198.51.100.160');
  assert.equal(v6, '2001:db8:100::1:0');
  // 198.51.100.160 lies in the LAN /24 of every node: local on eth0. So does the IPv6 one.
  for (const vip of [v4, v6] as string[]) {
    const w = winner(names, vip) as string;
    await waitUntil(`${vip} on ${w}`, 10_000, async () => (await holders(vip, 'eth0')).join() === w, 100);
    assert.equal(await clientConnect(vip), w);
  }
  const annotations = (await core.readNamespacedService({ name: 'dual', namespace: APP_NS })).metadata?.annotations ?? {};
  assert.equal(annotations['purelb.io/announcing-IPv6'], `${winner(names, v6 as string)},eth0`);
});

test('safety: node addresses survive, a VIP deleted by hand comes back, a restarted agent adopts its addresses without a flap', async () => {
  const vip = '198.51.100.64';
  const w = winner(names, vip) as string;
  await nsExec(w, ['ip', 'addr', 'del', `${vip}/24`, 'dev', 'eth0']);
  const t0 = Date.now();
  await waitUntil('deleted VIP restored', 5000, async () => (await holders(vip, 'eth0')).join() === w, 20);
  const repairMs = Date.now() - t0;
  assert.ok(repairMs < 2500, `repair took ${repairMs} ms, longer than one reconcile period`);

  // A crash and restart: the routed VIP (held by every node, so no peer takes it over)
  // must stay in the kernel throughout; the new process adopts it instead of re-adding.
  const routed = '203.0.113.100';
  const node = 'plb-node1';
  const before = agents.get(node) as Component;
  await before.kill();
  const restarted = startAgent({ node, namespace: SG_NS, env: fastAgent });
  agents.set(node, restarted);
  components.push(restarted);
  let missing = 0;
  for (let i = 0; i < 40; i++) {
    if (!(await addressesOf(node)).some((a) => a.ip === routed && a.ifname === 'kube-lb0')) missing++;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(missing, 0, 'the routed VIP left kube-lb0 during an agent restart');
  await waitUntil('restarted agent is ready', 15_000, () => /agent ready/.test(restarted.log()));
  assert.doesNotMatch(restarted.log(), /announced address.*203\.0\.113\.100|withdrew address.*203\.0\.113\.100/, 'the restarted agent re-added or withdrew an address it should have adopted');

  for (const n of nodes) {
    const addrs = await addressesOf(n.name);
    assert.ok(addrs.some((a) => a.ip === n.v4 && a.ifname === 'eth0'), `${n.name} lost ${n.v4}`);
    assert.ok(addrs.some((a) => a.ip === n.v6 && a.ifname === 'eth0'), `${n.name} lost ${n.v6}`);
  }
});

test('an address equal to a VIP that an operator added by hand is left alone and reported on the Service', async () => {
  const routed = '203.0.113.100';
  const node = 'plb-node3';
  const svc = (await core.listNamespacedService({ namespace: APP_NS })).items.find((s) => s.status?.loadBalancer?.ingress?.some((i) => i.ip === routed));
  assert.ok(svc?.metadata?.name, `no Service holds ${routed}`);
  // Ours out, the operator's in, with the agent stopped (SIGSTOP) meanwhile: a running
  // agent re-adds its own within milliseconds of the delete, even between two commands
  // of one `ip -b` batch (seen once its pass read the kernel only once).
  const pid = (agents.get(node) as Component).rec.pid;
  process.kill(pid, 'SIGSTOP');
  try {
    await nsExec(node, ['ip', '-b', '-'], { input: `addr del ${routed}/32 dev kube-lb0\naddr add ${routed}/32 dev kube-lb0\n` });
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  try {
    await waitUntil('an AddressNotOurs Event on the Service', 15_000, async () => {
      const ev = await core.listNamespacedEvent({ namespace: APP_NS, fieldSelector: `involvedObject.name=${svc.metadata?.name},reason=AddressNotOurs` });
      return ev.items.some((e) => e.message?.includes(`Node ${node} does not announce ${routed}`));
    });
    // Two reconcile periods later it is still there, once, and the agent neither deleted nor replaced it.
    await new Promise((r) => setTimeout(r, 4500));
    assert.equal((await addressesOf(node)).filter((a) => a.ip === routed && a.ifname === 'kube-lb0').length, 1);
    assert.match(agents.get(node)?.log() ?? '', /address already on the node and not ours: left alone.*203\.0\.113\.100|203\.0\.113\.100.*address already on the node and not ours/);
    assert.doesNotMatch(agents.get(node)?.log() ?? '', /withdrew address.*203\.0\.113\.100/, 'the agent deleted an address it did not add');
  } finally {
    // The operator takes it back; the agent puts its own there again.
    await nsExec(node, ['ip', 'addr', 'del', `${routed}/32`, 'dev', 'kube-lb0']);
    await waitUntil(`${routed} back on ${node}`, 10_000, async () => (await holders(routed, 'kube-lb0')).includes(node), 50);
  }
});

test('withdraw: deleting a Service removes its VIP from every node; SIGTERM withdraws and hands over', async () => {
  await core.deleteNamespacedService({ name: 'nginx-lb5-service', namespace: APP_NS });
  await waitUntil('203.0.113.0 withdrawn everywhere', 10_000, async () => (await holders('203.0.113.0', 'kube-lb0')).length === 0, 100);
  const vip = '198.51.100.65';
  const w = winner(names, vip) as string;
  const next = winner(names.filter((n) => n !== w), vip) as string;
  await (agents.get(w) as Component).stop();
  await waitUntil(`${vip} moved to ${next}`, 5000, async () => (await holders(vip, 'eth0')).join() === next, 50);
  assert.equal(await clientConnect(vip), next);
  const restarted = startAgent({ node: w, namespace: SG_NS, env: fastAgent });
  agents.set(w, restarted);
  components.push(restarted);
  await waitUntil(`${vip} back on ${w}`, 15_000, async () => (await holders(vip, 'eth0')).join() === w, 100);
});
