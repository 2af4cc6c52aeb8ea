// API objects (either served version) → validated domain values the controllers use.
// The zod schemas repeat what the API server checked at admission, so an object stored
// before a CRD change, or a manifest checked offline, gets the same verdict; the IPAM
// then adds the checks that need arithmetic across ranges (overlaps). Every problem
// comes back as a FieldIssue naming the field, ready for an Event or a condition.

import type * as z from 'zod';
import { parseServiceGroupSpec } from '../ipam/group.ts';
import type { PoolConfig } from '../ipam/group.ts';
import type { FieldIssue, Validated } from '../ipam/result.ts';
import { LBNodeAgent, parseDuration } from './lbnodeagent.ts';
import type { LabelSelector } from './lbnodeagent.ts';
import { ServiceGroup } from './servicegroup.ts';

export type { FieldIssue, Validated };

/** `['spec', 'local', 'v4pools', 0, 'pool']` → `spec.local.v4pools[0].pool`, as the API server writes it. */
export function fieldPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const p of path) v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[p] : undefined;
  return v;
}

function shown(value: unknown): string {
  if (typeof value === 'string') return value;
  return value === undefined ? '' : (JSON.stringify(value) ?? String(value));
}

/** One issue per problem; an unknown field is reported at its own path, as `kubectl` does. */
export function zodIssues(error: z.ZodError, input: unknown): FieldIssue[] {
  return error.issues.flatMap((i) =>
    i.code === 'unrecognized_keys'
      ? i.keys.map((k) => ({ field: fieldPath([...i.path, k]), value: shown(valueAt(input, [...i.path, k])), message: 'unknown field' }))
      : [{ field: fieldPath(i.path), value: shown(valueAt(input, i.path)), message: i.message }],
  );
}

/** `spec.local.pool: pool must ... (pool '…')`, for logs and Events. */
export function formatIssue(issue: FieldIssue): string {
  return `${issue.field}: ${issue.message}`;
}

interface Identity {
  name: string;
  namespace: string;
}

function identity(metadata: { name: string; namespace?: string | undefined }): Identity {
  return { name: metadata.name, namespace: metadata.namespace ?? 'default' };
}

// ---- ServiceGroup ----

export interface ServiceGroupConfig extends Identity {
  /** Announcement, ranges per family in allocation order, multiPool / balancePools. */
  pools: PoolConfig;
  /** Namespaces served by default; empty: every namespace. */
  namespaces: readonly string[];
  enforceNamespaces: boolean;
  namespaceDefault: boolean;
}

export function normalizeServiceGroup(object: unknown): Validated<ServiceGroupConfig> {
  const parsed = ServiceGroup.safeParse(object);
  if (!parsed.success) return { ok: false, errors: zodIssues(parsed.error, object) };
  const { metadata, spec } = parsed.data;
  const pools = parseServiceGroupSpec(spec);
  if (!pools.ok) return pools;
  const warnings = [...pools.warnings];
  // IPv6 VIPs are always added without DAD: it would hold a moved address back for a second or more.
  if (spec.local?.skipIPv6DAD === false) {
    warnings.push({ field: 'spec.local.skipIPv6DAD', value: 'false', message: 'ignored: purelb-ts always adds IPv6 addresses without duplicate address detection' });
  }
  return {
    ok: true,
    value: {
      ...identity(metadata),
      pools: pools.value,
      namespaces: spec.namespaces ?? [],
      enforceNamespaces: spec.enforceNamespaces ?? false,
      namespaceDefault: spec.namespaceDefault ?? false,
    },
    warnings,
  };
}

// ---- LBNodeAgent ----

export interface GarpSettings {
  enabled: boolean;
  count: number;
  intervalMs: number;
  initialDelayMs: number;
  /** Check that this node still holds the address before each announcement. */
  verifyBeforeSend: boolean;
}

export interface AddressSettings {
  /** Seconds; 0 means permanent. The agent renews a finite lifetime while it runs. */
  validLifetime: number;
  /** Seconds, at most validLifetime (0 when that is permanent). */
  preferredLifetime: number;
  noPrefixRoute: boolean;
}

export interface LBNodeAgentConfig extends Identity {
  /** Absent: every node. */
  nodeSelector: LabelSelector | undefined;
  /** `default`: the interface of the lowest-metric default route; else the whole name must match. */
  localInterface: 'default' | RegExp;
  dummyInterface: string;
  /** More interfaces whose subnets count as local. */
  interfaces: readonly string[];
  garp: GarpSettings;
  addresses: { local: AddressSettings; dummy: AddressSettings };
}

/**
 * What an absent field means; the only place these values live (the announcer and the
 * docs follow them). Gratuitous announcements are on (the kernel sends none when an
 * address is added), and the first leaves at once: with IPv6 DAD skipped nothing needs
 * to settle, and a failover's budget is under a second. Local-interface addresses get a
 * 5 s lifetime, renewed by the agent: a dead-man switch, so the VIPs of an agent that
 * died while its node lives leave the kernel within 5 s (docs/failover.md); a finite
 * lifetime also keeps CNIs from taking a VIP for the node's address, as in PureLB.
 */
export const LBNODEAGENT_DEFAULTS = {
  localInterface: 'default',
  dummyInterface: 'kube-lb0',
  garp: { enabled: true, count: 3, intervalMs: 500, initialDelayMs: 0, verifyBeforeSend: true },
  addresses: {
    local: { validLifetime: 5, noPrefixRoute: true },
    dummy: { validLifetime: 0, noPrefixRoute: false },
  },
} as const;

function addressSettings(
  given: { validLifetime?: number | undefined; preferredLifetime?: number | undefined; noPrefixRoute?: boolean | undefined } | undefined,
  defaults: { validLifetime: number; noPrefixRoute: boolean },
): AddressSettings {
  const validLifetime = given?.validLifetime ?? defaults.validLifetime;
  return {
    validLifetime,
    // 0 cannot mean "permanent" below a finite valid lifetime (the kernel reads it as deprecated at once).
    preferredLifetime: given?.preferredLifetime || validLifetime,
    noPrefixRoute: given?.noPrefixRoute ?? defaults.noPrefixRoute,
  };
}

export function normalizeLBNodeAgent(object: unknown): Validated<LBNodeAgentConfig> {
  const parsed = LBNodeAgent.safeParse(object);
  if (!parsed.success) return { ok: false, errors: zodIssues(parsed.error, object) };
  return { ok: true, ...fromSpec(identity(parsed.data.metadata), parsed.data.spec) };
}

/** What the agents do when no LBNodeAgent applies to their node. */
export const DEFAULT_LBNODEAGENT_CONFIG: LBNodeAgentConfig = fromSpec({ name: '', namespace: '' }, {}).value;

function fromSpec(id: Identity, spec: LBNodeAgent['spec']): { value: LBNodeAgentConfig; warnings: FieldIssue[] } {
  const local = spec.local ?? {};
  const warnings: FieldIssue[] = [];
  const garp = local.garpConfig ?? {};
  if (local.sendgarp !== undefined && garp.enabled !== undefined && local.sendgarp !== garp.enabled) {
    warnings.push({
      field: 'spec.local.sendgarp',
      value: String(local.sendgarp),
      message: `ignored: garpConfig.enabled (${garp.enabled}) takes precedence`,
    });
  }
  const d = LBNODEAGENT_DEFAULTS;
  const pattern = local.localInterface ?? local.localint ?? d.localInterface;
  const ms = (text: string | undefined, fallback: number) => (text === undefined ? fallback : parseDuration(text)!);
  return {
    value: {
      ...id,
      nodeSelector: spec.nodeSelector,
      localInterface: pattern === 'default' ? 'default' : new RegExp(`^(?:${pattern})$`),
      dummyInterface: local.dummyInterface ?? local.extlbint ?? d.dummyInterface,
      interfaces: local.interfaces ?? [],
      garp: {
        enabled: garp.enabled ?? local.sendgarp ?? d.garp.enabled,
        count: garp.count ?? d.garp.count,
        intervalMs: ms(garp.interval, d.garp.intervalMs),
        initialDelayMs: ms(garp.initialDelay, d.garp.initialDelayMs),
        verifyBeforeSend: garp.verifyBeforeSend ?? d.garp.verifyBeforeSend,
      },
      addresses: {
        local: addressSettings(local.addressConfig?.localInterface, d.addresses.local),
        dummy: addressSettings(local.addressConfig?.dummyInterface, d.addresses.dummy),
      },
    },
    warnings,
  };
}
