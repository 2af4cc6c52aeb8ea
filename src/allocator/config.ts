// The whole pool configuration, built in one pure step from every ServiceGroup. A
// group whose spec is invalid, or whose ranges overlap a group that takes precedence,
// is left out of the new configuration — but its last good version stays in force
// when there is one, so a typo never takes addresses away from working Services.

import { isDeepStrictEqual } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseServiceGroupSpec } from '../ipam/group.ts';
import type { PoolConfig } from '../ipam/group.ts';
import { findOverlaps } from '../ipam/overlap.ts';
import type { FieldIssue } from '../ipam/result.ts';

/** A ServiceGroup as read from the API server, before validation. */
export interface ServiceGroupObject extends KubernetesObject {
  spec?: unknown;
  status?: unknown;
}

export interface GroupState {
  name: string;
  /** The configuration in force; undefined when the group has never been valid. */
  config: PoolConfig | undefined;
  /** Whether `config` is the group's current spec (false: last good kept, or none). */
  current: boolean;
  errors: FieldIssue[];
  warnings: FieldIssue[];
  /** Names of older groups whose ranges the current spec overlaps. */
  conflicts: string[];
  namespaces: string[];
  enforceNamespaces: boolean;
  namespaceDefault: boolean;
}

export interface PoolConfiguration {
  groups: ReadonlyMap<string, GroupState>;
  /** The configurations in force, for the IPAM. */
  pools(): Array<[string, PoolConfig]>;
}

/** An object's creation time in ms (0 when unknown), for oldest-first orderings. */
export function createdAt(obj: KubernetesObject): number {
  const t = obj.metadata?.creationTimestamp;
  return t === undefined ? 0 : new Date(t).getTime();
}

/** Whether the group's status says its current generation lost an overlap. */
function lostBefore(sg: ServiceGroupObject): boolean {
  const status = sg.status as { observedGeneration?: number; conditions?: Array<{ type?: string; status?: string; reason?: string }> } | undefined;
  if (status?.observedGeneration === undefined || status.observedGeneration !== sg.metadata?.generation) return false;
  return (status.conditions ?? []).some((c) => c.type === 'Conflict' && c.status === 'True' && c.reason === 'Overlap');
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/**
 * Builds the configuration from every ServiceGroup. `lastGood` holds the
 * configuration each group had in force before; it is used for groups that are now
 * invalid or conflicting.
 */
export function buildConfiguration(objects: ServiceGroupObject[], lastGood: ReadonlyMap<string, PoolConfig>): PoolConfiguration {
  // Who wins an overlap: first the groups whose configuration is in force and
  // unchanged, then edited groups (an edit that overlaps another group is the edit's
  // fault: it falls back to its last good version), then new groups — those the
  // previous leader found in conflict last, so that a restart (which forgets the last
  // good versions) does not flip the winner. Within a rank, older groups win.
  const entries = objects.map((sg) => {
    const name = sg.metadata?.name ?? '';
    const parsed = parseServiceGroupSpec(sg.spec);
    const previous = lastGood.get(name);
    let rank: number;
    if (previous !== undefined) rank = parsed.ok && isDeepStrictEqual(parsed.value, previous) ? 0 : 1;
    else rank = lostBefore(sg) ? 3 : 2;
    return { sg, name, parsed, rank };
  });
  const ordered = entries.sort((a, b) => a.rank - b.rank || createdAt(a.sg) - createdAt(b.sg) || a.name.localeCompare(b.name));
  const groups = new Map<string, GroupState>();
  const accepted: Array<{ group: string; config: PoolConfig }> = [];

  for (const { sg, name, parsed } of ordered) {
    const spec = (sg.spec ?? {}) as Record<string, unknown>;
    const state: GroupState = {
      name,
      config: undefined,
      current: false,
      errors: [],
      warnings: [],
      conflicts: [],
      namespaces: stringList(spec.namespaces),
      enforceNamespaces: spec.enforceNamespaces === true,
      namespaceDefault: spec.namespaceDefault === true,
    };
    groups.set(name, state);
    if (!parsed.ok) {
      state.errors = [...parsed.errors];
    } else {
      state.warnings = [...parsed.warnings];
      const overlaps = findOverlaps([
        { group: name, ranges: [...parsed.value.ranges.IPv4, ...parsed.value.ranges.IPv6] },
        ...accepted.map((a) => ({ group: a.group, ranges: [...a.config.ranges.IPv4, ...a.config.ranges.IPv6] })),
      ]).filter((o) => o.a.group === name || o.b.group === name);
      if (overlaps.length === 0) {
        state.config = parsed.value;
        state.current = true;
        accepted.push({ group: name, config: parsed.value });
        continue;
      }
      state.conflicts = [...new Set(overlaps.map((o) => (o.a.group === name ? o.b.group : o.a.group)))];
      state.errors = overlaps.map((o) => ({ field: o.a.group === name ? o.a.field : o.b.field, value: o.a.group === name ? o.a.pool : o.b.pool, message: o.message }));
    }
    // Fall back to the last good version if it does not overlap anything accepted.
    const previous = lastGood.get(name);
    if (previous !== undefined) {
      const clash = findOverlaps([
        { group: name, ranges: [...previous.ranges.IPv4, ...previous.ranges.IPv6] },
        ...accepted.map((a) => ({ group: a.group, ranges: [...a.config.ranges.IPv4, ...a.config.ranges.IPv6] })),
      ]).some((o) => o.a.group === name || o.b.group === name);
      if (!clash) {
        state.config = previous;
        accepted.push({ group: name, config: previous });
      }
    }
  }
  return {
    groups,
    pools: () => [...groups.values()].filter((g) => g.config !== undefined).map((g) => [g.name, g.config as PoolConfig]),
  };
}

/** The v2 namespace rules of a configuration, for pool choice. */
export function namespaceDefault(conf: PoolConfiguration, namespace: string): string | undefined {
  for (const g of conf.groups.values()) {
    if (g.config !== undefined && g.namespaceDefault && g.namespaces.includes(namespace)) return g.name;
  }
  return undefined;
}

export function admits(conf: PoolConfiguration, group: string, namespace: string): boolean {
  const g = conf.groups.get(group);
  return g === undefined || !g.enforceNamespaces || g.namespaces.includes(namespace);
}
