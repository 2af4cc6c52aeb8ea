// MetalLB's configuration read into SourcePools, in its three generations:
//
// - the ConfigMap (`metallb-system/config`, key `config`) of MetalLB 0.12 and older: a
//   YAML document with `address-pools` (each with its `protocol` and
//   `bgp-advertisements`), `peers`, `bgp-communities` and `bfd-profiles`;
// - the deprecated `AddressPool` CRD of 0.13: the same pool in camelCase;
// - the `metallb.io` CRDs of 0.13 and later: `IPAddressPool` says which addresses,
//   `L2Advertisement` / `BGPAdvertisement` say how the pools they select are announced.
//
// Which announcement a pool gets decides `local` or `remote`; what MetalLB does with BGP
// sessions, communities, local preference and BFD is the routing daemon's business in
// purelb-ts, and every such field is warned about.

import { parse as parseYaml, YAMLParseError } from 'yaml';
import { LabelSelector } from '../api/lbnodeagent.ts';
import { selects } from '../api/selector.ts';
import { MIN_AGGREGATION } from '../api/pool.ts';
import { parseEntry } from './addresses.ts';
import type { AddressEntry } from './addresses.ts';
import { absent, fieldAt, FieldReader, isFields } from './read.ts';
import type { Fields, IssueLog } from './read.ts';
import { NAMESPACES_BY_NAME, ROUTING_DAEMON, unknownKind } from './source.ts';
import type { Announce, InterfaceChoice, SourceConfig, SourceObject, SourcePool } from './source.ts';

const HOST = { IPv4: 32, IPv6: 128 } as const;

/** MetalLB's ConfigMap: `metallb-system/config`, or any ConfigMap whose `config` key holds address pools. */
export function isMetalLBConfigMap(obj: SourceObject): boolean {
  if (obj.apiVersion !== 'v1' || obj.kind !== 'ConfigMap') return false;
  if (obj.namespace === 'metallb-system' && obj.name === 'config') return true;
  const data = obj.body.data as Fields | undefined;
  const text = typeof data?.config === 'string' ? data.config : '';
  return /^(address-pools|peers)\s*:/m.test(text);
}

/** The address list of a pool: each entry parsed, each bad one an error naming it. */
export function readAddressList(r: FieldReader, value: unknown, field: string): AddressEntry[] {
  const entries: AddressEntry[] = [];
  (r.nonEmptyList(value, field, 'at least one address range is required') ?? []).forEach((t, i) => {
    const text = r.string(t, fieldAt(field, i));
    if (text === undefined) return;
    const parsed = parseEntry(text, fieldAt(field, i));
    if (parsed.ok) entries.push(parsed.value);
    else r.issues.error(fieldAt(field, i), parsed.message);
  });
  return entries;
}

function aggregationLength(r: FieldReader, value: unknown, field: string, family: 'IPv4' | 'IPv6'): number | undefined {
  const bits = r.integer(value, field);
  if (bits === undefined) return undefined;
  if (bits < MIN_AGGREGATION || bits > HOST[family]) {
    r.issues.error(field, `aggregation length ${bits}: purelb-ts takes /${MIN_AGGREGATION} to /${HOST[family]} for ${family}`);
    return undefined;
  }
  return bits;
}

/** The BGP fields the routing daemon owns in purelb-ts. */
function routingDaemonFields(r: FieldReader, body: Fields, base: string, names: { localPref: string; communities: string; peers?: string }): void {
  r.notExpressible(body[names.localPref], fieldAt(base, names.localPref), ROUTING_DAEMON.localPref);
  r.notExpressible(body[names.communities], fieldAt(base, names.communities), ROUTING_DAEMON.communities);
  if (names.peers) {
    r.notExpressible(body[names.peers], fieldAt(base, names.peers), 'the routing daemon exports every address to all its peers');
  }
}

interface Aggregation {
  readonly IPv4: number;
  readonly IPv6: number;
  /** Where each came from, for the warning when several advertisements disagree. */
  readonly from: string;
}

/**
 * One prefix length per family goes on kube-lb0. Several advertisements of one pool
 * with different lengths (a /32 to one peer, a /24 to another) cannot all be had; the
 * most specific one is kept, as it routes to every node holding the address.
 */
function mostSpecific(r: FieldReader, list: readonly Aggregation[], field: string): { IPv4: number; IPv6: number } {
  if (list.length === 0) return { ...HOST };
  const pick = (family: 'IPv4' | 'IPv6') => {
    const lengths = [...new Set(list.map((a) => a[family]))].sort((a, b) => a - b);
    const chosen = lengths.at(-1) as number;
    if (lengths.length > 1) {
      r.issues.warn(field, `advertisements with ${family} aggregation lengths ${lengths.map((l) => `/${l}`).join(', ')} (${list.map((a) => a.from).join(', ')}): purelb-ts puts one on kube-lb0, the most specific, /${chosen}`);
    }
    return chosen;
  };
  return { IPv4: pick('IPv4'), IPv6: pick('IPv6') };
}

// ---- The ConfigMap and the AddressPool CRD: pools with their own protocol. ----

/** The keys of a protocol pool, in the ConfigMap's kebab-case or the AddressPool CRD's camelCase. */
const SPELLINGS = {
  configMap: {
    autoAssign: 'auto-assign',
    avoidBuggyIPs: 'avoid-buggy-ips',
    bgpAdvertisements: 'bgp-advertisements',
    aggregationLength: 'aggregation-length',
    aggregationLengthV6: 'aggregation-length-v6',
    localPref: 'localpref',
    communities: 'communities',
  },
  crd: {
    autoAssign: 'autoAssign',
    avoidBuggyIPs: 'avoidBuggyIPs',
    bgpAdvertisements: 'bgpAdvertisements',
    aggregationLength: 'aggregationLength',
    aggregationLengthV6: 'aggregationLengthV6',
    localPref: 'localPref',
    communities: 'communities',
  },
} as const;
type Spelling = (typeof SPELLINGS)[keyof typeof SPELLINGS];

interface PoolIdentity {
  source: string;
  origin: string;
  name: string;
  nameField: string;
}

/** `base`: where the pool's fields are (`address-pools[0]`, `spec`); `ownKeys`: more fields it may have (the ConfigMap's `name`). */
function readProtocolPool(r: FieldReader, body: Fields, base: string, ownKeys: readonly string[], spell: Spelling, id: PoolIdentity): SourcePool | undefined {
  const f = (key: string) => fieldAt(base, key);
  r.unknown(body, base, [...ownKeys, 'protocol', 'addresses', spell.autoAssign, spell.avoidBuggyIPs, spell.bgpAdvertisements]);
  const protocol = r.string(body.protocol, f('protocol'));
  let announce: Announce | undefined;
  if (protocol === 'layer2') announce = 'local';
  else if (protocol === 'bgp') announce = 'remote';
  else if (absent(body.protocol)) r.issues.error(f('protocol'), 'protocol is required: layer2 or bgp');
  else if (protocol !== undefined) r.issues.error(f('protocol'), `unknown protocol "${protocol}" (layer2 or bgp)`);
  const entries = readAddressList(r, body.addresses, f('addresses'));
  const autoAssign = r.boolean(body[spell.autoAssign], f(spell.autoAssign)) ?? true;
  const avoid = r.boolean(body[spell.avoidBuggyIPs], f(spell.avoidBuggyIPs)) ?? false;

  const adsField = f(spell.bgpAdvertisements);
  const ads = r.list(body[spell.bgpAdvertisements], adsField) ?? [];
  const aggregations: Aggregation[] = [];
  ads.forEach((a, i) => {
    const at = fieldAt(adsField, i);
    const ad = r.object(a, at);
    if (ad === undefined) return;
    r.unknown(ad, at, [spell.aggregationLength, spell.aggregationLengthV6, spell.localPref, spell.communities]);
    const v4 = aggregationLength(r, ad[spell.aggregationLength], fieldAt(at, spell.aggregationLength), 'IPv4');
    const v6 = aggregationLength(r, ad[spell.aggregationLengthV6], fieldAt(at, spell.aggregationLengthV6), 'IPv6');
    routingDaemonFields(r, ad, at, spell);
    aggregations.push({ IPv4: v4 ?? HOST.IPv4, IPv6: v6 ?? HOST.IPv6, from: at });
  });
  if (protocol === 'layer2' && ads.length > 0) r.issues.warn(adsField, 'ignored: BGP advertisements apply to bgp pools only');
  if (announce === undefined) return undefined;
  return {
    ...id,
    entries,
    entriesField: f('addresses'),
    announce,
    aggregation: announce === 'remote' ? mostSpecific(r, aggregations, adsField) : { ...HOST },
    avoidBuggyIPs: avoid ? f(spell.avoidBuggyIPs) : undefined,
    defaultEverywhere: autoAssign,
    defaultInNamespaces: false,
    defaultField: f(spell.autoAssign),
    namespaces: [],
    namespacesField: '',
    enforceNamespaces: false,
    priority: undefined,
  };
}

function birdPeer(name: string, address: unknown, asn: unknown, myAsn: unknown): string {
  const id = name.replace(/[^A-Za-z0-9_]/g, '_');
  return `${ROUTING_DAEMON.peers}; for this peer: bird.peers: [{name: ${id}, address: ${String(address ?? '?')}, asn: ${String(asn ?? '?')}}]${absent(myAsn) ? '' : `, bird.asn: ${String(myAsn)}`}`;
}

function readConfigMap(obj: SourceObject, log: IssueLog): SourcePool[] {
  const r = new FieldReader(log.about(obj.label));
  const data = r.object(obj.body.data, 'data');
  const text = r.string(data?.config, 'data.config');
  if (text === undefined) {
    if (data?.config === undefined) r.issues.error('data.config', "missing: MetalLB's configuration is a YAML document under the key config");
    return [];
  }
  let root: unknown;
  try {
    root = parseYaml(text);
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` (line ${err.linePos[0].line} of the config)` : '';
    r.issues.error('data.config', `not valid YAML${where}: ${(err as Error).message.split('\n')[0]}`);
    return [];
  }
  if (!isFields(root)) {
    r.issues.error('data.config', root === null || root === undefined ? 'empty: no address pools' : 'must be a YAML mapping with address-pools');
    return [];
  }
  const config = root;
  r.unknown(config, '', ['address-pools', 'peers', 'bgp-communities', 'bfd-profiles']);
  (r.list(config.peers, 'peers') ?? []).forEach((p, i) => {
    const peer = r.object(p, fieldAt('peers', i));
    if (peer) r.issues.warn(fieldAt('peers', i), `not converted: ${birdPeer(`peer${i}`, peer['peer-address'], peer['peer-asn'], peer['my-asn'])}`);
  });
  r.notExpressible(config['bgp-communities'], 'bgp-communities', ROUTING_DAEMON.communities);
  r.notExpressible(config['bfd-profiles'], 'bfd-profiles', ROUTING_DAEMON.bfd);
  const pools: SourcePool[] = [];
  (r.nonEmptyList(config['address-pools'], 'address-pools', 'no address pools') ?? []).forEach((p, i) => {
    const base = fieldAt('address-pools', i);
    const body = r.object(p, base);
    if (body === undefined) return;
    const name = r.string(body.name, fieldAt(base, 'name'));
    if (absent(body.name)) r.issues.error(fieldAt(base, 'name'), 'name is required');
    const pool = readProtocolPool(r, body, base, ['name'], SPELLINGS.configMap, {
      source: obj.label,
      origin: `${obj.label} ${base}`,
      name: name ?? '',
      nameField: fieldAt(base, 'name'),
    });
    if (pool && name !== undefined) pools.push(pool);
  });
  return pools;
}

// ---- The metallb.io CRDs. ----

interface AdvertisementBase {
  readonly label: string;
  readonly selects: (pool: SourceObject) => boolean;
}
type Advertisement =
  | (AdvertisementBase & { readonly kind: 'L2Advertisement'; readonly interfaces: readonly string[] })
  | (AdvertisementBase & { readonly kind: 'BGPAdvertisement'; readonly aggregation: Aggregation });

function readAdvertisement(obj: SourceObject, log: IssueLog): Advertisement {
  const r = new FieldReader(log.about(obj.label));
  const spec = r.object(obj.body.spec, 'spec') ?? {};
  const bgp = obj.kind === 'BGPAdvertisement';
  r.unknown(spec, 'spec', ['ipAddressPools', 'ipAddressPoolSelectors', 'nodeSelectors', ...(bgp ? ['aggregationLength', 'aggregationLengthV6', 'localPref', 'communities', 'peers'] : ['interfaces'])]);
  const names = r.strings(spec.ipAddressPools, 'spec.ipAddressPools') ?? [];
  const selectors: LabelSelector[] = [];
  (r.list(spec.ipAddressPoolSelectors, 'spec.ipAddressPoolSelectors') ?? []).forEach((s, i) => {
    const parsed = LabelSelector.safeParse(s);
    if (parsed.success) selectors.push(parsed.data);
    else r.issues.error(fieldAt('spec.ipAddressPoolSelectors', i), 'not a label selector (matchLabels, matchExpressions)');
  });
  r.notExpressible(
    spec.nodeSelectors,
    'spec.nodeSelectors',
    'purelb-ts announces every pool from all nodes that its LBNodeAgent selects; limit all announcements with the LBNodeAgent spec.nodeSelector, or none',
  );
  const everything = names.length === 0 && selectors.length === 0;
  const chosen = (pool: SourceObject) => pool.namespace === obj.namespace && (everything || names.includes(pool.name) || selectors.some((s) => selects(s, pool.labels)));
  if (!bgp) {
    return { kind: 'L2Advertisement', label: obj.label, selects: chosen, interfaces: r.strings(spec.interfaces, 'spec.interfaces') ?? [] };
  }
  const v4 = aggregationLength(r, spec.aggregationLength, 'spec.aggregationLength', 'IPv4');
  const v6 = aggregationLength(r, spec.aggregationLengthV6, 'spec.aggregationLengthV6', 'IPv6');
  routingDaemonFields(r, spec, 'spec', { localPref: 'localPref', communities: 'communities', peers: 'peers' });
  return { kind: 'BGPAdvertisement', label: obj.label, selects: chosen, aggregation: { IPv4: v4 ?? HOST.IPv4, IPv6: v6 ?? HOST.IPv6, from: obj.label } };
}

function readIPAddressPool(obj: SourceObject, ads: readonly Advertisement[], log: IssueLog): SourcePool {
  const r = new FieldReader(log.about(obj.label));
  const spec = r.object(obj.body.spec, 'spec') ?? {};
  r.unknown(spec, 'spec', ['addresses', 'autoAssign', 'avoidBuggyIPs', 'serviceAllocation']);
  const entries = readAddressList(r, spec.addresses, 'spec.addresses');
  const autoAssign = r.boolean(spec.autoAssign, 'spec.autoAssign') ?? true;
  const avoid = r.boolean(spec.avoidBuggyIPs, 'spec.avoidBuggyIPs') ?? false;

  const allocation = r.object(spec.serviceAllocation, 'spec.serviceAllocation') ?? {};
  r.unknown(allocation, 'spec.serviceAllocation', ['priority', 'namespaces', 'namespaceSelectors', 'serviceSelectors']);
  const priority = r.integer(allocation.priority, 'spec.serviceAllocation.priority');
  const namespaces = r.namespaces(allocation.namespaces, 'spec.serviceAllocation.namespaces');
  const until = namespaces.length > 0 ? 'until then Services there cannot use this group' : 'until then no unannotated Service gets this group';
  r.notExpressible(allocation.namespaceSelectors, 'spec.serviceAllocation.namespaceSelectors', `${NAMESPACES_BY_NAME} (${until})`);
  r.notExpressible(allocation.serviceSelectors, 'spec.serviceAllocation.serviceSelectors', `purelb-ts does not choose groups by Service labels: annotate those Services with purelb.io/service-group: ${obj.name}${namespaces.length > 0 ? '' : ' (no unannotated Service gets this group)'}`);
  const selectorsSet = [allocation.namespaceSelectors, allocation.serviceSelectors].some((s) => Array.isArray(s) && s.length > 0);

  const l2 = ads.filter((a) => a.kind === 'L2Advertisement' && a.selects(obj));
  const bgp = ads.flatMap((a) => (a.kind === 'BGPAdvertisement' && a.selects(obj) ? [a] : []));
  let announce: Announce = 'local';
  if (l2.length === 0 && bgp.length > 0) announce = 'remote';
  else if (l2.length > 0 && bgp.length > 0) {
    r.issues.warn('', `announced by ${[...l2, ...bgp].map((a) => a.label).join(' and ')}: purelb-ts announces a pool one way, so it becomes local (layer 2 where a node has the address in its subnet, kube-lb0 elsewhere) and its addresses on the nodes' subnets are not routed`);
  } else if (l2.length === 0) {
    r.issues.warn('', 'no L2Advertisement or BGPAdvertisement selects this pool: MetalLB gives out its addresses without announcing them; purelb-ts announces them (local)');
  }
  return {
    source: obj.label,
    origin: `metallb.io/${obj.label}`,
    name: obj.name,
    nameField: 'metadata.name',
    entries,
    entriesField: 'spec.addresses',
    announce,
    aggregation: announce === 'remote' ? mostSpecific(r, bgp.map((a) => a.aggregation), '') : { ...HOST },
    avoidBuggyIPs: avoid ? 'spec.avoidBuggyIPs' : undefined,
    defaultEverywhere: autoAssign && namespaces.length === 0 && !selectorsSet,
    defaultInNamespaces: autoAssign && namespaces.length > 0,
    defaultField: 'spec.autoAssign',
    namespaces,
    namespacesField: 'spec.serviceAllocation.namespaces',
    // MetalLB refuses a Service outside the namespaces even when it names the pool.
    enforceNamespaces: namespaces.length > 0,
    priority: priority !== undefined && priority > 0 ? priority : undefined,
  };
}

function warnOther(obj: SourceObject, log: IssueLog): void {
  const issues = log.about(obj.label);
  const spec = (obj.body.spec ?? {}) as Fields;
  switch (obj.kind) {
    case 'BGPPeer':
      issues.warn('', `not converted: ${birdPeer(obj.name, spec.peerAddress, spec.peerASN, spec.myASN)}`);
      return;
    case 'BFDProfile':
      issues.warn('', `not converted: ${ROUTING_DAEMON.bfd}`);
      return;
    case 'Community':
      issues.warn('', `not converted: ${ROUTING_DAEMON.communities}`);
      return;
    case 'ServiceL2Status':
    case 'ServiceBGPStatus':
      issues.warn('', 'skipped: a status MetalLB writes; nothing to convert');
      return;
    default:
      issues.warn('', unknownKind(obj));
  }
}

/** Every MetalLB object of the input: ConfigMaps and metallb.io objects. */
export function readMetalLB(objects: readonly SourceObject[], log: IssueLog): SourceConfig {
  const pools: SourcePool[] = [];
  const interfaces: InterfaceChoice[] = [];
  const ads: Advertisement[] = [];
  for (const obj of objects) {
    if (obj.kind === 'L2Advertisement' || obj.kind === 'BGPAdvertisement') ads.push(readAdvertisement(obj, log));
  }
  const ipPools = objects.filter((o) => o.kind === 'IPAddressPool');
  // A ConfigMap left behind by an upgrade to 0.13: MetalLB no longer reads it.
  const crds = objects.some((o) => o.kind === 'IPAddressPool' || o.kind === 'AddressPool');
  for (const obj of objects) {
    if (obj.kind === 'ConfigMap') {
      if (crds) log.about(obj.label).warn('', 'ignored: MetalLB 0.13 and later read their metallb.io pools, which the input has too, and not this ConfigMap');
      else pools.push(...readConfigMap(obj, log));
    } else if (obj.kind === 'IPAddressPool') {
      pools.push(readIPAddressPool(obj, ads, log));
    } else if (obj.kind === 'AddressPool') {
      const r = new FieldReader(log.about(obj.label));
      const spec = r.object(obj.body.spec, 'spec') ?? {};
      const pool = readProtocolPool(r, spec, 'spec', [], SPELLINGS.crd, {
        source: obj.label,
        origin: `metallb.io/${obj.label}`,
        name: obj.name,
        nameField: 'metadata.name',
      });
      if (pool) pools.push(pool);
    } else if (obj.kind !== 'L2Advertisement' && obj.kind !== 'BGPAdvertisement') {
      warnOther(obj, log);
    }
  }
  for (const ad of ads) {
    const selected = ipPools.filter((p) => ad.selects(p));
    if (selected.length === 0) log.about(ad.label).warn('', 'selects no IPAddressPool of the input: nothing to convert');
    if (ad.kind === 'L2Advertisement' && selected.length > 0) {
      interfaces.push({ source: ad.label, origin: `metallb.io/${ad.label}`, field: 'spec.interfaces', names: ad.interfaces });
    }
  }
  return { pools, interfaces };
}
