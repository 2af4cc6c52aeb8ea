// Lease leader election against the real API server.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api, V1MicroTime } from '@kubernetes/client-node';
import { LeaderElector } from '../../src/k8s/leader.ts';
import { connection, kubeConfig } from '../lab/kube.ts';
import { ensureNamespace, waitUntil } from '../lab/testkit.ts';

const NS = 'plb-test-leader';
const kc = kubeConfig();
const run = Date.now().toString(36);
const fast = { leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 200 };
/** A long lease: a standby that took over sooner can only have seen the graceful release. */
const longLease = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 200 };

before(() => ensureNamespace(NS));

test('two candidates: never both leaders; a graceful stop hands over without waiting out the lease', async () => {
  const a = new LeaderElector(connection(), { namespace: NS, name: `pair-${run}`, identity: 'a', ...longLease });
  const b = new LeaderElector(connection(), { namespace: NS, name: `pair-${run}`, identity: 'b', ...longLease });
  const runA = a.run(() => {});
  const runB = b.run(() => {});
  try {
    await waitUntil('someone leads', 5000, () => a.isLeader() || b.isLeader());
    let both = 0;
    for (let i = 0; i < 60; i++) {
      if (a.isLeader() && b.isLeader()) both++;
      await sleep(50);
    }
    assert.equal(both, 0, 'both candidates claimed leadership at once');
    const [leader, standby] = a.isLeader() ? [a, b] : [b, a];
    const t0 = Date.now();
    await leader.stop();
    await waitUntil('standby takes over after the graceful release', 10_000, () => standby.isLeader());
    const handover = Date.now() - t0;
    // Without the release the standby would wait out the 15 s lease.
    assert.ok(handover < 10_000, `handover took ${handover} ms: the release was not seen`);
  } finally {
    await a.stop();
    await b.stop();
    await Promise.all([runA, runB]);
  }
});

test('a lease whose holder stopped renewing is taken over only after the lease duration', async () => {
  const api = kc.makeApiClient(CoordinationV1Api);
  const now = new V1MicroTime();
  await api.createNamespacedLease({
    namespace: NS,
    body: { metadata: { name: `ghost-${run}`, namespace: NS }, spec: { holderIdentity: 'ghost', leaseDurationSeconds: 2, renewTime: now, acquireTime: now } },
  });
  const c = new LeaderElector(connection(), { namespace: NS, name: `ghost-${run}`, identity: 'c', ...fast });
  const t0 = Date.now();
  const running = c.run(() => {});
  try {
    await waitUntil('candidate takes the abandoned lease', 6000, () => c.isLeader());
    const waited = Date.now() - t0;
    assert.ok(waited >= 1900, `took over after ${waited} ms, before the 2 s lease could expire`);
    const lease = await api.readNamespacedLease({ name: `ghost-${run}`, namespace: NS });
    assert.equal(lease.spec?.holderIdentity, 'c');
    assert.equal(lease.spec?.leaseTransitions, 1);
  } finally {
    await c.stop();
    await running;
  }
});
