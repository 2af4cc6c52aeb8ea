// Heartbeats scoped to candidates, on real detectors and memberships over a simulated
// network: who sends to whom, how a lost peer is detected, and the split-brain rules
// of docs/failover.md when each node's peer set is its own subnet.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { winner } from '../../election/winner.ts';
import { heartbeatPeers } from '../membership.ts';
import { HEARTBEAT_PORT, SimulatedCluster, simulatedNodes } from './simulated.ts';
import type { SimulatedAgent, SimulatedNode } from './simulated.ts';

/** Detection window (3 × 100 ms), one evaluation period and the simulated latency. */
const DETECTION_MS = 300 + 50 + 1;

const member = (node: string, subnets: string[], heartbeats = true) => ({ node, subnets, ...(heartbeats ? { heartbeat: `${node}:7934` } : {}) });

test('heartbeat peers are the members whose subnets overlap ours, by family, with an endpoint', () => {
  const members = [
    member('a', ['10.0.0.0/24', 'fd00::/64']),
    member('b', ['10.0.0.0/24']),
    member('c', ['10.0.1.0/24']),
    member('d', ['10.0.0.128/25']),
    member('e', ['fd00::/64']),
    member('f', ['10.0.0.0/24'], false),
    member('g', []),
    member('h', ['0a00::/24']),
  ];
  assert.deepEqual(
    heartbeatPeers('a', members).map((p) => p.node),
    ['b', 'd', 'e'],
  );
  assert.deepEqual(
    heartbeatPeers('c', members).map((p) => p.node),
    [],
  );
  assert.deepEqual(
    heartbeatPeers('d', members).map((p) => p.node),
    ['a', 'b'],
  );
  assert.deepEqual(heartbeatPeers('not-a-member', members), [], 'no Lease of our own: nobody to protect, nobody to send to');
  for (const x of members.filter((m) => m.heartbeat)) for (const y of heartbeatPeers(x.node, members)) assert.ok(heartbeatPeers(y.node, members).some((p) => p.node === x.node), `${x.node}→${y.node} but not back`);
});

const twoSubnets = (): SimulatedNode[] => simulatedNodes(8, 4);
const vipIn = (subnet: number, i: number) => `10.${subnet}.3.${i}`;

/** A started cluster after `settleMs`, and the one node that holds `vip` then. */
async function settled(nodes: SimulatedNode[], vip: string, settleMs = 500): Promise<{ cluster: SimulatedCluster; holder: string }> {
  const cluster = new SimulatedCluster(nodes);
  await cluster.start();
  cluster.clock.advance(settleMs);
  const holders = cluster.holders(vip);
  assert.equal(holders.length, 1, `${vip} held by ${holders.join(', ')}`);
  return { cluster, holder: holders[0] as string };
}

test('an agent sends only to the members of its subnet, and each of them receives from it', async () => {
  const cluster = new SimulatedCluster(twoSubnets());
  cluster.network.countPairs = true;
  await cluster.start();
  cluster.network.resetCounts();
  cluster.clock.advance(1000);
  for (const a of cluster.agents) {
    const subnet = a.node.subnets[0];
    const peers = cluster.agents.filter((b) => b !== a && b.node.subnets[0] === subnet);
    assert.deepEqual(a.detector.peerNodes().sort(), peers.map((b) => b.node.name).sort());
    for (const b of cluster.agents) {
      const count = cluster.network.pairs.get(`${a.node.address}>${b.node.address}`) ?? 0;
      if (peers.includes(b)) assert.ok(count >= 9 && count <= 11, `${a.node.name}→${b.node.name}: ${count} datagrams in 1 s`);
      else assert.equal(count, 0, `${a.node.name}→${b.node.name} crosses subnets`);
    }
    assert.equal(a.detector.counters.unknownSender, 0);
    assert.equal(a.membership.members().length, 8, 'other subnets still count, on their Leases');
  }
});

test('a lost peer of the same subnet is dropped within the detection window and its VIP moves to exactly one node', async () => {
  const vip = vipIn(0, 10);
  const { cluster, holder: lost } = await settled(twoSubnets(), vip);
  const survivors = cluster.agents.filter((a) => a.node.name !== lost);
  const sameSubnet = survivors.filter((a) => a.node.subnets[0] === '10.0.0.0/22');
  cluster.lose(lost);
  cluster.clock.advance(150);
  for (const a of sameSubnet) assert.ok(a.membership.members().some((m) => m.node === lost), 'silence shorter than the window is not death');
  cluster.clock.advance(DETECTION_MS - 150);
  for (const a of sameSubnet) assert.ok(!a.membership.members().some((m) => m.node === lost), `${a.node.name} still counts ${lost}`);
  for (const a of survivors.filter((x) => !sameSubnet.includes(x))) assert.ok(a.membership.members().some((m) => m.node === lost), 'another subnet waits for the Lease');
  const expected = winner(
    sameSubnet.map((a) => a.node.name),
    vip,
  );
  assert.deepEqual(cluster.holders(vip, survivors), [expected]);
});

test('losing a whole other subnet leaves an agent quorate: it never counted those nodes', async () => {
  const cluster = new SimulatedCluster(simulatedNodes(12, 3));
  await cluster.start();
  cluster.clock.advance(300);
  for (const a of cluster.agents.slice(3)) cluster.lose(a.node.name);
  cluster.clock.advance(1000);
  for (const a of cluster.agents.slice(0, 3)) {
    assert.equal(a.detector.quorate(), true);
    assert.equal(a.membership.members().length, 12);
  }
  const vip = vipIn(0, 20);
  assert.equal(cluster.holders(vip, cluster.agents.slice(0, 3)).length, 1);
});

test('a node that hears none of its subnet is not quorate: it keeps its view and its peers take its VIP', async () => {
  const vip = vipIn(1, 30);
  const { cluster, holder: deaf } = await settled(twoSubnets(), vip);
  const node = cluster.agent(deaf);
  cluster.network.cut(node.node.address, 'in');
  cluster.clock.advance(1000);
  assert.equal(node.detector.quorate(), false);
  assert.equal(node.membership.members().length, 8, 'its view is frozen, not emptied');
  const others = cluster.agents.filter((a) => a !== node);
  for (const a of others.filter((x) => x.node.subnets[0] === node.node.subnets[0])) {
    assert.equal(a.detector.quorate(), true);
    assert.ok(!a.membership.members().some((m) => m.node === deaf), `${a.node.name} still elects the unquorate ${deaf}`);
  }
  assert.equal(cluster.holders(vip, others).length, 1, 'the reachable nodes hold it once');
  cluster.network.heal(node.node.address);
  cluster.clock.advance(500);
  assert.equal(node.detector.quorate(), true);
  assert.deepEqual(cluster.holders(vip), [deaf], 'after the heal the winner holds it again, alone');
});

test('a node back from being cut off claims nothing of its peers while their first datagrams arrive', async () => {
  const vips = Array.from({ length: 60 }, (_, i) => vipIn(1, 100 + i));
  for (const seed of [1, 2, 3, 4, 5]) {
    const cluster = new SimulatedCluster(twoSubnets(), { seed });
    await cluster.start();
    cluster.clock.advance(500);
    const node = cluster.agents[4] as SimulatedAgent;
    const own = new Set(vips.filter((v) => cluster.holders(v, [node]).length === 1));
    assert.ok(own.size > 0 && own.size < vips.length, 'the node wins some of the VIPs, not all');
    cluster.network.cut(node.node.address, 'in');
    cluster.clock.advance(1000);
    assert.equal(node.detector.quorate(), false);
    let told = 0;
    node.membership.onChange(() => told++);
    cluster.network.heal(node.node.address);
    // Its peers' datagrams come in over the next interval, in a seed-given order: at the
    // second of three it is quorate while the third is still silent.
    for (let t = 0; t < 600; t += 2) {
      cluster.clock.advance(2);
      const taken = vips.filter((v) => !own.has(v) && cluster.holders(v, [node]).length === 1);
      assert.deepEqual(taken, [], `seed ${seed}, ${t + 2} ms after the heal: ${node.node.name} claims its peers' VIPs`);
    }
    assert.equal(node.detector.quorate(), true);
    assert.ok(told > 0, 'the regained quorum is told to the agent, which announces what it kept again');
    for (const v of vips) assert.equal(cluster.holders(v).length, 1, `${v} after the heal`);
  }
});

test('a peer whose Lease expires while it is heard stays a member: its VIP does not move', async () => {
  const vip = vipIn(0, 70);
  const { cluster, holder } = await settled(twoSubnets(), vip);
  // Its renewals stop reaching the API server; its heartbeats go on.
  for (const a of cluster.agents) if (a.node.name !== holder) a.leases.lapse([holder]);
  cluster.clock.advance(1000);
  assert.deepEqual(cluster.holders(vip), [holder]);
  for (const a of cluster.agents.filter((x) => x.node.subnets[0] === cluster.agent(holder).node.subnets[0] && x.node.name !== holder)) {
    assert.ok(a.membership.members().some((m) => m.node === holder), `${a.node.name} dropped a peer it hears`);
    assert.ok(a.detector.peerNodes().includes(holder));
  }
});

test('a lapsed peer that falls silent leaves the peer set: its VIP moves to one node and the quorum holds', async () => {
  const vip = vipIn(0, 80);
  const { cluster, holder } = await settled(twoSubnets(), vip);
  const others = cluster.agents.filter((a) => a.node.name !== holder);
  for (const a of others) a.leases.lapse([holder]);
  cluster.lose(holder);
  cluster.clock.advance(DETECTION_MS + 100);
  assert.equal(cluster.holders(vip, others).length, 1);
  for (const a of others) {
    assert.ok(!a.detector.peerNodes().includes(holder), `${a.node.name} still counts the lapsed, silent ${holder}`);
    assert.equal(a.detector.quorate(), true);
  }
});

test('a node cut off from its peers claims nothing of theirs when their Leases expire in its view, nor after the heal', async () => {
  const vips = Array.from({ length: 60 }, (_, i) => vipIn(1, 150 + i));
  const cluster = new SimulatedCluster(twoSubnets());
  await cluster.start();
  cluster.clock.advance(500);
  const node = cluster.agents[5] as SimulatedAgent;
  const own = new Set(vips.filter((v) => cluster.holders(v, [node]).length === 1));
  const peers = node.detector.peerNodes();
  const claimed = () => vips.filter((v) => !own.has(v) && cluster.holders(v, [node]).length === 1);
  cluster.network.cut(node.node.address, 'in');
  // Its peers fall silent to it one evaluation after another: the first are silent
  // while it still hears enough of them for a quorum.
  for (let t = 0; t < 1000; t += 10) {
    cluster.clock.advance(10);
    assert.deepEqual(claimed(), [], `${t + 10} ms after the cut`);
  }
  assert.equal(node.detector.quorate(), false);
  // Its watch of the Leases is cut as well: to it, every peer's Lease expires.
  node.leases.lapse(peers);
  for (let t = 0; t < 1000; t += 50) {
    cluster.clock.advance(50);
    assert.deepEqual(claimed(), [], `${t + 50} ms after its peers' Leases expired in its view`);
  }
  assert.deepEqual(node.detector.peerNodes().sort(), [...peers].sort(), 'the peer set it counts its quorum over is kept');
  cluster.network.heal(node.node.address);
  for (let t = 0; t < 600; t += 10) {
    cluster.clock.advance(10);
    assert.deepEqual(claimed(), [], `${t + 10} ms after the heal`);
  }
  assert.equal(node.detector.quorate(), true);
  for (const v of vips) assert.equal(cluster.holders(v).length, 1, `${v} after the heal`);
});

test('a node nobody hears yields its VIP to the runner-up, which takes it: one holder', async () => {
  const vip = vipIn(0, 40);
  const { cluster, holder: mute } = await settled(twoSubnets(), vip);
  cluster.network.cut(cluster.agent(mute).node.address, 'out');
  cluster.clock.advance(DETECTION_MS + 100);
  assert.equal(cluster.agent(mute).detector.quorate(), true, 'it still hears its peers');
  assert.ok(cluster.agent(mute).membership.deafPeers().size >= 3);
  const runnerUp = winner(
    cluster.agents.filter((a) => a.node.subnets[0] === '10.0.0.0/22' && a.node.name !== mute).map((a) => a.node.name),
    vip,
  );
  assert.deepEqual(cluster.holders(vip), [runnerUp]);
});

test('a subnet of two has no quorum to lose: the survivor takes over', async () => {
  const vip = vipIn(2, 50);
  const { cluster, holder } = await settled(simulatedNodes(6, 2), vip, 300);
  const other = cluster.agents.find((a) => a.node.subnets[0] === '10.2.0.0/22' && a.node.name !== holder);
  assert.ok(other);
  cluster.lose(holder);
  cluster.clock.advance(DETECTION_MS);
  assert.equal(other.detector.quorate(), true);
  assert.deepEqual(
    cluster.holders(
      vip,
      cluster.agents.filter((a) => a.node.name !== holder),
    ),
    [other.node.name],
  );
});

test('during an upgrade an agent that still sends to everybody is answered by other subnets, and stays quorate', async () => {
  const vip = vipIn(0, 60);
  const { cluster } = await settled(twoSubnets(), vip);
  cluster.network.countPairs = true;
  const old = cluster.agents[0] as SimulatedAgent;
  const others = cluster.agents.filter((a) => a !== old);
  old.detector.setPeers(others.map((a) => ({ node: a.node.name, endpoint: `${a.node.address}:${HEARTBEAT_PORT}` })));
  cluster.clock.advance(2500); // past the grace period of its new peers
  assert.equal(old.detector.quorate(), true, 'it would hear 3 of 7 without the answers');
  for (const a of others) assert.ok(old.detector.usable(a.node.name), `${a.node.name} looks silent to the old agent`);
  const farSide = others.filter((a) => a.node.subnets[0] !== old.node.subnets[0]);
  for (const a of farSide) assert.ok(!a.detector.peerNodes().includes(old.node.name), 'answered, not watched');
  assert.equal(cluster.holders(vip).length, 1);
  // Upgraded: it scopes as well, and the answers stop after the grace period.
  old.detector.setPeers(heartbeatPeers(old.node.name, old.membership.members().map((m) => ({ ...m, heartbeat: `${cluster.agent(m.node).node.address}:${HEARTBEAT_PORT}` }))));
  cluster.clock.advance(2500);
  cluster.network.resetCounts();
  cluster.clock.advance(1000);
  for (const a of farSide) assert.equal(cluster.network.pairs.get(`${a.node.address}>${old.node.address}`) ?? 0, 0);
});
