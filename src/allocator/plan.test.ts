import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Service } from '@kubernetes/client-node';
import { planServiceWrites } from './plan.ts';

const BRANDED = { 'purelb.io/allocated-by': 'PureLB', 'purelb.io/allocated-from': 'dual' };
function svc(annotations: Record<string, string>, ingress: Array<{ ip: string; ipMode?: string }>, ipFamilies?: string[]): V1Service {
  return { metadata: { name: 's', namespace: 'a', annotations }, spec: { type: 'LoadBalancer', ...(ipFamilies ? { ipFamilies } : {}) }, status: { loadBalancer: { ingress } } };
}
const dual = { pool: 'dual', addresses: [{ family: 'IPv4', address: '192.0.2.1' }, { family: 'IPv6', address: '2001:db8::1' }] };

const cases: Array<[string, V1Service, { meta: boolean; status: boolean; ips: string[]; released: string[] }]> = [
  ['a new Service: brand and ingress', svc({}, []), { meta: true, status: true, ips: ['192.0.2.1', '2001:db8::1'], released: [] }],
  ['up to date: nothing', svc(BRANDED, [{ ip: '192.0.2.1', ipMode: 'VIP' }, { ip: '2001:db8::1', ipMode: 'VIP' }]), { meta: false, status: false, ips: ['192.0.2.1', '2001:db8::1'], released: [] }],
  ['in the family order of the Service', svc(BRANDED, [{ ip: '2001:db8::1', ipMode: 'VIP' }, { ip: '192.0.2.1', ipMode: 'VIP' }], ['IPv6', 'IPv4']), { meta: false, status: false, ips: ['2001:db8::1', '192.0.2.1'], released: [] }],
  ['an ingress without ipMode VIP is rewritten', svc(BRANDED, [{ ip: '192.0.2.1' }, { ip: '2001:db8::1', ipMode: 'VIP' }]), { meta: false, status: true, ips: ['192.0.2.1', '2001:db8::1'], released: [] }],
  ['moved addresses are released', svc(BRANDED, [{ ip: '192.0.2.9', ipMode: 'VIP' }]), { meta: false, status: true, ips: ['192.0.2.1', '2001:db8::1'], released: ['192.0.2.9'] }],
  ['another group: the annotation is rewritten', svc({ ...BRANDED, 'purelb.io/allocated-from': 'old' }, [{ ip: '192.0.2.1', ipMode: 'VIP' }, { ip: '2001:db8::1', ipMode: 'VIP' }]), { meta: true, status: false, ips: ['192.0.2.1', '2001:db8::1'], released: [] }],
];

for (const [name, service, want] of cases) {
  test(`service writes: ${name}`, () => {
    const w = planServiceWrites(service, dual);
    assert.deepEqual({ meta: w.meta, status: w.status, ips: w.ips, released: w.released }, want);
    assert.ok(w.ingress.every((i) => i.ipMode === 'VIP'));
  });
}
