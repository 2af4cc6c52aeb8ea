// Addresses into and out of the kernel through HostNetwork, in a throw-away namespace:
// the agent's target is 1,000 VIPs in the kernel < 2 s after allocation. Half IPv4
// (documentation ranges hold only 768 /32s), half IPv6. Needs root.

import { fileURLToPath } from 'node:url';
import { Netns, sweepStaleNamespaces } from '../src/netlink/testkit.ts';
import type { Report } from './run.ts';

const ROUNDS = 5;
const fixtureModule = fileURLToPath(new URL('../src/netlink/host-network.fixture.ts', import.meta.url));

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

export async function run(report: Report): Promise<void> {
  sweepStaleNamespaces();
  const node = Netns.create('bench-nl');
  try {
    node.ip('link', 'add', 'kube-lb0', 'type', 'ifb');
    node.ip('link', 'set', 'kube-lb0', 'up');
    const ifindex = (JSON.parse(node.ip('-j', 'link', 'show', 'kube-lb0')) as Array<{ ifindex: number }>)[0]?.ifindex ?? 0;
    const v4 = ['192.0.2', '198.51.100', '203.0.113'].flatMap((n) => Array.from({ length: 256 }, (_, i) => `${n}.${i}`)).slice(0, 500);
    const v6 = Array.from({ length: 500 }, (_, i) => `2001:db8:200::${(i + 1).toString(16)}`);
    const specs = [...v4, ...v6].map((ip) => ({ ifindex, ip, prefix: ip.includes(':') ? 128 : 32, lifetimes: { validSec: 120, preferredSec: 120 } }));

    const net = await node.startFixture(fixtureModule, 60_000);
    const add: number[] = [];
    const refresh: number[] = [];
    const remove: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const first = await net.call<{ ms: number; added: number }>('timedAdd', specs);
      if (first.added !== specs.length) throw new Error(`only ${first.added} of ${specs.length} added`);
      add.push(first.ms);
      refresh.push((await net.call<{ ms: number }>('timedAdd', specs)).ms);
      const gone = await net.call<{ ms: number; deleted: number }>('timedDelete', specs);
      if (gone.deleted !== specs.length) throw new Error(`only ${gone.deleted} of ${specs.length} deleted`);
      remove.push(gone.ms);
    }
    report('add_1000_p50', median(add), 'ms');
    report('add_1000_max', Math.max(...add), 'ms');
    report('refresh_1000_p50', median(refresh), 'ms');
    report('delete_1000_p50', median(remove), 'ms');
  } finally {
    node.delete();
  }
}
