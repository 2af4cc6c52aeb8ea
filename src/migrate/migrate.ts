// `kubectl purelb migrate`, the pure part: MetalLB's and OpenELB's configuration (parsed
// YAML documents, any mix) → purelb.io/v2 ServiceGroups and, where needed, an
// LBNodeAgent, with every warning and error naming its source object and field.
//
// Data flows one way: documents → objects → each source's reader (metallb.ts,
// openelb.ts: SourcePools) → checks across pools (names, overlaps) → builder
// (build.ts) → the project's own validation of every produced object, the one the API
// server and the allocator apply. All or nothing: with any error, no object comes out,
// so a half-converted configuration can never be applied.

import type { KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { resolveServiceGroups } from '../api/configuration.ts';
import type { ServiceGroupObject } from '../api/configuration.ts';
import { LBNodeAgentV2 } from '../api/lbnodeagent.ts';
import { normalizeLBNodeAgent, normalizeServiceGroup, zodIssues } from '../api/normalize.ts';
import { ServiceGroupV2 } from '../api/servicegroup.ts';
import { describeShared, overlappingPairs } from '../ipam/overlap.ts';
import { buildObjects } from './build.ts';
import type { MigratedObject } from './build.ts';
import { isMetalLBConfigMap, readMetalLB } from './metallb.ts';
import { readOpenELB } from './openelb.ts';
import { IssueLog } from './read.ts';
import type { MigrationIssue } from './read.ts';
import { groupOf, labelOf, objectsOf } from './source.ts';
import type { InputDocument, SourceObject, SourcePool } from './source.ts';

export { formatMigrationIssue } from './read.ts';
export type { MigrationIssue } from './read.ts';
export { MIGRATED_DEFAULT, MIGRATED_FROM } from './build.ts';
export type { MigratedObject } from './build.ts';
export type { InputDocument } from './source.ts';

export interface MigrateOptions {
  /** Where purelb-ts runs: the namespace of the objects produced. */
  namespace: string;
  /** What the cluster already has, when it was read: names and pools must not clash with it. */
  existing?: { serviceGroups?: readonly ServiceGroupObject[]; lbNodeAgents?: readonly KubernetesObject[] };
}

export interface Migration {
  /** ServiceGroups in the order of their pools, then the LBNodeAgent if one is needed; empty on any error. */
  objects: MigratedObject[];
  warnings: MigrationIssue[];
  errors: MigrationIssue[];
  /** The group Services naming no pool got in the source: the value for allocator.defaultGroup. */
  defaultGroup: string | undefined;
}

/** The documents of one YAML text, and the syntax errors that make it unusable. */
export function parseDocuments(text: string, origin: string): { documents: InputDocument[]; errors: MigrationIssue[] } {
  const documents: InputDocument[] = [];
  const errors: MigrationIssue[] = [];
  for (const [i, doc] of parseAllDocuments(text).entries()) {
    const where = `${origin}#${i + 1}`;
    if (doc.errors.length > 0) errors.push(...doc.errors.map((e) => ({ source: where, field: '', message: `not valid YAML: ${e.message.split('\n')[0]}` })));
    else documents.push({ origin: where, document: doc.toJS() as unknown });
  }
  return { documents, errors };
}

/** A Kubernetes object name (DNS-1123 subdomain), as the API server requires of a ServiceGroup. */
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A field of another pool, in messages: its fields are paths inside its source object. */
const at = (pool: SourcePool, field: string) => `${pool.source} ${field}`;

function checkNames(pools: readonly SourcePool[], options: MigrateOptions, log: IssueLog): void {
  const seen = new Map<string, SourcePool>();
  const existing = new Set((options.existing?.serviceGroups ?? []).map((g) => g.metadata?.name));
  for (const pool of pools) {
    const issues = log.about(pool.source);
    if (pool.name.length > 253 || !OBJECT_NAME.test(pool.name)) {
      issues.error(
        pool.nameField,
        `"${pool.name}" cannot be a ServiceGroup name (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters): rename the pool, and the Services that name it, first`,
      );
      continue;
    }
    const first = seen.get(pool.name);
    if (first !== undefined) issues.error(pool.nameField, `"${pool.name}" is also the name of ${at(first, first.nameField)}: a ServiceGroup name can be used once`);
    else seen.set(pool.name, pool);
    if (existing.has(pool.name)) issues.error(pool.nameField, `a ServiceGroup named "${pool.name}" exists already in namespace ${options.namespace}`);
  }
}

/** Two pools (or two entries of one) sharing an address: the source refuses them too. */
function checkOverlaps(pools: readonly SourcePool[], log: IssueLog): void {
  const entries = pools.flatMap((pool) => pool.entries.map((entry) => ({ pool, entry })));
  for (const [x, y] of overlappingPairs(entries, (e) => e.entry.span)) {
    const other = x.pool === y.pool ? x.entry.field : at(x.pool, x.entry.field);
    log.about(y.pool.source).error(y.entry.field, `"${y.entry.text}" overlaps "${x.entry.text}" of ${other} on ${describeShared(x.entry.span, y.entry.span)}`);
  }
}

/**
 * Every object through the schemas and the normaliser the API server and the
 * controllers use, and the ServiceGroups through the allocator's whole-configuration
 * step together with the cluster's: what comes out is admitted and put in force.
 */
function validate(objects: readonly MigratedObject[], options: MigrateOptions, log: IssueLog): void {
  for (const obj of objects) {
    const issues = log.about(labelOf(obj.kind, obj.metadata.namespace, obj.metadata.name));
    const exact = obj.kind === 'ServiceGroup' ? ServiceGroupV2.safeParse(obj) : LBNodeAgentV2.safeParse(obj);
    if (!exact.success) for (const i of zodIssues(exact.error, obj)) issues.error(i.field, `${i.message}${i.value === '' ? '' : ` (value ${JSON.stringify(i.value)})`}`);
    const normalized = obj.kind === 'ServiceGroup' ? normalizeServiceGroup(obj) : normalizeLBNodeAgent(obj);
    if (normalized.ok) for (const w of normalized.warnings) issues.warn(w.field, w.message);
    else for (const e of normalized.errors) issues.error(e.field, e.message);
  }
  const produced = objects.filter((o) => o.kind === 'ServiceGroup');
  // Newer than anything in the cluster, so that an overlap is the new group's fault.
  const newest = produced.map((o) => ({ ...o, metadata: { ...o.metadata, creationTimestamp: new Date('9999-12-31T23:59:59Z') } }));
  const conf = resolveServiceGroups([...(options.existing?.serviceGroups ?? []), ...newest]);
  for (const obj of produced) {
    const issues = log.about(labelOf(obj.kind, obj.metadata.namespace, obj.metadata.name));
    for (const e of conf.groups.get(obj.metadata.name)?.errors ?? []) issues.error(e.field, e.message);
  }
}

/** The LBNodeAgent is created, never updated: one of its name in the cluster is the operator's to change. */
function checkAgent(objects: readonly MigratedObject[], options: MigrateOptions, log: IssueLog): void {
  for (const agent of objects.filter((o) => o.kind === 'LBNodeAgent')) {
    if (!(options.existing?.lbNodeAgents ?? []).some((a) => a.metadata?.name === agent.metadata.name)) continue;
    const localInterface = (agent.spec.local as { localInterface: string }).localInterface;
    log.about(labelOf(agent.kind, agent.metadata.namespace, agent.metadata.name)).error(
      '',
      `exists already (the chart creates it): delete it and install the chart with --set defaultLBNodeAgent.create=false, or set its localInterface to ${localInterface} (chart: --set defaultLBNodeAgent.localint='${localInterface}') and migrate the rest from files without the interfaces`,
    );
  }
}

function dispatch(objects: readonly SourceObject[], log: IssueLog): { metallb: SourceObject[]; openelb: SourceObject[] } {
  const metallb: SourceObject[] = [];
  const openelb: SourceObject[] = [];
  for (const obj of objects) {
    const group = groupOf(obj.apiVersion);
    if (group === 'metallb.io' || isMetalLBConfigMap(obj)) metallb.push(obj);
    else if (group === 'network.kubesphere.io') openelb.push(obj);
    else if (obj.apiVersion === 'v1' && obj.kind === 'Service') {
      log.about(obj.label).warn('', "skipped: Services are not converted; they keep their annotations, which the allocator reads as aliases of purelb.io's (chart: allocator.annotationAliases)");
    } else {
      log.about(obj.label).warn('', 'skipped: not a MetalLB or OpenELB configuration');
    }
  }
  return { metallb, openelb };
}

export function migrate(inputs: readonly InputDocument[], options: MigrateOptions): Migration {
  const log = new IssueLog();
  const { objects, rejected } = objectsOf(inputs);
  for (const r of rejected) log.about(r.source).error('', r.message);
  const { metallb, openelb } = dispatch(objects, log);
  const read = [readMetalLB(metallb, log), readOpenELB(openelb, log)];
  const pools = read.flatMap((r) => r.pools);
  if (pools.length === 0 && log.errors.length === 0) log.about('(input)').error('', 'no MetalLB address pool or OpenELB Eip found');
  checkNames(pools, options, log);
  checkOverlaps(pools, log);
  const built = buildObjects(pools, read.flatMap((r) => r.interfaces), options.namespace, log);
  checkAgent(built.objects, options, log);
  if (log.errors.length === 0) validate(built.objects, options, log);
  const failed = log.errors.length > 0;
  return { objects: failed ? [] : built.objects, warnings: log.warnings, errors: log.errors, defaultGroup: failed ? undefined : built.defaultGroup };
}
