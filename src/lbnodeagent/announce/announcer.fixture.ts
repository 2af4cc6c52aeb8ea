// Serves an Announcer (and the HostNetwork it looks links up with) inside a test
// namespace; see src/netlink/netns-fixture.ts.

import { openHostNetwork } from '../../netlink/rtnetlink.ts';
import type { AddressSpec } from '../../netlink/host-network.ts';
import type { FixtureModule } from '../../netlink/netns-fixture.ts';
import { Announcer } from './announcer.ts';
import type { AnnounceOptions } from './announcer.ts';
import { loadNativeAddon } from '../../netlink/native.ts';

const fixture: FixtureModule = () => {
  loadNativeAddon();
  const net = openHostNetwork();
  const announcer = new Announcer({ findLink: (name) => net.findLink(name) });
  return {
    addAddresses: (specs: AddressSpec[]) => net.addAddresses(specs),
    findLink: (name: string) => net.findLink(name),
    announce: (ifname: string, ip: string, options?: AnnounceOptions) => announcer.announce(ifname, ip, options),
    /** Starts a burst and aborts it after `abortAfterMs`. */
    announceAborted: (ifname: string, ip: string, options: AnnounceOptions, abortAfterMs: number) =>
      announcer.announce(ifname, ip, { ...options, signal: AbortSignal.timeout(abortAfterMs) }),
    counters: () => announcer.counters(),
    /** Wall-clock time (µs resolution) at which each announce call started, for latency measurements. */
    timedAnnounce: async (ifname: string, ips: string[], gapMs: number) => {
      const calls: Array<{ ip: string; startedAt: number; returnedAt: number }> = [];
      for (const ip of ips) {
        const startedAt = performance.timeOrigin + performance.now();
        await announcer.announce(ifname, ip, { count: 1 });
        calls.push({ ip, startedAt, returnedAt: performance.timeOrigin + performance.now() });
        await new Promise((r) => setTimeout(r, gapMs));
      }
      return calls;
    },
  };
};

export default fixture;
