// What a Service asks of the allocator, decided against the configuration in force:
// table tests of decide() over resolveServiceGroups and the IPAM built from it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Service } from '@kubernetes/client-node';
import { poolsInForce, resolveServiceGroups } from '../api/configuration.ts';
import type { ServiceGroupObject } from '../api/configuration.ts';
import { IPAM } from '../ipam/ipam.ts';
import { decide, poolViewOf } from './request.ts';

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

function svc(annotations: Record<string, string> = {}, spec: Partial<NonNullable<V1Service['spec']>> = {}, namespace = 'app'): V1Service {
  return { metadata: { name: 's', namespace, annotations }, spec: { type: 'LoadBalancer', ports: [{ port: 80, protocol: 'TCP' }], ...spec } };
}

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
  ['a fenced group outside its namespaces', svc({ 'purelb.io/service-group': 'fenced' }), { kind: 'invalid', message: /does not serve namespace app/ }],
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
