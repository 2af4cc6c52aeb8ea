// What this node should announce, as a pure function of a snapshot: the branded
// Services and their addresses, the ServiceGroups, the live members and their subnets,
// the endpoints (for externalTrafficPolicy: Local) and this node's interfaces.
//
// An address inside a subnet of the local interface is *local*: one member wins it
// (smallest SHA-256 of `node#ip`) and puts it on that interface. Any other address —
// or any address of a `remote` group — is *non-local*: every eligible node puts it on
// the dummy interface with the group's aggregation, for the routing daemon to export.

import { parseAddress, parseCidr } from '../ipam/address.ts';
import type { Cidr, Family } from '../ipam/address.ts';
import type { PoolConfig } from '../ipam/group.ts';
import { spanContains } from '../ipam/range.ts';
import { winner } from '../election/winner.ts';
import type { AddressSettings, LBNodeAgentConfig } from '../api/normalize.ts';
import type { AddressSpec } from '../netlink/host-network.ts';

export interface Member {
  node: string;
  /** CIDRs of the member's local interface(s), e.g. `198.51.100.0/24`. */
  subnets: readonly string[];
  /** Where its heartbeats come from (`ip:port`); absent when it runs without them. */
  heartbeat?: string;
}

export interface ServiceView {
  /** `namespace/name`. */
  key: string;
  ips: readonly string[];
  /** `purelb.io/allocated-from`. */
  group: string | undefined;
  /** externalTrafficPolicy: Local. */
  local: boolean;
  /** Nodes with a ready or serving endpoint (used only when `local`). */
  endpointNodes: ReadonlySet<string>;
}

export interface NodeView {
  node: string;
  localInterface: { name: string; subnets: readonly string[] } | undefined;
  dummyInterface: string;
  /** False when the LBNodeAgent's nodeSelector leaves this node out. */
  eligible: boolean;
}

export interface Snapshot {
  self: NodeView;
  /** Live members, this node included when it is live. */
  members: readonly Member[];
  services: readonly ServiceView[];
  groups: ReadonlyMap<string, PoolConfig>;
  /**
   * Peers that cannot hear this node and will act on it: for a local address this node
   * wins, if such a peer is the one that wins without this node, it takes the address
   * over, so this node yields it instead of holding it twice.
   */
  deafPeers?: ReadonlySet<string>;
}

export type AnnouncementKind = 'local' | 'nonlocal';

export interface Announcement {
  service: string;
  ip: string;
  family: Family;
  kind: AnnouncementKind;
  interface: string;
  prefix: number;
}

/** The subnet among `subnets` containing `ip`, longest prefix first. */
export function subnetOf(ip: string, subnets: readonly string[]): Cidr | undefined {
  const addr = parseAddress(ip);
  if (addr === undefined) return undefined;
  let best: Cidr | undefined;
  for (const text of subnets) {
    const c = parseCidr(text);
    if (typeof c === 'string' || c.family !== addr.family) continue;
    if (addr.value >= c.first && addr.value <= c.last && (best === undefined || c.prefix > best.prefix)) best = c;
  }
  return best;
}

/** The aggregation of the range holding `ip` in its group; a host route when unknown. */
function aggregationOf(ip: string, family: Family, group: PoolConfig | undefined): number {
  const addr = parseAddress(ip);
  const hostBits = family === 'IPv4' ? 32 : 128;
  if (!group || !addr) return hostBits;
  const range = group.ranges[family].find((r) => spanContains(r, family, addr.value));
  return range?.aggregation ?? hostBits;
}

export function desiredAnnouncements(s: Snapshot): Announcement[] {
  const out: Announcement[] = [];
  if (!s.self.eligible) return out;
  const me = s.self.node;
  for (const svc of s.services) {
    const group = svc.group === undefined ? undefined : s.groups.get(svc.group);
    for (const ip of svc.ips) {
      const addr = parseAddress(ip);
      if (addr === undefined) continue;
      const local = group?.announce !== 'remote' && s.self.localInterface ? subnetOf(ip, s.self.localInterface.subnets) : undefined;
      if (local && s.self.localInterface) {
        const candidates = s.members
          .filter((m) => subnetOf(ip, m.subnets) !== undefined)
          .filter((m) => !svc.local || svc.endpointNodes.has(m.node))
          .map((m) => m.node);
        const yields = (s.deafPeers?.size ?? 0) > 0 && s.deafPeers?.has(winner(candidates.filter((c) => c !== me), ip) ?? '');
        if (winner(candidates, ip) === me && !yields) {
          out.push({ service: svc.key, ip, family: addr.family, kind: 'local', interface: s.self.localInterface.name, prefix: local.prefix });
        }
        continue;
      }
      if (svc.local && !svc.endpointNodes.has(me)) continue;
      out.push({ service: svc.key, ip, family: addr.family, kind: 'nonlocal', interface: s.self.dummyInterface, prefix: aggregationOf(ip, addr.family, group) });
    }
  }
  return out;
}

/**
 * The nodes that put a non-local address on their dummy interface, as every agent can
 * compute it: eligible live members for which the address is not local, narrowed to
 * nodes with endpoints under externalTrafficPolicy: Local.
 */
export function nonlocalAnnouncers(s: Snapshot, svc: ServiceView, ip: string): string[] {
  const group = svc.group === undefined ? undefined : s.groups.get(svc.group);
  return s.members
    .filter((m) => group?.announce === 'remote' || subnetOf(ip, m.subnets) === undefined)
    .filter((m) => !svc.local || svc.endpointNodes.has(m.node))
    .map((m) => m.node)
    .sort();
}

/**
 * The one node that writes the non-local entries of a Service's announcing annotation,
 * so that N nodes announcing the same address do not race to edit one annotation.
 */
export function annotationWriter(announcers: readonly string[], service: string): string | undefined {
  return winner(announcers, `${service}#announcing`);
}

/** The LBNodeAgent's `addressConfig` for an announcement: `localInterface` for local ones, `dummyInterface` for the rest. */
export function addressSettings(config: LBNodeAgentConfig, kind: AnnouncementKind): AddressSettings {
  return kind === 'local' ? config.addresses.local : config.addresses.dummy;
}

/** What to ask of the kernel for an announcement: its flags and, when finite, its lifetimes. */
export function addressSpec(a: Announcement, ifindex: number, s: AddressSettings): AddressSpec {
  return {
    ifindex,
    ip: a.ip,
    prefix: a.prefix,
    noPrefixRoute: s.noPrefixRoute,
    ...(s.validLifetime > 0 ? { lifetimes: { validSec: s.validLifetime, preferredSec: s.preferredLifetime } } : {}),
  };
}
