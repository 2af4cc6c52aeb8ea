// Failover behaviour in the lab (the timing figures come from `npm run bench -- failover`):
// hard and graceful loss move a VIP to the runner-up; one-way loss never leaves a VIP
// reachable on two nodes; an API server outage does not stop announcements, and a node
// lost during it still fails over; forged and replayed heartbeats change nothing.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { winner } from '../../src/election/winner.ts';
import { encodeHeartbeat } from '../../src/lbnodeagent/heartbeat/packet.ts';
import { controlPlaneStatus } from '../lab/controlplane.ts';
import { NODE_BIN } from '../lab/exec.ts';
import { clientArping, clientConnect, cutLink, failNode, healLink, labMac, nsExec, restoreNode } from '../lab/network.ts';
import { labNodes } from '../lab/plan.ts';
import type { LabNode } from '../lab/plan.ts';
import { kubectl, waitUntil } from '../lab/testkit.ts';
import { AGENT_ENV, NODES, SG_NS, failoverTrial, holdersOf, setUpFailoverLab, waitSettled } from './failover-kit.ts';
import type { FailoverLab } from './failover-kit.ts';

let lab: FailoverLab;
const runnerUp = (vip: string, without: string) => winner(NODES.filter((n) => n !== without), vip) as string;
const macOf = (node: string) => labMac('node', labNodes(3).find((n) => n.name === node)?.index ?? 0);
/** Detection window (3 × 100 ms) plus a reconcile, with room for a loaded machine. */
const SETTLE_MS = 2000;
const MEMBER_LEASE_MS = Number(AGENT_ENV.PURELB_MEMBER_LEASE_MS);

before(async () => {
  lab = await setUpFailoverLab(6);
});

after(async () => {
  await lab?.close();
});

test('hard node loss: the VIP moves to the runner-up and the client reaches it there', async () => {
  for (const vip of lab.vips.slice(0, 2)) {
    const trial = await failoverTrial(lab, vip, 'hard');
    assert.equal(trial.to, runnerUp(vip, trial.from), `${vip}: answered by ${trial.to} after ${trial.from} failed`);
    assert.ok(trial.gapMs !== undefined && trial.gapMs > 0);
  }
});

test('graceful stop: the leaving agent hands over to the runner-up', async () => {
  for (const vip of lab.vips.slice(2, 4)) {
    const trial = await failoverTrial(lab, vip, 'graceful');
    assert.equal(trial.to, runnerUp(vip, trial.from));
    assert.ok(trial.gapMs !== undefined && trial.gapMs > 0);
  }
});

test('one-way loss, nobody hears the holder: peers take over and the holder yields, one holder remains', async () => {
  const vip = lab.vips[4] as string;
  const holder = await waitSettled(vip);
  const next = runnerUp(vip, holder);
  await cutLink(holder, 'from-node');
  try {
    await waitUntil(`${vip} held by ${next} only`, SETTLE_MS * 2, async () => (await holdersOf(vip)).join() === next, 50);
    assert.equal(await clientConnect(vip), next);
  } finally {
    await healLink(holder);
  }
  await waitSettled(vip);
});

test('one-way loss, the holder hears nobody: it stops being a candidate, the client sees exactly one MAC', async () => {
  const vip = lab.vips[5] as string;
  const holder = await waitSettled(vip);
  const next = runnerUp(vip, holder);
  const cutAt = Date.now();
  await cutLink(holder, 'to-node');
  try {
    await waitUntil(`${next} takes ${vip}`, SETTLE_MS * 2, async () => (await holdersOf(vip)).includes(next), 50);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    // The cut-off holder may keep the address in its kernel (it cannot tell a dead LAN
    // from dead peers), but nothing reaches it: the network sees one owner.
    const arp = await clientArping(vip, { count: 3, timeoutMs: 3000 });
    assert.deepEqual(arp.macs, [macOf(next)]);
    assert.equal(await clientConnect(vip), next);
    // Longer than the member Lease (4 s): the holder's watch of the Leases has been
    // silent that long too when the link heals.
    await new Promise((r) => setTimeout(r, Math.max(0, cutAt + MEMBER_LEASE_MS + 1000 - Date.now())));
  } finally {
    await healLink(holder);
  }
  // Back on the LAN, it hears its peers again over the next interval and its Lease watch
  // resumes later still (TCP's backoff): through all of it, it takes nothing of theirs.
  const theirs = lab.vips.filter((v) => winner(NODES, v) !== holder);
  const until = Date.now() + 6000;
  for (let round = 0; round < 200 && Date.now() < until; round++) {
    const taken = [];
    for (const v of theirs) if ((await holdersOf(v, [holder])).length > 0) taken.push(v);
    assert.deepEqual(taken, [], `${holder} holds its peers' VIPs ${Date.now() - until + 6000} ms after the heal`);
  }
  // It kept the address all along, but the client learnt the runner-up's MAC meanwhile:
  // back in its peers' elections, the holder announces it again.
  await waitUntil(`client reaches ${vip} on ${holder} again`, SETTLE_MS, async () => (await clientConnect(vip, 80, 500).catch(() => '')) === holder, 100);
  await waitSettled(vip);
});

async function heartbeatCounter(node: string, result: string): Promise<number> {
  const r = await nsExec(node, ['curl', '-s', '--max-time', '2', 'http://127.0.0.1:7472/metrics']);
  const m = new RegExp(`^purelb_lbnodeagent_heartbeats_total\\{result="${result}"\\} (\\d+)`, 'm').exec(r.stdout);
  return m ? Number(m[1]) : 0;
}

const SEND_UDP = `
const [host, port, b64] = process.argv.slice(1);
const s = require('node:dgram').createSocket('udp4');
s.send(Buffer.from(b64, 'base64'), Number(port), host, (e) => { s.close(); process.exit(e ? 1 : 0); });
`;

test('forged and replayed heartbeats are rejected, counted, and change nothing', async () => {
  const target = labNodes(3)[0] as LabNode;
  const victim = 'plb-node2';
  const secret = JSON.parse((await kubectl(['get', 'secret', 'purelb-heartbeat', '-n', SG_NS, '-o', 'json'])).stdout) as { data: { key: string } };
  const key = Buffer.from(secret.data.key, 'base64');
  for (const vip of lab.vips) await waitSettled(vip);
  const holdersBefore = await Promise.all(lab.vips.map((v) => holdersOf(v)));
  const forgedBefore = await heartbeatCounter(target.name, 'forged');
  const replayedBefore = await heartbeatCounter(target.name, 'replayed');
  const goodbye = { type: 'leaving' as const, node: victim, hearsYou: false, quorate: true };
  const forged = encodeHeartbeat({ ...goodbye, incarnation: BigInt(Date.now()), seq: 1n << 40n, sentAt: BigInt(Date.now()) }, Buffer.alloc(32, 1));
  // Authentic but stale: what a captured-and-resent datagram looks like to the receiver.
  const stale = encodeHeartbeat({ ...goodbye, incarnation: 1n, seq: 1n, sentAt: BigInt(Date.now()) }, key);
  const old = encodeHeartbeat({ ...goodbye, incarnation: BigInt(Date.now()) * 2n, seq: 1n, sentAt: BigInt(Date.now() - 120_000) }, key);
  for (const packet of [forged, stale, old]) {
    for (let i = 0; i < 5; i++) await nsExec('plb-client', [NODE_BIN, '-e', SEND_UDP, target.v4, '7934', packet.toString('base64')]);
  }
  await waitUntil('rejections counted', 5000, async () => (await heartbeatCounter(target.name, 'forged')) >= forgedBefore + 5 && (await heartbeatCounter(target.name, 'replayed')) >= replayedBefore + 10);
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(await Promise.all(lab.vips.map((v) => holdersOf(v))), holdersBefore, 'a rejected heartbeat moved a VIP');
});

test('API server outage: announcements stay, and a node lost during the outage still fails over', async () => {
  const pid = controlPlaneStatus().apiServer;
  assert.ok(pid, 'the lab API server is not running');
  const vip = lab.vips[0] as string;
  const holder = await waitSettled(vip);
  const next = runnerUp(vip, holder);
  const before = await Promise.all(lab.vips.map((v) => holdersOf(v)));
  process.kill(pid, 'SIGSTOP');
  try {
    // Longer than the member Lease (4 s): renewals fail, peers' Leases look stale.
    for (let i = 0; i < 12; i++) {
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(await Promise.all(lab.vips.map((v) => holdersOf(v))), before, `announcements changed ${i * 0.5} s into the outage`);
    }
    await failNode(holder, 'link-down');
    await waitUntil(`${vip} moves to ${next} while the API server is down`, SETTLE_MS * 2, async () => (await holdersOf(vip, NODES.filter((n) => n !== holder))).join() === next, 50);
    assert.equal(await clientConnect(vip), next);
  } finally {
    process.kill(pid, 'SIGCONT');
    await restoreNode(holder);
  }
  await waitSettled(vip, 30_000);
});

test('every agent stopped at once (an uninstall): none takes the others\' VIPs on its way out, and all are withdrawn', async () => {
  for (const vip of lab.vips) await waitSettled(vip);
  const agents = [...lab.agents.entries()];
  // The signals leave together, as a kubectl delete of the DaemonSet sends them.
  for (const [, a] of agents) process.kill(a.rec.pid, 'SIGTERM');
  await Promise.all(agents.map(([, a]) => a.stop()));
  for (const [node, a] of agents) {
    const lines = a.log().split('\n');
    const stopping = lines.findIndex((l) => l.includes('"message":"stopping"'));
    assert.ok(stopping >= 0, `${node}: no "stopping" in its log`);
    const late = lines.slice(stopping).filter((l) => l.includes('"message":"announced address"'));
    assert.deepEqual(late, [], `${node} announced addresses after it began to stop`);
  }
  for (const vip of lab.vips) assert.deepEqual(await holdersOf(vip), [], `${vip} left behind`);
});
