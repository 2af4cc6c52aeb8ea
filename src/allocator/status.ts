// ServiceGroup status from the configuration and the IPAM's counts: pure, so that the
// controller writes only when it differs from what the object already shows. It carries
// the record of what is in force (`inForce`), which the agents follow.

import type { GroupState, ServiceGroupObject } from '../api/configuration.ts';
import type { ServiceGroupStatus } from '../api/servicegroup.ts';
import type { PoolStats } from '../ipam/pool.ts';

type Condition = NonNullable<ServiceGroupStatus['conditions']>[number];

/** Exact counts: a number while it is safe, a decimal string beyond 2^53 (IPv6 pools). */
export function count(n: bigint): number | string {
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
}

export function groupStatus(
  obj: ServiceGroupObject,
  state: GroupState,
  stats: PoolStats | undefined,
  outside: ReadonlyArray<{ service: string; address: string }>,
  now: Date = new Date(),
): ServiceGroupStatus {
  const generation = obj.metadata?.generation;
  const previous = (obj.status as { conditions?: Condition[] } | undefined)?.conditions ?? [];
  const condition = (type: Condition['type'], status: Condition['status'], reason: string, message: string): Condition => {
    const old = previous.find((c) => c.type === type);
    const lastTransitionTime = old && old.status === status ? old.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
    return { type, status, ...(generation === undefined ? {} : { observedGeneration: generation }), lastTransitionTime, reason, message };
  };
  const problems = state.errors.map((e) => `${e.field}: ${e.message}`);
  let ready: Condition;
  if (state.current) ready = condition('Ready', 'True', 'InUse', 'the configuration is in use');
  else if (state.config) ready = condition('Ready', 'False', 'LastGoodKept', `the last good configuration stays in force: ${problems.join('; ')}`);
  else ready = condition('Ready', 'False', 'Invalid', problems.join('; ') || 'not usable');
  let conflict: Condition;
  if (state.conflicts.length > 0) {
    conflict = condition('Conflict', 'True', 'Overlap', `overlaps ServiceGroup ${state.conflicts.join(', ')}: ${problems.join('; ')}`);
  } else if (outside.length > 0) {
    const list = outside.slice(0, 10).map((o) => `${o.address} (${o.service})`);
    conflict = condition('Conflict', 'True', 'AddressOutsidePool', `addresses kept outside every range: ${list.join(', ')}${outside.length > 10 ? ', …' : ''}`);
  } else {
    conflict = condition('Conflict', 'False', 'NoConflict', 'no overlap with other groups');
  }
  return {
    ...(state.inForce === undefined ? {} : { inForce: state.inForce }),
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    conditions: [ready, conflict],
    allocatedIPv4: Number(stats?.IPv4.inUse ?? 0n),
    allocatedIPv6: Number(stats?.IPv6.inUse ?? 0n),
    availableIPv4: count(stats?.IPv4.available ?? 0n),
    availableIPv6: count(stats?.IPv6.available ?? 0n),
  };
}
