// The kernel side of a reconcile as a pure diff: the desired announcements against our
// addresses the kernel holds. The agent applies it (netlink, then announcements).

import type { LBNodeAgentConfig } from '../api/normalize.ts';
import type { AddressSpec, InterfaceAddress, Link } from '../netlink/host-network.ts';
import { addressSettings, addressSpec } from './desired.ts';
import type { Announcement } from './desired.ts';

export interface Placed extends Announcement {
  ifindex: number;
}

export interface KernelPlan {
  /** Ours, no longer wanted. */
  remove: InterfaceAddress[];
  /** Missing, or held with a finite lifetime that this pass renews. */
  add: Array<{ announcement: Placed; spec: AddressSpec }>;
  /** Local addresses already held that are announced again (after a membership change). */
  reannounce: Placed[];
}

const keyOf = (a: { ifindex: number; ip: string; prefix: number }) => `${a.ifindex}|${a.ip}|${a.prefix}`;

/**
 * `links` by name; an announcement whose interface is missing is left out. After a
 * membership change every local address held is announced again: neighbours may have
 * followed another node meanwhile (a healed partition leaves the address in our kernel
 * but their caches elsewhere).
 */
export function planKernel(
  desired: readonly Announcement[],
  links: ReadonlyMap<string, Link>,
  have: readonly InterfaceAddress[],
  config: LBNodeAgentConfig,
  membershipChanged: boolean,
): KernelPlan {
  const want = new Map<string, Placed>();
  for (const d of desired) {
    const link = links.get(d.interface);
    if (link) want.set(keyOf({ ...d, ifindex: link.index }), { ...d, ifindex: link.index });
  }
  const held = new Set(have.map(keyOf));
  const add: KernelPlan['add'] = [];
  for (const w of want.values()) {
    const settings = addressSettings(config, w.kind);
    // Re-adding an address of ours renews its lifetimes.
    if (!held.has(keyOf(w)) || settings.validLifetime > 0) add.push({ announcement: w, spec: addressSpec(w, w.ifindex, settings) });
  }
  const garp = membershipChanged && config.garp.enabled;
  return {
    remove: have.filter((a) => !want.has(keyOf(a))),
    add,
    reannounce: garp ? [...want.values()].filter((w) => w.kind === 'local' && held.has(keyOf(w))) : [],
  };
}
