import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeAnnouncing, ownedEntries } from './announcing.ts';
import type { ServiceView, Snapshot } from './desired.ts';

const base = { node: 'n2', dummyInterface: 'kube-lb0' };

test('a node replaces only its own local entry', () => {
  assert.equal(mergeAnnouncing('n1,eth0', { ...base, local: ['n2,eth0'], nonlocal: undefined }), 'n1,eth0 n2,eth0');
  assert.equal(mergeAnnouncing('n1,eth0 n2,eth0', { ...base, local: [], nonlocal: undefined }), 'n1,eth0');
  assert.equal(mergeAnnouncing(undefined, { ...base, local: [], nonlocal: undefined }), '');
});

test('the writer owns every dummy-interface entry; others leave them alone', () => {
  const current = 'n1,kube-lb0 n2,kube-lb0 n3,kube-lb0';
  assert.equal(mergeAnnouncing(current, { ...base, local: [], nonlocal: ['n2,kube-lb0', 'n3,kube-lb0'] }), 'n2,kube-lb0 n3,kube-lb0');
  assert.equal(mergeAnnouncing(current, { ...base, local: [], nonlocal: undefined }), current);
});

test('local and routed entries of one family live side by side', () => {
  assert.equal(mergeAnnouncing('n1,eth0', { ...base, local: [], nonlocal: ['n2,kube-lb0'] }), 'n1,eth0 n2,kube-lb0');
});

describe('ownedEntries', () => {
  const routed: ServiceView = { key: 'app/bgp', ips: ['203.0.113.7'], group: 'routed', local: false, endpointNodes: new Set() };
  const snapshotOf = (node: string): Snapshot => ({
    self: { node, localInterface: { name: 'eth0', subnets: ['198.51.100.0/24'] }, dummyInterface: 'kube-lb0', eligible: true },
    members: ['n1', 'n2', 'n3'].map((n) => ({ node: n, subnets: ['198.51.100.0/24'] })),
    services: [routed],
    groups: new Map(),
  });

  it('one elected node writes every dummy-interface entry; the others leave them alone', () => {
    const owned = ['n1', 'n2', 'n3'].map((n) => ownedEntries(snapshotOf(n), routed.key, routed, [], 'kube-lb0', () => false).IPv4.nonlocal);
    const writers = owned.filter((o) => o !== undefined);
    assert.deepEqual(writers, [['n1,kube-lb0', 'n2,kube-lb0', 'n3,kube-lb0']]);
  });

  it('a Service no longer announced: its last writer clears the entries, nobody else touches them', () => {
    assert.deepEqual(ownedEntries(snapshotOf('n2'), routed.key, undefined, [], 'kube-lb0', (f) => f === 'IPv4').IPv4.nonlocal, []);
    assert.equal(ownedEntries(snapshotOf('n2'), routed.key, undefined, [], 'kube-lb0', () => false).IPv4.nonlocal, undefined);
  });
});
