// The ownership record's safety against a real kernel: successive "agents" (new
// HostNetwork instances with one record folder, in one namespace: a restart opens a new
// one in the agent's process; the crash is another process, SIGKILLed in the middle of
// a batch) start, restart, crash, and find their record deleted or truncated. Whatever happens,
// the node's own addresses and an address an operator added by hand, equal to a VIP,
// are never changed; our addresses are adopted without being deleted and added again;
// a withdrawn VIP leaves, and nothing of ours stays once everything is withdrawn.
//
// The marker is turned off (PURELB_ADDRESS_MARKER=off) so that this runs the record on
// any kernel; on Linux 5.10 (scripts/old-kernel.sh) it is the only way anyway.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Netns, sweepStaleNamespaces } from './testkit.ts';
import type { Fixture } from './testkit.ts';
import type { AddressSpec, HostNetworkEvent, OwnershipStatus } from './host-network.ts';

const fixtureModule = fileURLToPath(new URL('./host-network.fixture.ts', import.meta.url));
const LIMIT = { timeout: 180_000 };

interface Pass {
  deleted: Record<string, string>;
  added: Record<string, string>;
}

interface AddrInfo {
  local: string;
  prefixlen: number;
  valid_life_time: number;
  noprefixroute?: boolean;
}

describe('the ownership record keeps foreign addresses safe across agent lifecycles', () => {
  let node: Netns;
  let dir: string;
  let watcher: Fixture;
  let agent: Fixture;
  let eth0 = 0;
  let lb0 = 0;
  const withRecord = () => ({ PURELB_ADDRESS_MARKER: 'off', PURELB_OWNERSHIP_DIR: dir });

  /** The next agent: a new HostNetwork in the agent's process, which reads the record afresh. */
  const restartAgent = () => agent.call('restart');

  const addrs = (ifname: string): AddrInfo[] =>
    (JSON.parse(node.ip('-j', 'addr', 'show', 'dev', ifname)) as Array<{ addr_info: AddrInfo[] }>)[0]?.addr_info ?? [];
  const has = (ifname: string, ip: string) => addrs(ifname).some((a) => a.local === ip);
  const ifindexOf = (ifname: string) => (JSON.parse(node.ip('-j', 'link', 'show', 'dev', ifname)) as Array<{ ifindex: number }>)[0]?.ifindex ?? 0;

  /** The node's own addresses and the hand-added one, exactly as the kernel shows them. */
  const foreignState = () =>
    JSON.stringify(
      addrs('eth0')
        .filter((a) => ['198.51.100.2', '2001:db8:100::2', '198.51.100.50'].includes(a.local))
        .map((a) => [a.local, a.prefixlen, a.valid_life_time, a.noprefixroute ?? false]),
    );

  const vips = (): AddressSpec[] => [
    { ifindex: eth0, ip: '198.51.100.10', prefix: 32, lifetimes: { validSec: 300, preferredSec: 300 } },
    { ifindex: eth0, ip: '2001:db8:100::10', prefix: 128, lifetimes: { validSec: 300, preferredSec: 300 } },
    { ifindex: eth0, ip: '198.51.100.50', prefix: 32, lifetimes: { validSec: 300, preferredSec: 300 } }, // = the hand-added one
    { ifindex: lb0, ip: '192.0.2.10', prefix: 32, noPrefixRoute: true },
    { ifindex: lb0, ip: '2001:db8:10::10', prefix: 128, noPrefixRoute: true },
  ];
  const bulk = (): AddressSpec[] =>
    Array.from({ length: 300 }, (_, i) => ({ ifindex: lb0, ip: `2001:db8:20::${(i + 1).toString(16)}`, prefix: 128, noPrefixRoute: true }));

  /** Addresses of the VIPs that the kernel removed since the watcher started (a flap shows as one). */
  const removedVips = async (): Promise<string[]> => {
    await new Promise((r) => setTimeout(r, 200)); // notifications in flight
    return watcher.seen<HostNetworkEvent>().flatMap((e) => (e.type === 'address-removed' && e.address.ip !== '198.51.100.2' ? [e.address.ip] : []));
  };

  before(async () => {
    sweepStaleNamespaces();
    dir = mkdtempSync(join(tmpdir(), 'plbt-record-'));
    node = Netns.node('own');
    // An operator's (or keepalived's) address, equal to a VIP the agent wants.
    node.ip('addr', 'add', '198.51.100.50/32', 'dev', 'eth0');
    eth0 = ifindexOf('eth0');
    lb0 = ifindexOf('kube-lb0');
    watcher = await node.startFixture(fixtureModule, 60_000, withRecord());
    await watcher.call('watch');
    agent = await node.startFixture(fixtureModule, 60_000, withRecord());
  });

  after(() => {
    node?.delete(); // stops the fixtures
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test('start: the VIPs come up, the hand-added one is reported and left as it was', LIMIT, async () => {
    const before = foreignState();
    const status = await agent.call<OwnershipStatus>('ownership');
    assert.equal(status.mode, 'record');
    const pass = await agent.call<Pass>('reconcile', vips());
    assert.deepEqual(pass.added, {
      '198.51.100.10': 'added',
      '2001:db8:100::10': 'added',
      '198.51.100.50': 'foreign',
      '192.0.2.10': 'added',
      '2001:db8:10::10': 'added',
    });
    assert.equal(foreignState(), before);
    assert.ok(has('kube-lb0', '192.0.2.10') && has('eth0', '2001:db8:100::10'));
    // The record lists what was added, with the kernel's creation stamps.
    const record = JSON.parse(readFileSync(status.recordPath ?? '', 'utf8')) as { addresses: Array<{ ip: string; ifname: string; state: string; created?: number }> };
    assert.deepEqual(record.addresses.map((a) => a.ip).sort(), ['192.0.2.10', '198.51.100.10', '2001:db8:100::10', '2001:db8:10::10']);
    assert.ok(record.addresses.every((a) => a.state === 'held' && typeof a.created === 'number' && (a.ifname === 'eth0' || a.ifname === 'kube-lb0')));
  });

  test('restart: a new agent adopts our addresses without removing and adding them again', LIMIT, async () => {
    const before = foreignState();
    await restartAgent();
    const pass = await agent.call<Pass>('reconcile', vips());
    assert.deepEqual(pass.deleted, {});
    assert.deepEqual(pass.added, {
      '198.51.100.10': 'refreshed',
      '2001:db8:100::10': 'refreshed',
      '198.51.100.50': 'foreign',
      '192.0.2.10': 'refreshed',
      '2001:db8:10::10': 'refreshed',
    });
    assert.deepEqual(await removedVips(), [], 'no VIP left the kernel');
    assert.equal(foreignState(), before);
  });

  test('SIGKILL in the middle of a batch, then restart: every address it added is adopted, nothing foreign changes', LIMIT, async () => {
    const before = foreignState();
    const wanted = [...vips(), ...bulk()];
    const doomed = await node.startFixture(fixtureModule, 60_000, withRecord());
    const pass = doomed.call<Pass>('reconcile', wanted).catch(() => undefined);
    // Killed once part of the batch is in the kernel.
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && addrs('kube-lb0').filter((a) => a.local.startsWith('2001:db8:20::')).length < 5) {
      await new Promise((r) => setTimeout(r, 20));
    }
    doomed.stop();
    await pass;
    const survivors = addrs('kube-lb0').filter((a) => a.local.startsWith('2001:db8:20::')).map((a) => a.local);
    assert.ok(survivors.length >= 5, `part of the batch reached the kernel before the kill (${survivors.length})`);

    await restartAgent();
    const again = await agent.call<Pass>('reconcile', wanted);
    assert.deepEqual(again.deleted, {});
    const foreign = Object.entries(again.added).filter(([, o]) => o !== 'added' && o !== 'refreshed');
    assert.deepEqual(foreign, [['198.51.100.50', 'foreign']], 'only the hand-added address is not ours');
    for (const ip of survivors) assert.equal(again.added[ip], 'refreshed', `${ip}, added before the kill, is adopted`);
    assert.deepEqual(await removedVips(), [], 'no address left the kernel');
    assert.equal(foreignState(), before);
    assert.equal(addrs('kube-lb0').filter((a) => a.local.startsWith('2001:db8:20::')).length, 300);
  });

  test('withdrawing a VIP removes it; withdrawing all leaves nothing of ours and all the rest', LIMIT, async () => {
    const before = foreignState();
    await restartAgent();
    const fewer = vips().filter((v) => v.ip !== '198.51.100.10');
    const pass = await agent.call<Pass>('reconcile', fewer);
    assert.equal(pass.deleted['198.51.100.10'], 'deleted');
    assert.equal(Object.keys(pass.deleted).length, 301, JSON.stringify(pass.deleted).slice(0, 300)); // and the bulk
    assert.ok(!has('eth0', '198.51.100.10'));
    const none = await agent.call<Pass>('reconcile', []);
    assert.deepEqual(Object.values(none.deleted).sort(), ['deleted', 'deleted', 'deleted']);
    assert.deepEqual(addrs('kube-lb0').filter((a) => !a.local.startsWith('fe80:')), []);
    assert.deepEqual(addrs('eth0').map((a) => a.local).filter((ip) => !ip.startsWith('fe80:')).sort(), ['198.51.100.2', '198.51.100.50', '2001:db8:100::2']);
    assert.equal(foreignState(), before);
  });

  for (const loss of ['deleted', 'truncated'] as const) {
    test(`a ${loss} record: our old addresses become unknown, are reported and left alone, as is everything else`, LIMIT, async () => {
      await restartAgent();
      await agent.call('reconcile', vips());
      const path = (await agent.call<OwnershipStatus>('ownership')).recordPath ?? '';
      if (loss === 'deleted') rmSync(path);
      else truncateSync(path, Math.floor(readFileSync(path).length / 2));
      const kernelBefore = JSON.stringify([addrs('eth0'), addrs('kube-lb0')].map((l) => l.map((a) => a.local).sort()));

      await restartAgent();
      const status = await agent.call<OwnershipStatus>('ownership');
      if (loss === 'truncated') assert.match(status.recordProblem ?? '', /not valid JSON.*truncated/);
      else assert.equal(status.recordProblem, undefined);
      const pass = await agent.call<Pass>('reconcile', vips());
      assert.deepEqual(Object.values(pass.added), ['foreign', 'foreign', 'foreign', 'foreign', 'foreign']);
      const none = await agent.call<Pass>('reconcile', []);
      assert.deepEqual(none.deleted, {}, 'nothing is deleted without the record');
      assert.equal(JSON.stringify([addrs('eth0'), addrs('kube-lb0')].map((l) => l.map((a) => a.local).sort())), kernelBefore);
      // Tidy up by hand, as an operator would.
      for (const v of vips()) if (v.ip !== '198.51.100.50') node.ip('addr', 'del', `${v.ip}/${v.prefix}`, 'dev', v.ifindex === eth0 ? 'eth0' : 'kube-lb0');
    });
  }

  test('an address of ours deleted and added again by hand is no longer ours', LIMIT, async () => {
    await restartAgent();
    const vip = { ifindex: lb0, ip: '192.0.2.77', prefix: 32, noPrefixRoute: true };
    assert.equal((await agent.call<Pass>('reconcile', [vip])).added['192.0.2.77'], 'added');
    node.ip('addr', 'del', '192.0.2.77/32', 'dev', 'kube-lb0');
    await new Promise((r) => setTimeout(r, 50)); // another creation stamp (hundredths of a second)
    node.ip('addr', 'add', '192.0.2.77/32', 'dev', 'kube-lb0', 'noprefixroute');
    await restartAgent();
    assert.equal((await agent.call<Pass>('reconcile', [vip])).added['192.0.2.77'], 'foreign');
    assert.deepEqual((await agent.call<Pass>('reconcile', [])).deleted, {});
    assert.ok(has('kube-lb0', '192.0.2.77'));
    node.ip('addr', 'del', '192.0.2.77/32', 'dev', 'kube-lb0');
  });
});
