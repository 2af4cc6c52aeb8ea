// LBNodeAgent: how the node agents announce addresses. v1 names the interfaces
// `localint` / `extlbint` and has `sendgarp`; v2 renames them `localInterface` /
// `dummyInterface` and adds `interfaces`, `nodeSelector`. `garpConfig` and
// `addressConfig` are in both. As for ServiceGroup, `LBNodeAgent` is the union of the
// fields, served for both versions.

import * as z from 'zod';
import { resourceDocuments, setOf } from './meta.ts';
import { withRules } from './rules.ts';
import type { Rule } from './rules.ts';

// Go's units; the micro sign is written as an escape so that the bundles stay ASCII
// (a single other character makes V8 hold a bundle's whole source in two bytes a character).
const UNITS = 'ns|us|\u00b5s|ms|s|m|h';
const DURATION = new RegExp(`^([0-9]+(\\.[0-9]+)?(${UNITS}))+$`);
const DURATION_PART = new RegExp(`([0-9]+(\\.[0-9]+)?)(${UNITS})`, 'g');
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, '\u00b5s': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
export const MAX_GARP_DELAY = '10s';

/** Milliseconds of a Go duration string (`1.5s`, `100ms`, `1m30s`), or undefined. */
export function parseDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let ms = 0;
  for (const [, value, , unit] of text.matchAll(DURATION_PART)) ms += Number(value) * UNIT_MS[unit!]!;
  return ms;
}

function duration(field: string) {
  const limit = parseDuration(MAX_GARP_DELAY)!;
  return withRules(z.string().max(32), [
    {
      cel: `self.matches('${DURATION.source.replaceAll('\\', '\\\\')}') && duration(self) <= duration('${MAX_GARP_DELAY}')`,
      message: `${field} must be a duration such as 500ms or 1s, at most ${MAX_GARP_DELAY}`,
      holds: (v) => (parseDuration(v) ?? Infinity) <= limit,
    },
  ]);
}

/** A Linux interface name: what the kernel's dev_valid_name accepts. */
function interfaceName(field: string) {
  return withRules(z.string().max(15), [
    {
      cel: "self.matches('^[^/:\\\\s]{1,15}$') && self != '.' && self != '..'",
      message: `${field} must be an interface name: 1 to 15 characters, no '/', ':' or spaces`,
      holds: (v) => /^[^/:\s]{1,15}$/.test(v) && v !== '.' && v !== '..',
    },
  ]);
}

/**
 * `default` (the interface of the lowest-metric default route) or a regular expression
 * matched against the whole interface name. The API server cannot check the expression
 * (CEL has RE2, the agent JavaScript's RegExp), so only zod and the agent do.
 */
function localInterface(field: string) {
  return z
    .string()
    .min(1)
    .max(64)
    .refine((v) => v === 'default' || compiles(v), { message: `${field} must be 'default' or a valid regular expression` });
}

function compiles(pattern: string): boolean {
  try {
    new RegExp(`^(?:${pattern})$`);
    return true;
  } catch {
    return false;
  }
}

export const GarpConfig = z
  .strictObject({
    enabled: z.boolean().optional().describe('Send gratuitous ARP / unsolicited NA after adding an address (default true).'),
    count: z.int().min(1).max(10).optional().describe('How many to send (default 3).'),
    interval: duration('interval').optional().describe('Time between them (default 500ms).'),
    initialDelay: duration('initialDelay').optional().describe('Wait after adding the address (default 0s).'),
    verifyBeforeSend: z
      .boolean()
      .optional()
      .describe('Check before each one that this node still holds the address (default true).'),
  })
  .describe('Gratuitous ARP / unsolicited neighbour advertisements for addresses this node takes over.');

/** The largest lifetime below the kernel's "forever" (0xffffffff). */
const MAX_LIFETIME = 0xfffffffe;

interface LifetimeFields {
  validLifetime?: number | undefined;
  preferredLifetime?: number | undefined;
}

const InterfaceAddressConfig = withRules(
  z.strictObject({
    validLifetime: z
      .int()
      .min(0)
      .max(MAX_LIFETIME)
      .optional()
      .describe('Seconds the address stays valid; 0 = permanent, else at least 60. The agent renews it.'),
    preferredLifetime: z
      .int()
      .min(0)
      .max(MAX_LIFETIME)
      .optional()
      .describe('Seconds it stays preferred; at most validLifetime; unset or 0: validLifetime.'),
    noPrefixRoute: z.boolean().optional().describe('Add the address without a prefix route.'),
  }),
  [
    {
      cel: '!has(self.validLifetime) || self.validLifetime == 0 || self.validLifetime >= 60',
      message: 'validLifetime must be 0 (permanent) or at least 60 seconds',
      field: '.validLifetime',
      holds: (v: LifetimeFields) => v.validLifetime === undefined || v.validLifetime === 0 || v.validLifetime >= 60,
    },
    {
      cel: '!has(self.preferredLifetime) || !has(self.validLifetime) || self.validLifetime == 0 || self.preferredLifetime <= self.validLifetime',
      message: 'preferredLifetime must not exceed validLifetime',
      field: '.preferredLifetime',
      holds: (v: LifetimeFields) =>
        v.preferredLifetime === undefined || !v.validLifetime || v.preferredLifetime <= v.validLifetime,
    },
  ],
);

export const AddressConfig = z
  .strictObject({
    localInterface: InterfaceAddressConfig.optional().describe('Addresses on the local interface (defaults: 5 s, renewed while the agent runs; no prefix route).'),
    dummyInterface: InterfaceAddressConfig.optional().describe('Addresses on the dummy interface (defaults: permanent, prefix route).'),
  })
  .describe('Lifetimes and flags of the addresses the agent adds.');

interface RequirementFields {
  operator: string;
  values?: string[] | undefined;
}

const LabelSelectorRequirement = withRules(
  z.strictObject({
    key: z.string().min(1).max(317),
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
    values: z.array(z.string().max(63)).max(64).optional(),
  }),
  [
    {
      cel: "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0 : !has(self.values) || size(self.values) == 0",
      message: 'values must be non-empty for In and NotIn and empty for Exists and DoesNotExist',
      quote: ['operator'],
      field: '.values',
      holds: (v: RequirementFields) =>
        ['In', 'NotIn'].includes(v.operator) ? (v.values?.length ?? 0) > 0 : (v.values?.length ?? 0) === 0,
    },
  ],
);

export const LabelSelector = z
  .strictObject({
    matchLabels: z.record(z.string().max(317), z.string().max(63)).optional(),
    matchExpressions: z.array(LabelSelectorRequirement).max(32).optional(),
  })
  .meta({ 'x-kubernetes-map-type': 'atomic' })
  .describe('The nodes this configuration applies to; absent or empty: every node.');
export type LabelSelector = z.infer<typeof LabelSelector>;

const v1LocalShape = {
  localint: localInterface('localint').optional().describe("v1 name of localInterface: 'default' or a regular expression."),
  extlbint: interfaceName('extlbint').optional().describe('v1 name of dummyInterface (default kube-lb0).'),
  sendgarp: z.boolean().optional().describe('v1 switch for gratuitous ARP; garpConfig.enabled takes precedence.'),
};

const v2LocalShape = {
  localInterface: localInterface('localInterface')
    .optional()
    .describe("Interface for local addresses: 'default' (lowest-metric default route) or a regular expression."),
  dummyInterface: interfaceName('dummyInterface').optional().describe('Interface for addresses on no local subnet (default kube-lb0).'),
  interfaces: setOf(interfaceName('interfaces[]'), 64)
    .optional()
    .describe('More interfaces whose subnets count as local for the election.'),
};

const sharedLocalShape = { garpConfig: GarpConfig.optional(), addressConfig: AddressConfig.optional() };

interface RenamedFields {
  localint?: string | undefined;
  localInterface?: string | undefined;
  extlbint?: string | undefined;
  dummyInterface?: string | undefined;
}

/** A manifest may carry both names of a setting (e.g. after an edit through the other version) if they agree. */
const sameSetting = (v1: 'localint' | 'extlbint', v2: 'localInterface' | 'dummyInterface'): Rule<RenamedFields> => ({
  cel: `!has(self.${v1}) || !has(self.${v2}) || self.${v1} == self.${v2}`,
  message: `${v1} (v1) and ${v2} (v2) name the same setting and must not differ`,
  quote: [v1, v2],
  field: `.${v2}`,
  holds: (v) => v[v1] === undefined || v[v2] === undefined || v[v1] === v[v2],
});

const LocalV1 = z.strictObject({ ...v1LocalShape, ...sharedLocalShape });
const LocalV2 = z.strictObject({ ...v2LocalShape, ...sharedLocalShape });
const LocalServed = withRules(z.strictObject({ ...v1LocalShape, ...v2LocalShape, ...sharedLocalShape }), [
  sameSetting('localint', 'localInterface'),
  sameSetting('extlbint', 'dummyInterface'),
]);

const LOCAL_DOC = 'How this node announces addresses through the kernel.';

export const LBNodeAgentSpecV1 = z.strictObject({ local: LocalV1.optional().describe(LOCAL_DOC) });
export const LBNodeAgentSpecV2 = z.strictObject({ nodeSelector: LabelSelector.optional(), local: LocalV2.optional().describe(LOCAL_DOC) });
/** What the CRD serves for both versions and what the agents read. */
export const LBNodeAgentSpec = z.strictObject({
  nodeSelector: LabelSelector.optional(),
  local: LocalServed.optional().describe(LOCAL_DOC),
});

/** PureLB's LBNodeAgent has an empty status; kept so that exported objects apply again. */
export const LBNodeAgentStatus = z.strictObject({});

const documents = resourceDocuments('LBNodeAgent', { v1: LBNodeAgentSpecV1, v2: LBNodeAgentSpecV2, served: LBNodeAgentSpec }, LBNodeAgentStatus);
export const { v1: LBNodeAgentV1, v2: LBNodeAgentV2, served: LBNodeAgent } = documents;

export type LBNodeAgentV1 = z.infer<typeof LBNodeAgentV1>;
export type LBNodeAgentV2 = z.infer<typeof LBNodeAgentV2>;
export type LBNodeAgent = z.infer<typeof LBNodeAgent>;
