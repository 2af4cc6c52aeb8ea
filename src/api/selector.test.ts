import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selects } from './selector.ts';
import type { LabelSelector } from './lbnodeagent.ts';

const labels = { 'node-role.kubernetes.io/edge': '', zone: 'a' };

const cases: Array<[string, LabelSelector | undefined, boolean]> = [
  ['no selector: every node', undefined, true],
  ['empty selector: every node', {}, true],
  ['matchLabels equal', { matchLabels: { zone: 'a' } }, true],
  ['matchLabels differ', { matchLabels: { zone: 'b' } }, false],
  ['matchLabels of an empty value', { matchLabels: { 'node-role.kubernetes.io/edge': '' } }, true],
  ['In listed', { matchExpressions: [{ key: 'zone', operator: 'In', values: ['b', 'a'] }] }, true],
  ['In not listed', { matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] }, false],
  ['In on a missing key', { matchExpressions: [{ key: 'rack', operator: 'In', values: ['1'] }] }, false],
  ['NotIn listed', { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, false],
  ['NotIn on a missing key', { matchExpressions: [{ key: 'rack', operator: 'NotIn', values: ['1'] }] }, true],
  ['Exists', { matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, true],
  ['Exists on a missing key', { matchExpressions: [{ key: 'rack', operator: 'Exists' }] }, false],
  ['DoesNotExist', { matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] }, false],
  ['every requirement must hold', { matchLabels: { zone: 'a' }, matchExpressions: [{ key: 'rack', operator: 'Exists' }] }, false],
];

for (const [name, selector, want] of cases) {
  test(`nodeSelector: ${name}`, () => assert.equal(selects(selector, labels), want));
}
