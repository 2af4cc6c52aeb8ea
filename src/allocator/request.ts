// What a Service asks of the allocator, decided from the Service and the pool
// configuration alone (no I/O): whether it is ours at all, which ServiceGroup, which
// families, which specific addresses, its sharing key and ports.

import type { V1Service } from '@kubernetes/client-node';
import { parseAddress } from '../ipam/address.ts';
import type { Family } from '../ipam/address.ts';
import type { PoolConfig } from '../ipam/group.ts';
import type { AllocationRequest, IPAM } from '../ipam/ipam.ts';
import { admits, namespaceDefault } from '../api/configuration.ts';
import type { ServiceGroupConfiguration } from '../api/configuration.ts';
import type { Port } from '../ipam/sharing.ts';
import { ANNOTATION_ALIASES, ANNOTATIONS, BRAND, LOAD_BALANCER_CLASS } from '../api/annotations.ts';
import { ingressIPs } from '../api/service.ts';

export interface PoolView {
  config(group: string): PoolConfig | undefined;
  /** The group whose ranges contain `address`. */
  poolOf(address: string): string | undefined;
  /** The v2 group marked `namespaceDefault` for `namespace`, if any. */
  namespaceDefault(namespace: string): string | undefined;
  /** False when the group restricts itself to other namespaces (`enforceNamespaces`). */
  admits(group: string, namespace: string): boolean;
}

/** The view of the configuration in force and the IPAM built from it. */
export function poolViewOf(ipam: IPAM, conf: ServiceGroupConfiguration): PoolView {
  return {
    config: (g) => ipam.poolConfig(g),
    poolOf: (a) => ipam.poolOf(a),
    namespaceDefault: (ns) => namespaceDefault(conf, ns),
    admits: (g, ns) => admits(conf, g, ns),
  };
}

export interface AllocatorPolicy {
  /** Handle Services without `spec.loadBalancerClass` (default true). */
  classless: boolean;
  /** The group used when nothing else names one. */
  defaultGroup: string;
  /** Read MetalLB's and OpenELB's annotations as aliases of ours (default true). */
  aliases: boolean;
}

export const DEFAULT_POLICY: AllocatorPolicy = { classless: true, defaultGroup: 'default', aliases: true };

export type Decision =
  /** Not a LoadBalancer of ours: release whatever it holds. */
  | { kind: 'notOurs'; why: string }
  /** `addressField` names where specific addresses came from, for messages about them. */
  | { kind: 'allocate'; request: AllocationRequest; warnings: string[]; addressField?: string; sharingField?: string; adopted?: boolean }
  /** Ours, but the request cannot be met as written; the message names the field. */
  | { kind: 'invalid'; message: string; warnings: string[] };

export function isOurs(svc: V1Service, policy: AllocatorPolicy): boolean {
  if (svc.spec?.type !== 'LoadBalancer') return false;
  const cls = svc.spec.loadBalancerClass;
  return cls === undefined || cls === '' ? policy.classless : cls === LOAD_BALANCER_CLASS;
}

type Aliased = keyof typeof ANNOTATION_ALIASES;

/** A list annotation's items, so that `a, b` and `b,a` count as the same request. */
const items = (v: string): string => v.split(',').map((x) => x.trim()).filter((x) => x !== '').sort().join(',');

/**
 * The value of one of our annotations, or of an alias of it, and the key it was read
 * from. Ours win over aliases, aliases in their listed order; spellings that disagree
 * give a warning that names both.
 */
export function aliasedAnnotation(svc: V1Service, name: Aliased, policy: AllocatorPolicy, warnings?: string[]): { key: string; value: string } | undefined {
  const annotations = svc.metadata?.annotations ?? {};
  const keys = [ANNOTATIONS[name], ...(policy.aliases ? ANNOTATION_ALIASES[name] : [])];
  const present = keys.map((key) => ({ key, value: annotations[key]?.trim() ?? '' })).filter((p) => p.value !== '');
  const [chosen] = present;
  if (chosen === undefined) return undefined;
  const same = name === 'addresses' ? (a: string, b: string) => items(a) === items(b) : (a: string, b: string) => a === b;
  for (const other of present.slice(1)) {
    if (!same(chosen.value, other.value)) warnings?.push(`${chosen.key} ("${chosen.value}") and ${other.key} ("${other.value}") disagree: using ${chosen.key}`);
  }
  return chosen;
}

/** The sharing key of a Service, from our annotation or an alias of it. */
export function sharingKeyOf(svc: V1Service, policy: AllocatorPolicy, warnings?: string[]): string | undefined {
  return aliasedAnnotation(svc, 'allowSharedIP', policy, warnings)?.value;
}

/** The specific addresses asked for and the field they were read from. */
function requestedAddresses(svc: V1Service, policy: AllocatorPolicy, warnings: string[]): { field: string; addresses: string[] } {
  const annotation = aliasedAnnotation(svc, 'addresses', policy, warnings);
  if (annotation !== undefined) {
    return { field: annotation.key, addresses: annotation.value.split(',').map((a) => a.trim()).filter((a) => a !== '') };
  }
  const legacy = svc.spec?.loadBalancerIP;
  if (legacy !== undefined && legacy !== '') {
    warnings.push(`spec.loadBalancerIP is deprecated: use the annotation ${ANNOTATIONS.addresses}: "${legacy}"`);
    return { field: 'spec.loadBalancerIP', addresses: [legacy] };
  }
  return { field: ANNOTATIONS.addresses, addresses: [] };
}

const ADOPTED_FIELD = 'status.loadBalancer.ingress';

/**
 * The addresses another controller (MetalLB, OpenELB) gave a Service that asks for none:
 * kept as if requested when every one lies in one group's pool, so that a takeover moves
 * no address. A Service of ours is registered from its brand at start-up instead.
 */
function adoptable(svc: V1Service, pools: PoolView, named: string | undefined): string[] {
  if (svc.metadata?.annotations?.[ANNOTATIONS.allocatedBy] === BRAND) return [];
  const shown = ingressIPs(svc);
  if (shown.length === 0 || malformed(ADOPTED_FIELD, shown) !== undefined) return [];
  const owners = new Set(shown.map((a) => pools.poolOf(a)));
  const [owner] = owners;
  if (owners.size !== 1 || owner === undefined || (named !== undefined && named !== owner)) return [];
  return shown;
}

/** Why the requested addresses cannot be honoured whatever the pools: not IPs, or two of one family. */
function malformed(field: string, addresses: readonly string[]): string | undefined {
  const parsed = addresses.map((text) => ({ text, address: parseAddress(text) }));
  const bad = parsed.filter((p) => p.address === undefined).map((p) => `"${p.text}"`);
  if (bad.length > 0) return `${field}: ${bad.join(', ')} ${bad.length === 1 ? 'is not an IP address' : 'are not IP addresses'}`;
  for (const family of ['IPv4', 'IPv6'] as const) {
    const same = parsed.filter((p) => p.address?.family === family).map((p) => p.text);
    if (same.length > 1) return `${field}: more than one ${family} address (${same.join(', ')}); give at most one per family`;
  }
  return undefined;
}

/** The ports a Service's sharing is judged by. */
export function servicePorts(svc: V1Service): Port[] {
  return (svc.spec?.ports ?? []).map((p) => ({ protocol: p.protocol ?? 'TCP', port: p.port }));
}

/** A requested address of a family a single-stack Service cannot have. */
function wrongFamily(svc: V1Service, field: string, addresses: readonly string[]): string | undefined {
  if ((svc.spec?.ipFamilyPolicy ?? 'SingleStack') !== 'SingleStack') return undefined;
  const family = svc.spec?.ipFamilies?.[0] ?? 'IPv4';
  const other = addresses.filter((a) => parseAddress(a)?.family !== family);
  if (other.length === 0) return undefined;
  return `${field}: ${other.join(', ')} is not ${family}, and the Service is ${family} single-stack (spec.ipFamilies, spec.ipFamilyPolicy)`;
}

/** The families to allocate, given what the Service asks and what the group has. */
function chooseFamilies(svc: V1Service, pool: PoolConfig, group: string): { families: Family[] } | { error: string } {
  const asked = (svc.spec?.ipFamilies ?? ['IPv4']).filter((f): f is Family => f === 'IPv4' || f === 'IPv6');
  const policy = svc.spec?.ipFamilyPolicy ?? 'SingleStack';
  const has = (f: Family) => pool.ranges[f].length > 0;
  const primary = asked[0] ?? 'IPv4';
  switch (policy) {
    case 'RequireDualStack': {
      const missing = (['IPv4', 'IPv6'] as const).filter((f) => !has(f));
      if (missing.length > 0) return { error: `spec.ipFamilyPolicy RequireDualStack: ServiceGroup ${group} has no ${missing.join(' or ')} range` };
      return { families: asked.length === 2 ? asked : ['IPv4', 'IPv6'] };
    }
    case 'PreferDualStack': {
      // Degrade to the families the group can serve rather than fail.
      const order: Family[] = asked.length === 2 ? asked : [primary, primary === 'IPv4' ? 'IPv6' : 'IPv4'];
      const families = order.filter(has);
      if (families.length === 0) return { error: `ServiceGroup ${group} has no address range` };
      return { families };
    }
    default:
      if (!has(primary)) return { error: `spec.ipFamilies: ServiceGroup ${group} has no ${primary} range` };
      return { families: [primary] };
  }
}

/**
 * What the allocator registers, before allocating anything, for a Service that holds
 * addresses another controller gave it: what `decide` keeps (derived from it), so that
 * no other Service can take them first.
 */
export function adoption(svc: V1Service, pools: PoolView, policy: AllocatorPolicy): { pool: string; addresses: readonly string[]; sharingKey?: string } | undefined {
  const d = decide(svc, pools, policy);
  if (d.kind !== 'allocate' || d.adopted !== true) return undefined;
  return { pool: d.request.pool, addresses: d.request.addresses ?? [], ...(d.request.sharingKey ? { sharingKey: d.request.sharingKey } : {}) };
}

export function decide(svc: V1Service, pools: PoolView, policy: AllocatorPolicy = DEFAULT_POLICY): Decision {
  if (!isOurs(svc, policy)) {
    const why = svc.spec?.type !== 'LoadBalancer' ? `type is ${svc.spec?.type ?? 'ClusterIP'}` : `loadBalancerClass is ${svc.spec?.loadBalancerClass}`;
    return { kind: 'notOurs', why };
  }
  const warnings: string[] = [];
  const namespace = svc.metadata?.namespace ?? 'default';
  const groupAnnotation = aliasedAnnotation(svc, 'serviceGroup', policy, warnings);
  const named = groupAnnotation?.value;
  const asked = requestedAddresses(svc, policy, warnings);
  const adopted = asked.addresses.length === 0 ? adoptable(svc, pools, named) : [];
  const { field: addressField, addresses } = adopted.length > 0 ? { field: ADOPTED_FIELD, addresses: adopted } : asked;
  const groupField = groupAnnotation?.key ?? ANNOTATIONS.serviceGroup;

  let group: string | undefined;
  if (addresses.length > 0) {
    const problem = malformed(addressField, addresses) ?? wrongFamily(svc, addressField, addresses);
    if (problem !== undefined) return { kind: 'invalid', message: problem, warnings };
    const owners = new Set(addresses.map((a) => pools.poolOf(a) ?? ''));
    if (owners.has('')) {
      const outside = addresses.filter((a) => pools.poolOf(a) === undefined);
      return { kind: 'invalid', message: `${addressField}: ${outside.join(', ')} ${outside.length === 1 ? 'is' : 'are'} in no ServiceGroup's pool`, warnings };
    }
    if (owners.size > 1) {
      return { kind: 'invalid', message: `${addressField}: ${addresses.join(', ')} lie in different ServiceGroups (${[...owners].join(', ')}); all must come from one`, warnings };
    }
    group = [...owners][0] as string;
    if (named !== undefined && named !== group) {
      warnings.push(`${groupField} names ${named}, but the requested address ${addresses.join(', ')} is in ServiceGroup ${group}: using ${group}`);
    }
  } else {
    group = named ?? pools.namespaceDefault(namespace) ?? policy.defaultGroup;
  }

  const config = pools.config(group);
  if (config === undefined) {
    const field = named !== undefined ? `${groupField}: ServiceGroup ${group}` : `no ${ANNOTATIONS.serviceGroup} annotation and the default ServiceGroup ${group}`;
    return { kind: 'invalid', message: `${field} does not exist or is not usable`, warnings };
  }
  if (!pools.admits(group, namespace)) {
    // Named by the field that chose the group (a MetalLB pool annotation reads as such).
    const by = named !== undefined ? `${groupField}: ` : addresses.length > 0 ? `${addressField}: ` : '';
    return { kind: 'invalid', message: `${by}ServiceGroup ${group} does not serve namespace ${namespace} (enforceNamespaces)`, warnings };
  }
  const families = chooseFamilies(svc, config, group);
  if ('error' in families) return { kind: 'invalid', message: families.error, warnings };
  const unwanted = addresses.filter((a) => !families.families.includes(parseAddress(a)?.family as Family));
  if (unwanted.length > 0) {
    return { kind: 'invalid', message: `${addressField}: ${unwanted.join(', ')} is not of the families the Service gets from ServiceGroup ${group} (${families.families.join(', ')})`, warnings };
  }

  const sharing = aliasedAnnotation(svc, 'allowSharedIP', policy, warnings);
  const sharingKey = sharing?.value;
  return {
    kind: 'allocate',
    request: {
      pool: group,
      families: families.families,
      ...(addresses.length > 0 ? { addresses } : {}),
      ...(sharingKey ? { sharingKey } : {}),
      ports: servicePorts(svc),
    },
    warnings,
    ...(addresses.length > 0 ? { addressField } : {}),
    ...(sharing !== undefined ? { sharingField: sharing.key } : {}),
    ...(adopted.length > 0 ? { adopted: true } : {}),
  };
}
