// Serves a HostNetwork inside a test namespace (see netns-fixture.ts); results are
// made JSON-safe (errors become their messages).

import { parseIp } from './messages.ts';
import { openHostNetwork } from './rtnetlink.ts';
import type { AddressKey, AddressSpec, Family, Subscription } from './host-network.ts';
import type { FixtureModule } from './netns-fixture.ts';

function plain<T extends object>(results: T[]): unknown[] {
  return results.map((r) => ('error' in r && r.error instanceof Error ? { ...r, error: r.error.message } : r));
}

const fixture: FixtureModule = (emit) => {
  let net = openHostNetwork();
  let subscription: Subscription | undefined;
  return {
    ownership: () => net.ownership(),
    /** An agent's restart in this process: a new HostNetwork, which probes and reads the record afresh. */
    restart: () => {
      net.close();
      net = openHostNetwork();
    },
    listLinks: () => net.listLinks(),
    findLink: (name: string) => net.findLink(name),
    listAddresses: (filter?: { ifindex?: number; family?: Family; ours?: boolean }) => net.listAddresses(filter),
    addAddresses: async (specs: AddressSpec[]) => plain(await net.addAddresses(specs)),
    deleteAddresses: async (keys: AddressKey[]) => plain(await net.deleteAddresses(keys)),
    defaultRouteLink: (family: Family) => net.defaultRouteLink(family),
    linkForIp: (ip: string) => net.linkForIp(ip),
    ensureDummyLink: (name: string) => net.ensureDummyLink(name),
    /** Starts forwarding notifications as events; a small buffer provokes overruns. */
    watch: (notificationBufferBytes?: number) => {
      const watcher = notificationBufferBytes === undefined ? net : openHostNetwork({ notificationBufferBytes });
      subscription ??= watcher.watch((event) => emit({ ...event, at: Date.now() }));
    },
    /**
     * One pass of what the agent does with its addresses: ours that are not wanted go,
     * the wanted ones are added or renewed. Returns each outcome by IP.
     */
    reconcile: async (wanted: AddressSpec[]) => {
      const key = (a: AddressKey) => `${a.ifindex}|${parseIp(a.ip).ip}|${a.prefix}`;
      const want = new Set(wanted.map(key));
      const unwanted = (await net.listAddresses({ ours: true })).filter((a) => !want.has(key(a)));
      const deleted = await net.deleteAddresses(unwanted.map((a) => ({ ifindex: a.ifindex, ip: a.ip, prefix: a.prefix })));
      const added = await net.addAddresses(wanted);
      return {
        deleted: Object.fromEntries(deleted.map((r) => [r.key.ip, r.outcome])),
        added: Object.fromEntries(added.map((r) => [r.spec.ip, r.outcome])),
      };
    },
    /** Keeps the event loop busy, so that notifications pile up unread. */
    block: (ms: number) => {
      const until = Date.now() + Math.min(ms, 5000);
      while (Date.now() < until) {
        // busy on purpose
      }
    },
    /** Adds the specs and reports how long the kernel took to have them all. */
    timedAdd: async (specs: AddressSpec[]) => {
      const started = performance.now();
      const results = await net.addAddresses(specs);
      const ms = performance.now() - started;
      return { ms, added: results.filter((r) => r.outcome === 'added').length };
    },
    timedDelete: async (keys: AddressKey[]) => {
      const started = performance.now();
      const results = await net.deleteAddresses(keys);
      const ms = performance.now() - started;
      return { ms, deleted: results.filter((r) => r.outcome === 'deleted').length };
    },
  };
};

export default fixture;
