// Bad input the allocator (not admission) must handle: annotations and Service specs
// that cannot be honoured get a Warning Event naming the field, a Service of another
// loadBalancerClass is left alone, and a working Service is never disturbed.
// ServiceGroups that pass admission but are wrong across objects (overlapping pools,
// an edit that overlaps another group, a pool shrunk under an allocated address) are
// reported as conditions and Events while the last good configuration stays in force.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { CoreV1Event, V1Service } from '@kubernetes/client-node';
import { kubeconfigPath } from '../lab/controlplane.ts';
import { loadKubeConfig } from '../../src/k8s/kubeconfig.ts';
import { FAST_LEASE_ENV, applyServiceGroup, freePort, kubectl, waitUntil } from '../lab/testkit.ts';
import { answers, deleteServices, eventsBy, freshNamespaces, ingressOf, lbService, startTestAllocator, waitForEventBy } from './kit.ts';
import type { AllocatorProcess, ServiceOptions } from './kit.ts';

const NS = 'plb-badinput';
const SG_NS = 'plb-badinput-sg';
const ID = `badinput-${process.pid}`;
const IDENTITY = `allocator-${ID}`;

// Connections are reused (see src/k8s/kubeconfig.ts): thousands of requests, not thousands of handshakes.
const kc = loadKubeConfig(kubeconfigPath('admin'));
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
let allocator: AllocatorProcess | undefined;

const range = (pool: string, subnet: string) => ({ pool, subnet, aggregation: '/128' });
const GROUPS: Record<string, Record<string, unknown>> = {
  'bi-v6': { local: { v6pool: range('2001:db8:400::/120', '2001:db8:400::/120') } },
  'bi-v6b': { local: { v6pool: range('2001:db8:401::/120', '2001:db8:401::/120') } },
  'bi-v4': { local: { v4pool: { pool: '203.0.113.192/28', subnet: '203.0.113.192/28', aggregation: '/32' } } },
  'bi-tiny': { local: { v6pool: range('2001:db8:402::1-2001:db8:402::1', '2001:db8:402::/120') } },
  'bi-fenced': { local: { v6pool: range('2001:db8:403::/120', '2001:db8:403::/120') }, namespaces: ['somewhere-else'], enforceNamespaces: true },
  'bi-outer': { local: { v6pool: range('2001:db8:410::/120', '2001:db8:410::/120') } },
  'bi-edit': { local: { v6pool: range('2001:db8:420::/120', '2001:db8:420::/120') } },
  'bi-shrink': { local: { v6pool: range('2001:db8:430::/120', '2001:db8:430::/120') } },
};

interface GroupStatus {
  metadata: { generation: number; creationTimestamp: string; uid: string };
  status?: { observedGeneration?: number; conditions?: Array<{ type: string; status: string; reason: string; message: string }> };
}

async function group(name: string): Promise<GroupStatus> {
  return (await custom.getNamespacedCustomObject({ group: 'purelb.io', version: 'v1', namespace: SG_NS, plural: 'servicegroups', name })) as GroupStatus;
}

/** Waits until the group's status describes its current generation with these conditions. */
async function waitForConditions(name: string, want: Record<string, [string, string]>): Promise<GroupStatus> {
  let last: GroupStatus | undefined;
  await waitUntil(`ServiceGroup ${name} conditions ${JSON.stringify(want)}`, 20_000, async () => {
    last = await group(name);
    if (last.status?.observedGeneration !== last.metadata.generation) return false;
    return Object.entries(want).every(([type, [status, reason]]) => last?.status?.conditions?.some((c) => c.type === type && c.status === status && c.reason === reason));
  }, 200).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(last?.status)}`);
  });
  return last as GroupStatus;
}

async function create(name: string, o: ServiceOptions & { loadBalancerIP?: string } = {}): Promise<V1Service> {
  const body = lbService(NS, name, o);
  if (o.loadBalancerIP !== undefined && body.spec) body.spec.loadBalancerIP = o.loadBalancerIP;
  return core.createNamespacedService({ namespace: NS, body });
}

async function addressOf(name: string): Promise<string[]> {
  return ingressOf(await core.readNamespacedService({ name, namespace: NS }));
}

async function waitForAddress(name: string, timeoutMs = 20_000): Promise<string[]> {
  await waitUntil(`${name} has an address`, timeoutMs, async () => (await addressOf(name)).length > 0, 100);
  return addressOf(name);
}

const ourEvents = (namespace: string, kind: string, obj: { metadata?: { name?: string; uid?: string } }): Promise<CoreV1Event[]> => eventsBy(core, IDENTITY, namespace, kind, obj);
const waitForEvent = (namespace: string, kind: string, obj: { metadata?: { name?: string; uid?: string } }, reason: string, message: RegExp): Promise<CoreV1Event> =>
  waitForEventBy(core, IDENTITY, namespace, kind, obj, 'Warning', reason, message);

before(async () => {
  await freshNamespaces(core, [NS], SG_NS);
  for (const [name, spec] of Object.entries(GROUPS)) await applyServiceGroup(SG_NS, name, spec, 'purelb.io/v2');
  const port = freePort();
  allocator = startTestAllocator({ id: ID, namespace: SG_NS, metricsPort: port, env: FAST_LEASE_ENV });
  await waitUntil('the allocator is ready', 30_000, () => answers(port), 100);
});

after(async () => {
  await allocator?.stop();
  await deleteServices(core, NS, 60_000).catch(() => undefined);
  await kubectl(['delete', 'servicegroups', '--all', '-n', SG_NS], { check: false });
});

let good: string[] = [];

test('a working Service gets its address first', async () => {
  await create('good', { group: 'bi-v6' });
  good = await waitForAddress('good');
  assert.deepEqual(good, ['2001:db8:400::']);
});

interface Row {
  name: string;
  options: ServiceOptions & { loadBalancerIP?: string };
  reason: 'AllocationFailed' | 'ConfigurationWarning';
  message: RegExp;
  /** For warnings that still allocate: the address the Service gets. */
  address?: string;
}

test('bad annotations and specs: a Warning Event naming the field, no address, nothing else disturbed', async () => {
  // The setup the clash rows clash with.
  await create('share-a', { group: 'bi-v6', sharingKey: 'k1', ports: [{ port: 80 }] });
  await create('tiny-a', { group: 'bi-tiny' });
  assert.deepEqual(await waitForAddress('share-a'), ['2001:db8:400::1']);
  assert.deepEqual(await waitForAddress('tiny-a'), ['2001:db8:402::1']);

  const rows: Row[] = [
    { name: 'bad-syntax', options: { addresses: '2001:db8:400::zz' }, reason: 'AllocationFailed', message: /^purelb\.io\/addresses: "2001:db8:400::zz" is not an IP address/ },
    { name: 'outside-pools', options: { addresses: '2001:db8:4ff::1' }, reason: 'AllocationFailed', message: /^purelb\.io\/addresses: 2001:db8:4ff::1 is in no ServiceGroup's pool/ },
    { name: 'two-of-a-family', options: { addresses: '2001:db8:400::10, 2001:db8:400::11' }, reason: 'AllocationFailed', message: /^purelb\.io\/addresses: more than one IPv6 address \(2001:db8:400::10, 2001:db8:400::11\)/ },
    {
      name: 'two-groups',
      options: { addresses: '203.0.113.201,2001:db8:400::12', ipFamilyPolicy: 'RequireDualStack' },
      reason: 'AllocationFailed',
      message: /^purelb\.io\/addresses: 203\.0\.113\.201, 2001:db8:400::12 lie in different ServiceGroups \((bi-v4, bi-v6|bi-v6, bi-v4)\)/,
    },
    { name: 'unknown-group', options: { group: 'bi-missing' }, reason: 'AllocationFailed', message: /^purelb\.io\/service-group: ServiceGroup bi-missing does not exist/ },
    { name: 'dual-on-v4-only', options: { group: 'bi-v4', family: 'IPv4', ipFamilyPolicy: 'RequireDualStack' }, reason: 'AllocationFailed', message: /^spec\.ipFamilyPolicy RequireDualStack: ServiceGroup bi-v4 has no IPv6 range/ },
    { name: 'v4-from-v6-only', options: { group: 'bi-v6', family: 'IPv4' }, reason: 'AllocationFailed', message: /^spec\.ipFamilies: ServiceGroup bi-v6 has no IPv4 range/ },
    { name: 'wrong-family', options: { addresses: '203.0.113.202' }, reason: 'AllocationFailed', message: /^purelb\.io\/addresses: 203\.0\.113\.202 is not IPv6, and the Service is IPv6 single-stack/ },
    {
      name: 'port-clash',
      options: { group: 'bi-v6', sharingKey: 'k1', ports: [{ port: 80 }] },
      reason: 'AllocationFailed',
      message: /^purelb\.io\/allow-shared-ip: 2001:db8:400::1 already serves TCP\/80 for plb-badinput\/share-a/,
    },
    { name: 'address-taken', options: { addresses: '2001:db8:400::' }, reason: 'AllocationFailed', message: /^purelb\.io\/addresses: 2001:db8:400:: is in use by plb-badinput\/good without a sharing key/ },
    { name: 'exhausted', options: { group: 'bi-tiny' }, reason: 'AllocationFailed', message: /^ServiceGroup bi-tiny has no free IPv6 address/ },
    { name: 'fenced', options: { group: 'bi-fenced' }, reason: 'AllocationFailed', message: /^purelb\.io\/service-group: ServiceGroup bi-fenced does not serve namespace plb-badinput \(enforceNamespaces\)/ },
    { name: 'legacy-ip', options: { group: 'bi-v6', loadBalancerIP: '2001:db8:400::20' }, reason: 'ConfigurationWarning', message: /^spec\.loadBalancerIP is deprecated/, address: '2001:db8:400::20' },
    {
      name: 'group-mismatch',
      options: { group: 'bi-v6b', addresses: '2001:db8:400::21' },
      reason: 'ConfigurationWarning',
      message: /^purelb\.io\/service-group names bi-v6b, but the requested address 2001:db8:400::21 is in ServiceGroup bi-v6/,
      address: '2001:db8:400::21',
    },
  ];
  const created = new Map<string, V1Service>();
  for (const row of rows) created.set(row.name, await create(row.name, row.options));
  // Someone else's class, with an annotation that would fail: left alone entirely.
  const foreign = await create('foreign-class', { loadBalancerClass: 'example.com/other-lb', addresses: 'not-an-ip' });

  const outcomes: string[] = [];
  for (const row of rows) {
    const event = await waitForEvent(NS, 'Service', created.get(row.name) as V1Service, row.reason, row.message);
    if (row.address !== undefined) assert.deepEqual(await waitForAddress(row.name), [row.address], row.name);
    else assert.deepEqual(await addressOf(row.name), [], `${row.name} got an address`);
    outcomes.push(`${row.name}: ${event.reason} "${event.message}"`);
  }
  // Everything after foreign-class in the queue has been handled: it was skipped, not merely late.
  await create('after-foreign', { group: 'bi-v6' });
  await waitForAddress('after-foreign');
  assert.deepEqual(await ourEvents(NS, 'Service', foreign), []);
  const untouched = await core.readNamespacedService({ name: 'foreign-class', namespace: NS });
  assert.deepEqual(ingressOf(untouched), []);
  assert.equal(untouched.metadata?.annotations?.['purelb.io/allocated-by'], undefined);
  outcomes.push('foreign-class: ignored (no Event, no address, no annotation)');

  // A refusal for want of an address is retried when the pool gives one back.
  await core.deleteNamespacedService({ name: 'tiny-a', namespace: NS });
  assert.deepEqual(await waitForAddress('exhausted'), ['2001:db8:402::1']);

  assert.deepEqual(await addressOf('good'), good);
  assert.deepEqual(await addressOf('share-a'), ['2001:db8:400::1']);
  for (const line of outcomes) console.log(`  ${line}`);
});

test('overlapping ServiceGroups: the later one is in Conflict, the older one keeps working', async () => {
  // Creation times have one-second resolution: make sure bi-inner is visibly younger.
  const outer = await group('bi-outer');
  await waitUntil('a new second', 2000, () => Date.now() > new Date(outer.metadata.creationTimestamp).getTime() + 1000, 50);
  await applyServiceGroup(SG_NS, 'bi-inner', { local: { v6pool: range('2001:db8:410::10-2001:db8:410::1f', '2001:db8:410::/120') } }, 'purelb.io/v2');
  const inner = await waitForConditions('bi-inner', { Conflict: ['True', 'Overlap'], Ready: ['False', 'Invalid'] });
  await waitForEvent(SG_NS, 'ServiceGroup', inner, 'ConfigurationWarning', /^spec\.local\.v6pool: .*2001:db8:410::\/120 of ServiceGroup bi-outer overlaps .*2001:db8:410::10-2001:db8:410::1f of ServiceGroup bi-inner.*The group is not in use/);
  await waitForConditions('bi-outer', { Conflict: ['False', 'NoConflict'], Ready: ['True', 'InUse'] });

  await create('outer-svc', { group: 'bi-outer' });
  assert.deepEqual(await waitForAddress('outer-svc'), ['2001:db8:410::']);
  const innerSvc = await create('inner-svc', { group: 'bi-inner' });
  await waitForEvent(NS, 'Service', innerSvc, 'AllocationFailed', /^purelb\.io\/service-group: ServiceGroup bi-inner does not exist or is not usable/);
  assert.deepEqual(await addressOf('inner-svc'), []);
  assert.deepEqual(await addressOf('good'), good);
});

test('an edit that makes a group overlap another: the last good configuration stays in force', async () => {
  await create('edit-a', { group: 'bi-edit' });
  assert.deepEqual(await waitForAddress('edit-a'), ['2001:db8:420::']);
  await custom.patchNamespacedCustomObject(
    { group: 'purelb.io', version: 'v2', namespace: SG_NS, plural: 'servicegroups', name: 'bi-edit', body: { spec: { local: { v6pool: range('2001:db8:410::80-2001:db8:410::ff', '2001:db8:410::/120') } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  const edited = await waitForConditions('bi-edit', { Conflict: ['True', 'Overlap'], Ready: ['False', 'LastGoodKept'] });
  await waitForEvent(SG_NS, 'ServiceGroup', edited, 'ConfigurationWarning', /^spec\.local\.v6pool: .*ServiceGroup bi-outer overlaps .*2001:db8:410::80-2001:db8:410::ff of ServiceGroup bi-edit.*The last good configuration stays in force/);

  // Existing addresses stay; new ones still come from the old range, not the new one.
  await create('edit-b', { group: 'bi-edit' });
  assert.deepEqual(await waitForAddress('edit-b'), ['2001:db8:420::1']);
  assert.deepEqual(await addressOf('edit-a'), ['2001:db8:420::']);
  await waitForConditions('bi-outer', { Conflict: ['False', 'NoConflict'], Ready: ['True', 'InUse'] });
  assert.deepEqual(await addressOf('outer-svc'), ['2001:db8:410::']);
  assert.deepEqual(await addressOf('good'), good);
});

test('a pool edit that leaves an allocated address outside: the address is kept and reported', async () => {
  const before = await create('shrink-a', { group: 'bi-shrink' });
  assert.deepEqual(await waitForAddress('shrink-a'), ['2001:db8:430::']);
  await custom.patchNamespacedCustomObject(
    { group: 'purelb.io', version: 'v2', namespace: SG_NS, plural: 'servicegroups', name: 'bi-shrink', body: { spec: { local: { v6pool: range('2001:db8:430::80-2001:db8:430::ff', '2001:db8:430::/120') } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  const status = await waitForConditions('bi-shrink', { Conflict: ['True', 'AddressOutsidePool'], Ready: ['True', 'InUse'] });
  assert.match(status.status?.conditions?.find((c) => c.type === 'Conflict')?.message ?? '', /2001:db8:430:: \(plb-badinput\/shrink-a\)/);
  await waitForEvent(NS, 'Service', before, 'ConfigurationWarning', /2001:db8:430:: of plb-badinput\/shrink-a is outside every ServiceGroup range; the address is kept/);

  await create('shrink-b', { group: 'bi-shrink' });
  assert.deepEqual(await waitForAddress('shrink-b'), ['2001:db8:430::80']);
  assert.deepEqual(await addressOf('shrink-a'), ['2001:db8:430::']);
  assert.deepEqual(await addressOf('good'), good);
});

test('after a restart the group that lost an overlap still loses, and no address moves', async () => {
  const held = await Promise.all(['good', 'outer-svc', 'edit-a', 'edit-b', 'shrink-a', 'shrink-b'].map(async (n) => [n, await addressOf(n)] as const));
  await allocator?.stop();
  const port = freePort();
  allocator = startTestAllocator({ id: `${ID}-again`, namespace: SG_NS, metricsPort: port, env: FAST_LEASE_ENV });
  await waitUntil('the restarted allocator is ready', 30_000, () => answers(port), 100);

  // Its last good version is gone with the old process, but bi-edit's status says it
  // lost to bi-outer: bi-outer keeps the overlapping range.
  await create('outer-after-restart', { group: 'bi-outer' });
  assert.deepEqual(await waitForAddress('outer-after-restart'), ['2001:db8:410::1']);
  await waitForConditions('bi-outer', { Conflict: ['False', 'NoConflict'], Ready: ['True', 'InUse'] });
  const edit = await group('bi-edit');
  assert.ok(edit.status?.conditions?.some((c) => c.type === 'Conflict' && c.status === 'True' && c.reason === 'Overlap'), JSON.stringify(edit.status));
  for (const [name, ips] of held) assert.deepEqual(await addressOf(name), ips, `${name} moved across a restart`);
});
