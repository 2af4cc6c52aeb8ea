import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveServiceGroups } from '../api/configuration.ts';
import type { ServiceGroupObject } from '../api/configuration.ts';
import type { PoolStats } from '../ipam/pool.ts';
import { count, groupStatus } from './status.ts';

const spec = { local: { v4pool: { pool: '192.0.2.0/28', subnet: '192.0.2.0/24' } } };
const obj = (status?: unknown): ServiceGroupObject => ({ apiVersion: 'purelb.io/v2', kind: 'ServiceGroup', metadata: { name: 'g', namespace: 'purelb', generation: 4 }, spec, ...(status ? { status } : {}) });
const T0 = new Date('2026-03-01T10:00:00.123Z');
const stats = { name: 'g', IPv4: { size: 16n, inUse: 3n, available: 13n }, IPv6: { size: 2n ** 64n, inUse: 0n, available: 2n ** 64n } } as unknown as PoolStats;

test('an accepted group: Ready InUse, the record of what is in force, exact counts', () => {
  const state = resolveServiceGroups([obj()]).groups.get('g')!;
  const s = groupStatus(obj(), state, stats, [], T0);
  assert.deepEqual(s.inForce, { generation: 4, spec });
  assert.deepEqual(s.conditions?.map((c) => [c.type, c.status, c.reason, c.lastTransitionTime, c.observedGeneration]), [
    ['Ready', 'True', 'InUse', '2026-03-01T10:00:00Z', 4],
    ['Conflict', 'False', 'NoConflict', '2026-03-01T10:00:00Z', 4],
  ]);
  assert.deepEqual([s.allocatedIPv4, s.availableIPv4, s.availableIPv6], [3, 13, '18446744073709551616']);
});

test('a condition keeps its transition time while its status stays; addresses outside the ranges are a Conflict', () => {
  const state = resolveServiceGroups([obj()]).groups.get('g')!;
  const first = groupStatus(obj(), state, stats, [], T0);
  const later = groupStatus(obj(first), state, stats, [{ service: 'a/s', address: '192.0.2.200' }], new Date('2026-03-01T11:00:00Z'));
  const ready = later.conditions?.find((c) => c.type === 'Ready');
  const conflict = later.conditions?.find((c) => c.type === 'Conflict');
  assert.equal(ready?.lastTransitionTime, '2026-03-01T10:00:00Z');
  assert.deepEqual([conflict?.status, conflict?.reason, conflict?.lastTransitionTime], ['True', 'AddressOutsidePool', '2026-03-01T11:00:00Z']);
  assert.match(conflict?.message ?? '', /192\.0\.2\.200 \(a\/s\)/);
});

test('a group never accepted: Ready Invalid naming the field, no record', () => {
  const bad = { ...obj(), spec: { local: { v4pool: { pool: '192.0.2.9-192.0.2.1', subnet: '192.0.2.0/24' } } } };
  const state = resolveServiceGroups([bad]).groups.get('g')!;
  const s = groupStatus(bad, state, undefined, [], T0);
  assert.equal(s.inForce, undefined);
  const ready = s.conditions?.find((c) => c.type === 'Ready');
  assert.deepEqual([ready?.status, ready?.reason], ['False', 'Invalid']);
  assert.match(ready?.message ?? '', /^spec\.local\.v4pool/);
});

test('counts are numbers up to 2^53 - 1 and decimal strings above', () => {
  assert.equal(count(2n ** 53n - 1n), Number.MAX_SAFE_INTEGER);
  assert.equal(count(2n ** 53n), '9007199254740992');
});
