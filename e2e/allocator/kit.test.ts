// The chaos test's checker must itself be able to fail: it is fed hand-made Service
// versions here (no lab needed).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Service } from '@kubernetes/client-node';
import { AddressLedger } from './kit.ts';

function version(uid: string, ips: string[], sharingKey?: string): V1Service {
  return {
    metadata: { uid, name: uid, namespace: 'ns', resourceVersion: '1', annotations: sharingKey ? { 'purelb.io/allow-shared-ip': sharingKey } : {} },
    status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) } },
  };
}

test('two live Services on one address without a shared key is a violation', () => {
  const ledger = new AddressLedger();
  ledger.observe('add', version('a', ['2001:db8::1']));
  ledger.observe('add', version('b', ['2001:db8::1']));
  assert.equal(ledger.violations.length, 1);
  assert.match(ledger.violations[0] ?? '', /2001:db8::1 held by ns\/b and ns\/a/);
});

test('equal non-empty sharing keys may share; different keys may not', () => {
  const ledger = new AddressLedger();
  ledger.observe('add', version('a', ['2001:db8::1'], 'k'));
  ledger.observe('add', version('b', ['2001:db8::1'], 'k'));
  assert.deepEqual(ledger.violations, []);
  ledger.observe('add', version('c', ['2001:db8::1'], 'other'));
  assert.equal(ledger.violations.length, 2);
});

test('an address handed on after a delete is fine; a changed or removed address is not', () => {
  const ledger = new AddressLedger();
  ledger.observe('add', version('a', []));
  ledger.observe('update', version('a', ['2001:db8::1']));
  ledger.observe('delete', version('a', ['2001:db8::1']));
  ledger.observe('add', version('b', ['2001:db8::1']));
  assert.deepEqual(ledger.violations, []);
  ledger.observe('update', version('b', ['2001:db8::2']));
  ledger.observe('update', version('b', []));
  assert.equal(ledger.violations.length, 2);
  assert.equal(ledger.versions, 6);
  assert.deepEqual(ledger.unallocated(), ['ns/b']);
});
