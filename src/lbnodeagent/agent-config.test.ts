import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubernetesObject } from '@kubernetes/client-node';
import { DEFAULT_LBNODEAGENT_CONFIG } from '../api/normalize.ts';
import type { LBNodeAgentConfig } from '../api/normalize.ts';
import { chooseAgentConfig } from './agent-config.ts';

const lbna = (name: string, spec: unknown): KubernetesObject => ({ apiVersion: 'purelb.io/v2', kind: 'LBNodeAgent', metadata: { name, namespace: 'purelb' }, spec } as KubernetesObject);
const edge = lbna('edge', { nodeSelector: { matchLabels: { edge: 'true' } }, local: { dummyInterface: 'edge0' } });
const other = lbna('aaa', { nodeSelector: { matchLabels: { edge: 'false' } }, local: { dummyInterface: 'other0' } });
const inUse: LBNodeAgentConfig = { ...DEFAULT_LBNODEAGENT_CONFIG, dummyInterface: 'inuse0' };

const cases: Array<[string, KubernetesObject[], Record<string, string>, string, string | undefined, boolean]> = [
  ['none: the defaults', [], {}, 'kube-lb0', undefined, false],
  ['the first by name whose selector picks the node', [other, edge], { edge: 'true' }, 'edge0', 'edge', false],
  ['no selector picks the node: the defaults', [other, edge], { edge: 'maybe' }, 'kube-lb0', undefined, false],
  ['`default` wins whatever its selector', [edge, lbna('default', { local: { dummyInterface: 'dflt0' } })], { edge: 'true' }, 'dflt0', 'default', false],
  ['an invalid one is refused: the configuration in use stays', [lbna('default', { local: { localInterface: 'eth[0-', dummyInterface: 'new0' } })], {}, 'inuse0', 'default', true],
];

for (const [name, objects, labels, dummy, chosen, refused] of cases) {
  test(`LBNodeAgent choice: ${name}`, () => {
    const c = chooseAgentConfig(objects, labels, inUse);
    assert.deepEqual([c.config.dummyInterface, c.chosen?.metadata?.name, c.refused], [dummy, chosen, refused]);
  });
}

test('the refusal names the field and the value', () => {
  const c = chooseAgentConfig([lbna('default', { local: { localInterface: 'eth[0-' } })], {}, inUse);
  assert.deepEqual(c.issues.map((i) => [i.field, i.value]), [['spec.local.localInterface', 'eth[0-']]);
});
