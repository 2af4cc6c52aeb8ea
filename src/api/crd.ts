// CustomResourceDefinitions generated from the zod schemas. z.toJSONSchema gives JSON
// Schema 2020-12; Kubernetes wants a structural OpenAPI v3 schema: a `type` on every
// node, no $ref, anyOf only in the int-or-string form, and no `additionalProperties:
// false` (unknown fields are pruned instead). `toStructural` converts and throws on
// anything it does not know, so a new zod construct cannot slip into a CRD unnoticed.

import { stringify } from 'yaml';
import * as z from 'zod';
import { LBNodeAgentSpec, LBNodeAgentStatus } from './lbnodeagent.ts';
import { GROUP, VERSIONS } from './meta.ts';
import { VALIDATIONS_KEY } from './rules.ts';
import { ServiceGroupSpec, ServiceGroupStatus } from './servicegroup.ts';

type Schema = { [key: string]: unknown };

/** Keys copied as they are, in this order (the order of the generated YAML). */
const KEPT = [
  'description',
  'type',
  'format',
  'enum',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'x-kubernetes-int-or-string',
  'anyOf',
  'required',
  'properties',
  'items',
  'additionalProperties',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-validations',
];
const DROPPED = ['$schema', 'propertyNames'];

function isSchema(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isIntOrString(anyOf: unknown): boolean {
  if (!Array.isArray(anyOf) || anyOf.length !== 2) return false;
  const types = anyOf.map((s) => (isSchema(s) ? s.type : undefined)).sort();
  return types[0] === 'integer' && types[1] === 'string';
}

export function toStructural(input: Schema, at = '$'): Schema {
  const s: Schema = { ...input };
  for (const key of DROPPED) delete s[key];
  if (s.additionalProperties === false) delete s.additionalProperties;
  if ('const' in s) {
    s.enum = [s.const];
    delete s.const;
  }
  // zod bounds every z.int() to the safe-integer range; int64 already is wider.
  if (s.type === 'integer') {
    if (s.minimum === Number.MIN_SAFE_INTEGER) delete s.minimum;
    if (s.maximum === Number.MAX_SAFE_INTEGER) delete s.maximum;
  }
  if (s.format === 'date-time') delete s.pattern;
  if ('anyOf' in s) {
    if (!isIntOrString(s.anyOf)) throw new Error(`${at}: anyOf other than integer|string is not structural`);
    // Only this exact form is structural; the branches' bounds are zod's to check.
    s.anyOf = [{ type: 'integer' }, { type: 'string' }];
    s['x-kubernetes-int-or-string'] = true;
  } else if (typeof s.type !== 'string') {
    throw new Error(`${at}: needs exactly one type`);
  }
  const unknown = Object.keys(s).filter((k) => !KEPT.includes(k));
  if (unknown.length > 0) throw new Error(`${at}: cannot convert ${unknown.join(', ')}`);

  const out: Schema = {};
  for (const key of KEPT) {
    const value = s[key];
    if (value === undefined) continue;
    if (key === 'properties' && isSchema(value)) {
      out[key] = Object.fromEntries(
        Object.entries(value).map(([name, child]) => [name, toStructural(child as Schema, `${at}.${name}`)]),
      );
    } else if ((key === 'items' || key === 'additionalProperties') && isSchema(value)) {
      out[key] = toStructural(value, `${at}[]`);
    } else {
      out[key] = value;
    }
  }
  return out;
}

function structural(schema: z.ZodType, at: string): Schema {
  return toStructural(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'throw' }) as Schema, at);
}

/**
 * Without CEL rules: the status is written by the allocator only, with copies of specs
 * that passed admission, and the rules would double the CRD's estimated CEL cost.
 */
export function withoutRules(s: Schema): Schema {
  const out: Schema = {};
  for (const [key, value] of Object.entries(s)) {
    if (key === VALIDATIONS_KEY) continue;
    if (key === 'properties' && isSchema(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([name, child]) => [name, withoutRules(child as Schema)]));
    } else out[key] = isSchema(value) && (key === 'items' || key === 'additionalProperties') ? withoutRules(value) : value;
  }
  return out;
}

interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

interface KindDefinition {
  kind: string;
  plural: string;
  shortNames: string[];
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  columns: PrinterColumn[];
}

const conditionColumn = (type: string, priority?: number): PrinterColumn => ({
  name: type,
  type: 'string',
  jsonPath: `.status.conditions[?(@.type=="${type}")].status`,
  ...(priority ? { priority } : {}),
});

const age: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

export const KINDS: KindDefinition[] = [
  {
    kind: 'ServiceGroup',
    plural: 'servicegroups',
    shortNames: ['sg', 'sgs'],
    description: 'Address pools for Services of type LoadBalancer.',
    spec: ServiceGroupSpec,
    status: ServiceGroupStatus,
    columns: [
      conditionColumn('Ready'),
      { name: 'Allocated-V4', type: 'integer', jsonPath: '.status.allocatedIPv4' },
      { name: 'Available-V4', type: 'string', jsonPath: '.status.availableIPv4' },
      { name: 'Allocated-V6', type: 'integer', jsonPath: '.status.allocatedIPv6' },
      { name: 'Available-V6', type: 'string', jsonPath: '.status.availableIPv6' },
      conditionColumn('Conflict', 1),
      age,
    ],
  },
  {
    kind: 'LBNodeAgent',
    plural: 'lbnodeagents',
    shortNames: ['lbna', 'lbnas'],
    description: 'How the node agents announce load-balancer addresses.',
    spec: LBNodeAgentSpec,
    status: LBNodeAgentStatus,
    columns: [age],
  },
];

export function openAPISchema(def: KindDefinition): Schema {
  return {
    description: def.description,
    type: 'object',
    required: ['spec'],
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: structural(def.spec, `${def.kind}.spec`),
      status: withoutRules(structural(def.status, `${def.kind}.status`)),
    },
  };
}

export function customResourceDefinition(def: KindDefinition): Schema {
  const schema = openAPISchema(def);
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${def.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.kind.toLowerCase(),
        shortNames: def.shortNames,
        categories: ['purelb'],
      },
      scope: 'Namespaced',
      // One schema for every version: a v1 object is a valid v2 object and back (docs/api.md).
      conversion: { strategy: 'None' },
      versions: VERSIONS.map((name, i) => ({
        name,
        served: true,
        storage: i === 0,
        schema: { openAPIV3Schema: schema },
        subresources: { status: {} },
        additionalPrinterColumns: def.columns,
      })),
    },
  };
}

const HEADER = '# Generated by scripts/gen-crds.ts from src/api; do not edit.\n';

/** File name under crds/ → YAML text. */
export function renderCrds(): Map<string, string> {
  return new Map(
    KINDS.map((def) => [
      `${def.plural}.${GROUP}.yaml`,
      HEADER + stringify(customResourceDefinition(def), { lineWidth: 0, aliasDuplicateObjects: false }),
    ]),
  );
}
