// `purelb.io/announcing-IPv4` / `-IPv6`: a space-separated list of `node,interface`
// entries, one per node that announces the Service's address of that family (one for
// a layer-2 address, one per node for a routed one). Several agents edit the same
// annotation, so each owns a part of it: a node its own local entry, and the one
// elected writer all the entries on the dummy interface. Everything else is kept.

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
