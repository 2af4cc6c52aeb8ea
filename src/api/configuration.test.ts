// The one last-good rule: which configuration is in force for each ServiceGroup, as the
// allocator decides it and as the agents read it from the status record.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupStatus } from '../allocator/status.ts';
import { desiredAnnouncements } from '../lbnodeagent/desired.ts';
import type { Snapshot } from '../lbnodeagent/desired.ts';
import { admits, inForceConfigs, namespaceDefault, poolsInForce, recorded, resolveServiceGroups } from './configuration.ts';
import type { ServiceGroupObject } from './configuration.ts';
import type { InForce } from './servicegroup.ts';

const LAN = '198.51.100.0/24';
const remoteSpec = { remote: { v4pool: { subnet: LAN, pool: '198.51.100.180-198.51.100.185', aggregation: '/32' } } };
/** The edit: to `local`, with a second range overlapping layer2-ippool. */
const badEdit = {
  local: {
    v4pools: [
      { subnet: LAN, pool: '198.51.100.180-198.51.100.185', aggregation: '/32' },
      { subnet: LAN, pool: '198.51.100.120-198.51.100.130', aggregation: '/32' },
    ],
  },
};
const layer2Spec = { local: { v4pool: { subnet: '198.51.100.64/26', pool: '198.51.100.64-198.51.100.126', aggregation: '/32' } } };

function sg(name: string, generation: number, spec: unknown, inForce?: unknown, created = '2026-01-01T00:00:00Z'): ServiceGroupObject {
  return {
    apiVersion: 'purelb.io/v2',
    kind: 'ServiceGroup',
    metadata: { name, namespace: 'purelb', generation, creationTimestamp: created as unknown as Date },
    spec,
    ...(inForce === undefined ? {} : { status: { inForce } }),
  };
}

const rec = (generation: number, spec: unknown): InForce => ({ generation, spec: spec as InForce['spec'] });

/** The objects as they read after the allocator wrote every record it decided. */
function afterWrite(objects: ServiceGroupObject[]): ServiceGroupObject[] {
  const conf = resolveServiceGroups(objects);
  return objects.map((o) => ({ ...o, status: { inForce: conf.groups.get(o.metadata?.name ?? '')?.inForce } }));
}

test('the issue: an edit that overlaps another group is refused, and what the agents read stays the accepted remote group', () => {
  const objects = [sg('layer2-ippool', 1, layer2Spec, rec(1, layer2Spec)), sg('lan', 2, badEdit, rec(1, remoteSpec), '2026-02-01T00:00:00Z')];
  const conf = resolveServiceGroups(objects);
  const lan = conf.groups.get('lan');
  assert.equal(lan?.current, false);
  assert.deepEqual(lan?.conflicts, ['layer2-ippool']);
  assert.equal(lan?.config?.pools.announce, 'remote');
  assert.deepEqual(lan?.inForce, rec(1, remoteSpec), 'the record is not advanced');
  assert.equal(recorded(objects[1]!, lan!), true, 'nothing to write: the record stays');
  const status = groupStatus(objects[1]!, lan!, undefined, []);
  assert.deepEqual(
    status.conditions?.map((c) => [c.type, c.status, c.reason]),
    [
      ['Ready', 'False', 'LastGoodKept'],
      ['Conflict', 'True', 'Overlap'],
    ],
  );
  assert.deepEqual(status.inForce, rec(1, remoteSpec));

  // The agent's view and decision: the VIP stays on the dummy interface of every node.
  const groups = new Map([...inForceConfigs(objects)].map(([n, c]) => [n, c.pools]));
  assert.equal(groups.get('lan')?.announce, 'remote');
  for (const node of ['n1', 'n2', 'n3']) {
    const snap: Snapshot = {
      self: { node, localInterface: { name: 'eth0', subnets: [LAN] }, dummyInterface: 'kube-lb0', eligible: true },
      members: ['n1', 'n2', 'n3'].map((n) => ({ node: n, subnets: [LAN] })),
      services: [{ key: 'app/web', ips: ['198.51.100.180'], group: 'lan', local: false, endpointNodes: new Set() }],
      groups,
    };
    assert.deepEqual(
      desiredAnnouncements(snap).map((a) => [a.interface, a.ip, a.prefix]),
      [['kube-lb0', '198.51.100.180', 32]],
      `node ${node}`,
    );
  }
});

interface Case {
  name: string;
  objects: ServiceGroupObject[];
  /** Per group: [current, announce in force or undefined, record generation or undefined]. */
  want: Record<string, [boolean, string | undefined, number | undefined]>;
}

const cases: Case[] = [
  {
    name: 'a new valid group is accepted and recorded at its generation',
    objects: [sg('a', 1, remoteSpec)],
    want: { a: [true, 'remote', 1] },
  },
  {
    name: 'a valid edit is accepted and advances the record',
    objects: [sg('a', 3, layer2Spec, rec(2, remoteSpec))],
    want: { a: [true, 'local', 3] },
  },
  {
    name: 'a group never accepted has nothing in force',
    objects: [sg('layer2-ippool', 1, layer2Spec, rec(1, layer2Spec)), sg('new', 1, badEdit, undefined, '2025-01-01T00:00:00Z')],
    want: { 'layer2-ippool': [true, 'local', 1], new: [false, undefined, undefined] },
  },
  {
    name: 'an older new group does not take ranges from a group in force',
    objects: [sg('held', 1, layer2Spec, rec(1, layer2Spec), '2026-06-01T00:00:00Z'), sg('older', 1, layer2Spec, undefined, '2020-01-01T00:00:00Z')],
    want: { held: [true, 'local', 1], older: [false, undefined, undefined] },
  },
  {
    name: 'of two new overlapping groups the older wins',
    objects: [sg('young', 1, layer2Spec, undefined, '2026-06-01T00:00:00Z'), sg('old', 1, badEdit, undefined, '2020-01-01T00:00:00Z')],
    want: { old: [true, 'local', 1], young: [false, undefined, undefined] },
  },
  {
    name: 'an edit that fails validation keeps its record',
    objects: [sg('a', 2, { local: { v4pool: { subnet: LAN, pool: '198.51.100.9-198.51.100.1' } } }, rec(1, remoteSpec))],
    want: { a: [false, 'remote', 1] },
  },
  {
    name: 'an invalid spec and no record: not in use',
    objects: [sg('a', 1, { local: {} })],
    want: { a: [false, undefined, undefined] },
  },
  {
    name: 'a record that does not parse counts as none',
    objects: [sg('a', 2, { local: {} }, { generation: 'one', spec: remoteSpec })],
    want: { a: [false, undefined, undefined] },
  },
];

for (const c of cases) {
  test(`in force: ${c.name}`, () => {
    const conf = resolveServiceGroups(c.objects);
    for (const [name, [current, announce, generation]] of Object.entries(c.want)) {
      const g = conf.groups.get(name);
      assert.deepEqual([g?.current, g?.config?.pools.announce, g?.inForce?.generation], [current, announce, generation], name);
    }
    // What the agents read once the records are written is exactly what the allocator uses.
    const written = afterWrite(c.objects);
    assert.deepEqual(
      [...inForceConfigs(written)].map(([n, cfg]) => [n, cfg.pools]).sort(),
      poolsInForce(conf).sort(),
    );
    // Deciding again from the written records (a restarted allocator) changes nothing.
    const again = resolveServiceGroups(written);
    for (const name of Object.keys(c.want)) assert.deepEqual(again.groups.get(name)?.inForce, conf.groups.get(name)?.inForce, name);
  });
}

test('namespace rules come from the configuration in force, not from a refused edit', () => {
  const fenced = { ...remoteSpec, namespaces: ['team-a'], enforceNamespaces: true, namespaceDefault: true };
  const conf = resolveServiceGroups([sg('layer2-ippool', 1, layer2Spec, rec(1, layer2Spec)), sg('f', 2, { ...badEdit, namespaces: ['team-b'] }, rec(1, fenced))]);
  assert.equal(admits(conf, 'f', 'team-a'), true);
  assert.equal(admits(conf, 'f', 'team-b'), false);
  assert.equal(namespaceDefault(conf, 'team-a'), 'f');
  assert.equal(namespaceDefault(conf, 'team-b'), undefined);
});

test('an allocator from before inForce: Ready=True InUse for the current generation counts as the record', () => {
  const old = (observedGeneration: number): ServiceGroupObject => ({
    ...sg('lan', 2, remoteSpec),
    status: { observedGeneration, conditions: [{ type: 'Ready', status: 'True', reason: 'InUse', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }] },
  });
  assert.equal(inForceConfigs([old(2)]).get('lan')?.pools.announce, 'remote');
  assert.equal(inForceConfigs([old(1)]).has('lan'), false, 'a later generation was never accepted');
  const conf = resolveServiceGroups([old(2)]);
  assert.deepEqual([conf.groups.get('lan')?.current, conf.groups.get('lan')?.inForce], [true, rec(2, remoteSpec)]);
  assert.equal(recorded(old(2), conf.groups.get('lan')!), false, 'the allocator writes the record in the new form');
});
