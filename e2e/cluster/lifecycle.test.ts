// Upgrade and uninstall as an operator does them. `helm upgrade` with a changed value
// restarts every allocator and agent pod (rolling): no Service changes address, and the
// longest gap a client sees through the VIPs meanwhile is measured and printed.
// `helm uninstall` withdraws every VIP: nothing the agents added stays in any node's kernel.

import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { clientProbe } from '../lab/network.ts';
import type { ConnectResult } from '../lab/network.ts';
import { SCENARIO_EXPECTED } from '../lab/plan.ts';
import { waitUntil } from '../lab/testkit.ts';
import { PURELB_NS, RELEASE, applyScenario, clusterHelm, foreignAddresses, ingressByService, longestGap, installPurelb, pods, releaseInstalled, requireCluster, waitForAnswer } from './kit.ts';

before(async () => {
  await requireCluster();
  if (!(await releaseInstalled())) await installPurelb();
  await applyScenario();
  for (const [, , ip] of SCENARIO_EXPECTED) await waitForAnswer(ip, 60_000);
});

test('helm upgrade with a changed value: a rolling restart of every pod, no address change, the outage measured', async () => {
  const before = await ingressByService();
  const oldPods = new Set([...(await pods(PURELB_NS, 'app.kubernetes.io/component=allocator')), ...(await pods(PURELB_NS, 'app.kubernetes.io/component=lbnodeagent'))].map((p) => p.uid));
  const layer2 = SCENARIO_EXPECTED.find(([, g]) => g === 'layer2-ippool')?.[2] as string;
  const routed = SCENARIO_EXPECTED.find(([, g]) => g === 'bgp-ippool')?.[2] as string;

  let upgrading = true;
  const probe = async (ip: string): Promise<ConnectResult[]> => {
    const all: ConnectResult[] = [];
    // Back-to-back bounded probes for as long as the upgrade runs (at most 10 minutes).
    for (let i = 0; i < 120 && upgrading; i++) all.push(...(await clientProbe(ip, { durationMs: 5000, attemptTimeoutMs: 300, intervalMs: 20 })));
    return all;
  };
  const probes = [probe(layer2), probe(routed)];
  const t0 = performance.now();
  try {
    await installPurelb({ 'lbnodeagent.reconcileMs': 7000, 'allocator.workers': 4 });
  } finally {
    upgrading = false;
  }
  const upgradeMs = performance.now() - t0;
  const [l2, rt] = (await Promise.all(probes)) as [ConnectResult[], ConnectResult[]];

  const newPods = [...(await pods(PURELB_NS, 'app.kubernetes.io/component=allocator')), ...(await pods(PURELB_NS, 'app.kubernetes.io/component=lbnodeagent'))];
  assert.equal(newPods.length, 5);
  for (const p of newPods) assert.ok(!oldPods.has(p.uid) && p.ready, `${p.name} is a new, Ready pod`);
  assert.deepEqual(await ingressByService(), before, 'no Service changed address');

  const gapL2 = longestGap(l2);
  const gapRouted = longestGap(rt);
  console.log(`cluster.upgrade_duration ${Math.round(upgradeMs)} ms`);
  console.log(`cluster.upgrade_longest_outage_layer2 ${Math.round(gapL2)} ms (${l2.length} attempts, ${l2.filter((a) => !a.ok).length} failed)`);
  console.log(`cluster.upgrade_longest_outage_routed ${Math.round(gapRouted)} ms (${rt.length} attempts, ${rt.filter((a) => !a.ok).length} failed)`);
  assert.ok(l2.length > 50 && rt.length > 50, 'the client kept probing through the upgrade');
  // A rolling restart hands each address over gracefully: far below a failure-detection time.
  assert.ok(gapL2 < 3000, `layer-2 outage during the upgrade: ${Math.round(gapL2)} ms`);
  assert.ok(gapRouted < 3000, `routed outage during the upgrade: ${Math.round(gapRouted)} ms`);
});

test('helm uninstall: every VIP leaves every node, nothing the agents added stays in a kernel', async () => {
  assert.ok((await foreignAddresses()).length >= SCENARIO_EXPECTED.length, 'the VIPs are on the nodes before');
  await clusterHelm(['uninstall', RELEASE, '-n', PURELB_NS, '--wait', '--timeout', '3m']);
  await waitUntil('no agent pod left', 120_000, async () => (await pods(PURELB_NS, 'app.kubernetes.io/component=lbnodeagent')).length === 0);
  let left: string[] = [];
  await waitUntil('no address but the nodes\' own on any node', 30_000, async () => (left = await foreignAddresses()).length === 0).catch(() => {
    assert.fail(`left in the nodes' kernels: ${left.join(', ')}`);
  });
});
