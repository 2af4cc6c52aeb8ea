// The reference scenario of examples/purelb-guide (moved into documentation ranges) against
// the real API server with the allocator running as a process: every Service gets the
// address the scenario's README lists, with PureLB's annotations and Events.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api } from '@kubernetes/client-node';
import type { V1Service } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { startAllocator, stopAllComponents } from '../lab/components.ts';
import type { Component } from '../lab/components.ts';
import { kubeConfig } from '../lab/kube.ts';
import { SCENARIO_EXPECTED } from '../lab/plan.ts';
import { FAST_LEASE_ENV, applyCRDs, ensureNamespace, freePort, kubectl, referenceManifest, waitUntil } from '../lab/testkit.ts';

const core = kubeConfig().makeApiClient(CoreV1Api);
const APP_NS = 'nginx-quic';
const SG_NS = 'purelb';
let allocator: Component | undefined;
let metricsPort = 0;

const expected = SCENARIO_EXPECTED;

async function ingressOf(name: string): Promise<string[]> {
  const svc = await core.readNamespacedService({ name, namespace: APP_NS });
  return (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '');
}

async function eventsOf(name: string): Promise<Array<{ reason: string; message: string; type: string }>> {
  const list = await core.listNamespacedEvent({ namespace: APP_NS, fieldSelector: `involvedObject.name=${name}` });
  return list.items.map((e) => ({ reason: e.reason ?? '', message: e.message ?? '', type: e.type ?? '' }));
}

before(async () => {
  await stopAllComponents();
  await applyCRDs();
  await ensureNamespace(SG_NS);
  await ensureNamespace(APP_NS);
  await kubectl(['delete', 'svc', '--all', '-n', APP_NS, '--wait=true']);
  await kubectl(['delete', 'servicegroups', '--all', '-n', SG_NS]);
  await kubectl(['apply', '-f', '-'], { input: referenceManifest('servicegroups.yaml') });
  metricsPort = freePort();
  allocator = startAllocator({ id: 'scenario', namespace: SG_NS, metricsPort, env: FAST_LEASE_ENV });
});

after(async () => {
  await allocator?.stop();
  await kubectl(['delete', 'svc', '--all', '-n', APP_NS, '--wait=false'], { check: false });
});

test('reference scenario: each Service gets the address of the README table, in creation order', async () => {
  const docs = parseAllDocuments(referenceManifest('services.yaml')).map((d) => d.toJSON() as V1Service);
  const services = docs.filter((d) => d.kind === 'Service');
  assert.equal(services.length, expected.length);
  for (const svc of services) {
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(svc) });
    const name = svc.metadata?.name ?? '';
    await waitUntil(`${name} has an address`, 15_000, async () => (await ingressOf(name)).length > 0, 50);
  }
  for (const [name, group, ip] of expected) {
    assert.deepEqual(await ingressOf(name), [ip], `${name}`);
    const svc = await core.readNamespacedService({ name, namespace: APP_NS });
    assert.equal(svc.metadata?.annotations?.['purelb.io/allocated-by'], 'PureLB');
    assert.equal(svc.metadata?.annotations?.['purelb.io/allocated-from'], group);
    assert.equal(svc.status?.loadBalancer?.ingress?.[0]?.ipMode, 'VIP');
  }
  await waitUntil('AddressAssigned events are written', 5000, async () => (await eventsOf('nginx-lb-service')).some((e) => e.reason === 'AddressAssigned'));
  const assigned = (await eventsOf('nginx-lb-service')).find((e) => e.reason === 'AddressAssigned');
  assert.match(assigned?.message ?? '', /198\.51\.100\.64 from pool layer2-ippool/);
  const lb4 = await eventsOf('nginx-lb4-service');
  assert.ok(
    lb4.some((e) => e.reason === 'ConfigurationWarning' && e.type === 'Warning' && /spec\.loadBalancerIP is deprecated/.test(e.message)),
    `no deprecation warning for spec.loadBalancerIP: ${JSON.stringify(lb4)}`,
  );
});

test('ServiceGroup status counts what is allocated', async () => {
  await waitUntil('layer2-ippool status shows 4 allocated', 10_000, async () => {
    const out = await kubectl(['get', 'sg', 'layer2-ippool', '-n', SG_NS, '-o', 'json']);
    const status = (JSON.parse(out.stdout) as { status?: { allocatedIPv4?: number; availableIPv4?: number } }).status;
    return status?.allocatedIPv4 === 4 && status.availableIPv4 === 59;
  });
  const table = await kubectl(['get', 'sg', '-n', SG_NS]);
  assert.match(table.stdout, /layer2-ippool\s+True\s+4\s+59/);
});

test('metrics: pool size and use per ServiceGroup, allocations counted', async () => {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  const value = (line: string) => Number(new RegExp(`^${line.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1]);
  assert.equal(value('purelb_address_pool_size{pool="layer2-ippool",family="IPv4"}'), 63);
  assert.equal(value('purelb_address_pool_addresses_in_use{pool="layer2-ippool",family="IPv4"}'), 4);
  assert.equal(value('purelb_address_pool_size{pool="bgp-ippool",family="IPv4"}'), 255);
  assert.equal(value('purelb_allocator_allocations_total{pool="layer2-ippool"}'), 4);
});

test('an allocator restart changes no address; a released address is reused lowest-first', async () => {
  const before = await Promise.all(expected.map(([name]) => ingressOf(name)));
  await allocator?.stop();
  allocator = startAllocator({ id: 'scenario', namespace: SG_NS, metricsPort: freePort(), env: FAST_LEASE_ENV });
  await core.deleteNamespacedService({ name: 'nginx-lb2-service', namespace: APP_NS });
  await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'late', namespace: APP_NS, annotations: { 'purelb.io/service-group': 'layer2-ippool' } },
      spec: { type: 'LoadBalancer', ports: [{ port: 80, protocol: 'TCP' }] },
    }),
  });
  await waitUntil('late has an address', 20_000, async () => (await ingressOf('late')).length > 0, 100);
  assert.deepEqual(await ingressOf('late'), ['198.51.100.65']);
  for (const [i, [name]] of expected.entries()) {
    if (name === 'nginx-lb2-service') continue;
    assert.deepEqual(await ingressOf(name), before[i], `${name} changed its address across a restart`);
  }
});
