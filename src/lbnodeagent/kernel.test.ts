// One pass of the agent against the kernel, as agent.ts makes it (readKernelView, the
// local interface, KernelApplier.apply), on an in-memory HostNetwork that counts the
// calls: the kernel is read once per pass, and lifetimes are renewed in place.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_LBNODEAGENT_CONFIG } from '../api/normalize.ts';
import { createLogger } from '../log.ts';
import { MemoryNetwork } from '../netlink/memory-network.ts';
import type { AddressSpec, HostNetwork } from '../netlink/host-network.ts';
import { Announcer } from './announce/announcer.ts';
import type { Announcement } from './desired.ts';
import { KernelApplier } from './kernel.ts';
import { readKernelView, resolveLocalInterface } from './local-interface.ts';

const local: Announcement = { service: 'a/web', ip: '198.51.100.10', family: 'IPv4', kind: 'local', interface: 'eth0', prefix: 24 };
const routed: Announcement = { service: 'a/bgp', ip: '203.0.113.7', family: 'IPv4', kind: 'nonlocal', interface: 'kube-lb0', prefix: 32 };

/** The MemoryNetwork behind a proxy that counts each method's calls and keeps the add batches. */
function countingNode() {
  const clock = { ms: 0 };
  const mem = new MemoryNetwork({ now: () => clock.ms });
  mem.addLink('eth0');
  mem.addLink('kube-lb0', 'dummy');
  mem.addNodeAddress('eth0', '198.51.100.2/24', true);
  const calls = new Map<string, number>();
  const adds: AddressSpec[][] = [];
  const net = new Proxy(mem, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.set(String(prop), (calls.get(String(prop)) ?? 0) + 1);
        if (prop === 'addAddresses') adds.push(args[0] as AddressSpec[]);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as HostNetwork;
  return { net, clock, calls, adds };
}

test('a pass reads the kernel once (one link and one address listing) and renews in place', async () => {
  const { net, clock, calls, adds } = countingNode();
  const log = createLogger('test', 'error');
  const applier = new KernelApplier({ net, announcer: new Announcer({ findLink: (n) => net.findLink(n), send: () => 0 }), node: 'n1', log });
  const config = { ...DEFAULT_LBNODEAGENT_CONFIG, garp: { ...DEFAULT_LBNODEAGENT_CONFIG.garp, enabled: false } };
  const pass = async () => {
    const view = await readKernelView(net);
    const localInterface = await resolveLocalInterface(net, config, view);
    assert.equal(localInterface.link?.name, 'eth0');
    assert.deepEqual(localInterface.subnets, ['198.51.100.0/24']);
    return applier.apply([local, routed], config, false, view);
  };

  assert.equal((await pass()).added, 2);
  for (let i = 0; i < 3; i++) {
    calls.clear();
    clock.ms += 1600;
    assert.equal((await pass()).added, 0);
    assert.equal(calls.get('listLinks'), 1, 'one link listing per pass');
    assert.equal(calls.get('listAddresses'), 1, 'one address listing per pass');
    assert.equal(calls.get('defaultRouteLink'), 1, 'the route to the local interface');
    assert.equal(calls.get('addAddresses'), 1, 'one batch');
  }
  // The first batch adds both; each later one renews only the local VIP (finite
  // lifetime), marked as a renewal, so no add is tried and refused with EEXIST first.
  assert.deepEqual(adds[0]?.map((s) => [s.ip, s.renew ?? false]), [['198.51.100.10', false], ['203.0.113.7', false]]);
  for (const batch of adds.slice(1)) assert.deepEqual(batch.map((s) => [s.ip, s.renew]), [['198.51.100.10', true]]);
  // Still there after the 5 s the lifetime would have left it without the renewals.
  assert.deepEqual((await net.listAddresses({ ours: true })).map((a) => a.ip).sort(), ['198.51.100.10', '203.0.113.7']);
});
