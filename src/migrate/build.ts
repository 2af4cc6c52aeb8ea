// SourcePools → purelb.io/v2 ServiceGroups (and an LBNodeAgent when the source chose
// interfaces). Decisions that need every pool at once live here: which group
// unannotated Services get, which group is a namespace's default, and the one interface
// setting of all agents.

import { MAX_POOLS_PER_FAMILY } from '../api/pool.ts';
import { FAMILIES } from '../ipam/address.ts';
import type { Family } from '../ipam/address.ts';
import { pieceOf, withoutBuggyAddresses } from './addresses.ts';
import type { PoolPiece } from './addresses.ts';
import type { IssueLog } from './read.ts';
import type { InterfaceChoice, SourcePool } from './source.ts';

/** On every object: the source it was converted from. */
export const MIGRATED_FROM = 'purelb.io/migrated-from';
/** On the group that Services naming no pool got in the source (see docs/migration.md). */
export const MIGRATED_DEFAULT = 'purelb.io/migrated-default';

export interface MigratedObject {
  apiVersion: 'purelb.io/v2';
  kind: 'ServiceGroup' | 'LBNodeAgent';
  metadata: { name: string; namespace: string; annotations: Record<string, string> };
  spec: Record<string, unknown>;
}

/** MetalLB's and OpenELB's order of pools: a set priority first, lower first; then by name. */
function compareByPriority(a: SourcePool, b: SourcePool): number {
  if (a.priority !== b.priority) {
    if (a.priority === undefined) return 1;
    if (b.priority === undefined) return -1;
    return a.priority - b.priority;
  }
  return a.name.localeCompare(b.name);
}

/** purelb-ts's choice among pools of equal priority: the one named `default` is the allocator's default already. */
function compareForDefault(a: SourcePool, b: SourcePool): number {
  if (a.priority === b.priority && (a.name === 'default') !== (b.name === 'default')) return a.name === 'default' ? -1 : 1;
  return compareByPriority(a, b);
}

/** The pool objects of one pool per family, with avoid-buggy-ips applied. */
function poolPieces(pool: SourcePool, log: IssueLog): Record<Family, PoolPiece[]> {
  const issues = log.about(pool.source);
  for (const e of pool.entries) {
    if (e.hostBits) issues.warn(e.field, `host bits set: taken as the whole network ${e.hostBits}, as the source load balancer reads it`);
  }
  const spans = new Map(pool.entries.map((e) => [e, [e.span]]));
  if (pool.avoidBuggyIPs !== undefined) {
    const split = pool.entries.map((e) => [e, withoutBuggyAddresses(e.span, MAX_POOLS_PER_FAMILY)] as const);
    const runs = split.reduce((n, [e, s]) => n + (e.span.family === 'IPv4' ? (s?.length ?? Infinity) : 0), 0);
    if (runs > MAX_POOLS_PER_FAMILY) {
      issues.warn(
        pool.avoidBuggyIPs,
        `not kept: without the addresses ending in .0 and .255 the IPv4 addresses make more than the ${MAX_POOLS_PER_FAMILY} ranges a ServiceGroup holds per family, so they stay whole and Services may get addresses ending in .0 or .255`,
      );
    } else {
      for (const [e, s] of split) {
        if (s?.length === 0) issues.warn(e.field, 'left out: it holds only addresses ending in .0 or .255, which avoid-buggy-ips excludes');
        if (s !== undefined) spans.set(e, s);
      }
    }
  }
  const pieces: Record<Family, PoolPiece[]> = { IPv4: [], IPv6: [] };
  for (const [e, list] of spans) for (const s of list) pieces[s.family].push(pieceOf(e, s));
  for (const family of FAMILIES) {
    if (pieces[family].length > MAX_POOLS_PER_FAMILY) {
      issues.error(pool.entriesField, `${pieces[family].length} ${family} ranges: a ServiceGroup holds at most ${MAX_POOLS_PER_FAMILY} per family`);
    }
  }
  if (pool.entries.length > 0 && pieces.IPv4.length + pieces.IPv6.length === 0) issues.error(pool.entriesField, 'no address is left once avoid-buggy-ips is applied');
  return pieces;
}

function serviceGroup(pool: SourcePool, namespace: string, log: IssueLog): MigratedObject {
  const pieces = poolPieces(pool, log);
  const section: Record<string, unknown> = {};
  for (const [family, one, many] of [
    ['IPv4', 'v4pool', 'v4pools'],
    ['IPv6', 'v6pool', 'v6pools'],
  ] as const) {
    const objects = pieces[family].map((p) => ({ pool: p.pool, subnet: p.subnet, aggregation: `/${pool.aggregation[family]}` }));
    if (objects.length === 1) section[one] = objects[0];
    else if (objects.length > 1) section[many] = objects;
  }
  const spec: Record<string, unknown> = { [pool.announce]: section };
  if (pool.namespaces.length > 0) {
    spec.namespaces = [...pool.namespaces];
    if (pool.enforceNamespaces) spec.enforceNamespaces = true;
    if (pool.defaultInNamespaces) spec.namespaceDefault = true;
  }
  return { apiVersion: 'purelb.io/v2', kind: 'ServiceGroup', metadata: { name: pool.name, namespace, annotations: { [MIGRATED_FROM]: pool.origin } }, spec };
}

/**
 * The group Services naming no pool get. The source may give them any of several pools
 * (MetalLB tries every auto-assign pool, by priority, until one has a free address);
 * purelb-ts gives them one, the allocator's default group (chart value
 * allocator.defaultGroup, `default` unless set). The first pool in the source's order
 * is that group; the others are reachable by name only, and each says so.
 */
function chooseDefault(pools: readonly SourcePool[], log: IssueLog): SourcePool | undefined {
  const candidates = pools.filter((p) => p.defaultEverywhere).sort(compareForDefault);
  const chosen = candidates[0];
  for (const other of candidates.slice(1)) {
    const why = chosen!.priority !== other.priority ? 'it comes first by priority' : chosen!.name === 'default' ? 'it is named default' : 'it comes first by name';
    log.about(other.source).warn(
      other.defaultField,
      `the source also gives these addresses to Services that name no pool (when ${chosen!.name} has none left); purelb-ts gives those Services one group, ${chosen!.name}, as ${why}: annotate Services with purelb.io/service-group: ${other.name} to use this one`,
    );
  }
  if (chosen !== undefined && chosen.name !== 'default') {
    log.about(chosen.source).warn(chosen.defaultField, `Services that name no pool get this group once it is the allocator's default group: install purelb-ts with --set allocator.defaultGroup=${chosen.name}`);
  }
  const named = pools.find((p) => p.name === 'default');
  if (chosen === undefined && named !== undefined) {
    log.about(named.source).warn(
      named.defaultField,
      'purelb-ts gives Services that name no group the group named default, and the source gave this pool only to Services that name it: install purelb-ts with --set allocator.defaultGroup set to a name no group has',
    );
  }
  return chosen;
}

/**
 * Namespace defaults. The source orders several pools bound to one namespace by
 * priority; purelb-ts has no order between two groups marked namespaceDefault for the
 * same namespace (it takes the older), so each later pool is told which namespaces it
 * shares.
 */
function warnSharedNamespaces(pools: readonly SourcePool[], log: IssueLog): void {
  const bound = pools.filter((p) => p.defaultInNamespaces).sort(compareByPriority);
  const shared = new Map<SourcePool, { first: SourcePool; namespaces: string[] }>();
  for (const [i, pool] of bound.entries()) {
    for (const ns of pool.namespaces) {
      const first = bound.slice(0, i).find((p) => p.namespaces.includes(ns));
      if (first === undefined) continue;
      const entry = shared.get(pool) ?? { first, namespaces: [] };
      entry.namespaces.push(ns);
      shared.set(pool, entry);
    }
  }
  for (const [pool, { first, namespaces }] of shared) {
    log.about(pool.source).warn(
      pool.namespacesField,
      `shared with ${first.name}, which comes first in the source's order, in ${namespaces.join(', ')}: purelb-ts has no order between default groups of one namespace and takes the oldest (by creation time, then name); annotate the Services there that need this group`,
    );
  }
}

const escapeRegExp = (name: string) => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * One LBNodeAgent `default` when a source restricted layer-2 announcements to named
 * interfaces. purelb-ts has one interface setting for every pool and puts local
 * addresses on one interface per node (the lowest-numbered whose name matches).
 */
function lbNodeAgent(choices: readonly InterfaceChoice[], namespace: string, log: IssueLog): MigratedObject | undefined {
  const restricted = choices.filter((c) => c.names.length > 0);
  if (restricted.length === 0) return undefined;
  const names = [...new Set(restricted.flatMap((c) => c.names))];
  const pattern = names.map(escapeRegExp).join('|');
  const first = restricted[0]!;
  if (new Set(choices.map((c) => c.names.join('|'))).size > 1) {
    log.about(first.source).warn(first.field, `interfaces differ between ${choices.map((c) => c.source).join(', ')}: purelb-ts has one interface setting for every pool, localInterface ${pattern}`);
  }
  if (names.length > 1) {
    log.about(first.source).warn(first.field, `purelb-ts puts local addresses on one interface per node: the lowest-numbered one whose name matches ${pattern}`);
  }
  return {
    apiVersion: 'purelb.io/v2',
    kind: 'LBNodeAgent',
    metadata: { name: 'default', namespace, annotations: { [MIGRATED_FROM]: restricted.map((c) => `${c.origin} ${c.field}`).join(', ') } },
    spec: { local: { localInterface: pattern } },
  };
}

export interface Built {
  objects: MigratedObject[];
  defaultGroup: string | undefined;
}

export function buildObjects(pools: readonly SourcePool[], interfaces: readonly InterfaceChoice[], namespace: string, log: IssueLog): Built {
  const chosen = chooseDefault(pools, log);
  warnSharedNamespaces(pools, log);
  const objects = pools.map((p) => {
    const sg = serviceGroup(p, namespace, log);
    if (p === chosen) sg.metadata.annotations[MIGRATED_DEFAULT] = 'true';
    return sg;
  });
  const agent = lbNodeAgent(interfaces, namespace, log);
  return { objects: agent ? [...objects, agent] : objects, defaultGroup: chosen?.name };
}
