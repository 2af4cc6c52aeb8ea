// Pieces shared by both kinds: the API group and versions, object metadata, the
// standard condition, and address counts that stay exact beyond 2^53.

import * as z from 'zod';

export const GROUP = 'purelb.io';
/** Served versions, newest first; the first is the storage version (see docs/api.md). */
export const VERSIONS = ['v2', 'v1'] as const;
export const API_VERSIONS = ['purelb.io/v2', 'purelb.io/v1'] as const;

/** The metadata a manifest must carry; the API server owns the rest. */
export const ObjectMeta = z.looseObject({
  name: z.string().min(1).max(253),
  namespace: z.string().min(1).max(63).optional(),
  generation: z.int().min(0).optional(),
});

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const NamespaceName = z.string().max(63).regex(DNS_LABEL, 'must be a namespace name (a DNS label)');

/** A list without repeats, served as `x-kubernetes-list-type: set` (the API server rejects duplicates). */
export function setOf<T extends z.ZodType>(item: T, maxItems: number) {
  return z
    .array(item)
    .max(maxItems)
    .superRefine((list, ctx) => {
      list.forEach((v, i) => {
        if (list.indexOf(v) !== i) ctx.addIssue({ code: 'custom', message: `duplicate value ${JSON.stringify(v)}`, path: [i], input: v });
      });
    })
    .meta({ 'x-kubernetes-list-type': 'set' });
}

function resourceDocument<K extends string, A extends z.ZodType, S extends z.ZodType, T extends z.ZodType>(
  kind: K,
  apiVersion: A,
  spec: S,
  status: T,
) {
  return z.strictObject({ apiVersion, kind: z.literal(kind), metadata: ObjectMeta, spec, status: status.optional() });
}

/**
 * A whole object as written in a manifest or read from the API server: with exactly the
 * fields of purelb.io/v1, of purelb.io/v2, or with the union served for both versions.
 */
export function resourceDocuments<K extends string, S1 extends z.ZodType, S2 extends z.ZodType, S extends z.ZodType, T extends z.ZodType>(
  kind: K,
  specs: { v1: S1; v2: S2; served: S },
  status: T,
) {
  return {
    v1: resourceDocument(kind, z.literal('purelb.io/v1'), specs.v1, status),
    v2: resourceDocument(kind, z.literal('purelb.io/v2'), specs.v2, status),
    served: resourceDocument(kind, z.enum(API_VERSIONS), specs.served, status),
  };
}

/** metav1.Condition, with the condition types this kind reports. */
export function conditionList<const T extends readonly [string, ...string[]]>(types: T) {
  const condition = z.strictObject({
    type: z.enum(types),
    status: z.enum(['True', 'False', 'Unknown']),
    observedGeneration: z.int().min(0).optional(),
    lastTransitionTime: z.iso.datetime({ offset: true }),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/),
    message: z.string().max(32768),
  });
  return z
    .array(condition)
    .max(types.length)
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });
}

/**
 * A number of addresses: an integer while it is a safe JavaScript integer (every IPv4
 * pool, IPv6 pools up to /76), a decimal string above that (a /64 holds 2^64). Served as
 * int-or-string, so clients written for PureLB's int64 counts read every ordinary pool.
 */
export const AddressCount = z.union([
  z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  z.string().regex(/^[1-9][0-9]{15,38}$/, 'must be a decimal count above 2^53'),
]);
