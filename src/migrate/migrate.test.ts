// The converter against operators' manifests: the fixtures in examples/migration as
// they are written, then one table per kind of outcome: each mapping row, each warning,
// each error (with nothing produced).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { validateText } from '../cli/validate.ts';
import { formatMigrationIssue, migrate, MIGRATED_DEFAULT, MIGRATED_FROM, parseDocuments } from './migrate.ts';
import type { MigrateOptions, Migration, MigratedObject } from './migrate.ts';

const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'migration');

function fromText(text: string, options: Partial<MigrateOptions> = {}): Migration {
  const { documents, errors } = parseDocuments(text, 'input.yaml');
  assert.deepEqual(errors, []);
  return migrate(documents, { namespace: 'purelb', ...options });
}

function fromObjects(objects: unknown[], options: Partial<MigrateOptions> = {}): Migration {
  return migrate(objects.map((document, i) => ({ origin: `input.yaml#${i + 1}`, document })), { namespace: 'purelb', ...options });
}

function fixture(file: string): Migration {
  return fromText(readFileSync(path.join(EXAMPLES, file), 'utf8'));
}

const configMap = (config: string, metadata = { namespace: 'metallb-system', name: 'config' }) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata, data: { config } });
const metallb = (kind: string, name: string, spec: unknown, metadata: Record<string, unknown> = {}) => ({
  apiVersion: kind === 'BGPPeer' ? 'metallb.io/v1beta2' : 'metallb.io/v1beta1',
  kind,
  metadata: { name, namespace: 'metallb-system', ...metadata },
  spec,
});
const eip = (name: string, spec: unknown, annotations: Record<string, string> = {}) => ({ apiVersion: 'network.kubesphere.io/v1alpha2', kind: 'Eip', metadata: { name, annotations }, spec });
const l2All = metallb('L2Advertisement', 'l2', {});

function ok(m: Migration): MigratedObject[] {
  assert.deepEqual(m.errors.map(formatMigrationIssue), []);
  return m.objects;
}

const group = (m: Migration, name: string) => {
  const g = ok(m).find((o) => o.kind === 'ServiceGroup' && o.metadata.name === name);
  assert.ok(g, `no ServiceGroup ${name}`);
  return g;
};
const spec = (m: Migration, name: string) => group(m, name).spec;
const warned = (m: Migration) => m.warnings.map((w) => `${w.source} | ${w.field}`);

// ---- The fixtures, as operators have them. ----

test('examples/migration/metallb-configmap.yaml: the layer-2 pools, the BGP pool and what only the routing daemon can do', () => {
  const m = fixture('metallb-configmap.yaml');
  assert.deepEqual(
    ok(m).map((o) => [o.kind, o.metadata.name, o.metadata.namespace, o.metadata.annotations[MIGRATED_FROM]]),
    [
      ['ServiceGroup', 'ngx-ip-pool', 'purelb', 'ConfigMap metallb-system/config address-pools[0]'],
      ['ServiceGroup', 'my-ip-space', 'purelb', 'ConfigMap metallb-system/config address-pools[1]'],
      ['ServiceGroup', 'bgp-routed', 'purelb', 'ConfigMap metallb-system/config address-pools[2]'],
    ],
  );
  assert.deepEqual(spec(m, 'ngx-ip-pool'), { local: { v4pool: { pool: '10.1.3.220-10.1.3.224', subnet: '10.1.3.192/26', aggregation: '/32' } } });
  assert.deepEqual(spec(m, 'my-ip-space'), {
    local: {
      v4pools: [
        { pool: '192.168.1.240-192.168.1.250', subnet: '192.168.1.240/28', aggregation: '/32' },
        { pool: '192.168.144.0/20', subnet: '192.168.144.0/20', aggregation: '/32' },
      ],
    },
  });
  assert.deepEqual(spec(m, 'bgp-routed'), { remote: { v4pool: { pool: '198.51.100.1-198.51.100.254', subnet: '198.51.100.0/24', aggregation: '/32' } } });
  assert.equal(m.defaultGroup, 'ngx-ip-pool');
  assert.equal(group(m, 'ngx-ip-pool').metadata.annotations[MIGRATED_DEFAULT], 'true');
  assert.equal(group(m, 'my-ip-space').metadata.annotations[MIGRATED_DEFAULT], undefined);
  assert.deepEqual(warned(m), [
    'ConfigMap metallb-system/config | peers[0]',
    'ConfigMap metallb-system/config | bgp-communities',
    'ConfigMap metallb-system/config | address-pools[2].bgp-advertisements[0].localpref',
    'ConfigMap metallb-system/config | address-pools[2].bgp-advertisements[0].communities',
    'ConfigMap metallb-system/config | address-pools[0].auto-assign',
  ]);
  assert.match(formatMigrationIssue(m.warnings[0]!), /peers\[0\]: not converted: .*bird\.peers: \[\{name: peer0, address: 10\.0\.0\.1, asn: 64501\}\], bird\.asn: 64500/);
  assert.match(formatMigrationIssue(m.warnings[4]!), /--set allocator\.defaultGroup=ngx-ip-pool/);
});

test('examples/migration/metallb-crds.yaml: pools follow their advertisements; the interface makes an LBNodeAgent', () => {
  const m = fixture('metallb-crds.yaml');
  assert.deepEqual(spec(m, 'first-pool'), {
    local: {
      v4pools: [
        { pool: '192.168.10.0/24', subnet: '192.168.10.0/24', aggregation: '/32' },
        { pool: '192.168.9.1-192.168.9.5', subnet: '192.168.9.0/29', aggregation: '/32' },
      ],
      v6pool: { pool: 'fc00:f853:ccd:e799::/124', subnet: 'fc00:f853:ccd:e799::/124', aggregation: '/128' },
    },
  });
  assert.deepEqual(spec(m, 'team-a'), {
    local: { v4pool: { pool: '192.168.20.0/26', subnet: '192.168.20.0/26', aggregation: '/32' } },
    namespaces: ['team-a'],
    enforceNamespaces: true,
    namespaceDefault: true,
  });
  assert.deepEqual(spec(m, 'public'), { remote: { v4pool: { pool: '203.0.113.1-203.0.113.254', subnet: '203.0.113.0/24', aggregation: '/32' } } });
  const agent = ok(m).find((o) => o.kind === 'LBNodeAgent');
  assert.deepEqual(agent, {
    apiVersion: 'purelb.io/v2',
    kind: 'LBNodeAgent',
    metadata: { name: 'default', namespace: 'purelb', annotations: { [MIGRATED_FROM]: 'metallb.io/L2Advertisement metallb-system/lan spec.interfaces' } },
    spec: { local: { localInterface: 'eth0' } },
  });
  assert.equal(m.defaultGroup, 'first-pool');
  assert.deepEqual(warned(m), [
    'BGPAdvertisement metallb-system/external | spec.localPref',
    'BGPAdvertisement metallb-system/external | spec.communities',
    'IPAddressPool metallb-system/team-a | spec.serviceAllocation.namespaceSelectors',
    'BGPPeer metallb-system/tor1 | ',
    'IPAddressPool metallb-system/first-pool | spec.autoAssign',
  ]);
});

test('examples/migration/openelb-eip.yaml: layer2, bgp (the default protocol) and vip Eips; the default Eip', () => {
  const m = fixture('openelb-eip.yaml');
  assert.deepEqual(spec(m, 'eip-sample-pool'), {
    local: { v4pool: { pool: '192.168.0.91-192.168.0.100', subnet: '192.168.0.64/26', aggregation: '/32' } },
    namespaces: ['test', 'default'],
    namespaceDefault: true,
  });
  assert.deepEqual(spec(m, 'eip-bgp-pool'), { remote: { v4pool: { pool: '172.22.0.2-172.22.0.10', subnet: '172.22.0.0/28', aggregation: '/32' } } });
  assert.deepEqual(spec(m, 'eip-vip-pool'), { local: { v4pool: { pool: '172.31.73.130-172.31.73.132', subnet: '172.31.73.128/29', aggregation: '/32' } } });
  assert.equal(m.defaultGroup, 'eip-sample-pool');
  assert.equal(group(m, 'eip-sample-pool').metadata.annotations[MIGRATED_FROM], 'network.kubesphere.io/Eip eip-sample-pool');
  assert.deepEqual(ok(m).find((o) => o.kind === 'LBNodeAgent')?.spec, { local: { localInterface: 'eth0' } });
  assert.deepEqual(warned(m), ['Eip eip-sample-pool | spec.namespaceSelector', 'Eip eip-sample-pool | metadata.annotations[eip.openelb.kubesphere.io/is-default-eip]']);
});

test('the output of every fixture passes the offline validator, as kubectl purelb validate reads it', () => {
  for (const file of ['metallb-configmap.yaml', 'metallb-crds.yaml', 'openelb-eip.yaml']) {
    const text = fixture(file).objects.map((o) => stringify(o)).join('---\n');
    for (const v of validateText(text)) assert.deepEqual(v.errors, [], `${file}: ${v.what}`);
  }
});

// ---- Mapping rows. ----

type Check = (m: Migration) => void;
const rows: Array<[string, unknown[], Check, Partial<MigrateOptions>?]> = [
  [
    'ConfigMap layer2 → local, host routes on kube-lb0 off the nodes\' subnets',
    [configMap('address-pools:\n- {name: a, protocol: layer2, addresses: [192.0.2.0/28]}\n')],
    (m) => assert.deepEqual(spec(m, 'a'), { local: { v4pool: { pool: '192.0.2.0/28', subnet: '192.0.2.0/28', aggregation: '/32' } } }),
  ],
  [
    'ConfigMap bgp → remote, aggregation from aggregation-length and aggregation-length-v6',
    [configMap('address-pools:\n- name: a\n  protocol: bgp\n  addresses: [192.0.2.0/24, 2001:db8::/64]\n  bgp-advertisements:\n  - {aggregation-length: 24, aggregation-length-v6: 64}\n')],
    (m) =>
      assert.deepEqual(spec(m, 'a'), {
        remote: { v4pool: { pool: '192.0.2.0/24', subnet: '192.0.2.0/24', aggregation: '/24' }, v6pool: { pool: '2001:db8::/64', subnet: '2001:db8::/64', aggregation: '/64' } },
      }),
  ],
  [
    'ConfigMap bgp without advertisements → /32 and /128, MetalLB\'s default',
    [configMap('address-pools:\n- {name: a, protocol: bgp, addresses: [192.0.2.0/24, 2001:db8::/120]}\n')],
    (m) => {
      const remote = spec(m, 'a').remote as Record<string, { aggregation: string }>;
      assert.deepEqual([remote.v4pool?.aggregation, remote.v6pool?.aggregation], ['/32', '/128']);
    },
  ],
  [
    'IPAddressPool with an L2Advertisement → local',
    [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] }), l2All],
    (m) => assert.deepEqual(Object.keys(spec(m, 'a')), ['local']),
  ],
  [
    'IPAddressPool with a BGPAdvertisement selecting it by label → remote with its aggregation lengths',
    [
      metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/24', '2001:db8::/64'] }, { labels: { zone: 'east' } }),
      metallb('IPAddressPool', 'b', { addresses: ['198.51.100.0/28'] }),
      metallb('BGPAdvertisement', 'bgp', { ipAddressPoolSelectors: [{ matchLabels: { zone: 'east' } }], aggregationLength: 24, aggregationLengthV6: 64 }),
      metallb('L2Advertisement', 'l2', { ipAddressPools: ['b'] }),
    ],
    (m) => {
      assert.deepEqual(spec(m, 'a'), {
        remote: { v4pool: { pool: '192.0.2.0/24', subnet: '192.0.2.0/24', aggregation: '/24' }, v6pool: { pool: '2001:db8::/64', subnet: '2001:db8::/64', aggregation: '/64' } },
      });
      assert.deepEqual(Object.keys(spec(m, 'b')), ['local']);
    },
  ],
  [
    'an advertisement in another namespace does not select the pool',
    [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] }), metallb('BGPAdvertisement', 'bgp', {}, { namespace: 'elsewhere' }), l2All],
    (m) => assert.deepEqual(Object.keys(spec(m, 'a')), ['local']),
  ],
  [
    'OpenELB vip → local: keepalived holds each address on one node, which purelb-ts\'s election does',
    [eip('v', { address: '192.0.2.10-192.0.2.12', protocol: 'vip' })],
    (m) => assert.deepEqual(spec(m, 'v'), { local: { v4pool: { pool: '192.0.2.10-192.0.2.12', subnet: '192.0.2.8/29', aggregation: '/32' } } }),
  ],
  [
    'OpenELB one address and a CIDR',
    [eip('one', { address: '192.0.2.10', protocol: 'layer2' }), eip('net', { address: '2001:db8::/120', protocol: 'bgp' })],
    (m) => {
      assert.deepEqual(spec(m, 'one'), { local: { v4pool: { pool: '192.0.2.10/32', subnet: '192.0.2.10/32', aggregation: '/32' } } });
      assert.deepEqual(spec(m, 'net'), { remote: { v6pool: { pool: '2001:db8::/120', subnet: '2001:db8::/120', aggregation: '/128' } } });
    },
  ],
  [
    'auto-assign: false → not the default group; the auto-assigned pool named default needs no chart setting',
    [configMap('address-pools:\n- {name: default, protocol: layer2, addresses: [192.0.2.0/28]}\n- {name: expensive, protocol: layer2, auto-assign: false, addresses: [198.51.100.0/30]}\n')],
    (m) => {
      assert.equal(m.defaultGroup, 'default');
      assert.equal(group(m, 'default').metadata.annotations[MIGRATED_DEFAULT], 'true');
      assert.equal(group(m, 'expensive').metadata.annotations[MIGRATED_DEFAULT], undefined);
      assert.deepEqual(m.warnings, []);
    },
  ],
  [
    'autoAssign: false on every pool → no default group',
    [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'], autoAssign: false }), l2All],
    (m) => {
      assert.equal(m.defaultGroup, undefined);
      assert.deepEqual(m.warnings, []);
    },
  ],
  [
    'several auto-assign pools → the first by priority is the default group',
    [
      metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] }),
      metallb('IPAddressPool', 'b', { addresses: ['198.51.100.0/28'], serviceAllocation: { priority: 10 } }),
      l2All,
    ],
    (m) => assert.equal(m.defaultGroup, 'b'),
  ],
  [
    'serviceAllocation.namespaces → namespaces, enforceNamespaces (MetalLB refuses other namespaces even by name) and namespaceDefault',
    [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'], serviceAllocation: { namespaces: ['team-a', 'team-b'] } }), l2All],
    (m) => {
      const { namespaces, enforceNamespaces, namespaceDefault } = spec(m, 'a');
      assert.deepEqual({ namespaces, enforceNamespaces, namespaceDefault }, { namespaces: ['team-a', 'team-b'], enforceNamespaces: true, namespaceDefault: true });
      assert.equal(m.defaultGroup, undefined, 'a namespace-bound pool is no default for the other namespaces');
    },
  ],
  [
    'serviceAllocation.namespaces with autoAssign: false → a boundary, not a default',
    [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'], autoAssign: false, serviceAllocation: { namespaces: ['team-a'] } }), l2All],
    (m) => assert.deepEqual(spec(m, 'a').namespaceDefault, undefined),
  ],
  [
    'Eip namespaces → namespaces and namespaceDefault, no boundary (OpenELB lets any namespace name an Eip)',
    [eip('a', { address: '192.0.2.0/28', protocol: 'layer2', namespaces: ['web'] })],
    (m) => {
      const { namespaces, enforceNamespaces, namespaceDefault } = spec(m, 'a');
      assert.deepEqual({ namespaces, enforceNamespaces, namespaceDefault }, { namespaces: ['web'], enforceNamespaces: undefined, namespaceDefault: true });
      assert.equal(m.defaultGroup, undefined, 'only the Eip marked default is the default group');
    },
  ],
  [
    'avoid-buggy-ips: the .0 and .255 addresses are cut out, one range per /24',
    [configMap('address-pools:\n- {name: a, protocol: layer2, avoid-buggy-ips: true, addresses: [10.0.0.0/23, 10.0.2.10-10.0.2.20, 2001:db8::/120]}\n')],
    (m) =>
      assert.deepEqual(spec(m, 'a'), {
        local: {
          v4pools: [
            { pool: '10.0.0.1-10.0.0.254', subnet: '10.0.0.0/24', aggregation: '/32' },
            { pool: '10.0.1.1-10.0.1.254', subnet: '10.0.1.0/24', aggregation: '/32' },
            { pool: '10.0.2.10-10.0.2.20', subnet: '10.0.2.0/27', aggregation: '/32' },
          ],
          v6pool: { pool: '2001:db8::/120', subnet: '2001:db8::/120', aggregation: '/128' },
        },
      }),
  ],
  [
    'a CIDR with host bits → its network, as MetalLB reads it',
    [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.7/29'] }), l2All],
    (m) => assert.deepEqual(spec(m, 'a'), { local: { v4pool: { pool: '192.0.2.0/29', subnet: '192.0.2.0/29', aggregation: '/32' } } }),
  ],
  [
    'the deprecated AddressPool CRD reads like a ConfigMap pool',
    [metallb('AddressPool', 'a', { protocol: 'bgp', addresses: ['192.0.2.0/24'], autoAssign: false, bgpAdvertisements: [{ aggregationLength: 28 }] })],
    (m) => {
      assert.deepEqual(spec(m, 'a'), { remote: { v4pool: { pool: '192.0.2.0/24', subnet: '192.0.2.0/24', aggregation: '/28' } } });
      assert.equal(group(m, 'a').metadata.annotations[MIGRATED_FROM], 'metallb.io/AddressPool metallb-system/a');
    },
  ],
  [
    'kind: List from kubectl get -o yaml, and a typed list whose items carry no kind',
    [
      { apiVersion: 'v1', kind: 'List', items: [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] }), l2All] },
      { apiVersion: 'network.kubesphere.io/v1alpha2', kind: 'EipList', items: [{ metadata: { name: 'b' }, spec: { address: '198.51.100.0/28', protocol: 'layer2' } }] },
    ],
    (m) => assert.deepEqual(ok(m).map((o) => o.metadata.name), ['a', 'b']),
  ],
  [
    'a MetalLB ConfigMap in another namespace is known by its content',
    [configMap('address-pools:\n- {name: a, protocol: layer2, addresses: [192.0.2.0/28]}\n', { namespace: 'lb', name: 'metallb-config' })],
    (m) => assert.equal(group(m, 'a').metadata.annotations[MIGRATED_FROM], 'ConfigMap lb/metallb-config address-pools[0]'),
  ],
  [
    'the objects go to the namespace asked for',
    [eip('a', { address: '192.0.2.0/28', protocol: 'layer2', interface: 'eth1' })],
    (m) => assert.deepEqual(ok(m).map((o) => `${o.kind} ${o.metadata.namespace}`), ['ServiceGroup lb', 'LBNodeAgent lb']),
    { namespace: 'lb' },
  ],
];
for (const [name, input, check, options] of rows) {
  test(`mapping: ${name}`, () => check(fromObjects(input, options)));
}

// ---- Warnings: each names its source and field, and the objects still come out. ----

const warnings: Array<[string, unknown[], string, string, RegExp]> = [
  [
    'a second auto-assign pool',
    [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] }), metallb('IPAddressPool', 'b', { addresses: ['198.51.100.0/28'] }), l2All],
    'IPAddressPool metallb-system/b',
    'spec.autoAssign',
    /purelb-ts gives those Services one group, a, as it comes first by name: annotate Services with purelb\.io\/service-group: b/,
  ],
  [
    'the default pool not named default',
    [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] }), l2All],
    'IPAddressPool metallb-system/a',
    'spec.autoAssign',
    /--set allocator\.defaultGroup=a$/,
  ],
  [
    'a pool named default that is not auto-assigned',
    [metallb('IPAddressPool', 'default', { addresses: ['192.0.2.0/28'], autoAssign: false }), l2All],
    'IPAddressPool metallb-system/default',
    'spec.autoAssign',
    /allocator\.defaultGroup set to a name no group has/,
  ],
  [
    'two namespace defaults for one namespace',
    [
      metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'], serviceAllocation: { priority: 1, namespaces: ['web'] } }),
      metallb('IPAddressPool', 'b', { addresses: ['198.51.100.0/28'], serviceAllocation: { priority: 2, namespaces: ['web', 'api'] } }),
      l2All,
    ],
    'IPAddressPool metallb-system/b',
    'spec.serviceAllocation.namespaces',
    /^shared with a, which comes first in the source's order, in web: .*takes the oldest/,
  ],
  ['namespaceSelectors', [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'], serviceAllocation: { namespaceSelectors: [{ matchLabels: { t: 'a' } }] } }), l2All], 'IPAddressPool metallb-system/a', 'spec.serviceAllocation.namespaceSelectors', /by name.*no unannotated Service gets this group/],
  ['serviceSelectors', [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'], serviceAllocation: { serviceSelectors: [{ matchLabels: { tier: 'gold' } }] } }), l2All], 'IPAddressPool metallb-system/a', 'spec.serviceAllocation.serviceSelectors', /annotate those Services with purelb\.io\/service-group: a/],
  ['advertisement nodeSelectors', [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] }), metallb('L2Advertisement', 'l2', { nodeSelectors: [{ matchLabels: { edge: 'true' } }] })], 'L2Advertisement metallb-system/l2', 'spec.nodeSelectors', /LBNodeAgent spec\.nodeSelector/],
  ['BGP peers of an advertisement', [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] }), metallb('BGPAdvertisement', 'b', { peers: ['tor1'] })], 'BGPAdvertisement metallb-system/b', 'spec.peers', /to all its peers/],
  ['localPref', [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] }), metallb('BGPAdvertisement', 'b', { localPref: 50 })], 'BGPAdvertisement metallb-system/b', 'spec.localPref', /local preference in the routing daemon/],
  ['communities', [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] }), metallb('BGPAdvertisement', 'b', { communities: ['65535:65282'] })], 'BGPAdvertisement metallb-system/b', 'spec.communities', /communities in the routing daemon/],
  ['BGPPeer', [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] }), l2All, metallb('BGPPeer', 'tor-1', { myASN: 64500, peerASN: 64501, peerAddress: '10.0.0.1' })], 'BGPPeer metallb-system/tor-1', '', /bird\.peers: \[\{name: tor_1, address: 10\.0\.0\.1, asn: 64501\}\], bird\.asn: 64500/],
  ['BFDProfile', [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] }), l2All, metallb('BFDProfile', 'fast', { receiveInterval: 50 })], 'BFDProfile metallb-system/fast', '', /bfd: true on an entry of bird\.peers/],
  ['Community', [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] }), l2All, metallb('Community', 'c', { communities: [] })], 'Community metallb-system/c', '', /communities in the routing daemon/],
  ['ConfigMap bfd-profiles', [configMap('bfd-profiles:\n- {name: fast}\naddress-pools:\n- {name: a, protocol: layer2, addresses: [192.0.2.0/28]}\n')], 'ConfigMap metallb-system/config', 'bfd-profiles', /BFD is the routing daemon's/],
  [
    'advertisements of one pool with different aggregation lengths',
    [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/24'] }), metallb('BGPAdvertisement', 'x', { aggregationLength: 24 }), metallb('BGPAdvertisement', 'y', {})],
    'IPAddressPool metallb-system/a',
    '',
    /IPv4 aggregation lengths \/24, \/32 .*the most specific, \/32/,
  ],
  ['L2 and BGP advertisements of one pool', [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] }), l2All, metallb('BGPAdvertisement', 'b', {})], 'IPAddressPool metallb-system/a', '', /becomes local/],
  ['a pool no advertisement selects', [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] })], 'IPAddressPool metallb-system/a', '', /purelb-ts announces them \(local\)/],
  ['an advertisement that selects no pool', [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] }), l2All, metallb('L2Advertisement', 'none', { ipAddressPools: ['missing'] })], 'L2Advertisement metallb-system/none', '', /selects no IPAddressPool/],
  ['bgp-advertisements on a layer2 pool', [configMap('address-pools:\n- {name: a, protocol: layer2, addresses: [192.0.2.0/28], bgp-advertisements: [{aggregation-length: 32}]}\n')], 'ConfigMap metallb-system/config', 'address-pools[0].bgp-advertisements', /apply to bgp pools only/],
  ['avoid-buggy-ips beyond 32 ranges', [configMap('address-pools:\n- {name: a, protocol: layer2, avoid-buggy-ips: true, addresses: [10.0.0.0/16]}\n')], 'ConfigMap metallb-system/config', 'address-pools[0].avoid-buggy-ips', /not kept: .* Services may get addresses ending in \.0 or \.255/],
  ['an entry of only .0 and .255', [configMap('address-pools:\n- {name: a, protocol: layer2, avoid-buggy-ips: true, addresses: [192.0.2.0/28, 10.0.0.255/32]}\n')], 'ConfigMap metallb-system/config', 'address-pools[0].addresses[1]', /left out/],
  ['a CIDR with host bits', [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.7/29'] }), l2All], 'IPAddressPool metallb-system/a', 'spec.addresses[0]', /taken as the whole network 192\.0\.2\.0\/29/],
  ['an unknown field', [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'], allocateTo: 'x' }), l2All], 'IPAddressPool metallb-system/a', 'spec.allocateTo', /unknown field: ignored/],
  ['ConfigMap peers', [configMap('peers:\n- {peer-address: 10.0.0.1, peer-asn: 64501, my-asn: 64500}\naddress-pools:\n- {name: a, protocol: bgp, addresses: [192.0.2.0/28]}\n')], 'ConfigMap metallb-system/config', 'peers[0]', /does not speak BGP/],
  ['Eip disable', [eip('a', { address: '192.0.2.0/28', protocol: 'layer2', disable: true, namespaces: ['web'] }, { 'eip.openelb.kubesphere.io/is-default-eip': 'true' })], 'Eip a', 'spec.disable', /nobody's default/],
  ['Eip can_reach', [eip('a', { address: '192.0.2.0/28', protocol: 'layer2', interface: 'can_reach:192.0.2.1' })], 'Eip a', 'spec.interface', /default route, which is kept/],
  ['Eip interface on a bgp Eip', [eip('a', { address: '192.0.2.0/28', interface: 'eth0' })], 'Eip a', 'spec.interface', /applies to layer2 and vip/],
  ['Eip usingKnownIPs', [eip('a', { address: '192.0.2.0/28', protocol: 'layer2', usingKnownIPs: true })], 'Eip a', 'spec.usingKnownIPs', /no such setting/],
  [
    'interfaces that differ between sources',
    [eip('a', { address: '192.0.2.0/28', protocol: 'layer2', interface: 'eth0' }), eip('b', { address: '198.51.100.0/28', protocol: 'layer2', interface: 'eth1.100' })],
    'Eip a',
    'spec.interface',
    /one interface per node: the lowest-numbered one whose name matches eth0\|eth1\\\.100/,
  ],
  ['a Service', [eip('a', { address: '192.0.2.0/28', protocol: 'layer2' }), { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' } }], 'Service default/web', '', /reads as aliases/],
  ['another object', [eip('a', { address: '192.0.2.0/28', protocol: 'layer2' }), { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x', namespace: 'default' } }], 'Deployment default/x', '', /not a MetalLB or OpenELB configuration/],
  ['a ConfigMap beside metallb.io pools', [configMap('address-pools:\n- {name: old, protocol: layer2, addresses: [192.0.2.0/28]}\n'), metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] }), l2All], 'ConfigMap metallb-system/config', '', /ignored: MetalLB 0\.13 and later/],
  ['an unknown MetalLB kind', [eip('a', { address: '192.0.2.0/28', protocol: 'layer2' }), metallb('ServiceL2Status', 's', {})], 'ServiceL2Status metallb-system/s', '', /a status MetalLB writes/],
];
for (const [name, input, source, field, message] of warnings) {
  test(`warning: ${name}`, () => {
    const m = fromObjects(input);
    ok(m);
    const found = m.warnings.filter((w) => w.source === source && w.field === field);
    assert.ok(found.some((w) => message.test(w.message)), `expected a warning at ${source} ${field} matching ${message}; got ${JSON.stringify(m.warnings.map(formatMigrationIssue), null, 1)}`);
  });
}

test('the interfaces of the sources make one LBNodeAgent with an anchored-safe pattern', () => {
  const m = fromObjects([eip('a', { address: '192.0.2.0/28', protocol: 'layer2', interface: 'eth0' }), eip('b', { address: '198.51.100.0/28', protocol: 'vip', interface: 'eth1.100' })]);
  assert.deepEqual(ok(m).find((o) => o.kind === 'LBNodeAgent')?.spec, { local: { localInterface: 'eth0|eth1\\.100' } });
  const none = fromObjects([eip('a', { address: '192.0.2.0/28', protocol: 'layer2', interface: 'can_reach:192.0.2.1' })]);
  assert.deepEqual(ok(none).map((o) => o.kind), ['ServiceGroup']);
});

// ---- Errors: all or nothing. ----

const errors: Array<[string, unknown[], string, string, RegExp, Partial<MigrateOptions>?]> = [
  ['bad YAML in config', [configMap('address-pools:\n- name: a\n  protocol: [layer2\n')], 'ConfigMap metallb-system/config', 'data.config', /^not valid YAML/],
  ['config that is not a mapping', [configMap('- just\n- a list\n')], 'ConfigMap metallb-system/config', 'data.config', /must be a YAML mapping with address-pools/],
  ['an empty config', [configMap('')], 'ConfigMap metallb-system/config', 'data.config', /empty: no address pools/],
  ['no config key', [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: 'metallb-system', name: 'config' }, data: {} }], 'ConfigMap metallb-system/config', 'data.config', /missing/],
  ['address-pools that is not a list', [configMap('address-pools: {name: a}\n')], 'ConfigMap metallb-system/config', 'address-pools', /must be a list/],
  ['auto-assign of the wrong type', [configMap('address-pools:\n- {name: a, protocol: layer2, auto-assign: "no", addresses: [192.0.2.0/28]}\n')], 'ConfigMap metallb-system/config', 'address-pools[0].auto-assign', /must be true or false, not "no"/],
  ['an address that is not a string', [configMap('address-pools:\n- {name: a, protocol: layer2, addresses: [{cidr: 192.0.2.0/28}]}\n')], 'ConfigMap metallb-system/config', 'address-pools[0].addresses[0]', /must be a string/],
  ['a pool without a name', [configMap('address-pools:\n- {protocol: layer2, addresses: [192.0.2.0/28]}\n')], 'ConfigMap metallb-system/config', 'address-pools[0].name', /name is required/],
  ['a pool without a protocol', [configMap('address-pools:\n- {name: a, addresses: [192.0.2.0/28]}\n')], 'ConfigMap metallb-system/config', 'address-pools[0].protocol', /protocol is required/],
  ['a pool without addresses', [metallb('IPAddressPool', 'a', { addresses: [] }), l2All], 'IPAddressPool metallb-system/a', 'spec.addresses', /at least one address range/],
  ['an aggregation length purelb-ts cannot put on kube-lb0', [configMap('address-pools:\n- {name: a, protocol: bgp, addresses: [192.0.0.0/8], bgp-advertisements: [{aggregation-length: 4}]}\n')], 'ConfigMap metallb-system/config', 'address-pools[0].bgp-advertisements[0].aggregation-length', /takes \/8 to \/32/],
  ['an Eip of an unknown protocol', [eip('a', { address: '192.0.2.0/28', protocol: 'ospf' })], 'Eip a', 'spec.protocol', /unknown protocol "ospf" \(bgp, layer2 or vip\)/],
  ['an Eip without an address', [eip('a', { protocol: 'layer2' })], 'Eip a', 'spec.address', /address is required/],
  ['an Eip address that does not parse', [eip('a', { address: '192.0.2.0/28,192.0.2.64/28' })], 'Eip a', 'spec.address', /is not a range A-B, a CIDR or an address/],
  ['an IPAddressPool address that does not parse', [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.10-192.0.2.1'] }), l2All], 'IPAddressPool metallb-system/a', 'spec.addresses[0]', /the start lies after the end/],
  ['a namespace that cannot exist', [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'], serviceAllocation: { namespaces: ['Team_A'] } }), l2All], 'IPAddressPool metallb-system/a', 'spec.serviceAllocation.namespaces[0]', /not a namespace name/],
  ['a selector that is not one', [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/28'] }), metallb('L2Advertisement', 'l2', { ipAddressPoolSelectors: [{ matchLabel: { a: 'b' } }] })], 'L2Advertisement metallb-system/l2', 'spec.ipAddressPoolSelectors[0]', /not a label selector/],
  [
    'two pools that overlap',
    [metallb('IPAddressPool', 'a', { addresses: ['192.0.2.0/24'] }), metallb('IPAddressPool', 'b', { addresses: ['192.0.2.128-192.0.2.130'] }), l2All],
    'IPAddressPool metallb-system/b',
    'spec.addresses[0]',
    /"192\.0\.2\.128-192\.0\.2\.130" overlaps "192\.0\.2\.0\/24" of IPAddressPool metallb-system\/a spec\.addresses\[0\] on 192\.0\.2\.128-192\.0\.2\.130/,
  ],
  ['a MetalLB pool that overlaps an Eip', [eip('a', { address: '192.0.2.0/28', protocol: 'layer2' }), configMap('address-pools:\n- {name: b, protocol: layer2, addresses: [10.0.0.0/24]}\n- {name: c, protocol: layer2, addresses: [192.0.2.8/29]}\n')], 'ConfigMap metallb-system/config', 'address-pools[1].addresses[0]', /overlaps "192\.0\.2\.0\/28" of Eip a spec\.address/],
  ['a nested range inside one pool', [metallb('IPAddressPool', 'a', { addresses: ['10.0.0.0/24', '10.0.0.10-10.0.0.20'] }), l2All], 'IPAddressPool metallb-system/a', 'spec.addresses[1]', /overlaps "10\.0\.0\.0\/24" of spec\.addresses\[0\]/],
  ['a name that is not a Kubernetes name', [configMap('address-pools:\n- {name: My_Pool, protocol: layer2, addresses: [192.0.2.0/28]}\n')], 'ConfigMap metallb-system/config', 'address-pools[0].name', /"My_Pool" cannot be a ServiceGroup name/],
  ['a name used twice', [configMap('address-pools:\n- {name: a, protocol: layer2, addresses: [192.0.2.0/28]}\n'), eip('a', { address: '198.51.100.0/28', protocol: 'layer2' })], 'Eip a', 'metadata.name', /is also the name of ConfigMap metallb-system\/config address-pools\[0\]\.name/],
  ['more than 32 ranges of a family', [metallb('IPAddressPool', 'a', { addresses: Array.from({ length: 33 }, (_, i) => `10.0.${i}.0/24`) }), l2All], 'IPAddressPool metallb-system/a', 'spec.addresses', /33 IPv4 ranges: a ServiceGroup holds at most 32/],
  ['only buggy addresses', [configMap('address-pools:\n- {name: a, protocol: layer2, avoid-buggy-ips: true, addresses: [192.0.2.255/32]}\n')], 'ConfigMap metallb-system/config', 'address-pools[0].addresses', /no address is left/],
  ['nothing to convert', [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x' } }], '(input)', '', /no MetalLB address pool or OpenELB Eip found/],
  ['a document that is no object', [['a', 'list']], 'input.yaml#1', '', /not a Kubernetes object/],
  [
    'a group of that name in the cluster',
    [eip('a', { address: '192.0.2.0/28', protocol: 'layer2' })],
    'Eip a',
    'metadata.name',
    /a ServiceGroup named "a" exists already in namespace purelb/,
    { existing: { serviceGroups: [{ apiVersion: 'purelb.io/v2', kind: 'ServiceGroup', metadata: { name: 'a', namespace: 'purelb' }, spec: { local: { v4pool: { pool: '10.0.0.0/28', subnet: '10.0.0.0/24' } } } }] } },
  ],
  [
    'a pool that overlaps a group in the cluster',
    [eip('a', { address: '192.0.2.0/28', protocol: 'layer2' })],
    'ServiceGroup purelb/a',
    'spec.local.v4pool',
    /of ServiceGroup a overlaps .* of ServiceGroup old/,
    { existing: { serviceGroups: [{ apiVersion: 'purelb.io/v2', kind: 'ServiceGroup', metadata: { name: 'old', namespace: 'purelb', creationTimestamp: new Date('2026-01-01T00:00:00Z') }, spec: { local: { v4pool: { pool: '192.0.2.8/29', subnet: '192.0.2.0/24' } } } }] } },
  ],
  [
    'the LBNodeAgent default in the cluster',
    [eip('a', { address: '192.0.2.0/28', protocol: 'layer2', interface: 'eth1' })],
    'LBNodeAgent purelb/default',
    '',
    /exists already .*defaultLBNodeAgent\.create=false.*defaultLBNodeAgent\.localint='eth1'/,
    { existing: { lbNodeAgents: [{ apiVersion: 'purelb.io/v1', kind: 'LBNodeAgent', metadata: { name: 'default', namespace: 'purelb' } }] } },
  ],
];
for (const [name, input, source, field, message, options] of errors) {
  test(`error, nothing produced: ${name}`, () => {
    const m = fromObjects(input, options);
    assert.deepEqual(m.objects, []);
    assert.equal(m.defaultGroup, undefined);
    const found = m.errors.filter((e) => e.source === source && e.field === field);
    assert.ok(found.some((e) => message.test(e.message)), `expected an error at ${source} ${field} matching ${message}; got ${JSON.stringify(m.errors.map(formatMigrationIssue), null, 1)}`);
  });
}

test('an unknown protocol is named as the operator wrote it', () => {
  const m = fromObjects([configMap('address-pools:\n- {name: a, protocol: layer2, addresses: [192.0.2.0/28]}\n- {name: b, protocol: ospf, addresses: [198.51.100.0/28]}\n')]);
  assert.deepEqual(m.objects, []);
  assert.deepEqual(m.errors.map(formatMigrationIssue), ['ConfigMap metallb-system/config: address-pools[1].protocol: unknown protocol "ospf" (layer2 or bgp)']);
});

test('YAML that does not parse is reported by document, before any conversion', () => {
  const { documents, errors: syntax } = parseDocuments('apiVersion: v1\nkind: [\n---\nkind: ConfigMap\n', 'broken.yaml');
  assert.equal(documents.length, 1);
  assert.equal(syntax[0]?.source, 'broken.yaml#1');
  assert.match(syntax[0]?.message ?? '', /^not valid YAML/);
});
