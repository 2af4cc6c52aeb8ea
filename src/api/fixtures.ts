// Manifests that must be accepted and a table of malformed ones that must be rejected
// naming the field. The unit tests run them through the zod schemas, the lab test
// (e2e/api/admission.test.ts) through the real API server: one table, two verdicts that
// must agree.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export type Manifest = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };

/** The reference manifests the repository keeps (examples/purelb-guide: PureLB's guide scenario, verbatim). */
export const EXAMPLES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'purelb-guide');
export const FIXTURE_NAMESPACE = 'purelb';

/** The purelb.io documents of the reference scenario, as an operator applies them. */
export function referenceManifests(): Manifest[] {
  const text = readFileSync(path.join(EXAMPLES_DIR, 'servicegroups.yaml'), 'utf8');
  return parseAllDocuments(text).map((d) => d.toJS() as Manifest);
}

function sg(version: 'v1' | 'v2', name: string, spec: unknown): Manifest {
  return { apiVersion: `purelb.io/${version}`, kind: 'ServiceGroup', metadata: { name, namespace: FIXTURE_NAMESPACE }, spec };
}

function lbna(version: 'v1' | 'v2', name: string, spec: unknown): Manifest {
  return { apiVersion: `purelb.io/${version}`, kind: 'LBNodeAgent', metadata: { name, namespace: FIXTURE_NAMESPACE }, spec };
}

/** The reference scenario written for purelb.io/v2: the routed pool becomes `remote`. */
export const V2_REFERENCE: Manifest[] = [
  lbna('v2', 'default', { local: { dummyInterface: 'kube-lb0', localInterface: 'default' } }),
  sg('v2', 'layer2-ippool', { local: { v4pool: { subnet: '10.31.188.64/26', pool: '10.31.188.64-10.31.188.126', aggregation: '/32' } } }),
  sg('v2', 'bgp-ippool', { remote: { v4pool: { subnet: '10.189.0.0/16', pool: '10.189.0.0-10.189.255.254', aggregation: '/32' } } }),
];

/** More shapes found in PureLB's guides and in exported objects. */
export const MORE_GOOD: Manifest[] = [
  sg('v1', 'legacy-flat', { local: { subnet: '192.168.1.0/24', pool: '192.168.1.200-192.168.1.210', aggregation: 'default' } }),
  sg('v1', 'go-client-empties', {
    local: { subnet: '', pool: '', aggregation: '', v4pool: { pool: '192.0.2.0/28', subnet: '192.0.2.0/24', aggregation: '' } },
  }),
  sg('v1', 'dual-stack', {
    local: {
      v4pool: { pool: '192.168.1.200-192.168.1.210', subnet: '192.168.1.0/24', aggregation: 'default' },
      v6pool: { pool: 'fd53:9ef0:8683::1-fd53:9ef0:8683::10', subnet: 'fd53:9ef0:8683::/120', aggregation: 'default' },
    },
  }),
  sg('v1', 'host-bits', { local: { v4pool: { pool: '192.168.1.245/29', subnet: '192.168.1.0/24', aggregation: 'default' } } }),
  sg('v2', 'dual-stack-lists', {
    local: {
      v4pools: [
        { pool: '198.51.100.64/27', subnet: '198.51.100.0/24' },
        { pool: '198.51.100.200 - 198.51.100.210', subnet: '198.51.100.0/24', aggregation: '/32' },
      ],
      v6pools: [{ pool: '2001:DB8:100::10-2001:db8:100:0:0:0:0:20', subnet: '2001:db8:100::/64', aggregation: '/128' }],
      multiPool: true,
      skipIPv6DAD: true,
    },
    namespaces: ['team-a', 'team-b'],
    enforceNamespaces: true,
    namespaceDefault: true,
  }),
  sg('v2', 'remote-v6', {
    remote: {
      aggregation: '/64',
      v4pool: { pool: '203.0.113.0/28', subnet: '203.0.113.0/24', aggregation: '/32' },
      v6pool: { pool: '2001:db8:5::/64', subnet: '2001:db8:5::/48' },
      balancePools: true,
    },
  }),
  lbna('v1', 'garp', {
    local: { localint: 'default', extlbint: 'kube-lb0', sendgarp: true, garpConfig: { enabled: true, initialDelay: '200ms', count: 5, interval: '1s' } },
  }),
  lbna('v2', 'full', {
    nodeSelector: { matchLabels: { 'purelb.io/lab': 'true' }, matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] },
    local: {
      localInterface: 'eth[0-9]+|enp.*',
      dummyInterface: 'kube-lb0',
      interfaces: ['eth1', 'bond0.100'],
      garpConfig: { enabled: true, count: 3, interval: '500ms', initialDelay: '0s', verifyBeforeSend: false },
      addressConfig: {
        localInterface: { validLifetime: 300, preferredLifetime: 120, noPrefixRoute: true },
        dummyInterface: { validLifetime: 0 },
      },
    },
  }),
];

export interface BadCase {
  why: string;
  manifest: Manifest;
  /** The field the error must name, as the API server writes paths. */
  field: string;
  /**
   * false: only the zod schema (and so the components) catch it, because CEL cannot
   * express the check; the lab test proves the API server still accepts it, so the gap
   * stays visible.
   */
  atAdmission?: false;
}

const v4 = (pool: string, subnet = '192.0.2.0/24', aggregation?: string) => ({ pool, subnet, ...(aggregation ? { aggregation } : {}) });
const v6 = (pool: string, subnet = '2001:db8::/64', aggregation?: string) => ({ pool, subnet, ...(aggregation ? { aggregation } : {}) });
const ok4 = v4('192.0.2.0/28');

export const BAD_CASES: BadCase[] = [
  // ServiceGroup, v1 shapes
  { why: 'pool is not an address', manifest: sg('v1', 'pool-garbage', { local: { v4pool: v4('banana') } }), field: 'spec.local.v4pool.pool' },
  { why: 'prefix length beyond 32', manifest: sg('v1', 'pool-prefix', { local: { v4pool: v4('192.0.2.0/33') } }), field: 'spec.local.v4pool.pool' },
  { why: 'range with three ends', manifest: sg('v1', 'pool-3ends', { local: { v4pool: v4('192.0.2.1-192.0.2.5-192.0.2.9') } }), field: 'spec.local.v4pool.pool' },
  { why: 'IPv4 range start after end', manifest: sg('v1', 'v4-order', { local: { v4pool: v4('192.0.2.20-192.0.2.9') } }), field: 'spec.local.v4pool.pool' },
  { why: 'IPv6 range start after end', manifest: sg('v1', 'v6-order', { local: { v6pools: [v6('2001:db8::1:0-2001:db8::ffff')] } }), field: 'spec.local.v6pools[0].pool' },
  { why: 'CIDR pool larger than its subnet', manifest: sg('v1', 'outside-cidr', { local: { v4pool: v4('192.0.2.0/23') } }), field: 'spec.local.v4pool.pool' },
  {
    why: 'range end outside the subnet',
    manifest: sg('v1', 'outside-range', { local: { v4pools: [ok4, v4('192.0.2.250-192.0.3.5')] } }),
    field: 'spec.local.v4pools[1].pool',
  },
  { why: 'subnet is not a CIDR', manifest: sg('v1', 'subnet-garbage', { local: { v4pool: v4('192.0.2.0/28', '192.0.2.0') } }), field: 'spec.local.v4pool.subnet' },
  { why: 'v4pool with an IPv6 subnet', manifest: sg('v1', 'v4-subnet-v6', { local: { v4pool: v4('192.0.2.0/28', '2001:db8::/64') } }), field: 'spec.local.v4pool.subnet' },
  { why: 'v4pool holding IPv6 addresses', manifest: sg('v1', 'v4-holds-v6', { local: { v4pool: v4('2001:db8::/120') } }), field: 'spec.local.v4pool.pool' },
  { why: 'v6pool holding an IPv4 range', manifest: sg('v1', 'v6-holds-v4', { local: { v6pool: v6('192.0.2.1-192.0.2.9') } }), field: 'spec.local.v6pool.pool' },
  { why: 'range mixing families', manifest: sg('v1', 'mixed-range', { local: { pool: '192.0.2.1-2001:db8::1', subnet: '192.0.2.0/24' } }), field: 'spec.local.pool' },
  { why: 'aggregation /33 for IPv4', manifest: sg('v1', 'agg-33', { local: { v4pool: v4('192.0.2.0/28', undefined, '/33') } }), field: 'spec.local.v4pool.aggregation' },
  { why: 'aggregation /7 for IPv6', manifest: sg('v1', 'agg-7', { local: { v6pool: v6('2001:db8::/120', undefined, '/7') } }), field: 'spec.local.v6pool.aggregation' },
  { why: 'aggregation without slash', manifest: sg('v1', 'agg-noslash', { local: { v4pool: v4('192.0.2.0/28', undefined, '32') } }), field: 'spec.local.v4pool.aggregation' },
  { why: 'aggregation is a word', manifest: sg('v1', 'agg-word', { local: { v6pools: [v6('2001:db8::/120', undefined, 'host')] } }), field: 'spec.local.v6pools[0].aggregation' },
  { why: 'v1 flat pool without subnet', manifest: sg('v1', 'flat-nosubnet', { local: { pool: '192.0.2.0/28' } }), field: 'spec.local.subnet' },
  { why: 'v1 flat subnet without pool', manifest: sg('v1', 'flat-nopool', { local: { subnet: '192.0.2.0/24', v4pool: ok4 } }), field: 'spec.local.pool' },
  { why: 'v1 flat aggregation /64 on IPv4', manifest: sg('v1', 'flat-agg', { local: { ...v4('192.0.2.0/28'), aggregation: '/64' } }), field: 'spec.local.aggregation' },
  { why: 'v1 flat pool and subnet of different families', manifest: sg('v1', 'flat-families', { local: v4('192.0.2.0/28', '2001:db8::/64') }), field: 'spec.local.pool' },
  { why: 'v1 flat pool beside v4pool', manifest: sg('v1', 'flat-and-v4pool', { local: { ...v4('192.0.2.0/28'), v4pool: v4('192.0.2.64/28') } }), field: 'spec.local.pool' },
  { why: 'local without any pool', manifest: sg('v1', 'local-empty', { local: {} }), field: 'spec.local' },
  { why: 'only an empty pool list', manifest: sg('v1', 'empty-list', { local: { v4pools: [] } }), field: 'spec.local' },
  { why: 'pool missing', manifest: sg('v1', 'pool-missing', { local: { v4pool: { subnet: '192.0.2.0/24' } } }), field: 'spec.local.v4pool.pool' },
  { why: 'pool is a number', manifest: sg('v1', 'pool-number', { local: { v4pool: { pool: 42, subnet: '192.0.2.0/24' } } }), field: 'spec.local.v4pool.pool' },
  { why: "the migration guide's v4Pool spelling", manifest: sg('v2', 'camel-case', { local: { v4Pool: ok4 } }), field: 'spec.local.v4Pool' },
  { why: 'pool text too long', manifest: sg('v1', 'pool-long', { local: { v4pool: v4(`192.0.2.1-${'9'.repeat(100)}`) } }), field: 'spec.local.v4pool.pool' },
  {
    why: 'more than 32 pools of a family',
    manifest: sg('v2', 'many-pools', { local: { v4pools: Array.from({ length: 33 }, (_, i) => v4(`192.0.2.${i}/32`)) } }),
    field: 'spec.local.v4pools',
  },
  { why: 'spec missing', manifest: { apiVersion: 'purelb.io/v1', kind: 'ServiceGroup', metadata: { name: 'no-spec', namespace: FIXTURE_NAMESPACE } }, field: 'spec' },
  // ServiceGroup, v2 shapes
  { why: 'both local and remote', manifest: sg('v2', 'both', { local: { v4pool: ok4 }, remote: { v4pool: v4('192.0.2.64/28') } }), field: 'spec' },
  { why: 'neither local nor remote', manifest: sg('v2', 'neither', { namespaces: ['team-a'] }), field: 'spec' },
  {
    why: 'multiPool with balancePools',
    manifest: sg('v2', 'multi-balance', { remote: { v4pool: ok4, multiPool: true, balancePools: true } }),
    field: 'spec.remote.balancePools',
  },
  { why: 'enforceNamespaces without namespaces', manifest: sg('v2', 'enforce-none', { local: { v4pool: ok4 }, enforceNamespaces: true }), field: 'spec.enforceNamespaces' },
  { why: 'namespaceDefault without namespaces', manifest: sg('v2', 'default-none', { local: { v4pool: ok4 }, namespaceDefault: true }), field: 'spec.namespaceDefault' },
  { why: 'namespace is not a DNS label', manifest: sg('v2', 'ns-name', { local: { v4pool: ok4 }, namespaces: ['Team_A'] }), field: 'spec.namespaces[0]' },
  { why: 'namespace listed twice', manifest: sg('v2', 'ns-twice', { local: { v4pool: ok4 }, namespaces: ['team-a', 'team-a'] }), field: 'spec.namespaces[1]' },
  {
    why: 'group aggregation /64 inherited by an IPv4 range',
    manifest: sg('v2', 'group-agg', { remote: { aggregation: '/64', v4pool: ok4, v6pool: v6('2001:db8::/120') } }),
    field: 'spec.remote.aggregation',
  },
  { why: 'v1 flat pool under remote', manifest: sg('v2', 'remote-flat', { remote: { ...ok4, v4pool: ok4 } }), field: 'spec.remote.pool' },
  {
    why: 'IPv6 range with a dotted IPv4 tail',
    manifest: sg('v2', 'v6-dotted', { remote: { v6pool: v6('64:ff9b::192.0.2.1-64:ff9b::192.0.2.9', '64:ff9b::/96') } }),
    field: 'spec.remote.v6pool.pool',
  },
  { why: 'IPv4-mapped IPv6 pool', manifest: sg('v2', 'v6-mapped', { remote: { v6pool: v6('::ffff:192.0.2.0/120', '::ffff:0:0/96') } }), field: 'spec.remote.v6pool.pool' },
  {
    why: 'two ranges of the group overlap',
    manifest: sg('v2', 'overlap', { local: { v4pools: [v4('192.0.2.0/28'), v4('192.0.2.8-192.0.2.20')] } }),
    field: 'spec.local.v4pools[1].pool',
    atAdmission: false,
  },
  // LBNodeAgent, v1 shapes
  { why: 'extlbint with a slash', manifest: lbna('v1', 'extlbint-slash', { local: { extlbint: 'kube/lb0' } }), field: 'spec.local.extlbint' },
  { why: 'localint is not a regular expression', manifest: lbna('v1', 'localint-regex', { local: { localint: 'eth(' } }), field: 'spec.local.localint', atAdmission: false },
  { why: 'sendgarp is a string', manifest: lbna('v1', 'sendgarp-string', { local: { sendgarp: 'yes' } }), field: 'spec.local.sendgarp' },
  { why: 'garp count 0', manifest: lbna('v1', 'garp-count', { local: { garpConfig: { count: 0 } } }), field: 'spec.local.garpConfig.count' },
  { why: 'garp interval in words', manifest: lbna('v1', 'garp-interval', { local: { garpConfig: { interval: '5 seconds' } } }), field: 'spec.local.garpConfig.interval' },
  { why: 'garp initial delay above 10s', manifest: lbna('v1', 'garp-delay', { local: { garpConfig: { initialDelay: '1m' } } }), field: 'spec.local.garpConfig.initialDelay' },
  // LBNodeAgent, v2 shapes
  { why: 'localint and localInterface differ', manifest: lbna('v2', 'renamed-differ', { local: { localint: 'eth0', localInterface: 'eth1' } }), field: 'spec.local.localInterface' },
  { why: 'dummyInterface longer than 15', manifest: lbna('v2', 'dummy-long', { local: { dummyInterface: 'kube-lb0-far-too-long' } }), field: 'spec.local.dummyInterface' },
  { why: 'interface name with a space', manifest: lbna('v2', 'iface-space', { local: { interfaces: ['eth 1'] } }), field: 'spec.local.interfaces[0]' },
  {
    why: 'In selector without values',
    manifest: lbna('v2', 'selector-values', { nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'In' }] } }),
    field: 'spec.nodeSelector.matchExpressions[0].values',
  },
  {
    why: 'unknown selector operator',
    manifest: lbna('v2', 'selector-op', { nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'Equals', values: ['a'] }] } }),
    field: 'spec.nodeSelector.matchExpressions[0].operator',
  },
  {
    why: 'valid lifetime below 60 s',
    manifest: lbna('v2', 'lifetime-short', { local: { addressConfig: { localInterface: { validLifetime: 30 } } } }),
    field: 'spec.local.addressConfig.localInterface.validLifetime',
  },
  {
    why: 'preferred lifetime above valid lifetime',
    manifest: lbna('v2', 'lifetime-order', { local: { addressConfig: { dummyInterface: { validLifetime: 120, preferredLifetime: 600 } } } }),
    field: 'spec.local.addressConfig.dummyInterface.preferredLifetime',
  },
  { why: 'misspelt garpConfig', manifest: lbna('v2', 'garp-typo', { local: { garpconfig: { enabled: true } } }), field: 'spec.local.garpconfig' },
];
