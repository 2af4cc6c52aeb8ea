// What a Service asks of the allocator, decided from the Service and the pool
// configuration alone (no I/O): whether it is ours at all, which ServiceGroup, which
// families, which specific addresses, its sharing key and ports.

import type { V1Service } from '@kubernetes/client-node';
import type { Family } from '../ipam/address.ts';
import type { PoolConfig } from '../ipam/group.ts';
import type { AllocationRequest } from '../ipam/ipam.ts';
import type { Port } from '../ipam/sharing.ts';
import { ANNOTATIONS, LOAD_BALANCER_CLASS } from './annotations.ts';

export interface PoolView {
  config(group: string): PoolConfig | undefined;
  /** The group whose ranges contain `address`. */
  poolOf(address: string): string | undefined;
  /** The v2 group marked `namespaceDefault` for `namespace`, if any. */
  namespaceDefault(namespace: string): string | undefined;
  /** False when the group restricts itself to other namespaces (`enforceNamespaces`). */
  admits(group: string, namespace: string): boolean;
}

export interface AllocatorPolicy {
  /** Handle Services without `spec.loadBalancerClass` (default true). */
  classless: boolean;
  /** The group used when nothing else names one. */
  defaultGroup: string;
}

export const DEFAULT_POLICY: AllocatorPolicy = { classless: true, defaultGroup: 'default' };

export type Decision =
  /** Not a LoadBalancer of ours: release whatever it holds. */
  | { kind: 'notOurs'; why: string }
  | { kind: 'allocate'; request: AllocationRequest; warnings: string[] }
  /** Ours, but the request cannot be met as written; the message names the field. */
  | { kind: 'invalid'; message: string; warnings: string[] };

export function isOurs(svc: V1Service, policy: AllocatorPolicy): boolean {
  if (svc.spec?.type !== 'LoadBalancer') return false;
  const cls = svc.spec.loadBalancerClass;
  return cls === undefined || cls === '' ? policy.classless : cls === LOAD_BALANCER_CLASS;
}

function requestedAddresses(svc: V1Service, warnings: string[]): string[] {
  const annotation = svc.metadata?.annotations?.[ANNOTATIONS.addresses];
  if (annotation !== undefined && annotation.trim() !== '') {
    return annotation.split(',').map((a) => a.trim()).filter((a) => a !== '');
  }
  const legacy = svc.spec?.loadBalancerIP;
  if (legacy !== undefined && legacy !== '') {
    warnings.push(`spec.loadBalancerIP is deprecated: use the annotation ${ANNOTATIONS.addresses}: "${legacy}"`);
    return [legacy];
  }
  return [];
}

function servicePorts(svc: V1Service): Port[] {
  return (svc.spec?.ports ?? []).map((p) => ({ protocol: p.protocol ?? 'TCP', port: p.port }));
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

export function decide(svc: V1Service, pools: PoolView, policy: AllocatorPolicy = DEFAULT_POLICY): Decision {
  if (!isOurs(svc, policy)) {
    const why = svc.spec?.type !== 'LoadBalancer' ? `type is ${svc.spec?.type ?? 'ClusterIP'}` : `loadBalancerClass is ${svc.spec?.loadBalancerClass}`;
    return { kind: 'notOurs', why };
  }
  const warnings: string[] = [];
  const namespace = svc.metadata?.namespace ?? 'default';
  const addresses = requestedAddresses(svc, warnings);
  const named = svc.metadata?.annotations?.[ANNOTATIONS.serviceGroup]?.trim() || undefined;

  let group: string | undefined;
  if (addresses.length > 0) {
    const owners = new Set(addresses.map((a) => pools.poolOf(a) ?? ''));
    if (owners.has('')) {
      const outside = addresses.filter((a) => pools.poolOf(a) === undefined);
      return { kind: 'invalid', message: `requested address ${outside.join(', ')} is in no ServiceGroup's pool (${ANNOTATIONS.addresses} / spec.loadBalancerIP)`, warnings };
    }
    if (owners.size > 1) {
      return { kind: 'invalid', message: `requested addresses ${addresses.join(', ')} lie in different ServiceGroups (${[...owners].join(', ')})`, warnings };
    }
    group = [...owners][0] as string;
    if (named !== undefined && named !== group) {
      warnings.push(`${ANNOTATIONS.serviceGroup} names ${named}, but the requested address ${addresses.join(', ')} is in ServiceGroup ${group}: using ${group}`);
    }
  } else {
    group = named ?? pools.namespaceDefault(namespace) ?? policy.defaultGroup;
  }

  const config = pools.config(group);
  if (config === undefined) {
    const field = named !== undefined ? `${ANNOTATIONS.serviceGroup}: ServiceGroup ${group}` : `no ${ANNOTATIONS.serviceGroup} annotation and the default ServiceGroup ${group}`;
    return { kind: 'invalid', message: `${field} does not exist or is not usable`, warnings };
  }
  if (!pools.admits(group, namespace)) {
    return { kind: 'invalid', message: `ServiceGroup ${group} does not serve namespace ${namespace} (enforceNamespaces)`, warnings };
  }
  const families = chooseFamilies(svc, config, group);
  if ('error' in families) return { kind: 'invalid', message: families.error, warnings };

  const sharingKey = svc.metadata?.annotations?.[ANNOTATIONS.allowSharedIP]?.trim();
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
  };
}
