// `purelb.io/announcing-IPv4` / `-IPv6`: a space-separated list of `node,interface`
// entries, one per node that announces the Service's address of that family (one for
// a layer-2 address, one per node for a routed one). Several agents edit the same
// annotation, so each owns a part of it: a node its own local entry, and the one
// elected writer all the entries on the dummy interface. Everything else is kept.

import type { Family } from '../ipam/address.ts';
import { annotationWriter, nonlocalAnnouncers } from './desired.ts';
import type { Announcement, ServiceView, Snapshot } from './desired.ts';

export function announcingEntries(value: string | undefined): string[] {
  return (value ?? '').split(/\s+/).filter((e) => e !== '');
}

export interface OwnedEntries {
  node: string;
  dummyInterface: string;
  /** This node's local entries (`node,eth0`). */
  local: readonly string[];
  /** All dummy-interface entries when this node is the writer; undefined leaves them alone. */
  nonlocal: readonly string[] | undefined;
}

/** The new annotation value: `current` with the owned part replaced; '' means remove it. */
export function mergeAnnouncing(current: string | undefined, owned: OwnedEntries): string {
  const onDummy = (e: string) => e.endsWith(`,${owned.dummyInterface}`);
  const kept = announcingEntries(current).filter((e) => {
    if (owned.nonlocal !== undefined && onDummy(e)) return false;
    return !(e.startsWith(`${owned.node},`) && !onDummy(e));
  });
  return [...new Set([...kept, ...owned.local, ...(owned.nonlocal ?? [])])].sort().join(' ');
}

/**
 * The part of a Service's announcing annotations `node` writes, per family: its local
 * entries, and all dummy-interface entries when it is the elected writer. `wroteNonlocal`
 * says whether this node wrote the dummy-interface entries last (a Service no longer
 * announced at all: the last writer clears them).
 */
export function ownedEntries(
  snapshot: Snapshot,
  key: string,
  view: ServiceView | undefined,
  mine: readonly Announcement[],
  dummyInterface: string,
  wroteNonlocal: (family: Family) => boolean,
): Record<Family, OwnedEntries> {
  const node = snapshot.self.node;
  const out = {} as Record<Family, OwnedEntries>;
  for (const family of ['IPv4', 'IPv6'] as const) {
    const local = [...new Set(mine.filter((d) => d.family === family && d.kind === 'local').map((d) => `${node},${d.interface}`))];
    let nonlocal: string[] | undefined;
    for (const ip of (view?.ips ?? []).filter((ip) => (family === 'IPv6') === ip.includes(':'))) {
      const announcers = nonlocalAnnouncers(snapshot, view as ServiceView, ip);
      // With no announcer left (ETP Local without endpoints), a writer among all members clears the list.
      const writer = annotationWriter(announcers.length > 0 ? announcers : snapshot.members.map((m) => m.node), key);
      if (writer === node) nonlocal = [...new Set([...(nonlocal ?? []), ...announcers.map((n) => `${n},${dummyInterface}`)])];
    }
    if (view === undefined && wroteNonlocal(family)) nonlocal = [];
    out[family] = { node, dummyInterface, local, nonlocal };
  }
  return out;
}
