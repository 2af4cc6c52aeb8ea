// The kernel diff against an in-memory HostNetwork on an injected clock: what is added,
// renewed, withdrawn and announced again, with the LBNodeAgent's address settings.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LBNODEAGENT_CONFIG, normalizeLBNodeAgent } from '../api/normalize.ts';
import type { LBNodeAgentConfig } from '../api/normalize.ts';
import { MemoryNetwork } from '../netlink/memory-network.ts';
import { ANNOTATIONS } from '../api/annotations.ts';
import { mergeAnnouncing } from './announcing.ts';
import type { Announcement, ServiceView, Snapshot } from './desired.ts';
import { FAMILIES, announcingAnnotation, planAnnouncing, planKernel } from './plan.ts';
import type { Written } from './plan.ts';

const local: Announcement = { service: 'a/web', ip: '198.51.100.10', family: 'IPv4', kind: 'local', interface: 'eth0', prefix: 24 };
const routed: Announcement = { service: 'a/bgp', ip: '203.0.113.7', family: 'IPv4', kind: 'nonlocal', interface: 'kube-lb0', prefix: 32 };

function node(): { net: MemoryNetwork; clock: { ms: number } } {
  const clock = { ms: 0 };
  const net = new MemoryNetwork({ now: () => clock.ms });
  net.addLink('eth0');
  net.addLink('kube-lb0', 'dummy');
  net.addNodeAddress('eth0', '198.51.100.2/24', true);
  return { net, clock };
}

/** One kernel pass as the agent makes it: plan, then delete and add. */
async function pass(net: MemoryNetwork, desired: Announcement[], config: LBNodeAgentConfig = DEFAULT_LBNODEAGENT_CONFIG, membershipChanged = false) {
  const links = new Map((await net.listLinks()).map((l) => [l.name, l]));
  const plan = planKernel(desired, links, await net.listAddresses({ ours: true }), config, membershipChanged);
  await net.deleteAddresses(plan.remove);
  await net.addAddresses(plan.add.map((a) => a.spec));
  return plan;
}

const ours = async (net: MemoryNetwork) => (await net.listAddresses({ ours: true })).map((a) => a.ip).sort();

test('defaults: local addresses get the 5 s dead-man lifetime and no prefix route; dummy ones are permanent', async () => {
  const { net } = node();
  const plan = await pass(net, [local, routed]);
  assert.deepEqual(
    plan.add.map((a) => [a.spec.ip, a.spec.lifetimes, a.spec.noPrefixRoute]),
    [
      ['198.51.100.10', { validSec: 5, preferredSec: 5 }, true],
      ['203.0.113.7', undefined, false],
    ],
  );
});

test('the dead-man switch: renewed while passes run, gone 5 s after they stop', async () => {
  const { net, clock } = node();
  await pass(net, [local, routed]);
  for (let i = 0; i < 5; i++) {
    clock.ms += 1600;
    const plan = await pass(net, [local, routed]);
    assert.deepEqual(plan.add.map((a) => a.spec.ip), ['198.51.100.10'], 'only the finite lifetime is renewed');
  }
  assert.deepEqual(await ours(net), ['198.51.100.10', '203.0.113.7']);
  clock.ms += 5000;
  assert.deepEqual(await ours(net), ['203.0.113.7'], 'the local VIP expired without an agent');
});

test("the issue's addressConfig reaches the specs: 300/120 s and noPrefixRoute locally, 600 s on the dummy", async () => {
  const r = normalizeLBNodeAgent({
    apiVersion: 'purelb.io/v2',
    kind: 'LBNodeAgent',
    metadata: { name: 'default', namespace: 'purelb' },
    spec: { local: { addressConfig: { localInterface: { validLifetime: 300, preferredLifetime: 120, noPrefixRoute: true }, dummyInterface: { validLifetime: 600 } } } },
  });
  assert.ok(r.ok);
  const { net } = node();
  await pass(net, [local, routed], r.value);
  const [eth0, lb] = await net.listLinks();
  assert.deepEqual(net.specOf({ ifindex: eth0!.index, ip: local.ip, prefix: 24 })?.lifetimes, { validSec: 300, preferredSec: 120 });
  assert.equal(net.specOf({ ifindex: eth0!.index, ip: local.ip, prefix: 24 })?.noPrefixRoute, true);
  assert.deepEqual(net.specOf({ ifindex: lb!.index, ip: routed.ip, prefix: 32 })?.lifetimes, { validSec: 600, preferredSec: 600 });
});

test('withdraws only our addresses that are no longer wanted; the node address stays', async () => {
  const { net } = node();
  await pass(net, [local, routed]);
  const plan = await pass(net, [routed]);
  assert.deepEqual(plan.remove.map((a) => a.ip), ['198.51.100.10']);
  assert.deepEqual((await net.listAddresses()).map((a) => a.ip).sort(), ['198.51.100.2', '203.0.113.7']);
});

test('an announcement on a missing interface is left out', async () => {
  const { net } = node();
  const plan = await pass(net, [{ ...local, interface: 'eth9' }]);
  assert.deepEqual(plan.add, []);
});

test('after a membership change the local addresses held are announced again, unless GARP is off', async () => {
  const { net } = node();
  await pass(net, [local, routed]);
  assert.deepEqual((await pass(net, [local, routed], DEFAULT_LBNODEAGENT_CONFIG, true)).reannounce.map((a) => a.ip), ['198.51.100.10']);
  assert.deepEqual((await pass(net, [local, routed], DEFAULT_LBNODEAGENT_CONFIG, false)).reannounce, []);
  const off = { ...DEFAULT_LBNODEAGENT_CONFIG, garp: { ...DEFAULT_LBNODEAGENT_CONFIG.garp, enabled: false } };
  assert.deepEqual((await pass(net, [local, routed], off, true)).reannounce, []);
});

describe('planAnnouncing: the announcing annotations against the record of what was written', () => {
  const web: ServiceView = { key: 'a/web', ips: [local.ip], group: 'lan', local: false, endpointNodes: new Set() };
  const bgp: ServiceView = { key: 'a/bgp', ips: [routed.ip], group: 'routed', local: false, endpointNodes: new Set() };
  const snap = (services: ServiceView[]): Snapshot => ({
    self: { node: 'n1', localInterface: { name: 'eth0', subnets: ['198.51.100.0/24'] }, dummyInterface: 'kube-lb0', eligible: true },
    members: [{ node: 'n1', subnets: ['198.51.100.0/24'] }],
    services,
    groups: new Map(),
  });
  /** Applies a plan's writes to `objects` and to the record, as publish.ts does once a write succeeded. */
  function commit(plan: ReturnType<typeof planAnnouncing>, objects: Map<string, Record<string, string>>, written: Map<string, Written>) {
    for (const key of plan.forget) written.delete(key);
    for (const w of plan.writes) {
      const a = objects.get(w.key) ?? {};
      for (const f of FAMILIES) {
        const v = mergeAnnouncing(a[announcingAnnotation(f)], w.owned[f]);
        if (v === '') delete a[announcingAnnotation(f)];
        else a[announcingAnnotation(f)] = v;
      }
      objects.set(w.key, a);
      if (w.record) written.set(w.key, w.record);
      else written.delete(w.key);
    }
  }
  const cases = () => {
    const objects = new Map<string, Record<string, string>>([
      ['a/web', {}],
      ['a/bgp', {}],
    ]);
    const written = new Map<string, Written>();
    const plan = (desired: Announcement[], services: ServiceView[]) => planAnnouncing(desired, snap(services), written, (k) => objects.get(k), 'kube-lb0');
    return { objects, written, plan };
  };

  test('a new announcement is written, with one Event for it; the same again writes nothing', () => {
    const { objects, written, plan } = cases();
    const first = plan([local, routed], [web, bgp]);
    assert.deepEqual(first.writes.map((w) => [w.key, w.fresh.map((d) => d.ip)]), [['a/web', [local.ip]], ['a/bgp', [routed.ip]]]);
    commit(first, objects, written);
    assert.equal(objects.get('a/web')?.[ANNOTATIONS.announcingIPv4], 'n1,eth0');
    assert.equal(objects.get('a/bgp')?.[ANNOTATIONS.announcingIPv4], 'n1,kube-lb0');
    assert.deepEqual(plan([local, routed], [web, bgp]).writes, []);
  });

  test('an annotation edited by someone else is written again, with no new Event', () => {
    const { objects, written, plan } = cases();
    commit(plan([local], [web]), objects, written);
    objects.set('a/web', { [ANNOTATIONS.announcingIPv4]: 'n9,eth0' });
    const again = plan([local], [web]);
    assert.deepEqual(again.writes.map((w) => [w.key, w.fresh.length]), [['a/web', 0]]);
    commit(again, objects, written);
    assert.equal(objects.get('a/web')?.[ANNOTATIONS.announcingIPv4], 'n9,eth0 n1,eth0'.split(' ').sort().join(' '));
  });

  test('a failed write leaves the record as it was: the next plan writes it again', () => {
    const { written, plan } = cases();
    assert.equal(plan([local], [web]).writes.length, 1);
    assert.equal(written.size, 0);
    assert.deepEqual(plan([local], [web]).writes.map((w) => w.fresh.map((d) => d.ip)), [[local.ip]]);
  });

  test('no longer announced: this node removes its entry and its record; the routed writer clears the list', () => {
    const { objects, written, plan } = cases();
    commit(plan([local, routed], [web, bgp]), objects, written);
    // The address left this node (election) and the routed Service lost its address.
    const after = plan([], [web]);
    commit(after, objects, written);
    assert.equal(objects.get('a/web')?.[ANNOTATIONS.announcingIPv4], undefined);
    assert.equal(objects.get('a/bgp')?.[ANNOTATIONS.announcingIPv4], undefined);
    // One more pass settles the record (the cleared list is no longer this node's); then nothing is written.
    commit(plan([], [web]), objects, written);
    assert.deepEqual(plan([], [web]).writes, []);
    assert.ok(!written.has('a/bgp'));
  });

  test('a deleted Service is forgotten, and nothing is written for it', () => {
    const { objects, written, plan } = cases();
    commit(plan([local], [web]), objects, written);
    objects.delete('a/web');
    const gone = plan([], []);
    assert.deepEqual([gone.writes, gone.forget], [[], ['a/web']]);
  });
});

test('a link missing from the listing: its addresses are neither re-added nor withdrawn', async () => {
  const { net } = node();
  await pass(net, [local, routed]);
  const links = new Map((await net.listLinks()).filter((l) => l.name !== 'eth0').map((l) => [l.name, l]));
  const plan = planKernel([local, routed], links, await net.listAddresses({ ours: true }), DEFAULT_LBNODEAGENT_CONFIG, false);
  assert.deepEqual(plan.remove, []);
  assert.deepEqual(plan.add.map((a) => a.spec.ip), []);
});

test('planAnnouncing: a node that announces a routed VIP but does not write its list plans it once, not on every pass', () => {
  const bgp: ServiceView = { key: 'a/bgp', ips: [routed.ip], group: 'routed', local: false, endpointNodes: new Set() };
  const members = ['n1', 'n2', 'n3'].map((n) => ({ node: n, subnets: ['198.51.100.0/24'] }));
  const snapOf = (node: string): Snapshot => ({
    self: { node, localInterface: { name: 'eth0', subnets: ['198.51.100.0/24'] }, dummyInterface: 'kube-lb0', eligible: true },
    members,
    services: [bgp],
    groups: new Map(),
  });
  // Whichever node is not the list's writer.
  const plans = ['n1', 'n2', 'n3'].map((n) => ({ n, p: planAnnouncing([routed], snapOf(n), new Map(), () => ({}), 'kube-lb0') }));
  const reader = plans.find(({ p }) => p.writes[0]?.owned.IPv4.nonlocal === undefined);
  assert.ok(reader, 'one node writes the list, the others do not');
  const written = new Map<string, Written>();
  const first = reader.p;
  assert.deepEqual(first.writes.map((w) => w.fresh.map((d) => d.ip)), [[routed.ip]], 'its first pass: one Event for its announcement');
  for (const w of first.writes) if (w.record) written.set(w.key, w.record);
  const again = planAnnouncing([routed], snapOf(reader.n), written, () => ({}), 'kube-lb0');
  assert.deepEqual(again.writes, [], 'the next pass plans nothing: no repeated Event, no write');
});
