// ServiceGroup: the address pools a Service can get its load-balancer address from.
//
// Three document schemas: `ServiceGroupV1` and `ServiceGroupV2` accept exactly the
// fields of PureLB's purelb.io/v1 and purelb.io/v2 (for offline checks of manifests),
// and `ServiceGroup` is their union of fields, which the CRD serves for both versions
// and the controllers read (docs/api.md explains why).

import * as z from 'zod';
import { AddressCount, conditionList, NamespaceName, resourceDocuments, setOf } from './meta.ts';
import { groupAggregationShape, legacyPoolShape, MAX_POOLS_PER_FAMILY, poolSpecPoolRules, V4AddressPool, V6AddressPool } from './pool.ts';
import type { PoolSpecFields } from './pool.ts';
import { withRules } from './rules.ts';
import type { Rule } from './rules.ts';

export const SERVICE_GROUP_CONDITIONS = ['Ready', 'Conflict'] as const;

const familyPoolsShape = {
  v4pool: V4AddressPool.optional().describe('One pool of IPv4 addresses.'),
  v6pool: V6AddressPool.optional().describe('One pool of IPv6 addresses.'),
  v4pools: z.array(V4AddressPool).max(MAX_POOLS_PER_FAMILY).optional().describe('Pools of IPv4 addresses.'),
  v6pools: z.array(V6AddressPool).max(MAX_POOLS_PER_FAMILY).optional().describe('Pools of IPv6 addresses.'),
};

const allocationShape = {
  multiPool: z
    .boolean()
    .optional()
    .describe('Give each Service one address from every pool of a family (that has live nodes).'),
  balancePools: z
    .boolean()
    .optional()
    .describe('Allocate from the pool of a family with the fewest addresses in use.'),
};

const skipDadShape = {
  skipIPv6DAD: z.boolean().optional().describe('PureLB: add IPv6 addresses without DAD. purelb-ts always does; false is ignored with a warning.'),
};

/** Rules of `spec.local` / `spec.remote`; which fields exist decides which rules apply. */
function poolSpecRules(section: string, has: { legacy: boolean; allocation: boolean }): Rule<SectionFields>[] {
  const celAny = [
    'has(self.v4pool)',
    'has(self.v6pool)',
    '(has(self.v4pools) && size(self.v4pools) > 0)',
    '(has(self.v6pools) && size(self.v6pools) > 0)',
    ...(has.legacy ? ["(has(self.pool) && self.pool != '')"] : []),
  ];
  const rules: Rule<SectionFields>[] = [
    {
      cel: celAny.join(' || '),
      message: `${section} must define at least one pool: v4pool, v6pool, v4pools or v6pools${has.legacy ? ' (or the v1 pool and subnet)' : ''}`,
      holds: (v) =>
        v.v4pool !== undefined ||
        v.v6pool !== undefined ||
        (v.v4pools?.length ?? 0) > 0 ||
        (v.v6pools?.length ?? 0) > 0 ||
        (has.legacy && !!v.pool),
    },
    ...poolSpecPoolRules(has.legacy),
  ];
  if (has.allocation) {
    rules.push({
      cel: '!(has(self.multiPool) && self.multiPool && has(self.balancePools) && self.balancePools)',
      message: 'balancePools cannot be combined with multiPool',
      field: '.balancePools',
      holds: (v) => !(v.multiPool && v.balancePools),
    });
  }
  return rules;
}

interface SectionFields extends PoolSpecFields {
  multiPool?: boolean | undefined;
  balancePools?: boolean | undefined;
}

function poolSpec<T extends z.ZodRawShape>(section: string, shape: T, has: { legacy: boolean; allocation: boolean }) {
  return withRules(z.strictObject(shape), poolSpecRules(section, has) as Rule<z.output<z.ZodObject<T>>>[]);
}

const LOCAL_DOC =
  'Pools whose addresses are announced on the node: on the local interface when a node has ' +
  'the address in one of its subnets (one node elected per address), else on the dummy interface.';
const REMOTE_DOC = 'Pools whose addresses are announced on the dummy interface of every eligible node, for routing.';

const LocalV1 = poolSpec('local', { ...legacyPoolShape, ...groupAggregationShape, ...familyPoolsShape }, { legacy: true, allocation: false });
const LocalV2 = poolSpec(
  'local',
  { ...familyPoolsShape, ...groupAggregationShape, ...allocationShape, ...skipDadShape },
  { legacy: false, allocation: true },
);
const LocalServed = poolSpec(
  'local',
  { ...legacyPoolShape, ...groupAggregationShape, ...familyPoolsShape, ...allocationShape, ...skipDadShape },
  { legacy: true, allocation: true },
);
const Remote = poolSpec('remote', { ...familyPoolsShape, ...groupAggregationShape, ...allocationShape }, { legacy: false, allocation: true });

const namespaceShape = {
  namespaces: setOf(NamespaceName, 1024)
    .optional()
    .describe('Namespaces this group serves by default; empty means every namespace.'),
  enforceNamespaces: z
    .boolean()
    .optional()
    .describe('Make namespaces a boundary: no Service outside them may allocate here, even by name.'),
  namespaceDefault: z
    .boolean()
    .optional()
    .describe('The group an unannotated Service in one of namespaces gets when several groups serve it.'),
};

interface SpecFields {
  local?: unknown;
  remote?: unknown;
  namespaces?: string[] | undefined;
  enforceNamespaces?: boolean | undefined;
  namespaceDefault?: boolean | undefined;
}

const needsNamespaces = (flag: 'enforceNamespaces' | 'namespaceDefault'): Rule<SpecFields> => ({
  cel: `!has(self.${flag}) || !self.${flag} || (has(self.namespaces) && size(self.namespaces) > 0)`,
  message: `${flag} needs a non-empty namespaces list`,
  field: `.${flag}`,
  holds: (v) => !v[flag] || (v.namespaces?.length ?? 0) > 0,
});

const specRules: Rule<SpecFields>[] = [
  {
    cel: '(has(self.local) ? 1 : 0) + (has(self.remote) ? 1 : 0) == 1',
    message: 'spec must set exactly one of local or remote',
    holds: (v) => (v.local !== undefined) !== (v.remote !== undefined),
  },
  needsNamespaces('enforceNamespaces'),
  needsNamespaces('namespaceDefault'),
];

export const ServiceGroupSpecV1 = z.strictObject({ local: LocalV1.describe(LOCAL_DOC) });

function specV2<L extends z.ZodType>(local: L) {
  const schema = z.strictObject({
    local: local.optional().describe(LOCAL_DOC),
    remote: Remote.optional().describe(REMOTE_DOC),
    ...namespaceShape,
  });
  return withRules(schema, specRules);
}

export const ServiceGroupSpecV2 = specV2(LocalV2);
/** What the CRD serves for both versions and what the controllers read. */
export const ServiceGroupSpec = specV2(LocalServed);

/**
 * The configuration in force, written by the allocator when it accepts a spec: the
 * allocator after a restart and every agent read the last good configuration from here,
 * so a refused edit changes nothing anywhere. Absent: the group was never accepted.
 */
export const InForce = z
  .strictObject({
    generation: z.int().min(0).describe('The generation whose spec this is.'),
    spec: ServiceGroupSpec.describe('A copy of that spec.'),
  })
  .describe('The configuration in force: the last spec the allocator accepted. Absent: none was.');
export type InForce = z.infer<typeof InForce>;

export const ServiceGroupStatus = z.strictObject({
  inForce: InForce.optional(),
  observedGeneration: z.int().min(0).optional().describe('The generation the allocator last acted on.'),
  conditions: conditionList(SERVICE_GROUP_CONDITIONS)
    .optional()
    .describe('Ready: the configuration is in use. Conflict: it overlaps another group or leaves addresses outside every pool.'),
  allocatedIPv4: z.int().min(0).optional().describe('IPv4 addresses held by Services.'),
  allocatedIPv6: z.int().min(0).optional().describe('IPv6 addresses held by Services.'),
  availableIPv4: AddressCount.optional().describe('Free IPv4 addresses: an integer, or a decimal string above 2^53.'),
  availableIPv6: AddressCount.optional().describe('Free IPv6 addresses: an integer, or a decimal string above 2^53.'),
});

const documents = resourceDocuments('ServiceGroup', { v1: ServiceGroupSpecV1, v2: ServiceGroupSpecV2, served: ServiceGroupSpec }, ServiceGroupStatus);
export const { v1: ServiceGroupV1, v2: ServiceGroupV2, served: ServiceGroup } = documents;

export type ServiceGroupV1 = z.infer<typeof ServiceGroupV1>;
export type ServiceGroupV2 = z.infer<typeof ServiceGroupV2>;
export type ServiceGroup = z.infer<typeof ServiceGroup>;
export type ServiceGroupStatus = z.infer<typeof ServiceGroupStatus>;
