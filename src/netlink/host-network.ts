// What the node agent may ask of the kernel's network configuration, as a small
// interface so that the agent's logic can be driven by a fake in unit tests
// (memory-network.ts) while the real implementation (rtnetlink.ts) is tested against a
// real kernel.
//
// Ownership: an address is `ours` when this agent (this run or an earlier one) added
// it; anything else is never changed or deleted, even when it equals a VIP. Two ways
// to tell, chosen at start-up by adding a probe address and reading it back:
// - 'marker': every address we add carries IFA_PROTO = `addressProtocol`, and the
//   kernel keeps it (Linux ≥ 5.18; `ip -d addr` in iproute2 ≥ 6.3 shows it as `proto`);
// - 'record': older kernels accept IFA_PROTO and drop it, so an ownership record under
//   /run lists what we added, with the kernel's creation stamp of each address
//   (ownership.ts has the rules). A lost or corrupt record makes nothing ours.
// Either way, strays left by a crash are found as ours after a restart.

import type { Family } from './messages.ts';

export type { Family } from './messages.ts';

/** IFA_PROTO value marking the addresses purelb-ts added (0–3 are the kernel's own). */
export const PURELB_ADDRESS_PROTOCOL = 0x50;

export interface Link {
  name: string;
  index: number;
  /** IFLA_INFO_KIND: `veth`, `bridge`, `ifb`, `dummy`, …; undefined for plain NICs. */
  kind: string | undefined;
  /** ARPHRD type as the kernel names it: `ETHER`, `LOOPBACK`, … */
  hardwareType: string;
  /** `aa:bb:cc:dd:ee:ff`; undefined for links without a hardware address. */
  mac: string | undefined;
  /** IFF_UP: administratively up. */
  up: boolean;
  /** IFF_LOWER_UP: the link has carrier. */
  lowerUp: boolean;
}

export interface InterfaceAddress {
  family: Family;
  ifindex: number;
  ip: string;
  prefix: number;
  /** RT_SCOPE_*: 0 global, 253 link, 254 host. */
  scope: number;
  /** IFA_PROTO as reported (0 when unset, and always on kernels before 5.18). */
  protocol: number;
  /** Added by purelb-ts (this run or an earlier one): marked, or recorded (see above). */
  ours: boolean;
  secondary: boolean;
  /** IPv6 duplicate address detection still running / failed. */
  tentative: boolean;
  dadFailed: boolean;
  deprecated: boolean;
  /** Seconds left; undefined means forever. */
  validLifetime: number | undefined;
  preferredLifetime: number | undefined;
}

/**
 * Finite lifetimes make an address expire unless it is refreshed: a dead-man switch
 * so that the VIPs of an agent that crashed leave the kernel by themselves.
 */
export interface Lifetimes {
  validSec: number;
  preferredSec: number;
}

/** Identifies one address on one interface. */
export interface AddressKey {
  ifindex: number;
  ip: string;
  prefix: number;
}

export interface AddressSpec extends AddressKey {
  lifetimes?: Lifetimes;
  /** IFA_F_NOPREFIXROUTE: add no route for the prefix. */
  noPrefixRoute?: boolean;
  /**
   * The caller has just read this address as ours and renews its lifetimes: it is
   * replaced in place (created if it went meanwhile), without first trying to add it
   * and reading the kernel again on EEXIST. The outcome is 'refreshed'.
   */
  renew?: boolean;
}

export type AddResult =
  /** The address was not there and is now, marked as ours. */
  | { spec: AddressSpec; outcome: 'added' }
  /** It was already there and ours; its lifetimes were renewed. */
  | { spec: AddressSpec; outcome: 'refreshed' }
  /**
   * It is there but not ours (the node's own, added by hand or by another program, or
   * ours from before a lost record): left alone. These are the "unknown addresses
   * equal to wanted ones" to report.
   */
  | { spec: AddressSpec; outcome: 'foreign'; holder: InterfaceAddress }
  | { spec: AddressSpec; outcome: 'failed'; error: Error };

export type DeleteResult =
  | { key: AddressKey; outcome: 'deleted' | 'absent' }
  /** It is there but not ours: left alone. */
  | { key: AddressKey; outcome: 'foreign'; holder: InterfaceAddress }
  /**
   * Ours, but deleting it would make the kernel delete foreign addresses with it
   * (IPv4 secondaries of a primary, without promote_secondaries): left alone.
   */
  | { key: AddressKey; outcome: 'unsafe'; dependents: InterfaceAddress[] }
  | { key: AddressKey; outcome: 'failed'; error: Error };

export type HostNetworkEvent =
  | { type: 'address-added' | 'address-removed'; address: InterfaceAddress }
  | { type: 'link-changed' | 'link-removed'; link: Link }
  /** Notifications were lost (socket buffer overrun): re-read the kernel's state. */
  | { type: 'overflow' };

export interface Subscription {
  close(): void;
}

export interface OwnershipStatus {
  /** 'marker': the kernel keeps IFA_PROTO and it tells; 'record': the ownership record tells. */
  mode: 'marker' | 'record';
  /** Why: what the start-up probe found, or the setting that forced the mode. */
  reason: string;
  /** The record's file (mode 'record'). */
  recordPath?: string;
  /**
   * Set when the record on disk could not be used (unreadable, not JSON, truncated,
   * invalid): the addresses it listed count as not ours and stay untouched. Those
   * equal to a wanted VIP come back from addAddresses as `foreign`.
   */
  recordProblem?: string;
}

export interface HostNetwork {
  /** The IFA_PROTO value this instance marks its addresses with. */
  readonly addressProtocol: number;
  /** How `ours` is decided on this kernel (probed once, on first use). */
  ownership(): Promise<OwnershipStatus>;
  listLinks(): Promise<Link[]>;
  findLink(name: string): Promise<Link | undefined>;
  listAddresses(filter?: { ifindex?: number; family?: Family; ours?: boolean }): Promise<InterfaceAddress[]>;
  /** Adds (or refreshes) our addresses; IPv6 ones with IFA_F_NODAD so they work at once. */
  addAddresses(specs: readonly AddressSpec[]): Promise<AddResult[]>;
  /** Deletes our addresses; anything not ours is reported, never touched. */
  deleteAddresses(keys: readonly AddressKey[]): Promise<DeleteResult[]>;
  /** The link of the lowest-metric default route in the main table. */
  defaultRouteLink(family: Family): Promise<Link | undefined>;
  /** The link with a (not ours) address whose subnet contains `ip`; longest prefix wins. */
  linkForIp(ip: string): Promise<{ link: Link; address: InterfaceAddress } | undefined>;
  /**
   * Makes sure a link called `name` exists and is up: creates it as `type dummy` when
   * missing, adopts an existing one whatever its type.
   */
  ensureDummyLink(name: string): Promise<{ link: Link; created: boolean }>;
  /** Link and address notifications, as they happen. */
  watch(listener: (event: HostNetworkEvent) => void): Subscription;
  close(): void;
}
