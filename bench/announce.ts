// How fast does a gratuitous ARP / unsolicited NA reach the wire? The native addon
// (what the agent uses) against spawning iputils `arping -U` and ipv6toolkit `na6`
// (compared only where those tools are installed). Two throw-away namespaces joined by
// a veth; tcpdump in the receiving one stamps each frame with the host's clock, the
// same clock the sender reads when it starts a call. Needs root and tcpdump.

import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Netns, sweepStaleNamespaces, vethPair } from '../src/netlink/testkit.ts';
import { percentile } from '../e2e/lab/measure.ts';
import type { Report } from './run.ts';

const ROUNDS = 50;
const GAP_MS = 20;
const BURST = 1000;
const fixtureModule = fileURLToPath(new URL('./announce.fixture.ts', import.meta.url));

interface Call {
  ip: string;
  startedAt: number;
  returnedAt: number;
}

function installed(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

/** tcpdump in `ns`: the first capture time (ms, wall clock) of each announced IP. */
async function captureAnnouncements(ns: Netns): Promise<{ seen: Map<string, number>; stop: () => void }> {
  const capture = spawn('ip', ['netns', 'exec', ns.name, 'tcpdump', '-i', 'eth0', '-nn', '-tt', '-l',
    '--time-stamp-precision=nano', 'arp or (icmp6 and ip6[40] == 136)'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const seen = new Map<string, number>();
  let partial = '';
  capture.stdout.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const m = /^(\d+)\.(\d{9}) .*(?:who-has (\S+)|tgt is ([^\s,]+))/.exec(line);
      const ip = m?.[3] ?? m?.[4];
      if (m && ip !== undefined && !seen.has(ip)) seen.set(ip, Number(m[1]) * 1000 + Number(m[2]) / 1e6);
    }
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('tcpdump did not start within 10 s')), 10_000);
    capture.on('error', reject);
    capture.stderr.on('data', (d: Buffer) => {
      if (String(d).includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { seen, stop: () => capture.kill() };
}

export async function run(report: Report): Promise<void> {
  sweepStaleNamespaces();
  const sender = Netns.create('bench-tx');
  const receiver = Netns.create('bench-rx');
  try {
    vethPair(sender, 'eth0', receiver, 'eth0');
    sender.ip('addr', 'add', '198.51.100.2/24', 'dev', 'eth0');
    sender.ip('-6', 'addr', 'add', '2001:db8:100::2/64', 'dev', 'eth0', 'nodad');
    receiver.ip('addr', 'add', '198.51.100.1/24', 'dev', 'eth0');
    // arping -U sends from the VIP and refuses an address the interface does not have.
    for (let i = 0; i < ROUNDS; i++) sender.ip('addr', 'add', `198.51.100.${100 + i}/32`, 'dev', 'eth0');

    const { seen, stop } = await captureAnnouncements(receiver);
    const fixture = await sender.startFixture(fixtureModule, 200_000);
    const ips = (prefix: string, first: number): string[] => Array.from({ length: ROUNDS }, (_, i) => `${prefix}${first + i}`);
    // Each method announces its own IPs, so a captured frame names the call that sent it.
    const runs: Array<[string, Call[]]> = [
      ['addon_garp', await fixture.call<Call[]>('addon', 'eth0', ips('198.51.100.', 10), GAP_MS)],
      ['addon_na', await fixture.call<Call[]>('addon', 'eth0', ips('2001:db8:100::a:', 10), GAP_MS)],
    ];
    if (installed('arping')) {
      const args = ['-U', '-c', '1', '-I', 'eth0', '{ip}'];
      runs.push(['arping_garp', await fixture.call<Call[]>('spawned', 'arping', args, ips('198.51.100.', 100), GAP_MS)]);
    } else console.error('announce: arping (iputils-arping) not installed, not compared');
    if (installed('na6')) {
      const args = ['-i', 'eth0', '-s', '{ip}', '-d', 'ff02::1', '-t', '{ip}', '-o', '-e'];
      runs.push(['na6_na', await fixture.call<Call[]>('spawned', 'na6', args, ips('2001:db8:100::b:', 10), GAP_MS)]);
    } else console.error('announce: na6 (ipv6toolkit) not installed, not compared');

    const burst = Array.from({ length: BURST }, (_, i) => `2001:db8:100::c:${i.toString(16)}`);
    const burstMs = await fixture.call<number>('burst', 'eth0', burst);
    await new Promise((r) => setTimeout(r, 300));
    stop();

    for (const [name, calls] of runs) {
      const toWire = calls.map((c) => {
        const at = seen.get(c.ip);
        if (at === undefined) throw new Error(`${name}: no frame captured for ${c.ip}`);
        return at - c.startedAt;
      });
      report(`${name}_to_wire_p50`, percentile(toWire, 50), 'ms');
      report(`${name}_to_wire_p99`, percentile(toWire, 99), 'ms');
      report(`${name}_call_p50`, percentile(calls.map((c) => c.returnedAt - c.startedAt), 50), 'ms');
    }
    const missing = burst.filter((ip) => !seen.has(ip)).length;
    if (missing > 0) throw new Error(`burst: ${missing} of ${BURST} frames not captured`);
    report('addon_1000_vips', burstMs, 'ms');
  } finally {
    sender.delete();
    receiver.delete();
  }
}
