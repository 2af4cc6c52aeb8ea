// Gratuitous ARP and unsolicited NA on a real link: a node namespace and a peer joined
// by a veth. The peer holds a fresh (REACHABLE) neighbour entry pointing the VIP at an
// old MAC, as a client does right after a failover; after one announcement its entry
// must point at the node's MAC. tcpdump in the peer checks the frames themselves.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Netns, startCapture, sweepStaleNamespaces, vethPair } from '../../netlink/testkit.ts';
import type { Fixture } from '../../netlink/testkit.ts';
import type { AnnounceResult, AnnouncementCounters } from './announcer.ts';

const fixtureModule = fileURLToPath(new URL('./announcer.fixture.ts', import.meta.url));
const OLD_MAC = '02:00:00:00:00:99';

function macOf(ns: Netns, ifname: string): string {
  return (JSON.parse(ns.ip('-j', 'link', 'show', 'dev', ifname)) as Array<{ address: string }>)[0]?.address ?? '';
}

function ifindexOf(ns: Netns, ifname: string): number {
  return (JSON.parse(ns.ip('-j', 'link', 'show', 'dev', ifname)) as Array<{ ifindex: number }>)[0]?.ifindex ?? 0;
}

function neighbourMac(ns: Netns, ip: string): string | undefined {
  const entries = JSON.parse(ns.ip('-j', 'neigh', 'show', 'to', ip, 'dev', 'eth0')) as Array<{ lladdr?: string }>;
  return entries[0]?.lladdr;
}

async function waitForNeighbourMac(ns: Netns, ip: string, mac: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (neighbourMac(ns, ip) === mac) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(neighbourMac(ns, ip), mac, `peer's entry for ${ip}`);
}

describe('announcements move a peer neighbour entry to our MAC', () => {
  let node: Netns;
  let peer: Netns;
  let agent: Fixture;
  let nodeMac = '';

  before(async () => {
    sweepStaleNamespaces();
    node = Netns.create('an');
    peer = Netns.create('anpeer');
    vethPair(node, 'eth0', peer, 'eth0');
    node.ip('addr', 'add', '198.51.100.2/24', 'dev', 'eth0');
    node.ip('-6', 'addr', 'add', '2001:db8:100::2/64', 'dev', 'eth0', 'nodad');
    peer.ip('addr', 'add', '198.51.100.1/24', 'dev', 'eth0');
    peer.ip('-6', 'addr', 'add', '2001:db8:100::1/64', 'dev', 'eth0', 'nodad');
    nodeMac = macOf(node, 'eth0');
    agent = await node.startFixture(fixtureModule);
  });

  after(() => {
    node?.delete();
    peer?.delete();
  });

  /** The peer's fresh entry points `vip` at another node; then the VIP lands on ours. */
  async function takeOver(vip: string, prefix: number): Promise<void> {
    peer.ip('neigh', 'replace', vip, 'lladdr', OLD_MAC, 'dev', 'eth0', 'nud', 'reachable');
    await agent.call('addAddresses', [{ ifindex: ifindexOf(node, 'eth0'), ip: vip, prefix }]);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(neighbourMac(peer, vip), OLD_MAC, 'adding the address alone does not move the entry');
  }

  test('gratuitous ARP: broadcast request, sender = target = VIP, sender MAC = ours', async () => {
    const vip = '198.51.100.100';
    await takeOver(vip, 24);

    const capture = startCapture(peer, 'eth0', 'arp', 1);
    await capture.ready;
    const result = await agent.call<AnnounceResult>('announce', 'eth0', vip, { count: 1 });
    assert.deepEqual(result, { ifname: 'eth0', ip: vip, protocol: 'arp', sent: 1, aborted: false });
    await waitForNeighbourMac(peer, vip, nodeMac);

    const frame = await capture.output;
    assert.match(frame, new RegExp(`${nodeMac} > ff:ff:ff:ff:ff:ff, ethertype ARP \\(0x0806\\)`));
    assert.match(frame, new RegExp(`Request who-has ${vip.replaceAll('.', '\\.')} \\(ff:ff:ff:ff:ff:ff\\) tell ${vip.replaceAll('.', '\\.')}`));
  });

  test('unsolicited NA: to ff02::1, hop limit 255, override, target and link-layer option = VIP and our MAC', async () => {
    const vip = '2001:db8:100::100';
    await takeOver(vip, 64);

    const capture = startCapture(peer, 'eth0', 'icmp6 and ip6[40] == 136', 1);
    await capture.ready;
    const result = await agent.call<AnnounceResult>('announce', 'eth0', vip, { count: 1 });
    assert.equal(result.protocol, 'ndp');
    await waitForNeighbourMac(peer, vip, nodeMac);

    const frame = await capture.output;
    assert.match(frame, new RegExp(`${nodeMac} > 33:33:00:00:00:01, ethertype IPv6`));
    assert.match(frame, /hlim 255/);
    assert.match(frame, new RegExp(`${vip} > ff02::1: \\[icmp6 sum ok\\] ICMP6, neighbor advertisement, length 32, tgt is ${vip}, Flags \\[override\\]`));
    assert.match(frame, new RegExp(`destination link-address option \\(2\\), length 8 \\(1\\): ${nodeMac}`));
  });

  test('a burst sends count frames at the interval and counts them', async () => {
    const before = await agent.call<AnnouncementCounters>('counters');
    const capture = startCapture(peer, 'eth0', 'arp', 3);
    await capture.ready;
    const started = Date.now();
    const result = await agent.call<AnnounceResult>('announce', 'eth0', '198.51.100.101', { count: 3, intervalMs: 100 });
    const elapsed = Date.now() - started;
    assert.equal(result.sent, 3);
    assert.ok(elapsed >= 190, `3 frames 100 ms apart took ${elapsed} ms`);
    await capture.output;
    const afterCounters = await agent.call<AnnouncementCounters>('counters');
    assert.equal(afterCounters.garpSent - before.garpSent, 3);
    assert.equal(afterCounters.naSent, before.naSent);
  });

  test('the initial delay is honoured', async () => {
    const started = Date.now();
    await agent.call('announce', 'eth0', '2001:db8:100::101', { count: 1, initialDelayMs: 200 });
    assert.ok(Date.now() - started >= 195);
  });

  test('an aborted burst stops early', async () => {
    const result = await agent.call<AnnounceResult>('announceAborted', 'eth0', '198.51.100.102', { count: 5, intervalMs: 300 }, 100);
    assert.equal(result.sent, 1);
    assert.equal(result.aborted, true);
  });

  test('failures are errors with the cause, and counted', async () => {
    await assert.rejects(agent.call('announce', 'nosuch0', '198.51.100.103'), /no interface nosuch0/);
    await assert.rejects(agent.call('announce', 'eth0', 'not-an-ip'), /invalid IP address/);
    await assert.rejects(agent.call('announce', 'eth0', '198.51.100.103', { count: 0 }), /count 0 outside/);
    const before = await agent.call<AnnouncementCounters>('counters');
    node.ip('link', 'set', 'eth0', 'down');
    try {
      await assert.rejects(agent.call('announce', 'eth0', '198.51.100.103', { count: 1 }), /Network is down/);
    } finally {
      node.ip('link', 'set', 'eth0', 'up');
    }
    const afterCounters = await agent.call<AnnouncementCounters>('counters');
    assert.equal(afterCounters.garpFailed - before.garpFailed, 1);
  });
});
