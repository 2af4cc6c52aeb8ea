// The kernel diff against an in-memory HostNetwork on an injected clock: what is added,
// renewed, withdrawn and announced again, with the LBNodeAgent's address settings.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LBNODEAGENT_CONFIG, normalizeLBNodeAgent } from '../api/normalize.ts';
import type { LBNodeAgentConfig } from '../api/normalize.ts';
import { MemoryNetwork } from '../netlink/memory-network.ts';
import type { Announcement } from './desired.ts';
import { planKernel } from './plan.ts';

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
