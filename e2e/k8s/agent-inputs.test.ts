// The agent's caches against the lab's real API server (src/lbnodeagent/inputs.ts): of
// the EndpointSlices only those of LoadBalancer Services are kept, and they follow their
// Service through type changes, in both orders of arrival.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { AgentInputs } from '../../src/lbnodeagent/inputs.ts';
import { Api, PATHS } from '../../src/k8s/api.ts';
import { createLogger } from '../../src/log.ts';
import { connection } from '../lab/kube.ts';
import { applyCRDs, ensureNamespace, kubectl, waitUntil } from '../lab/testkit.ts';

const NS = 'plb-test-agent-inputs';
const SG_NS = 'plb-test-agent-inputs-sg';
const api = new Api(connection());

function service(name: string, type: 'LoadBalancer' | 'ClusterIP'): V1Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS }, spec: { type, ports: [{ port: 80, protocol: 'TCP' }] } };
}

function slice(name: string, serviceName: string | undefined, node: string): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: NS, labels: serviceName === undefined ? {} : { 'kubernetes.io/service-name': serviceName } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['192.0.2.10'], nodeName: node, conditions: { ready: true } }],
  };
}

async function setType(name: string, type: 'LoadBalancer' | 'ClusterIP'): Promise<void> {
  await api.patch(PATHS.service(NS, name), { spec: { type } }, 'merge');
}

const cached = (inputs: AgentInputs): string[] => inputs.slices.keys().sort();

before(async () => {
  await applyCRDs(); // the agent's informers list ServiceGroups and LBNodeAgents
  await ensureNamespace(NS);
  await ensureNamespace(SG_NS);
  await kubectl(['delete', 'services,endpointslices', '--all', '-n', NS, '--wait=true']);
});

after(async () => {
  await kubectl(['delete', 'services,endpointslices', '--all', '-n', NS, '--wait=true'], { check: false });
});

test('the agent caches only the EndpointSlices of LoadBalancer Services, through type changes', async (t) => {
  await api.create(PATHS.services(NS), service('lb', 'LoadBalancer'));
  await api.create(PATHS.services(NS), service('plain', 'ClusterIP'));
  await api.create(PATHS.endpointSlices(NS), slice('lb-a', 'lb', 'n1'));
  await api.create(PATHS.endpointSlices(NS), slice('plain-a', 'plain', 'n1'));
  await api.create(PATHS.endpointSlices(NS), slice('orphan', undefined, 'n1'));
  const inputs = new AgentInputs(connection(), SG_NS, 'plb-test-node', createLogger('test', 'error'));
  await inputs.start();
  try {
    const mine = () => cached(inputs).filter((k) => k.startsWith(`${NS}/`));
    await t.test('at start: the LoadBalancer\'s slice, not the ClusterIP\'s nor one of no Service', () => {
      assert.deepEqual(mine(), [`${NS}/lb-a`]);
    });
    await t.test('a ClusterIP changed to LoadBalancer: its slice, refused until then, is read', async () => {
      await setType('plain', 'LoadBalancer');
      await waitUntil('the slice of the Service that became a LoadBalancer', 15_000, () => mine().includes(`${NS}/plain-a`));
      assert.deepEqual(mine(), [`${NS}/lb-a`, `${NS}/plain-a`]);
      assert.equal(inputs.slices.get(`${NS}/plain-a`)?.endpoints?.[0]?.nodeName, 'n1', 'slimmed as the watch slims it');
    });
    await t.test('a LoadBalancer changed to ClusterIP: its slice goes; later slices of it are refused', async () => {
      await setType('lb', 'ClusterIP');
      await waitUntil('the slice of the former LoadBalancer to go', 15_000, () => !mine().includes(`${NS}/lb-a`));
      await api.create(PATHS.endpointSlices(NS), slice('lb-b', 'lb', 'n2'));
      await api.create(PATHS.endpointSlices(NS), slice('plain-b', 'plain', 'n2'));
      await waitUntil('the new slice of the LoadBalancer', 15_000, () => mine().includes(`${NS}/plain-b`));
      assert.deepEqual(mine(), [`${NS}/plain-a`, `${NS}/plain-b`]);
    });
    await t.test('a slice that arrives before its Service is kept, and goes when the Service is not a LoadBalancer', async () => {
      await api.create(PATHS.endpointSlices(NS), slice('early-a', 'early', 'n1'));
      await api.create(PATHS.endpointSlices(NS), slice('early-lb-a', 'early-lb', 'n1'));
      await waitUntil('the slices of Services not seen yet', 15_000, () => mine().includes(`${NS}/early-a`) && mine().includes(`${NS}/early-lb-a`));
      await api.create(PATHS.services(NS), service('early', 'ClusterIP'));
      await api.create(PATHS.services(NS), service('early-lb', 'LoadBalancer'));
      await waitUntil('the slice of the ClusterIP to go and the LoadBalancer to be cached', 15_000, () => !mine().includes(`${NS}/early-a`) && inputs.services.get(`${NS}/early-lb`) !== undefined);
      assert.deepEqual(mine(), [`${NS}/early-lb-a`, `${NS}/plain-a`, `${NS}/plain-b`]);
    });
    await t.test('slices of a LoadBalancer are deleted with it', async () => {
      await api.delete(PATHS.endpointSlices(NS) + '/plain-a');
      await api.delete(PATHS.service(NS, 'plain'));
      await waitUntil('the deleted Service\'s slices to go', 15_000, () => !mine().some((k) => k.startsWith(`${NS}/plain-`)));
      assert.deepEqual(mine(), [`${NS}/early-lb-a`]);
    });
  } finally {
    await inputs.stop();
  }
});
