// Runs inside the sender namespace of bench/announce.ts: times the native addon and
// spawned tools per announcement (call start and call end, wall clock in ms).

import { spawn } from 'node:child_process';
import { openHostNetwork } from '../src/netlink/rtnetlink.ts';
import type { FixtureModule } from '../src/netlink/netns-fixture.ts';
import { Announcer } from '../src/lbnodeagent/announce/announcer.ts';
import { loadNativeAddon } from '../src/netlink/native.ts';

const now = (): number => performance.timeOrigin + performance.now();
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const fixture: FixtureModule = () => {
  loadNativeAddon();
  const net = openHostNetwork();
  const announcer = new Announcer({ findLink: (name) => net.findLink(name) });
  return {
    addon: async (ifname: string, ips: string[], gapMs: number) => {
      const calls = [];
      for (const ip of ips) {
        const startedAt = now();
        await announcer.announce(ifname, ip, { count: 1 });
        calls.push({ ip, startedAt, returnedAt: now() });
        await pause(gapMs);
      }
      return calls;
    },
    /** Announces every IP at once (one frame each) and reports how long until all calls resolved. */
    burst: async (ifname: string, ips: string[]) => {
      const startedAt = now();
      await Promise.all(ips.map((ip) => announcer.announce(ifname, ip, { count: 1 })));
      return now() - startedAt;
    },
    /** Spawns `command` once per IP with `{ip}` in `args` replaced; records spawn and exit times. */
    spawned: async (command: string, args: string[], ips: string[], gapMs: number) => {
      const calls = [];
      for (const ip of ips) {
        const startedAt = now();
        const code = await new Promise<number | null>((resolve, reject) => {
          const child = spawn(command, args.map((a) => a.replaceAll('{ip}', ip)), { stdio: 'ignore', timeout: 10_000 });
          child.on('error', reject);
          child.on('exit', resolve);
        });
        if (code !== 0) throw new Error(`${command} exited with ${code}`);
        calls.push({ ip, startedAt, returnedAt: now() });
        await pause(gapMs);
      }
      return calls;
    },
  };
};

export default fixture;
