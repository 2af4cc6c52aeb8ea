// What the MetalLB and OpenELB readers hand to the builder: each address pool of the
// source, in one shape, already checked field by field. The builder turns these into
// ServiceGroups without knowing which load balancer they came from.

import type { AddressEntry } from './addresses.ts';
import { fieldAt, isFields } from './read.ts';
import type { Fields } from './read.ts';

export type Announce = 'local' | 'remote';

/** What to do instead of BGP fields, which belong to the routing daemon in purelb-ts. */
export const ROUTING_DAEMON = {
  peers: 'purelb-ts does not speak BGP: a routing daemon exports the addresses on kube-lb0 (chart: bird.enabled, bird.asn, bird.peers)',
  communities: 'set communities in the routing daemon that exports kube-lb0 (chart: bird.extraConfig)',
  localPref: 'set the local preference in the routing daemon that exports kube-lb0 (chart: bird.extraConfig)',
  bfd: "BFD is the routing daemon's (chart: bfd: true on an entry of bird.peers)",
} as const;

/** The warning for an object of a known group but a kind migrate does not convert. */
export const unknownKind = (obj: { kind: string; apiVersion: string }) => `skipped: migrate does not know the kind ${obj.kind} of ${obj.apiVersion}`;

/** The message for a namespace selector, which purelb-ts cannot evaluate. */
export const NAMESPACES_BY_NAME = "purelb-ts binds a group to namespaces by name: add the namespaces these select to the ServiceGroup's spec.namespaces";

/** One address pool of the source. */
export interface SourcePool {
  /** The object it was read from, as issues name it: `IPAddressPool metallb-system/first-pool`. */
  readonly source: string;
  /** The value of `purelb.io/migrated-from` on the ServiceGroup. */
  readonly origin: string;
  /** The ServiceGroup's name: the pool's own, so that Services naming the pool keep it. */
  readonly name: string;
  readonly nameField: string;
  readonly entries: readonly AddressEntry[];
  /** The field of the address list, for issues about the whole list. */
  readonly entriesField: string;
  readonly announce: Announce;
  /** Prefix length of the address on kube-lb0, per family. */
  readonly aggregation: { readonly IPv4: number; readonly IPv6: number };
  /** MetalLB's avoid-buggy-ips / avoidBuggyIPs: the field, when it is true. */
  readonly avoidBuggyIPs: string | undefined;
  /** Unannotated Services of every namespace may get this pool (MetalLB auto-assign, OpenELB's default Eip). */
  readonly defaultEverywhere: boolean;
  /** Unannotated Services of `namespaces` may get this pool. */
  readonly defaultInNamespaces: boolean;
  /** Where the field deciding the two flags above is, for issues about them. */
  readonly defaultField: string;
  readonly namespaces: readonly string[];
  readonly namespacesField: string;
  /** Services of other namespaces may not use the pool, even by name (MetalLB). */
  readonly enforceNamespaces: boolean;
  /** Lower comes first; undefined after every set one (both MetalLB and OpenELB). */
  readonly priority: number | undefined;
}

/** Interfaces a source restricts layer-2 announcements to; empty: no restriction. */
export interface InterfaceChoice {
  readonly source: string;
  /** As in `purelb.io/migrated-from`: `metallb.io/L2Advertisement metallb-system/l2`. */
  readonly origin: string;
  readonly field: string;
  readonly names: readonly string[];
}

/** What one reader found. */
export interface SourceConfig {
  readonly pools: SourcePool[];
  readonly interfaces: InterfaceChoice[];
}

/** An input document as far as the readers need to know it. */
export interface SourceObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly body: Fields;
  /** `Kind namespace/name`, or `Kind name` for a cluster-scoped object. */
  readonly label: string;
}

export function labelOf(kind: string, namespace: string | undefined, name: string): string {
  return `${kind} ${namespace === undefined ? '' : `${namespace}/`}${name}`;
}

function stringMap(value: unknown): Record<string, string> {
  if (!isFields(value)) return {};
  return Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/** One parsed YAML document and where it came from (`file.yaml#2`, `cluster`). */
export interface InputDocument {
  readonly origin: string;
  readonly document: unknown;
}

/**
 * The objects of parsed YAML documents, with `kind: List` (and typed lists such as
 * `IPAddressPoolList`, whose items may lack apiVersion and kind) unwrapped. Documents
 * that are not Kubernetes objects come back as `rejected` with the reason.
 */
export function objectsOf(inputs: readonly InputDocument[]): { objects: SourceObject[]; rejected: Array<{ source: string; message: string }> } {
  const objects: SourceObject[] = [];
  const rejected: Array<{ source: string; message: string }> = [];
  const visit = (doc: unknown, source: string, inherited?: { apiVersion: string; kind: string }) => {
    if (doc === null || doc === undefined) return;
    if (!isFields(doc)) {
      rejected.push({ source, message: 'not a Kubernetes object' });
      return;
    }
    const apiVersion = typeof doc.apiVersion === 'string' ? doc.apiVersion : inherited?.apiVersion;
    const kind = typeof doc.kind === 'string' ? doc.kind : inherited?.kind;
    if (kind !== undefined && kind.endsWith('List') && Array.isArray(doc.items)) {
      const item = kind === 'List' || apiVersion === undefined ? undefined : { apiVersion, kind: kind.slice(0, -'List'.length) };
      doc.items.forEach((d, i) => visit(d, fieldAt(`${source} items`, i), item));
      return;
    }
    const metadata = isFields(doc.metadata) ? doc.metadata : {};
    const name = typeof metadata.name === 'string' ? metadata.name : undefined;
    if (apiVersion === undefined || kind === undefined || name === undefined) {
      rejected.push({ source, message: 'not a Kubernetes object: apiVersion, kind and metadata.name are required' });
      return;
    }
    const namespace = typeof metadata.namespace === 'string' ? metadata.namespace : undefined;
    objects.push({
      apiVersion,
      kind,
      name,
      namespace,
      labels: stringMap(metadata.labels),
      annotations: stringMap(metadata.annotations),
      body: doc,
      label: labelOf(kind, namespace, name),
    });
  };
  for (const input of inputs) visit(input.document, input.origin);
  return { objects, rejected };
}

/** `metallb.io/v1beta1` → `metallb.io`; `v1` → ''. */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}
