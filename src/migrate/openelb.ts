// OpenELB's Eips (network.kubesphere.io, cluster-scoped) read into SourcePools. An Eip
// is one address block with its announcement mode:
//
// - `layer2`: one node answers ARP/NDP for each address: purelb-ts `local`;
// - `vip`: keepalived (VRRP) keeps each address on one node's interface. purelb-ts's
//   `local` does the same without VRRP: it elects one node per address and moves the
//   address within a second when that node dies, so `vip` becomes `local` too;
// - `bgp` (the default): OpenELB's own BGP speaker announces host routes: purelb-ts
//   `remote`, /32 and /128 on kube-lb0, exported by the routing daemon.
//
// Services without the Eip annotation get an Eip bound to their namespace
// (`namespaces`, by priority), else the Eip annotated as the default one. OpenELB does
// not check the namespaces when a Service names an Eip, so they are no boundary here.

import { parseEntry } from './addresses.ts';
import type { AddressEntry } from './addresses.ts';
import { absent, FieldReader } from './read.ts';
import type { IssueLog } from './read.ts';
import { NAMESPACES_BY_NAME, ROUTING_DAEMON, unknownKind } from './source.ts';
import type { Announce, InterfaceChoice, SourceConfig, SourceObject, SourcePool } from './source.ts';

export const DEFAULT_EIP_ANNOTATION = 'eip.openelb.kubesphere.io/is-default-eip';

const ANNOUNCE: Record<string, Announce> = { layer2: 'local', vip: 'local', bgp: 'remote' };

function readEip(obj: SourceObject, log: IssueLog, interfaces: InterfaceChoice[]): SourcePool | undefined {
  const r = new FieldReader(log.about(obj.label));
  const spec = r.object(obj.body.spec, 'spec') ?? {};
  r.unknown(spec, 'spec', ['address', 'protocol', 'interface', 'disable', 'usingKnownIPs', 'namespaces', 'namespaceSelector', 'priority']);

  const address = r.string(spec.address, 'spec.address');
  let entry: AddressEntry | undefined;
  if (address !== undefined) {
    const parsed = parseEntry(address, 'spec.address');
    if (parsed.ok) entry = parsed.value;
    else r.issues.error('spec.address', parsed.message);
  } else if (absent(spec.address)) {
    r.issues.error('spec.address', 'address is required');
  }

  const protocol = r.string(spec.protocol, 'spec.protocol') ?? 'bgp';
  const announce = ANNOUNCE[protocol];
  if (announce === undefined) r.issues.error('spec.protocol', `unknown protocol "${protocol}" (bgp, layer2 or vip)`);

  const iface = r.string(spec.interface, 'spec.interface');
  if (iface !== undefined && iface !== '') {
    if (announce === 'remote') r.issues.warn('spec.interface', 'ignored: the interface applies to layer2 and vip Eips');
    else if (iface.startsWith('can_reach:')) {
      r.issues.warn('spec.interface', `not converted: purelb-ts chooses the interface by name (LBNodeAgent localInterface) or takes the one of the default route, which is kept; name the interface that reaches ${iface.slice('can_reach:'.length)} if that is another`);
    } else if (announce === 'local') interfaces.push({ source: obj.label, origin: `network.kubesphere.io/${obj.label}`, field: 'spec.interface', names: [iface] });
  }

  const disabled = r.boolean(spec.disable, 'spec.disable') ?? false;
  if (disabled) {
    r.issues.warn('spec.disable', 'purelb-ts cannot stop a group from giving out addresses: the group is converted so that the addresses Services hold stay in a pool, and it is nobody\'s default; Services that name it still get addresses');
  }
  if (r.boolean(spec.usingKnownIPs, 'spec.usingKnownIPs') === true) {
    r.issues.warn('spec.usingKnownIPs', 'ignored: purelb-ts has no such setting');
  }

  const namespaces = r.namespaces(spec.namespaces, 'spec.namespaces');
  r.notExpressible(spec.namespaceSelector, 'spec.namespaceSelector', NAMESPACES_BY_NAME);
  const priority = r.integer(spec.priority, 'spec.priority');

  const marked = obj.annotations[DEFAULT_EIP_ANNOTATION] === 'true';
  if (entry === undefined || announce === undefined) return undefined;
  return {
    source: obj.label,
    origin: `network.kubesphere.io/${obj.label}`,
    name: obj.name,
    nameField: 'metadata.name',
    entries: [entry],
    entriesField: 'spec.address',
    announce,
    aggregation: { IPv4: 32, IPv6: 128 },
    avoidBuggyIPs: undefined,
    defaultEverywhere: marked && !disabled,
    defaultInNamespaces: namespaces.length > 0 && !disabled,
    defaultField: marked ? `metadata.annotations[${DEFAULT_EIP_ANNOTATION}]` : 'spec.namespaces',
    namespaces,
    namespacesField: 'spec.namespaces',
    enforceNamespaces: false,
    priority,
  };
}

/** Every OpenELB object of the input. */
export function readOpenELB(objects: readonly SourceObject[], log: IssueLog): SourceConfig {
  const pools: SourcePool[] = [];
  const interfaces: InterfaceChoice[] = [];
  for (const obj of objects) {
    const issues = log.about(obj.label);
    if (obj.kind === 'Eip') {
      const pool = readEip(obj, log, interfaces);
      if (pool) pools.push(pool);
    } else if (obj.kind === 'BgpConf' || obj.kind === 'BgpPeer') {
      issues.warn('', `not converted: ${ROUTING_DAEMON.peers}`);
    } else {
      issues.warn('', unknownKind(obj));
    }
  }
  return { pools, interfaces };
}
