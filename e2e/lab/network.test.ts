// Lab network tests: real namespaces, bridge, BIRD, responders, client, faults, capture.
// Runs against a lab that is already up (npm test brings it up once); standalone it
// brings the network up itself and takes it down again at the end. Never skips: if a
// piece is missing, the test fails.
//
//   node_modules/.bin/node --test --test-concurrency=1 e2e/lab/network.test.ts

import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  bgpSessions,
  birdSessionsUp,
  clientArping,
  clientConnect,
  clientNeighbor,
  clientProbe,
  clientTry,
  cutLink,
  failNode,
  faultState,
  gratuitousOf,
  healAll,
  healLink,
  labHost,
  labMac,
  labSysctls,
  networkDown,
  networkStatus,
  networkUp,
  nsConnect,
  nsExec,
  parsePcap,
  restoreNode,
  routerRoutes,
  run,
  runningNodes,
  sendGarp,
  startCapture,
  waitForBgp,
  waitForRoute,
  waitUntil,
} from './network.ts';
import type { CapturedFrame } from './network.ts';
import { CLIENT, HOST_V4, HOST_V6, ROUTER } from './plan.ts';
import type { LabNode } from './plan.ts';

const ECMP_V4 = '203.0.113.77';
const ECMP_V6 = '2001:db8:113::77';
const T = { timeout: 90_000 };

let broughtUp = false;
let nodes: LabNode[] = [];

before(async () => {
  const st = await networkStatus();
  if (!st.up) {
    // Standalone run: bring the lab's network up ourselves (cleans leftovers first).
    await networkUp();
    broughtUp = true;
  }
  nodes = runningNodes();
  assert.ok(nodes.length >= 3, `the network tests need at least 3 nodes, lab has ${nodes.length}`);
});

after(async () => {
  // Leave no fault behind, whatever happened.
  await healAll(nodes.map((n) => n.name)).catch(() => undefined);
  if (broughtUp) {
    await networkDown();
    assert.deepEqual((await networkStatus()).namespaces, [], 'lab namespaces left behind');
  }
});

const node = (i: number): LabNode => {
  const n = nodes[i];
  assert.ok(n, `node index ${i}`);
  return n;
};

interface IpAddr {
  ifname: string;
  address?: string;
  flags?: string[];
  operstate?: string;
  linkinfo?: { info_kind?: string };
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}

async function ipJson<T>(ns: string, args: string[]): Promise<T> {
  const r = await run(['ip', '-n', ns, '-j', ...args]);
  return JSON.parse(r.stdout || '[]') as T;
}

/** Waits until the client can (or cannot) reach node over v4 and v6. */
async function expectReachable(n: LabNode, reachable: boolean, timeoutMs = 10_000): Promise<void> {
  await waitUntil(
    async () => {
      const r4 = await clientTry(n.v4, 80, 300);
      const r6 = await clientTry(n.v6, 80, 300);
      if (reachable) return r4.ok && r6.ok && r4.node === n.name && r6.node === n.name;
      return !r4.ok && !r6.ok;
    },
    { timeoutMs, intervalMs: 100, what: `${n.name} ${reachable ? 'reachable' : 'unreachable'} from the client` },
  );
}

/** ARP frames in frames sent by mac (as Ethernet source). */
const arpFrom = (frames: CapturedFrame[], mac: string): CapturedFrame[] => frames.filter((f) => f.arp && f.srcMac === mac);

describe('topology', () => {
  test('status: up, every namespace, every recorded process alive', T, async () => {
    const st = await networkStatus();
    assert.deepEqual(st.problems, []);
    assert.equal(st.up, true);
    assert.equal(st.bridge, true);
    for (const ns of [ROUTER.ns, CLIENT.ns, ...nodes.map((n) => n.name)]) assert.ok(st.namespaces.includes(ns), `namespace ${ns}`);
    assert.ok(st.processes.length >= 2 * nodes.length + 2);
    assert.ok(st.processes.every((p) => p.alive));
  });

  test('root namespace: the bridge carries HOST_V4 and HOST_V6', T, async () => {
    const [br] = JSON.parse((await run(['ip', '-j', 'addr', 'show', 'dev', 'plb-lan0'])).stdout) as IpAddr[];
    assert.ok(br);
    const addrs = (br.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
    assert.ok(addrs.includes(`${HOST_V4}/24`), addrs.join(' '));
    assert.ok(addrs.includes(`${HOST_V6}/64`), addrs.join(' '));
  });

  test('each node: eth0 with its v4/v6 and MAC, kube-lb0 (ifb, up), default routes, LB sysctls', T, async () => {
    for (const n of nodes) {
      const [eth0] = await ipJson<IpAddr[]>(n.name, ['addr', 'show', 'dev', 'eth0']);
      assert.ok(eth0, `${n.name} eth0`);
      assert.equal(eth0.address, labMac('node', n.index));
      assert.ok(eth0.flags?.includes('UP') && eth0.flags.includes('LOWER_UP'), `${n.name} eth0 up`);
      const addrs = (eth0.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
      assert.ok(addrs.includes(`${n.v4}/24`), `${n.name}: ${addrs.join(' ')}`);
      assert.ok(addrs.includes(`${n.v6}/64`), `${n.name}: ${addrs.join(' ')}`);

      const [lb] = await ipJson<IpAddr[]>(n.name, ['-d', 'link', 'show', 'dev', 'kube-lb0']);
      assert.ok(lb, `${n.name} kube-lb0`);
      assert.equal(lb.linkinfo?.info_kind, 'ifb');
      assert.ok(lb.flags?.includes('UP'), `${n.name} kube-lb0 up`);

      const r4 = await ipJson<Array<{ dst: string; gateway?: string }>>(n.name, ['-4', 'route', 'show', 'default']);
      const r6 = await ipJson<Array<{ dst: string; gateway?: string }>>(n.name, ['-6', 'route', 'show', 'default']);
      assert.equal(r4[0]?.gateway, ROUTER.v4);
      assert.equal(r6[0]?.gateway, ROUTER.v6);

      const want = labSysctls('node');
      const got = (await nsExec(n.name, ['sysctl', ...want.map((kv) => kv.split('=')[0] ?? '')])).stdout;
      for (const kv of want) {
        const [k, v] = kv.split('=');
        assert.match(got, new RegExp(`^${k?.replace(/\./g, '\\.')} = ${v}$`, 'm'), `${n.name} ${kv}`);
      }
    }
  });
});

describe('reachability', () => {
  test('the client reaches every node over v4 and v6; the responder names the node', T, async () => {
    for (const n of nodes) {
      assert.equal(await clientConnect(n.v4), n.name);
      assert.equal(await clientConnect(n.v6), n.name);
    }
    // Neighbour entry and arping agree on the node's MAC.
    const n1 = node(0);
    assert.equal(await clientNeighbor(n1.v4), labMac('node', 1));
    const arp = await clientArping(n1.v4);
    assert.deepEqual(arp.macs, [labMac('node', 1)]);
  });

  test('node namespaces reach the root namespace on HOST_V4 and HOST_V6 (where the API server listens)', T, async () => {
    const servers: Server[] = [];
    try {
      for (const host of [HOST_V4, HOST_V6]) {
        const srv = createServer((s) => s.end(`root:${host}\n`));
        servers.push(srv);
        await new Promise<void>((res, rej) => {
          srv.once('error', rej);
          srv.listen({ host, port: 0 }, () => res());
        });
        const port = (srv.address() as AddressInfo).port;
        for (const n of nodes) assert.equal(await nsConnect(n.name, host, port), `root:${host}\n`, `${n.name} → ${host}`);
      }
    } finally {
      for (const s of servers) s.close();
    }
  });
});

describe('routing', () => {
  test('BGP: the router has every node Established over v4 and v6', T, async () => {
    await waitForBgp(30_000);
    assert.equal(await birdSessionsUp(), true);
    const sessions = await bgpSessions();
    assert.equal(sessions.length, 2 * nodes.length);
    for (const s of sessions) assert.ok(s.established, `${s.protocol}: ${s.state} ${s.info}`);
  });

  test('ECMP: a /32 and a /128 on kube-lb0 of two nodes → one route with two next hops; removed → gone', T, async () => {
    const [a, b] = [node(0), node(1)];
    try {
      for (const n of [a, b]) {
        await run(['ip', '-n', n.name, 'addr', 'replace', `${ECMP_V4}/32`, 'dev', 'kube-lb0']);
        await run(['ip', '-n', n.name, 'addr', 'replace', `${ECMP_V6}/128`, 'dev', 'kube-lb0']);
      }
      for (const [prefix, family] of [[ECMP_V4, 4], [ECMP_V6, 6]] as const) {
        const route = await waitForRoute(prefix, 2, 15_000);
        assert.ok(route);
        assert.equal(route.family, family);
        assert.equal(route.protocol, 'bird');
        const hops = route.nexthops.map((h) => h.node).sort();
        assert.deepEqual(hops, [a.name, b.name].sort());
        const gws = route.nexthops.map((h) => h.gateway).sort();
        assert.deepEqual(gws, (family === 4 ? [a.v4, b.v4] : [a.v6, b.v6]).sort());
        const all = await routerRoutes();
        assert.equal(all.filter((r) => r.dst === route.dst).length, 1, 'exactly one route for the prefix');
      }
      // The client's flows spread over both nodes (layer-4 multipath hashing on the router).
      for (const vip of [ECMP_V4, ECMP_V6]) {
        const seen = new Set<string>();
        for (let i = 0; i < 60 && seen.size < 2; i++) seen.add(await clientConnect(vip));
        assert.deepEqual([...seen].sort(), [a.name, b.name].sort(), `flows to ${vip}`);
      }
    } finally {
      for (const n of [a, b]) {
        await run(['ip', '-n', n.name, 'addr', 'del', `${ECMP_V4}/32`, 'dev', 'kube-lb0'], { check: false });
        await run(['ip', '-n', n.name, 'addr', 'del', `${ECMP_V6}/128`, 'dev', 'kube-lb0'], { check: false });
      }
    }
    await waitForRoute(ECMP_V4, 0, 15_000);
    await waitForRoute(ECMP_V6, 0, 15_000);
    assert.deepEqual(await routerRoutes(ECMP_V4), []);
    assert.deepEqual(await routerRoutes(ECMP_V6), []);
  });

  test('clientProbe follows a route moving from one node to another', T, async () => {
    const [a, b] = [node(0), node(1)];
    try {
      await run(['ip', '-n', a.name, 'addr', 'replace', `${ECMP_V4}/32`, 'dev', 'kube-lb0']);
      await waitForRoute(ECMP_V4, 1, 15_000);
      assert.equal(await clientConnect(ECMP_V4), a.name);
      const probe = clientProbe(ECMP_V4, { stopWhenNot: a.name, durationMs: 20_000, attemptTimeoutMs: 200, intervalMs: 10 });
      await run(['ip', '-n', b.name, 'addr', 'replace', `${ECMP_V4}/32`, 'dev', 'kube-lb0']);
      await run(['ip', '-n', a.name, 'addr', 'del', `${ECMP_V4}/32`, 'dev', 'kube-lb0']);
      const attempts = await probe;
      const last = attempts.at(-1);
      assert.ok(last?.ok, `probe ended with ${JSON.stringify(last)}`);
      assert.equal(last.node, b.name);
      assert.ok(attempts.every((x) => x.at > 1e12 && x.ms >= 0));
    } finally {
      for (const n of [a, b]) await run(['ip', '-n', n.name, 'addr', 'del', `${ECMP_V4}/32`, 'dev', 'kube-lb0'], { check: false });
    }
    await waitForRoute(ECMP_V4, 0, 15_000);
  });
});

describe('faults', () => {
  test('failNode (link-down): node unreachable, carrier lost, BGP routes withdrawn; restoreNode brings it back', T, async () => {
    const n = node(2);
    try {
      await run(['ip', '-n', n.name, 'addr', 'replace', `${ECMP_V4}/32`, 'dev', 'kube-lb0']);
      await waitForRoute(ECMP_V4, 1, 15_000);
      await failNode(n.name, 'link-down');
      await expectReachable(n, false, 3000);
      const [eth0] = await ipJson<IpAddr[]>(n.name, ['link', 'show', 'dev', 'eth0']);
      assert.ok(eth0?.flags?.includes('NO-CARRIER'), `eth0 flags ${eth0?.flags?.join(',')}`);
      assert.deepEqual((await faultState([n.name])).portsDown, [n.name]);
      // BFD notices the dead peer: the route goes within a few seconds, not a hold time.
      const t0 = performance.now();
      await waitForRoute(ECMP_V4, 0, 10_000);
      assert.ok(performance.now() - t0 < 5000, 'route withdrawn quickly');
    } finally {
      await restoreNode(n.name);
      await run(['ip', '-n', n.name, 'addr', 'del', `${ECMP_V4}/32`, 'dev', 'kube-lb0'], { check: false });
    }
    await expectReachable(n, true);
    assert.deepEqual((await faultState([n.name])).portsDown, []);
    const r4 = await ipJson<Array<{ gateway?: string }>>(n.name, ['-4', 'route', 'show', 'default']);
    const r6 = await ipJson<Array<{ gateway?: string }>>(n.name, ['-6', 'route', 'show', 'default']);
    assert.equal(r4[0]?.gateway, ROUTER.v4, 'default v4 route survives the carrier loss');
    assert.equal(r6[0]?.gateway, ROUTER.v6, 'default v6 route survives the carrier loss');
    await waitForBgp(30_000);
    await waitForRoute(ECMP_V4, 0, 15_000);
  });

  test('failNode (blackhole): node unreachable but keeps carrier; restoreNode brings it back', T, async () => {
    const n = node(2);
    try {
      await failNode(n.name, 'blackhole');
      await expectReachable(n, false, 3000);
      const [eth0] = await ipJson<IpAddr[]>(n.name, ['link', 'show', 'dev', 'eth0']);
      assert.ok(eth0?.flags?.includes('LOWER_UP'), `eth0 keeps carrier: ${eth0?.flags?.join(',')}`);
      // Nor can the node reach anyone.
      await assert.rejects(nsConnect(n.name, node(0).v4, 80, { timeoutMs: 500 }));
      assert.equal((await faultState([n.name])).tables.length, 1);
    } finally {
      await restoreNode(n.name);
    }
    await expectReachable(n, true);
    assert.equal(await nsConnect(n.name, node(0).v4, 80), `${node(0).name}\n`);
    assert.deepEqual((await faultState([n.name])).tables, []);
    await waitForBgp(30_000);
  });

  test("cutLink 'from-node': the node hears the LAN, nobody hears the node", T, async () => {
    const n = node(1);
    const nodeCap = await startCapture({ ns: n.name, filter: 'arp', name: 'cut-from-node', maxDurationMs: 20_000 });
    try {
      await cutLink(n.name, 'from-node');
      const arp = await clientArping(n.v4, { count: 2, timeoutMs: 2000 });
      assert.deepEqual(arp.macs, [], 'no ARP reply reaches the client');
      assert.equal((await clientTry(n.v4, 80, 500)).ok, false);
      // The node did receive the client's ARP requests (and answered into the void).
      const frames = nodeCap.frames();
      assert.ok(arpFrom(frames, labMac('client')).some((f) => f.arp?.op === 1 && f.arp.targetIp === n.v4), 'node saw the requests');
      assert.ok(arpFrom(frames, labMac('node', n.index)).some((f) => f.arp?.op === 2), 'node replied');
      // Other nodes are unaffected.
      assert.equal(await clientConnect(node(0).v4), node(0).name);
    } finally {
      await nodeCap.stop();
      await healLink(n.name);
    }
    await expectReachable(n, true);
    await waitForBgp(30_000);
  });

  test("cutLink 'to-node': the node is heard, but hears nothing", T, async () => {
    const n = node(1);
    const clientCap = await startCapture({ name: 'cut-to-node-client', maxDurationMs: 20_000 });
    const nodeCap = await startCapture({ ns: n.name, filter: 'arp', name: 'cut-to-node-node', direction: 'in', maxDurationMs: 20_000 });
    try {
      await cutLink(n.name, 'to-node');
      await sendGarp(n.name, n.v4, 1);
      const arp = await clientArping(n.v4, { count: 1, timeoutMs: 1000 });
      assert.deepEqual(arp.macs, []);
      const seenByClient = await waitUntil(() => gratuitousOf(clientCap.frames()).find((g) => g.senderIp === n.v4), {
        timeoutMs: 3000,
        what: 'the node GARP at the client',
      });
      assert.equal(seenByClient.senderMac, labMac('node', n.index));
      assert.deepEqual(arpFrom(nodeCap.frames(), labMac('client')), [], 'the node received nothing from the client');
    } finally {
      await clientCap.stop();
      await nodeCap.stop();
      await healLink(n.name);
    }
    await expectReachable(n, true);
    await waitForBgp(30_000);
  });

  test('cutLink with a peer: only frames from the node to that peer are dropped', T, async () => {
    const [n, peer] = [node(1), node(0)];
    const peerCap = await startCapture({ ns: peer.name, filter: 'arp', name: 'cut-peer-peer', maxDurationMs: 20_000 });
    const nodeCap = await startCapture({ ns: n.name, filter: 'arp', name: 'cut-peer-node', maxDurationMs: 20_000 });
    const clientCap = await startCapture({ name: 'cut-peer-client', filter: 'arp', maxDurationMs: 20_000 });
    try {
      await cutLink(n.name, 'from-node', { peer: peer.name });
      await sendGarp(n.name, n.v4, 1);
      await waitUntil(() => gratuitousOf(clientCap.frames()).some((g) => g.senderIp === n.v4), { timeoutMs: 3000, what: 'GARP at the client' });
      assert.deepEqual(arpFrom(peerCap.frames(), labMac('node', n.index)), [], 'the peer heard nothing from the node');
      assert.equal(await clientConnect(n.v4), n.name, 'the client still reaches the node');
      await assert.rejects(nsConnect(peer.name, n.v4, 80, { timeoutMs: 500 }), 'the peer cannot talk to the node');
      // The other direction still flows: the node hears the peer.
      await sendGarp(peer.name, peer.v4, 1);
      await waitUntil(() => gratuitousOf(nodeCap.frames()).some((g) => g.senderIp === peer.v4), { timeoutMs: 3000, what: 'peer GARP at the node' });
    } finally {
      await peerCap.stop();
      await nodeCap.stop();
      await clientCap.stop();
      await healLink(n.name);
    }
    assert.equal(await nsConnect(peer.name, n.v4, 80), `${n.name}\n`, 'healed');
    await waitForBgp(30_000);
  });
});

describe('capture', () => {
  test('sees a gratuitous ARP sent with iputils arping -U from a node', T, async () => {
    const n = node(0);
    const cap = await startCapture({ name: 'garp', maxDurationMs: 15_000 });
    let frames: CapturedFrame[];
    try {
      await sendGarp(n.name, n.v4, 1);
      await waitUntil(() => gratuitousOf(cap.frames()).length > 0, { timeoutMs: 5000, what: 'a GARP in the capture' });
    } finally {
      frames = await cap.stop();
    }
    const garps = gratuitousOf(frames).filter((g) => g.senderMac === labMac('node', n.index));
    assert.ok(garps.length >= 1, JSON.stringify(frames));
    const g = garps[0];
    assert.ok(g);
    assert.equal(g.family, 4);
    assert.equal(g.op, 'request');
    assert.equal(g.senderIp, n.v4);
    assert.equal(g.targetIp, n.v4);
    assert.equal(g.ethDst, 'ff:ff:ff:ff:ff:ff');
    assert.ok(Math.abs(g.time * 1000 - Date.now()) < 60_000, 'timestamp is recent');
  });

  test('pcap parser: ARP request/reply and an unsolicited NA (synthetic frames)', () => {
    const macA = [0x02, 0x50, 0x4c, 0x01, 0x00, 0x01];
    const bcast = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    const ip4 = [198, 51, 100, 64];
    const arp = Buffer.from([
      ...bcast, ...macA, 0x08, 0x06,
      0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, ...macA, ...ip4, 0, 0, 0, 0, 0, 0, ...ip4,
    ]);
    const vip6 = [0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40];
    const allNodes = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const icmp = [136, 0, 0, 0, 0x20, 0, 0, 0, ...vip6, 2, 1, ...macA];
    const na = Buffer.from([
      0x33, 0x33, 0, 0, 0, 1, ...macA, 0x86, 0xdd,
      0x60, 0, 0, 0, 0, icmp.length, 58, 255, ...vip6, ...allNodes, ...icmp,
    ]);
    const solicitedIcmp = [...icmp];
    solicitedIcmp[4] = 0x60;
    const naSolicited = Buffer.from([...na.subarray(0, 54), ...solicitedIcmp]);
    const rec = (p: Buffer, sec: number): Buffer => {
      const h = Buffer.alloc(16);
      h.writeUInt32LE(sec, 0);
      h.writeUInt32LE(500_000, 4);
      h.writeUInt32LE(p.length, 8);
      h.writeUInt32LE(p.length, 12);
      return Buffer.concat([h, p]);
    };
    const global = Buffer.alloc(24);
    global.writeUInt32LE(0xa1b2c3d4, 0);
    global.writeUInt16LE(2, 4);
    global.writeUInt16LE(4, 6);
    global.writeUInt32LE(262144, 16);
    global.writeUInt32LE(1, 20);
    const frames = parsePcap(Buffer.concat([global, rec(arp, 100), rec(na, 101), rec(naSolicited, 102)]));
    assert.equal(frames.length, 3);
    assert.equal(frames[0]?.time, 100.5);
    assert.deepEqual(frames[0]?.arp, { op: 1, senderMac: '02:50:4c:01:00:01', senderIp: '198.51.100.64', targetMac: '00:00:00:00:00:00', targetIp: '198.51.100.64' });
    assert.equal(frames[1]?.ndp?.type, 136);
    assert.equal(frames[1]?.ndp?.target, '2001:db8:100::40');
    assert.equal(frames[1]?.ndp?.override, true);
    assert.equal(frames[1]?.ndp?.solicited, false);
    assert.equal(frames[1]?.ndp?.targetLinkAddr, '02:50:4c:01:00:01');
    const g = gratuitousOf(frames);
    assert.equal(g.length, 2, 'the GARP and the unsolicited NA; not the solicited NA');
    assert.deepEqual(
      g.map((x) => [x.family, x.op, x.senderMac, x.targetIp]),
      [
        [4, 'request', '02:50:4c:01:00:01', '198.51.100.64'],
        [6, 'na', '02:50:4c:01:00:01', '2001:db8:100::40'],
      ],
    );
    assert.equal(labHost(CLIENT.ns).mac, labMac('client'));
  });
});
