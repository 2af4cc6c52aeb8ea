import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Service } from '@kubernetes/client-node';
import { addressRows, announcers, statusReport, usage } from './status.ts';

const svc = (name: string, ips: string[], annotations: Record<string, string>): V1Service => ({
  metadata: { name, namespace: 'web', annotations },
  spec: { type: 'LoadBalancer' },
  status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) } },
});

test('usage: used/size with a share, exact for IPv6 pools beyond 2^53', () => {
  assert.equal(usage(4, 59), '4/63 (6.3%)');
  assert.equal(usage(0, 0), '-');
  assert.equal(usage(undefined, undefined), '-');
  assert.equal(usage(1, '18446744073709551615'), '1/18446744073709551616 (0.0%)');
});

test('announcers: space-separated node,interface entries', () => {
  assert.deepEqual(announcers('n1,kube-lb0 n2,kube-lb0'), ['n1 (kube-lb0)', 'n2 (kube-lb0)']);
  assert.deepEqual(announcers(undefined), []);
});

test('one row per address of our Services, each with the announcers of its family', () => {
  const services = [
    svc('dual', ['198.51.100.64', '2001:db8::64'], {
      'purelb.io/allocated-by': 'PureLB',
      'purelb.io/allocated-from': 'dual',
      'purelb.io/announcing-IPv4': 'n2,eth0',
      'purelb.io/announcing-IPv6': 'n1,eth0',
    }),
    svc('pending', ['198.51.100.65'], { 'purelb.io/allocated-by': 'PureLB', 'purelb.io/allocated-from': 'l2' }),
    svc('foreign', ['192.0.2.9'], { 'purelb.io/allocated-by': 'metallb' }),
  ];
  assert.deepEqual(addressRows(services), [
    ['web/dual', 'dual', '198.51.100.64', 'n2 (eth0)'],
    ['web/dual', 'dual', '2001:db8::64', 'n1 (eth0)'],
    ['web/pending', 'l2', '198.51.100.65', '-'],
  ]);
});

test('the report says so when there is nothing to show', () => {
  assert.equal(statusReport([], [], 'purelb'), 'No ServiceGroups in namespace purelb.\n\nNo Service has an address from purelb-ts.\n');
});
