// What a Service asks of the allocator, decided against the configuration in force:
// table tests of decide() over resolveServiceGroups and the IPAM built from it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Service } from '@kubernetes/client-node';
import { poolsInForce, resolveServiceGroups } from '../api/configuration.ts';
import type { ServiceGroupObject } from '../api/configuration.ts';
import { IPAM } from '../ipam/ipam.ts';
import { DEFAULT_POLICY, adoption, decide, poolViewOf } from './request.ts';

const v4 = (pool: string, subnet: string) => ({ local: { v4pool: { pool, subnet, aggregation: 'default' } } });
const sg = (name: string, spec: unknown, inForce?: unknown): ServiceGroupObject => ({
  apiVersion: 'purelb.io/v2',
  kind: 'ServiceGroup',
  metadata: { name, namespace: 'purelb', generation: 2 },
  spec,
  ...(inForce === undefined ? {} : { status: { inForce } }),
});

const layer2 = v4('198.51.100.64-198.51.100.126', '198.51.100.64/26');
const GROUPS = [
  sg('default', v4('192.0.2.0/28', '192.0.2.0/24')),
  sg('layer2-ippool', layer2, { generation: 2, spec: layer2 }),
  // Edited to overlap layer2-ippool: refused, the generation-1 spec stays in force.
  sg('lan', v4('198.51.100.100-198.51.100.130', '198.51.100.0/24'), { generation: 1, spec: v4('198.51.100.180-198.51.100.185', '198.51.100.0/24') }),
  sg('dual', { local: { v4pool: { pool: '203.0.113.0/28', subnet: '203.0.113.0/24' }, v6pool: { pool: '2001:db8::/120', subnet: '2001:db8::/64' } } }),
  sg('fenced', { ...v4('203.0.113.64/28', '203.0.113.0/24'), namespaces: ['team-a'], enforceNamespaces: true }),
];
const conf = resolveServiceGroups(GROUPS);
const built = IPAM.build(poolsInForce(conf));
assert.ok(built.ok);
const view = poolViewOf(built.value, conf);

function svc(annotations: Record<string, string> = {}, spec: Partial<NonNullable<V1Service['spec']>> = {}, namespace = 'app', ingress: string[] = []): V1Service {
  return {
    metadata: { name: 's', namespace, annotations },
    spec: { type: 'LoadBalancer', ports: [{ port: 80, protocol: 'TCP' }], ...spec },
    ...(ingress.length > 0 ? { status: { loadBalancer: { ingress: ingress.map((ip) => ({ ip })) } } } : {}),
  };
}
/** A Service as MetalLB or OpenELB left it: an address in its status, none of our annotations. */
const given = (ingress: string[], annotations: Record<string, string> = {}, spec: Partial<NonNullable<V1Service['spec']>> = {}) => svc(annotations, spec, 'app', ingress);

type Want = { kind: 'allocate'; pool: string; families: string[]; addresses?: string[] } | { kind: 'invalid'; message: RegExp } | { kind: 'notOurs' };

const cases: Array<[string, V1Service, Want]> = [
  ['a ClusterIP Service is not ours', svc({}, { type: 'ClusterIP' }), { kind: 'notOurs' }],
  ['another loadBalancerClass is not ours', svc({}, { loadBalancerClass: 'example.com/lb' }), { kind: 'notOurs' }],
  ['no annotation: the default group', svc(), { kind: 'allocate', pool: 'default', families: ['IPv4'] }],
  ['the named group', svc({ 'purelb.io/service-group': 'layer2-ippool' }), { kind: 'allocate', pool: 'layer2-ippool', families: ['IPv4'] }],
  [
    'an address of the range in force of the refused group',
    svc({ 'purelb.io/addresses': '198.51.100.182' }),
    { kind: 'allocate', pool: 'lan', families: ['IPv4'], addresses: ['198.51.100.182'] },
  ],
  [
    "an address only the refused edit's range holds is in no pool",
    svc({ 'purelb.io/addresses': '198.51.100.130' }),
    { kind: 'invalid', message: /^purelb\.io\/addresses: 198\.51\.100\.130 is in no ServiceGroup's pool$/ },
  ],
  ['an address that is not one', svc({ 'purelb.io/addresses': 'banana' }), { kind: 'invalid', message: /"banana" is not an IP address/ }],
  ['a missing group', svc({ 'purelb.io/service-group': 'nope' }), { kind: 'invalid', message: /ServiceGroup nope does not exist or is not usable/ }],
  ['a fenced group outside its namespaces', svc({ 'purelb.io/service-group': 'fenced' }), { kind: 'invalid', message: /^purelb\.io\/service-group: ServiceGroup fenced does not serve namespace app/ }],
  ['a fenced group inside them', svc({ 'purelb.io/service-group': 'fenced' }, {}, 'team-a'), { kind: 'allocate', pool: 'fenced', families: ['IPv4'] }],
  [
    'RequireDualStack from a dual-stack group',
    svc({ 'purelb.io/service-group': 'dual' }, { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv6', 'IPv4'] }),
    { kind: 'allocate', pool: 'dual', families: ['IPv6', 'IPv4'] },
  ],
  [
    'RequireDualStack from a single-stack group',
    svc({ 'purelb.io/service-group': 'layer2-ippool' }, { ipFamilyPolicy: 'RequireDualStack' }),
    { kind: 'invalid', message: /has no IPv6 range/ },
  ],
  [
    'PreferDualStack degrades to what the group has',
    svc({ 'purelb.io/service-group': 'layer2-ippool' }, { ipFamilyPolicy: 'PreferDualStack' }),
    { kind: 'allocate', pool: 'layer2-ippool', families: ['IPv4'] },
  ],
  // MetalLB's and OpenELB's spellings, read as aliases of ours.
  ['metallb.io/address-pool names the group', svc({ 'metallb.io/address-pool': 'layer2-ippool' }), { kind: 'allocate', pool: 'layer2-ippool', families: ['IPv4'] }],
  ['metallb.universe.tf/address-pool names the group', svc({ 'metallb.universe.tf/address-pool': 'dual' }), { kind: 'allocate', pool: 'dual', families: ['IPv4'] }],
  ["OpenELB's eip annotation names the group", svc({ 'eip.openelb.kubesphere.io/v1alpha2': 'layer2-ippool' }), { kind: 'allocate', pool: 'layer2-ippool', families: ['IPv4'] }],
  ['ours wins over an alias', svc({ 'purelb.io/service-group': 'dual', 'metallb.io/address-pool': 'layer2-ippool' }), { kind: 'allocate', pool: 'dual', families: ['IPv4'] }],
  [
    'metallb.io/loadBalancerIPs requests addresses, one per family',
    svc({ 'metallb.io/loadBalancerIPs': '2001:db8::5, 203.0.113.5' }, { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] }),
    { kind: 'allocate', pool: 'dual', families: ['IPv4', 'IPv6'], addresses: ['2001:db8::5', '203.0.113.5'] },
  ],
  [
    'an alias names itself in an error',
    svc({ 'metallb.universe.tf/loadBalancerIPs': '198.51.100.130' }),
    { kind: 'invalid', message: /^metallb\.universe\.tf\/loadBalancerIPs: 198\.51\.100\.130 is in no ServiceGroup's pool$/ },
  ],
  ['an alias naming a missing pool', svc({ 'metallb.io/address-pool': 'gone' }), { kind: 'invalid', message: /^metallb\.io\/address-pool: ServiceGroup gone does not exist/ }],
  // Addresses another controller gave are kept when they lie in one of our pools.
  ['an address MetalLB gave, in a pool, is kept', given(['198.51.100.70']), { kind: 'allocate', pool: 'layer2-ippool', families: ['IPv4'], addresses: ['198.51.100.70'] }],
  [
    'a dual-stack pair given by another controller is kept',
    given(['203.0.113.9', '2001:db8::9'], {}, { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] }),
    { kind: 'allocate', pool: 'dual', families: ['IPv4', 'IPv6'], addresses: ['203.0.113.9', '2001:db8::9'] },
  ],
  ['an address given outside every pool is not kept: the default group allocates', given(['10.9.9.9']), { kind: 'allocate', pool: 'default', families: ['IPv4'] }],
  ['a given address in another group than the one named is not kept', given(['198.51.100.70'], { 'metallb.io/address-pool': 'dual' }), { kind: 'allocate', pool: 'dual', families: ['IPv4'] }],
  [
    'a requested address wins over the one shown',
    given(['198.51.100.70'], { 'purelb.io/addresses': '198.51.100.71' }),
    { kind: 'allocate', pool: 'layer2-ippool', families: ['IPv4'], addresses: ['198.51.100.71'] },
  ],
  ['an address of ours (branded) is not adopted: it is registered at start', given(['198.51.100.70'], { 'purelb.io/allocated-by': 'PureLB' }), { kind: 'allocate', pool: 'default', families: ['IPv4'] }],
];

for (const [name, service, want] of cases) {
  test(`decide: ${name}`, () => {
    const d = decide(service, view);
    assert.equal(d.kind, want.kind, JSON.stringify(d));
    if (d.kind === 'allocate' && want.kind === 'allocate') {
      assert.deepEqual([d.request.pool, d.request.families, d.request.addresses], [want.pool, want.families, want.addresses]);
    }
    if (d.kind === 'invalid' && want.kind === 'invalid') assert.match(d.message, want.message);
  });
}

test('decide: loadBalancerIP works with a deprecation warning naming the field', () => {
  const d = decide(svc({}, { loadBalancerIP: '192.0.2.5' }), view);
  assert.equal(d.kind, 'allocate');
  assert.match(d.warnings.join(), /spec\.loadBalancerIP is deprecated/);
});

test('decide: spellings that disagree give a warning naming both, and ours is used', () => {
  const d = decide(svc({ 'purelb.io/service-group': 'dual', 'metallb.io/address-pool': 'layer2-ippool', 'metallb.io/allow-shared-ip': 'k' }), view);
  assert.equal(d.kind, 'allocate');
  assert.deepEqual(d.warnings, ['purelb.io/service-group ("dual") and metallb.io/address-pool ("layer2-ippool") disagree: using purelb.io/service-group']);
  assert.equal(d.request.sharingKey, 'k');
});

test('decide: spellings that agree, in any order of a list, give no warning', () => {
  const d = decide(svc({ 'purelb.io/addresses': '198.51.100.70', 'metallb.universe.tf/loadBalancerIPs': ' 198.51.100.70 ' }), view);
  assert.equal(d.kind, 'allocate');
  assert.deepEqual(d.warnings, []);
});

test('decide: with aliases off, MetalLB annotations are not read', () => {
  const d = decide(svc({ 'metallb.io/address-pool': 'layer2-ippool', 'metallb.io/allow-shared-ip': 'k' }), view, { ...DEFAULT_POLICY, aliases: false });
  assert.equal(d.kind, 'allocate');
  assert.equal(d.request.pool, 'default');
  assert.equal(d.request.sharingKey, undefined);
});

test('decide: an adopted address is marked so the allocator says so; a requested one is not', () => {
  const adopted = decide(given(['198.51.100.70']), view);
  const asked = decide(svc({ 'purelb.io/addresses': '198.51.100.70' }), view);
  assert.ok(adopted.kind === 'allocate' && asked.kind === 'allocate');
  assert.equal(adopted.addressField, 'status.loadBalancer.ingress');
  assert.equal(adopted.adopted, true);
  assert.equal(asked.adopted, undefined);
});

test('adoption: what is registered before allocating, with the sharing key of an alias', () => {
  assert.deepEqual(adoption(given(['198.51.100.70'], { 'metallb.universe.tf/allow-shared-ip': 'web' }), view, DEFAULT_POLICY), {
    pool: 'layer2-ippool',
    addresses: ['198.51.100.70'],
    sharingKey: 'web',
  });
  assert.equal(adoption(given(['10.9.9.9']), view, DEFAULT_POLICY), undefined, 'outside every pool');
  assert.equal(adoption(given(['198.51.100.70'], { 'purelb.io/addresses': '198.51.100.71' }), view, DEFAULT_POLICY), undefined, 'asks for another');
  assert.equal(adoption(given(['198.51.100.70'], {}, { loadBalancerClass: 'metallb.io/metallb' }), view, DEFAULT_POLICY), undefined, 'not ours');
  assert.equal(adoption(given(['198.51.100.70', '203.0.113.9']), view, DEFAULT_POLICY), undefined, 'in two groups');
});

test('the cache keeps the aliases: a slimmed Service decides as the full one', async () => {
  const { slimService } = await import('../api/slim.ts');
  const full = svc({ 'metallb.universe.tf/address-pool': 'layer2-ippool', 'eip.openelb.kubesphere.io/v1alpha2': 'layer2-ippool', 'metallb.io/allow-shared-ip': 'k', 'example.com/other': 'x' });
  const slim = slimService(full);
  assert.deepEqual(Object.keys(slim.metadata?.annotations ?? {}).sort(), ['eip.openelb.kubesphere.io/v1alpha2', 'metallb.io/allow-shared-ip', 'metallb.universe.tf/address-pool']);
  assert.deepEqual(decide(slim, view), decide(full, view));
});
