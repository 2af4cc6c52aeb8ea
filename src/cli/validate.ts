// Offline checks of manifests with the same zod schemas the CRDs are generated from:
// each purelb.io document is checked against the exact schema of its version (PureLB's
// v1 or v2 fields), then normalised as the controllers would (ranges parsed, pools
// inside subnets, host bits); the ServiceGroups of a namespace are then checked as one
// configuration by the allocator's own rule (no overlaps across groups); Services get
// their purelb.io annotations checked. No cluster is needed, so this runs in CI before
// anything is applied.

import { parseAllDocuments } from 'yaml';
import type * as z from 'zod';
import { LBNodeAgentV1, LBNodeAgentV2 } from '../api/lbnodeagent.ts';
import { normalizeLBNodeAgent, normalizeServiceGroup, zodIssues } from '../api/normalize.ts';
import type { FieldIssue } from '../api/normalize.ts';
import { ServiceGroupV1, ServiceGroupV2 } from '../api/servicegroup.ts';
import { ANNOTATIONS } from '../api/annotations.ts';
import { resolveServiceGroups } from '../api/configuration.ts';
import type { ServiceGroupObject } from '../api/configuration.ts';
import { parseAddress } from '../ipam/address.ts';

export interface DocumentVerdict {
  /** 1-based position of the document in its file. */
  index: number;
  /** e.g. `ServiceGroup purelb/layer2-ippool (purelb.io/v1)`. */
  what: string;
  errors: FieldIssue[];
  warnings: FieldIssue[];
  /** True when the document is nothing this tool checks (e.g. a ConfigMap). */
  skipped: boolean;
}

type Doc = { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown; annotations?: Record<string, unknown> }; spec?: Record<string, unknown> };

const EXACT: Record<string, Record<string, z.ZodType>> = {
  ServiceGroup: { 'purelb.io/v1': ServiceGroupV1, 'purelb.io/v2': ServiceGroupV2 },
  LBNodeAgent: { 'purelb.io/v1': LBNodeAgentV1, 'purelb.io/v2': LBNodeAgentV2 },
};

function describe(doc: Doc): string {
  const ns = typeof doc.metadata?.namespace === 'string' ? `${doc.metadata.namespace}/` : '';
  const name = typeof doc.metadata?.name === 'string' ? doc.metadata.name : '(no name)';
  return `${String(doc.kind ?? '(no kind)')} ${ns}${name} (${String(doc.apiVersion ?? 'no apiVersion')})`;
}

/** Issues not already reported for the same field and message. */
function merge(into: FieldIssue[], more: readonly FieldIssue[]): void {
  for (const i of more) if (!into.some((j) => j.field === i.field && j.message === i.message)) into.push(i);
}

function checkPurelb(doc: Doc, errors: FieldIssue[], warnings: FieldIssue[]): void {
  const kind = String(doc.kind);
  const apiVersion = String(doc.apiVersion);
  const exact = EXACT[kind]?.[apiVersion];
  if (exact === undefined) {
    errors.push({ field: kind in EXACT ? 'apiVersion' : 'kind', value: kind in EXACT ? apiVersion : kind, message: kind in EXACT ? 'must be purelb.io/v1 or purelb.io/v2' : 'purelb.io has ServiceGroup and LBNodeAgent only' });
    return;
  }
  const parsed = exact.safeParse(doc);
  if (!parsed.success) merge(errors, zodIssues(parsed.error, doc));
  const normalized = kind === 'ServiceGroup' ? normalizeServiceGroup(doc) : normalizeLBNodeAgent(doc);
  if (normalized.ok) merge(warnings, normalized.warnings);
  else merge(errors, normalized.errors);
}

/** The user-set purelb.io annotations of a Service, as the allocator reads them. */
function checkService(doc: Doc, errors: FieldIssue[], warnings: FieldIssue[]): void {
  const annotations = doc.metadata?.annotations ?? {};
  const field = (a: string) => `metadata.annotations[${a}]`;
  const addresses = annotations[ANNOTATIONS.addresses];
  if (addresses !== undefined) {
    const list = String(addresses).split(',').map((a) => a.trim()).filter((a) => a !== '');
    // The allocator's own parser, so that what passes here is what the allocator takes.
    const families = list.map((a) => parseAddress(a)?.family);
    if (list.length === 0 || list.length > 2 || families.includes(undefined)) {
      errors.push({ field: field(ANNOTATIONS.addresses), value: String(addresses), message: 'must be one IP address, or an IPv4 and an IPv6 address separated by a comma' });
    } else if (list.length === 2 && families[0] === families[1]) {
      errors.push({ field: field(ANNOTATIONS.addresses), value: String(addresses), message: 'two addresses must be of different families (one IPv4, one IPv6)' });
    }
  }
  for (const a of [ANNOTATIONS.serviceGroup, ANNOTATIONS.allowSharedIP]) {
    if (annotations[a] !== undefined && String(annotations[a]).trim() === '') errors.push({ field: field(a), value: '', message: 'must not be empty' });
  }
  const lbIP = doc.spec?.loadBalancerIP;
  if (typeof lbIP === 'string' && lbIP !== '') {
    if (parseAddress(lbIP) === undefined) errors.push({ field: 'spec.loadBalancerIP', value: lbIP, message: 'is not an IP address' });
    warnings.push({ field: 'spec.loadBalancerIP', value: lbIP, message: `deprecated: use the annotation ${ANNOTATIONS.addresses}` });
  }
  for (const a of [ANNOTATIONS.allocatedBy, ANNOTATIONS.allocatedFrom, ANNOTATIONS.announcingIPv4, ANNOTATIONS.announcingIPv6]) {
    if (annotations[a] !== undefined) warnings.push({ field: field(a), value: String(annotations[a]), message: 'is written by purelb-ts; a value in a manifest is overwritten' });
  }
}

/** Verdicts for every document of one YAML text (a file may hold several, `---`-separated). */
export function validateText(text: string): DocumentVerdict[] {
  const verdicts: DocumentVerdict[] = [];
  const groups: Array<{ doc: Doc; verdict: DocumentVerdict }> = [];
  for (const [i, parsed] of parseAllDocuments(text).entries()) {
    const index = i + 1;
    if (parsed.errors.length > 0) {
      verdicts.push({ index, what: 'YAML', errors: parsed.errors.map((e) => ({ field: '(document)', value: '', message: e.message })), warnings: [], skipped: false });
      continue;
    }
    const doc = parsed.toJS() as unknown;
    if (doc === null || doc === undefined) continue;
    if (typeof doc !== 'object' || Array.isArray(doc)) {
      verdicts.push({ index, what: 'YAML', errors: [{ field: '(document)', value: '', message: 'is not an object' }], warnings: [], skipped: false });
      continue;
    }
    const d = doc as Doc;
    const errors: FieldIssue[] = [];
    const warnings: FieldIssue[] = [];
    let skipped = false;
    if (typeof d.apiVersion === 'string' && d.apiVersion.startsWith('purelb.io/')) checkPurelb(d, errors, warnings);
    else if (d.apiVersion === 'v1' && d.kind === 'Service') checkService(d, errors, warnings);
    else skipped = true;
    verdicts.push({ index, what: describe(d), errors, warnings, skipped });
    if (d.kind === 'ServiceGroup' && errors.length === 0) groups.push({ doc: d, verdict: verdicts.at(-1) as DocumentVerdict });
  }
  checkAcrossGroups(groups);
  return verdicts;
}

/**
 * Overlaps between the valid ServiceGroups of each namespace, as the allocator would
 * refuse them: the later group (by name, as manifests carry no creation time) is the one
 * refused, and its error names the other.
 */
function checkAcrossGroups(groups: ReadonlyArray<{ doc: Doc; verdict: DocumentVerdict }>): void {
  const byNamespace = Map.groupBy(groups, (g) => String(g.doc.metadata?.namespace ?? 'default'));
  for (const members of byNamespace.values()) {
    const conf = resolveServiceGroups(members.map((g) => g.doc as ServiceGroupObject));
    for (const g of members) merge(g.verdict.errors, conf.groups.get(String(g.doc.metadata?.name))?.errors ?? []);
  }
}

/** `file#2: ServiceGroup purelb/x (purelb.io/v1): error: spec.local.v4pool.pool: … (value "banana")`. */
export function formatVerdicts(file: string, verdicts: readonly DocumentVerdict[]): string[] {
  const lines: string[] = [];
  const shown = (i: FieldIssue) => `${i.field}: ${i.message}${i.value !== '' ? ` (value ${JSON.stringify(i.value)})` : ''}`;
  for (const v of verdicts) {
    const where = `${file}#${v.index}: ${v.what}`;
    if (v.skipped) lines.push(`${where}: skipped (not checked by this tool)`);
    else if (v.errors.length === 0 && v.warnings.length === 0) lines.push(`${where}: ok`);
    for (const e of v.errors) lines.push(`${where}: error: ${shown(e)}`);
    for (const w of v.warnings) lines.push(`${where}: warning: ${shown(w)}`);
  }
  return lines;
}
