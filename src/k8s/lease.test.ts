import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeLease } from './lease.ts';
import type { Lease, LeaseApi } from './lease.ts';

/** A Lease store with the API server's answers: 404 when absent, 409 on a stale resourceVersion. */
function store(initial?: Lease) {
  let lease = initial;
  let version = 1;
  const calls: string[] = [];
  const fail = (code: number) => Object.assign(new Error(`HTTP ${code}`), { code });
  const api = {
    get: async () => {
      calls.push('read');
      if (!lease) throw fail(404);
      return structuredClone(lease);
    },
    create: async (_path: string, body: Lease) => {
      calls.push('create');
      lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(++version) } };
      return lease;
    },
    replace: async (_path: string, body: Lease) => {
      calls.push('replace');
      if (body.metadata?.resourceVersion !== lease?.metadata?.resourceVersion) throw fail(409);
      lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(++version) } };
      return lease;
    },
  } as unknown as LeaseApi;
  return { api, calls, get: () => lease, bump: () => lease && (lease.metadata = { ...lease.metadata, resourceVersion: String(++version) }) };
}

const mine = (current: Lease | undefined): Lease => ({ metadata: { name: 'l' }, spec: { ...current?.spec, holderIdentity: 'me' } });

test('creates a missing Lease, replaces an existing one with the version read', async () => {
  const s = store();
  assert.equal(await writeLease(s.api, 'ns', 'l', mine), true);
  assert.equal(await writeLease(s.api, 'ns', 'l', mine), true);
  assert.deepEqual(s.calls, ['read', 'create', 'read', 'replace']);
  assert.equal(s.get()?.spec?.holderIdentity, 'me');
});

test('writes nothing when the change declines', async () => {
  const s = store({ metadata: { name: 'l', resourceVersion: '1' }, spec: { holderIdentity: 'them' } });
  assert.equal(await writeLease(s.api, 'ns', 'l', () => undefined), false);
  assert.deepEqual(s.calls, ['read']);
});

test('a concurrent write in between makes the replace fail instead of overwriting it', async () => {
  const s = store({ metadata: { name: 'l', resourceVersion: '1' }, spec: { holderIdentity: 'them' } });
  await assert.rejects(
    writeLease(s.api, 'ns', 'l', (c) => {
      s.bump();
      return mine(c);
    }),
    /409/,
  );
  assert.equal(s.get()?.spec?.holderIdentity, 'them');
});

test('a hung API server is cut off after the timeout', async () => {
  const api = { get: () => new Promise(() => {}) } as unknown as LeaseApi;
  await assert.rejects(writeLease(api, 'ns', 'l', mine, 50), /no answer within 50 ms/);
});
