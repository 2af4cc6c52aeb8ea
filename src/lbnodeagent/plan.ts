// The plan stage of a reconcile, as two pure diffs: the desired announcements against
// our addresses the kernel holds (planKernel; kernel.ts applies it), and against the
// announcing annotations this node last wrote (planAnnouncing; publish.ts applies it).

import type { LBNodeAgentConfig } from '../api/normalize.ts';
import { ANNOTATIONS } from '../api/annotations.ts';
import type { Family } from '../ipam/address.ts';
import type { AddressSpec, InterfaceAddress, Link } from '../netlink/host-network.ts';
import { mergeAnnouncing, ownedEntries } from './announcing.ts';
import type { OwnedEntries } from './announcing.ts';
import { addressSettings, addressSpec } from './desired.ts';
import type { Announcement, Snapshot } from './desired.ts';

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
 * `links` by name; an announcement whose interface is missing is left out, and so is
 * the removal of an address on a link missing from `links`. After a
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
    // An address of ours with a finite lifetime is renewed in place; one not held is added.
    const renew = held.has(keyOf(w));
    if (!renew || settings.validLifetime > 0) add.push({ announcement: w, spec: { ...addressSpec(w, w.ifindex, settings), ...(renew ? { renew } : {}) } });
  }
  const garp = membershipChanged && config.garp.enabled;
  // An address on a link the listing does not show is left alone: the two reads
  // disagree (a link renamed or re-created meanwhile), and the next pass decides.
  const known = new Set([...links.values()].map((l) => l.index));
  return {
    remove: have.filter((a) => !want.has(keyOf(a)) && known.has(a.ifindex)),
    add,
    reannounce: garp ? [...want.values()].filter((w) => w.kind === 'local' && held.has(keyOf(w))) : [],
  };
}

/** What this node last wrote for one Service, recorded once the write succeeded. */
export interface Written {
  /** The owned part (ownedEntries) as JSON. */
  fingerprint: string;
  /** `ip|interface` this node announced, for the Events of new announcements. */
  announced: ReadonlySet<string>;
  /** The families whose dummy-interface entries this node wrote. */
  nonlocal: ReadonlySet<Family>;
}

export interface AnnouncingWrite {
  key: string;
  owned: Record<Family, OwnedEntries>;
  /** Announcements not in the last record: each gets a Normal Event once written. */
  fresh: Announcement[];
  /** The record once written; undefined: this node neither announces nor writes anything of the Service any more. */
  record: Written | undefined;
}

export const FAMILIES = ['IPv4', 'IPv6'] as const;
export const announcingAnnotation = (f: Family) => (f === 'IPv4' ? ANNOTATIONS.announcingIPv4 : ANNOTATIONS.announcingIPv6);

/**
 * The announcing-annotation writes that bring the Services in line with `desired`.
 * `annotations(key)` gives a Service's current annotations, undefined when it is gone
 * (its record is then forgotten). A Service is written when its owned part changed
 * since the last record, or when the annotation on the object differs from it (an
 * edit by someone else, a restart with no record).
 */
export function planAnnouncing(
  desired: readonly Announcement[],
  snapshot: Snapshot,
  written: ReadonlyMap<string, Written>,
  annotations: (key: string) => Record<string, string> | undefined,
  dummyInterface: string,
): { writes: AnnouncingWrite[]; forget: string[] } {
  const mine = new Map<string, Announcement[]>();
  for (const d of desired) mine.set(d.service, [...(mine.get(d.service) ?? []), d]);
  const views = new Map(snapshot.services.map((v) => [v.key, v]));
  const writes: AnnouncingWrite[] = [];
  const forget: string[] = [];
  for (const key of new Set([...views.keys(), ...written.keys()])) {
    const current = annotations(key);
    if (current === undefined) {
      if (written.has(key)) forget.push(key);
      continue;
    }
    const last = written.get(key);
    const owned = ownedEntries(snapshot, key, views.get(key), mine.get(key) ?? [], dummyInterface, (f) => last?.nonlocal.has(f) ?? false);
    const fingerprint = JSON.stringify(owned);
    const differs = FAMILIES.some((f) => mergeAnnouncing(current[announcingAnnotation(f)], owned[f]) !== (current[announcingAnnotation(f)] ?? ''));
    if (last?.fingerprint === fingerprint && !differs) continue;
    const announcing = mine.get(key) ?? [];
    const empty = FAMILIES.every((f) => owned[f].local.length === 0 && owned[f].nonlocal === undefined);
    writes.push({
      key,
      owned,
      fresh: announcing.filter((d) => !(last?.announced.has(`${d.ip}|${d.interface}`) ?? false)),
      // Kept while this node announces anything of the Service, even when it owns no
      // part of the annotation (a routed VIP whose list another node writes): else every
      // pass would plan the Service again and repeat its Events.
      record:
        empty && announcing.length === 0
          ? undefined
          : {
              fingerprint,
              announced: new Set(announcing.map((d) => `${d.ip}|${d.interface}`)),
              nonlocal: new Set(FAMILIES.filter((f) => (owned[f].nonlocal?.length ?? 0) > 0)),
            },
    });
  }
  return { writes, forget };
}
