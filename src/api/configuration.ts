// The whole ServiceGroup configuration, decided in one pure step from every object,
// and the one place that says what is in force. MetalLB-style: each spec is parsed and
// validated by the normaliser, then checked against the others (ranges of different
// groups must not overlap); a spec that fails either check is refused and the group's
// last good configuration stays in force.
//
// What is in force is recorded in the group's status (`status.inForce`: generation and
// a copy of the accepted spec), written by the allocator before it allocates from it.
// The agents read only that record, and so does the allocator after a restart: a
// refused edit changes nothing anywhere, and a group never accepted has nothing in force.

import { isDeepStrictEqual } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { PoolConfig } from '../ipam/group.ts';
import { findOverlaps } from '../ipam/overlap.ts';
import type { AddressRange } from '../ipam/range.ts';
import { normalizeServiceGroup } from './normalize.ts';
import type { FieldIssue, ServiceGroupConfig } from './normalize.ts';
import { InForce } from './servicegroup.ts';

/** A ServiceGroup as read from the API server, before validation. */
export interface ServiceGroupObject extends KubernetesObject {
  spec?: unknown;
  status?: unknown;
}

export interface GroupState {
  name: string;
  /** The configuration in force; undefined when the group is not in use. */
  config: ServiceGroupConfig | undefined;
  /** What `status.inForce` must say for `config`. */
  inForce: InForce | undefined;
  /** Whether `config` is the group's current spec (false: last good kept, or none). */
  current: boolean;
  errors: FieldIssue[];
  warnings: FieldIssue[];
  /** Names of groups whose ranges the current spec overlaps. */
  conflicts: string[];
}

export interface ServiceGroupConfiguration {
  readonly groups: ReadonlyMap<string, GroupState>;
}

/** An object's creation time in ms (0 when unknown), for oldest-first orderings. */
export function createdAt(obj: KubernetesObject): number {
  const t = obj.metadata?.creationTimestamp;
  return t === undefined ? 0 : new Date(t).getTime();
}

const nameOf = (obj: ServiceGroupObject) => obj.metadata?.name ?? '';

/** The normaliser on `spec` with the object's identity; the served schema is the same for v1 and v2. */
function normalize(obj: ServiceGroupObject, spec: unknown) {
  const { name, namespace, generation } = obj.metadata ?? {};
  return normalizeServiceGroup({ apiVersion: 'purelb.io/v2', kind: 'ServiceGroup', metadata: { name, namespace, generation }, spec });
}

// Per object as cached by an informer, which replaces an object rather than change it:
// the agents take a snapshot on every Service event, and need not parse the groups again.
const specs = new WeakMap<ServiceGroupObject, ReturnType<typeof normalize>>();
const records = new WeakMap<ServiceGroupObject, { record: InForce; config: ServiceGroupConfig } | undefined>();

function specOf(obj: ServiceGroupObject): ReturnType<typeof normalize> {
  let parsed = specs.get(obj);
  if (parsed === undefined) specs.set(obj, (parsed = normalize(obj, obj.spec)));
  return parsed;
}

interface StatusFields {
  inForce?: unknown;
  observedGeneration?: number;
  conditions?: Array<{ type?: string; status?: string; reason?: string }>;
}

/**
 * The record as written, or as an allocator from before `inForce` wrote it: `Ready=True
 * InUse` for the current generation says that spec is in force. So an upgrade, agents
 * first, changes nothing on the nodes.
 */
function writtenRecord(obj: ServiceGroupObject): unknown {
  const status = obj.status as StatusFields | undefined;
  if (status?.inForce !== undefined) return status.inForce;
  const generation = obj.metadata?.generation;
  const inUse = status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True' && c.reason === 'InUse');
  return inUse && generation !== undefined && status?.observedGeneration === generation ? { generation, spec: obj.spec } : undefined;
}

/** The record in the object's status, when there is one that still parses. */
function recordOf(obj: ServiceGroupObject): { record: InForce; config: ServiceGroupConfig } | undefined {
  if (records.has(obj)) return records.get(obj);
  const parsed = InForce.safeParse(writtenRecord(obj));
  const config = parsed.success ? normalize(obj, parsed.data.spec) : undefined;
  const found = parsed.success && config?.ok ? { record: parsed.data, config: config.value } : undefined;
  records.set(obj, found);
  return found;
}

/** What every group has in force according to its status: the agents' whole view. */
export function inForceConfigs(objects: readonly ServiceGroupObject[]): Map<string, ServiceGroupConfig> {
  const out = new Map<string, ServiceGroupConfig>();
  for (const obj of objects) {
    const found = recordOf(obj);
    if (found) out.set(nameOf(obj), found.config);
  }
  return out;
}

const allRanges = (c: ServiceGroupConfig): AddressRange[] => [...c.pools.ranges.IPv4, ...c.pools.ranges.IPv6];

/**
 * The configuration after this step. Who wins an overlap: first groups whose current
 * spec is in force, then edited groups (an edit that overlaps another group is the
 * edit's fault: it falls back to its record), then groups never accepted; within a
 * rank, older groups win. The ranks come from the records, so a restarted allocator
 * decides as the one before it did.
 */
export function resolveServiceGroups(objects: readonly ServiceGroupObject[]): ServiceGroupConfiguration {
  const entries = objects.map((obj) => {
    const recorded = recordOf(obj);
    const rank = recorded === undefined ? 2 : recorded.record.generation === obj.metadata?.generation ? 0 : 1;
    return { obj, name: nameOf(obj), recorded, rank };
  });
  entries.sort((a, b) => a.rank - b.rank || createdAt(a.obj) - createdAt(b.obj) || a.name.localeCompare(b.name));
  const groups = new Map<string, GroupState>();
  const accepted: Array<{ group: string; ranges: AddressRange[] }> = [];
  const overlapsOf = (name: string, config: ServiceGroupConfig) =>
    findOverlaps([{ group: name, ranges: allRanges(config) }, ...accepted]).filter((o) => o.a.group === name || o.b.group === name);
  const accept = (state: GroupState, config: ServiceGroupConfig, inForce: InForce) => {
    state.config = config;
    state.inForce = inForce;
    accepted.push({ group: state.name, ranges: allRanges(config) });
  };

  for (const { obj, name, recorded } of entries) {
    const state: GroupState = { name, config: undefined, inForce: undefined, current: false, errors: [], warnings: [], conflicts: [] };
    groups.set(name, state);
    const parsed = specOf(obj);
    if (!parsed.ok) {
      state.errors = [...parsed.errors];
    } else {
      state.warnings = [...parsed.warnings];
      const overlaps = overlapsOf(name, parsed.value);
      if (overlaps.length === 0) {
        state.current = true;
        accept(state, parsed.value, { generation: obj.metadata?.generation ?? 0, spec: obj.spec as InForce['spec'] });
        continue;
      }
      const mine = (o: (typeof overlaps)[number]) => (o.a.group === name ? o.a : o.b);
      state.conflicts = [...new Set(overlaps.map((o) => (o.a.group === name ? o.b.group : o.a.group)))];
      state.errors = overlaps.map((o) => ({ field: mine(o).field, value: mine(o).pool, message: o.message }));
    }
    if (recorded !== undefined && overlapsOf(name, recorded.config).length === 0) accept(state, recorded.config, recorded.record);
  }
  return { groups };
}

/** Whether the object's status already records what `state` has in force. */
export function recorded(obj: ServiceGroupObject, state: GroupState): boolean {
  return isDeepStrictEqual((obj.status as { inForce?: unknown } | undefined)?.inForce, state.inForce);
}

/** The pool configurations in force, for the IPAM. */
export function poolsInForce(conf: ServiceGroupConfiguration): Array<[string, PoolConfig]> {
  return [...conf.groups.values()].flatMap((g) => (g.config ? [[g.name, g.config.pools] as [string, PoolConfig]] : []));
}

/** The v2 group marked `namespaceDefault` for `namespace`, if any. */
export function namespaceDefault(conf: ServiceGroupConfiguration, namespace: string): string | undefined {
  for (const g of conf.groups.values()) {
    if (g.config?.namespaceDefault && g.config.namespaces.includes(namespace)) return g.name;
  }
  return undefined;
}

/** False when the group in force restricts itself to other namespaces (`enforceNamespaces`). */
export function admits(conf: ServiceGroupConfiguration, group: string, namespace: string): boolean {
  const c = conf.groups.get(group)?.config;
  return c === undefined || !c.enforceNamespaces || c.namespaces.includes(namespace);
}
