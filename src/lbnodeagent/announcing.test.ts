import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeAnnouncing } from './announcing.ts';

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
