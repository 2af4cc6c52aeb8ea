// The informer and the components' own watch (src/k8s/api.ts) against the lab's real
// API server: events arrive, a watch stays healthy for more than two minutes (client-node
// 2.0.0 aborted healthy watches after 30 s), and a quiet period does not lose later events.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { Informer } from '../../src/k8s/informer.ts';
import type { InformerEvent } from '../../src/k8s/informer.ts';
import { Api } from '../../src/k8s/api.ts';
import { connection, kubeConfig } from '../lab/kube.ts';
import { ensureNamespace, waitUntil } from '../lab/testkit.ts';

const NS = 'plb-test-informer';
const kc = kubeConfig();
const conn = connection();
const core = kc.makeApiClient(CoreV1Api);

before(async () => {
  await ensureNamespace(NS);
});

after(async () => {
  await core.deleteCollectionNamespacedConfigMap({ namespace: NS });
});

function cm(name: string, value: string): V1ConfigMap {
  return { metadata: { name, namespace: NS }, data: { value } };
}

test('informer sees add/update/delete and keeps delivering across a quiet period > 2 min; a raw watch stays open for > 2 min', async () => {
  const events: Array<InformerEvent<V1ConfigMap>> = [];
  const informer = new Informer<V1ConfigMap>(conn, {
    name: 'configmaps',
    path: `/api/v1/namespaces/${NS}/configmaps`,
  });
  informer.on((e) => events.push(e));

  // A raw watch with traffic every 10 s must not be ended by the client.
  let rawDone: unknown = 'open';
  let rawEvents = 0;
  const rawAbort = new AbortController();
  new Api(conn).watch(`/api/v1/namespaces/${NS}/configmaps`, { fieldSelector: 'metadata.name=ticker' }, () => rawEvents++, { signal: rawAbort.signal }).then(
    () => (rawDone = rawAbort.signal.aborted ? 'open' : 'closed cleanly'),
    (err: unknown) => (rawDone = err),
  );
  try {
    await informer.start();
    assert.ok(informer.hasSynced());
    await core.createNamespacedConfigMap({ namespace: NS, body: cm('first', '1') });
    await waitUntil('informer sees the first add', 5000, () => events.some((e) => e.type === 'add' && e.obj.metadata?.name === 'first'));

    const t0 = Date.now();
    await core.createNamespacedConfigMap({ namespace: NS, body: cm('ticker', '0') });
    for (let i = 1; Date.now() - t0 < 130_000 && i < 20; i++) {
      await sleep(10_000);
      await core.replaceNamespacedConfigMap({ name: 'ticker', namespace: NS, body: cm('ticker', String(i)) });
    }
    assert.equal(rawDone, 'open', `the raw watch ended after ${Math.round((Date.now() - t0) / 1000)} s: ${String(rawDone)}`);
    assert.ok(rawEvents >= 13, `raw watch delivered only ${rawEvents} events in 130 s`);

    await core.replaceNamespacedConfigMap({ name: 'first', namespace: NS, body: cm('first', '2') });
    await core.deleteNamespacedConfigMap({ name: 'first', namespace: NS });
    await waitUntil('informer sees update and delete after the long watch', 5000, () =>
      events.some((e) => e.type === 'update' && e.obj.data?.value === '2') && events.some((e) => e.type === 'delete' && e.obj.metadata?.name === 'first'),
    );
    assert.equal(informer.get(`${NS}/first`), undefined);
    assert.equal(informer.get(`${NS}/ticker`)?.data?.value !== undefined, true);
  } finally {
    rawAbort.abort();
    await informer.stop();
  }
});

test('relisting on a timer emits no events when nothing changed', async () => {
  const informer = new Informer<V1ConfigMap>(conn, {
    name: 'configmaps-relist',
    path: `/api/v1/namespaces/${NS}/configmaps`,
    relistIntervalMs: 1500,
  });
  const types: string[] = [];
  informer.on((e) => types.push(e.type));
  await informer.start();
  try {
    await core.createNamespacedConfigMap({ namespace: NS, body: cm('relisted', 'x') });
    await waitUntil('add seen', 5000, () => informer.get(`${NS}/relisted`) !== undefined);
    const before = types.length;
    await sleep(3500); // at least two relists with nothing changed
    assert.equal(types.length, before, 'a relist without changes must not emit events');
  } finally {
    await informer.stop();
  }
});
