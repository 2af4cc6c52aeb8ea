// Issue 12, defect 2: the LBNodeAgent's addressConfig and garpConfig as the kernel and
// the wire show them, with the allocator and three agents in the lab. The issue's
// LBNodeAgent: local addresses {validLifetime 300, preferredLifetime 120,
// noPrefixRoute}, dummy-interface addresses {validLifetime 600}; and a GARP burst of 2
// frames 300 ms apart. Before, `ip -d addr` showed preferred_lft 300 and no
// noprefixroute on eth0, valid_lft forever on kube-lb0, and 3 frames 500 ms apart.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api } from '@kubernetes/client-node';
import { winner } from '../../src/election/winner.ts';
import { startAgent, startAllocator } from '../lab/components.ts';
import type { Component } from '../lab/components.ts';
import { kubeConfig } from '../lab/kube.ts';
import { gratuitousOf, labMac, nsExec, startCapture } from '../lab/network.ts';
import type { Capture } from '../lab/network.ts';
import { labNodes } from '../lab/plan.ts';
import { FAST_LEASE_ENV, applyServiceGroup, freePort, httpStatus, kubectl, waitUntil } from '../lab/testkit.ts';
import { AGENT_ENV, NODES, freshAgentLab, holdersOf } from './failover-kit.ts';

const SG_NS = 'plb-addrcfg';
const APP_NS = 'plb-addrcfg-app';
const core = kubeConfig().makeApiClient(CoreV1Api);
const components: Component[] = [];
let capture: Capture | undefined;

interface AddrInfo {
  local: string;
  valid_life_time: number;
  preferred_life_time: number;
  noprefixroute?: boolean;
}

/** What `ip -d addr` shows of `ip` on `ifname` of node `ns`. */
async function kernelView(ns: string, ifname: string, ip: string): Promise<AddrInfo | undefined> {
  const r = await nsExec(ns, ['ip', '-d', '-j', 'addr', 'show']);
  const links = JSON.parse(r.stdout) as Array<{ ifname: string; addr_info: AddrInfo[] }>;
  return links.find((l) => l.ifname === ifname)?.addr_info.find((a) => a.local === ip);
}

async function createService(name: string, group: string): Promise<string> {
  await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: APP_NS, annotations: { 'purelb.io/service-group': group } },
      spec: { type: 'LoadBalancer', ports: [{ port: 80, protocol: 'TCP' }] },
    }),
  });
  let ip = '';
  await waitUntil(`${name} has an address`, 20_000, async () => {
    ip = (await core.readNamespacedService({ name, namespace: APP_NS })).status?.loadBalancer?.ingress?.[0]?.ip ?? '';
    return ip !== '';
  });
  return ip;
}

before(async () => {
  await freshAgentLab(SG_NS, APP_NS, { appKinds: 'svc', clearGroups: true });
  await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'purelb.io/v2',
      kind: 'LBNodeAgent',
      metadata: { name: 'default', namespace: SG_NS },
      spec: {
        local: {
          garpConfig: { count: 2, interval: '300ms', initialDelay: '0s', verifyBeforeSend: true },
          addressConfig: { localInterface: { validLifetime: 300, preferredLifetime: 120, noPrefixRoute: true }, dummyInterface: { validLifetime: 600 } },
        },
      },
    }),
  });
  await applyServiceGroup(SG_NS, 'l2', { local: { v4pool: { subnet: '198.51.100.0/24', pool: '198.51.100.190-198.51.100.195', aggregation: 'default' } } }, 'purelb.io/v2');
  await applyServiceGroup(SG_NS, 'routed', { remote: { v4pool: { subnet: '203.0.113.0/24', pool: '203.0.113.200-203.0.113.205', aggregation: '/32' } } }, 'purelb.io/v2');
  const port = freePort();
  components.push(startAllocator({ id: 'addrcfg', namespace: SG_NS, metricsPort: port, env: FAST_LEASE_ENV }));
  for (const n of NODES) components.push(startAgent({ node: n, namespace: SG_NS, env: AGENT_ENV }));
  await waitUntil('the allocator to lead', 30_000, async () => (await httpStatus(`http://127.0.0.1:${port}/leader`)) === 200);
  for (const n of labNodes(3)) await waitUntil(`the agent on ${n.name} to be ready`, 30_000, async () => (await httpStatus(`http://${n.v4}:7472/readyz`)) === 200);
  capture = await startCapture({ ns: 'plb-client', iface: 'eth0', filter: 'arp', maxDurationMs: 120_000 });
});

after(async () => {
  await capture?.stop();
  await Promise.allSettled(components.map((c) => c.stop()));
  await kubectl(['delete', 'svc', '--all', '-n', APP_NS, '--wait=false'], { check: false });
  await kubectl(['delete', 'lbnodeagents', '--all', '-n', SG_NS], { check: false });
});

test('local VIP: valid 300 s, preferred 120 s, noprefixroute, renewed while the agent runs; 2 gratuitous ARPs 300 ms apart', async () => {
  const vip = await createService('local', 'l2');
  const w = winner(NODES, vip) as string;
  await waitUntil(`${vip} on eth0 of ${w}`, 20_000, async () => (await holdersOf(vip)).join() === w, 100);
  const first = await kernelView(w, 'eth0', vip);
  assert.ok(first && first.valid_life_time > 290 && first.valid_life_time <= 300, JSON.stringify(first));
  assert.ok(first.preferred_life_time > 110 && first.preferred_life_time <= 120, JSON.stringify(first));
  assert.equal(first.noprefixroute, true, JSON.stringify(first));

  // Three reconcile periods later the lifetimes are renewed, not counting down.
  await new Promise((r) => setTimeout(r, 6000));
  const later = await kernelView(w, 'eth0', vip);
  assert.ok(later && later.valid_life_time > 294, `not renewed: ${JSON.stringify(later)}`);

  const index = labNodes(3).find((n) => n.name === w)?.index ?? 0;
  const frames = gratuitousOf(capture?.frames() ?? []).filter((a) => a.senderIp === vip);
  assert.ok(frames.length > 0 && frames.every((a) => a.senderMac === labMac('node', index)), JSON.stringify(frames));
  // A membership change meanwhile announces again: bursts are runs of frames less than 1 s apart.
  const bursts: number[][] = [];
  for (const f of frames) {
    const last = bursts.at(-1);
    if (last && f.time - (last.at(-1) ?? 0) < 1) last.push(f.time);
    else bursts.push([f.time]);
  }
  for (const b of bursts) {
    assert.equal(b.length, 2, `a burst of ${b.length} frames: ${JSON.stringify(bursts)}`);
    const gapMs = ((b[1] ?? 0) - (b[0] ?? 0)) * 1000;
    assert.ok(gapMs >= 280 && gapMs < 700, `frames ${gapMs} ms apart`);
  }
});

test('routed VIP: valid 600 s on kube-lb0 of every node', async () => {
  const vip = await createService('routed', 'routed');
  await waitUntil(`${vip} on every kube-lb0`, 20_000, async () => (await holdersOf(vip, NODES, 'kube-lb0')).length === NODES.length, 100);
  for (const n of NODES) {
    const a = await kernelView(n, 'kube-lb0', vip);
    assert.ok(a && a.valid_life_time > 590 && a.valid_life_time <= 600, `${n}: ${JSON.stringify(a)}`);
    assert.ok(a.preferred_life_time > 590 && a.preferred_life_time <= 600, `${n}: ${JSON.stringify(a)}`);
    assert.equal(a.noprefixroute, undefined, `${n}: ${JSON.stringify(a)}`);
  }
});
