// Coming from MetalLB or OpenELB (issue #13), against the lab's API server: their
// configurations, exactly as in examples/migration, migrated by `kubectl purelb migrate
// --apply`; Services annotated for them get the address they would have given, sharing
// and port conflicts behave as in MetalLB; addresses they gave are kept through the
// takeover, also when the groups arrive after the allocator started; bad input is
// refused with the field named, and nothing is half-applied.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { CoreV1Event, V1Service } from '@kubernetes/client-node';
import { kubeconfigPath } from '../lab/controlplane.ts';
import { REPO_ROOT, run } from '../lab/exec.ts';
import { loadKubeConfig } from '../../src/k8s/kubeconfig.ts';
import { FAST_LEASE_ENV, freePort, kubectl, waitUntil } from '../lab/testkit.ts';
import { answers, deleteServices, freshNamespaces, ingressOf, lbService, startTestAllocator, waitForEventBy } from './kit.ts';
import type { AllocatorProcess } from './kit.ts';

const NS = 'plb-migrate';
const SG_NS = 'plb-migrate-sg';
const ID = `migrate-${process.pid}`;
const IDENTITY = `allocator-${ID}`;
const CLI = path.join(REPO_ROOT, 'bin', 'kubectl-purelb');
const EXAMPLES = path.join(REPO_ROOT, 'examples', 'migration');

const kc = loadKubeConfig(kubeconfigPath('admin'));
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
let allocator: AllocatorProcess | undefined;
let metricsPort = 0;

/** `kubectl purelb migrate` against the lab. */
async function migrate(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run([CLI, 'migrate', ...args, '-n', SG_NS, '--kubeconfig', kubeconfigPath('admin')], { check: false, timeoutMs: 60_000, ...(input === undefined ? {} : { input }) });
}

async function groupNames(): Promise<string[]> {
  const list = (await custom.listNamespacedCustomObject({ group: 'purelb.io', version: 'v2', namespace: SG_NS, plural: 'servicegroups' })) as { items: Array<{ metadata: { name: string } }> };
  return list.items.map((g) => g.metadata.name).sort();
}

async function startAllocator(): Promise<void> {
  metricsPort = freePort();
  // The migration's warning says which group unannotated Services get: set as it says.
  allocator = startTestAllocator({ id: ID, namespace: SG_NS, metricsPort, env: { ...FAST_LEASE_ENV, PURELB_DEFAULT_GROUP: 'ngx-ip-pool' } });
  await waitUntil('the allocator leads', 30_000, () => answers(metricsPort), 100);
}

async function stopAllocator(): Promise<void> {
  await allocator?.stop();
  allocator = undefined;
}

/** A classless IPv4 LoadBalancer (as MetalLB users have them) with these annotations. */
function service(name: string, annotations: Record<string, string> = {}, ports: number[] = [80]): V1Service {
  const svc = lbService(NS, name, { family: 'IPv4', loadBalancerClass: null, ports: ports.map((port) => ({ port })) });
  svc.metadata = { ...svc.metadata, annotations };
  return svc;
}

async function create(name: string, annotations: Record<string, string> = {}, ports: number[] = [80]): Promise<V1Service> {
  return core.createNamespacedService({ namespace: NS, body: service(name, annotations, ports) });
}

/** What MetalLB's controller leaves on a Service: the address in its status, nothing of ours. */
async function givenByMetalLB(name: string, ip: string, annotations: Record<string, string> = {}): Promise<V1Service> {
  await create(name, annotations);
  return core.patchNamespacedServiceStatus({ name, namespace: NS, body: { status: { loadBalancer: { ingress: [{ ip, ipMode: 'VIP' }] } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
}

async function addressOf(name: string): Promise<string[]> {
  return ingressOf(await core.readNamespacedService({ name, namespace: NS }));
}

async function waitForAddress(name: string, want?: string): Promise<string[]> {
  let last: string[] = [];
  await waitUntil(`${name} has ${want ?? 'an address'}`, 20_000, async () => {
    last = await addressOf(name);
    const branded = (await core.readNamespacedService({ name, namespace: NS })).metadata?.annotations?.['purelb.io/allocated-by'] === 'PureLB';
    return branded && last.length > 0 && (want === undefined || last.join() === want);
  }, 100).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; it shows ${JSON.stringify(last)}`);
  });
  return last;
}

const waitForEvent = (obj: V1Service, type: 'Normal' | 'Warning', reason: string, message: RegExp): Promise<CoreV1Event> => waitForEventBy(core, IDENTITY, NS, 'Service', obj, type, reason, message);

before(async () => {
  await freshNamespaces(core, [NS], SG_NS);
  await kubectl(['delete', 'lbnodeagents', '--all', '-n', SG_NS], { check: false });
});

after(async () => {
  await stopAllocator();
  await deleteServices(core, NS, 60_000).catch(() => undefined);
  await kubectl(['delete', 'servicegroups,lbnodeagents', '--all', '-n', SG_NS], { check: false });
});

test('each example converts, and is accepted at admission (dry run), with the warnings named', async () => {
  for (const [file, groups, warning] of [
    ['metallb-configmap.yaml', ['bgp-routed', 'my-ip-space', 'ngx-ip-pool'], /peers\[0\]: not converted/],
    ['metallb-crds.yaml', ['first-pool', 'public', 'team-a'], /spec\.serviceAllocation\.namespaceSelectors: not converted/],
    ['openelb-eip.yaml', ['eip-bgp-pool', 'eip-sample-pool', 'eip-vip-pool'], /spec\.namespaceSelector: not converted/],
  ] as const) {
    const r = await migrate([path.join(EXAMPLES, file)]);
    assert.equal(r.code, 0, `${file}: ${r.stderr}`);
    assert.match(r.stderr, warning, file);
    const names = [...r.stdout.matchAll(/^kind: ServiceGroup\nmetadata:\n {2}name: (\S+)/gm)].map((m) => m[1]).sort();
    assert.deepEqual(names, groups, file);
  }
  assert.deepEqual(await groupNames(), [], 'a dry run creates nothing');
});

test('bad input: the field is named, the exit code is 1, and nothing is created', async () => {
  const configMap = (config: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: metallb-system, name: config}\ndata:\n  config: |\n${config.replace(/^/gm, '    ')}\n`;
  const cases: Array<[string, string, RegExp]> = [
    ['malformed YAML in the ConfigMap', configMap('address-pools:\n- name: a\n  addresses: [10.1.0.1-10.1.0.5\n'), /ConfigMap metallb-system\/config: data\.config: not valid YAML/],
    [
      'an unknown protocol',
      configMap('address-pools:\n- name: a\n  protocol: layer2\n  addresses: [10.1.0.1-10.1.0.5]\n- name: b\n  protocol: ospf\n  addresses: [10.1.1.0/28]'),
      /address-pools\[1\]\.protocol: unknown protocol "ospf"/,
    ],
    [
      'overlapping pools',
      configMap('address-pools:\n- name: a\n  protocol: layer2\n  addresses: [10.1.0.0/24]\n- name: b\n  protocol: layer2\n  addresses: [10.1.0.100-10.1.0.110]'),
      /overlap/i,
    ],
    ['an address that is not one', configMap('address-pools:\n- name: a\n  protocol: layer2\n  addresses: [10.1.0.1-banana]'), /address-pools\[0\]\.addresses\[0\]/],
  ];
  for (const [name, manifest, message] of cases) {
    const r = await migrate(['-', '--apply'], manifest);
    assert.equal(r.code, 1, `${name}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message, name);
    assert.deepEqual(await groupNames(), [], `${name}: nothing created`);
  }
});

test('the MetalLB ConfigMap, migrated and applied: Services get the addresses MetalLB would give, sharing as in MetalLB', async () => {
  const r = await migrate([path.join(EXAMPLES, 'metallb-configmap.yaml'), '--apply']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await groupNames(), ['bgp-routed', 'my-ip-space', 'ngx-ip-pool']);
  await startAllocator();

  await create('plain');
  assert.deepEqual(await waitForAddress('plain'), ['10.1.3.220'], 'no annotation: the first address of the auto-assign pool');
  await create('named', { 'metallb.universe.tf/address-pool': 'my-ip-space' });
  assert.deepEqual(await waitForAddress('named'), ['192.168.1.240']);
  await create('routed', { 'metallb.io/address-pool': 'bgp-routed' });
  assert.deepEqual(await waitForAddress('routed'), ['198.51.100.1'], 'avoid-buggy-ips: not the .0');
  await create('asked', { 'metallb.universe.tf/loadBalancerIPs': '192.168.144.7' });
  assert.deepEqual(await waitForAddress('asked'), ['192.168.144.7']);

  // Sharing: the same key and different ports share; the same port does not.
  const shared = { 'metallb.universe.tf/allow-shared-ip': 'web', 'metallb.universe.tf/loadBalancerIPs': '10.1.3.224' };
  await create('web-http', shared, [80]);
  await create('web-https', shared, [443]);
  assert.deepEqual(await waitForAddress('web-http'), ['10.1.3.224']);
  assert.deepEqual(await waitForAddress('web-https'), ['10.1.3.224']);
  const clash = await create('web-clash', shared, [80]);
  await waitForEvent(clash, 'Warning', 'AllocationFailed', /^metallb\.universe\.tf\/allow-shared-ip: .*80/);
  const other = await create('web-otherkey', { ...shared, 'metallb.universe.tf/allow-shared-ip': 'api' }, [8080]);
  await waitForEvent(other, 'Warning', 'AllocationFailed', /metallb\.universe\.tf\/(allow-shared-ip|loadBalancerIPs)/);

  // A pool that does not exist, and two spellings that disagree.
  const missing = await create('missing', { 'metallb.universe.tf/address-pool': 'nope' });
  await waitForEvent(missing, 'Warning', 'AllocationFailed', /^metallb\.universe\.tf\/address-pool: ServiceGroup nope does not exist/);
  const both = await create('both', { 'purelb.io/service-group': 'ngx-ip-pool', 'metallb.io/address-pool': 'my-ip-space' });
  await waitForEvent(both, 'Warning', 'ConfigurationWarning', /purelb\.io\/service-group \("ngx-ip-pool"\) and metallb\.io\/address-pool \("my-ip-space"\) disagree/);
  assert.match((await waitForAddress('both'))[0] ?? '', /^10\.1\.3\.22[0-4]$/);

  for (const name of ['web-clash', 'web-otherkey', 'missing']) assert.deepEqual(await addressOf(name), [], `${name} has no address`);

  // Applying the same file again changes nothing: the names are taken.
  const again = await migrate([path.join(EXAMPLES, 'metallb-configmap.yaml'), '--apply']);
  assert.equal(again.code, 1, again.stdout);
  assert.match(again.stderr, /ngx-ip-pool/);
});

test('takeover: addresses MetalLB gave are kept, also when the groups arrive after the allocator, and no other Service takes them first', async () => {
  await stopAllocator();
  await deleteServices(core, NS, 60_000);
  await kubectl(['delete', 'servicegroups,lbnodeagents', '--all', '-n', SG_NS]);
  // The allocator runs before the groups exist (allocator-only install beside MetalLB).
  await startAllocator();
  const kept = await givenByMetalLB('kept', '10.1.3.220');
  const keptNamed = await givenByMetalLB('kept-named', '192.168.1.249', { 'metallb.universe.tf/address-pool': 'my-ip-space' });
  const outside = await givenByMetalLB('outside', '10.9.9.9');
  const fresh = await create('fresh');
  await waitForEvent(fresh, 'Warning', 'AllocationFailed', /default ServiceGroup ngx-ip-pool does not exist/);
  assert.deepEqual(await addressOf('kept'), ['10.1.3.220'], 'nothing written while no group holds the address');

  const r = await migrate([path.join(EXAMPLES, 'metallb-configmap.yaml'), '--apply']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await waitForAddress('kept'), ['10.1.3.220']);
  await waitForEvent(kept, 'Normal', 'AddressAdopted', /Kept 10\.1\.3\.220, given by another controller, in pool ngx-ip-pool/);
  assert.deepEqual(await waitForAddress('kept-named'), ['192.168.1.249']);
  await waitForEvent(keptNamed, 'Normal', 'AddressAdopted', /my-ip-space/);
  const freshAddress = await waitForAddress('fresh');
  assert.notDeepEqual(freshAddress, ['10.1.3.220'], 'the Service waiting for the default group did not take the kept address');
  assert.match(freshAddress[0] ?? '', /^10\.1\.3\.22[1-4]$/);
  const outsideAddress = await waitForAddress('outside');
  assert.match(outsideAddress[0] ?? '', /^10\.1\.3\.22[1-4]$/, 'an address outside every pool is replaced');
  void outside;

  // A restart of the allocator: everything is ours now, and stays. A Service MetalLB
  // left while the allocator was down is kept from the start, before any allocation.
  await stopAllocator();
  const late = await givenByMetalLB('late', '10.1.3.224');
  const lateFresh = await create('late-fresh');
  await startAllocator();
  assert.deepEqual(await waitForAddress('late'), ['10.1.3.224']);
  await waitForEvent(late, 'Normal', 'AddressAdopted', /10\.1\.3\.224/);
  const taken = new Set([...(await addressOf('kept')), ...freshAddress, ...outsideAddress, '10.1.3.224']);
  const lateFreshAddress = await waitForAddress('late-fresh');
  assert.ok(!taken.has(lateFreshAddress[0] ?? ''), `late-fresh got ${lateFreshAddress}, which another Service holds`);
  void lateFresh;
  assert.deepEqual(await addressOf('kept'), ['10.1.3.220']);
  assert.deepEqual(await addressOf('kept-named'), ['192.168.1.249']);
});

test('the MetalLB CRDs and the OpenELB Eips, migrated and applied: Services annotated for them get addresses of their pools', async () => {
  await stopAllocator();
  await deleteServices(core, NS, 60_000);
  await kubectl(['delete', 'servicegroups,lbnodeagents', '--all', '-n', SG_NS]);
  for (const file of ['metallb-crds.yaml', 'openelb-eip.yaml']) {
    const r = await migrate([path.join(EXAMPLES, file), '--apply']);
    assert.equal(r.code, 0, `${file}: ${r.stderr}`);
    // Both make an LBNodeAgent "default" for their interface; the second would be refused as existing.
    await kubectl(['delete', 'lbnodeagents', '--all', '-n', SG_NS]);
  }
  assert.deepEqual(await groupNames(), ['eip-bgp-pool', 'eip-sample-pool', 'eip-vip-pool', 'first-pool', 'public', 'team-a']);
  await startAllocator();

  await create('crd-first', { 'metallb.io/address-pool': 'first-pool' });
  assert.match((await waitForAddress('crd-first'))[0] ?? '', /^192\.168\.(10\.\d{1,3}|9\.[1-5])$/, 'an address of first-pool');
  await create('crd-public', { 'metallb.universe.tf/address-pool': 'public' });
  assert.deepEqual(await waitForAddress('crd-public'), ['203.0.113.1'], 'avoidBuggyIPs: not the .0');
  await create('crd-asked', { 'metallb.io/loadBalancerIPs': '192.168.9.3' });
  assert.deepEqual(await waitForAddress('crd-asked'), ['192.168.9.3']);
  // team-a serves only its namespace, as MetalLB's serviceAllocation.namespaces does.
  const foreign = await create('crd-team-a', { 'metallb.io/address-pool': 'team-a' });
  await waitForEvent(foreign, 'Warning', 'AllocationFailed', /^metallb\.io\/address-pool: .*team-a/);
  assert.deepEqual(await addressOf('crd-team-a'), [], 'no address of a pool for another namespace');

  await create('eip-bgp', { 'eip.openelb.kubesphere.io/v1alpha2': 'eip-bgp-pool' });
  assert.deepEqual(await waitForAddress('eip-bgp'), ['172.22.0.2']);
  await create('eip-vip', { 'eip.openelb.kubesphere.io/v1alpha2': 'eip-vip-pool' });
  assert.deepEqual(await waitForAddress('eip-vip'), ['172.31.73.130']);
  await create('eip-sample', { 'eip.openelb.kubesphere.io/v1alpha2': 'eip-sample-pool' });
  assert.deepEqual(await waitForAddress('eip-sample'), ['192.168.0.91'], 'an Eip with namespaces still serves a Service that names it (OpenELB does)');
  const missing = await create('eip-missing', { 'eip.openelb.kubesphere.io/v1alpha2': 'eip-nope' });
  await waitForEvent(missing, 'Warning', 'AllocationFailed', /^eip\.openelb\.kubesphere\.io\/v1alpha2: ServiceGroup eip-nope does not exist/);
});
