// LBNodeAgent addressConfig as the kernel shows it: the agent's address specs for a
// local and a dummy-interface announcement, added through the real HostNetwork in a
// throw-away namespace, read back with `ip -d addr` (lifetimes, noprefixroute, no DAD).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { normalizeLBNodeAgent } from '../api/normalize.ts';
import type { LBNodeAgentConfig } from '../api/normalize.ts';
import { Netns, sweepStaleNamespaces } from '../netlink/testkit.ts';
import type { Fixture } from '../netlink/testkit.ts';
import { addressSettings, addressSpec } from './desired.ts';
import type { Announcement } from './desired.ts';

const fixtureModule = fileURLToPath(new URL('../netlink/host-network.fixture.ts', import.meta.url));

interface AddrInfo {
  local: string;
  valid_life_time: number;
  preferred_life_time: number;
  noprefixroute?: boolean;
  nodad?: boolean;
  tentative?: boolean;
}

function agentConfig(local: Record<string, unknown>): LBNodeAgentConfig {
  const r = normalizeLBNodeAgent({ apiVersion: 'purelb.io/v2', kind: 'LBNodeAgent', metadata: { name: 'default', namespace: 'purelb' }, spec: { local } });
  assert.ok(r.ok, JSON.stringify(r));
  return r.value;
}

const FOREVER = 4294967295;

describe('addressConfig in the kernel', () => {
  let ns: Netns;
  let net: Fixture;
  const ifindex: Record<string, number> = {};

  before(async () => {
    sweepStaleNamespaces();
    ns = Netns.node('addrcfg');
    for (const l of ['eth0', 'kube-lb0']) ifindex[l] = (JSON.parse(ns.ip('-j', 'link', 'show', 'dev', l)) as Array<{ ifindex: number }>)[0]?.ifindex ?? 0;
    net = await ns.startFixture(fixtureModule);
  });

  after(() => ns?.delete());

  /** Adds the agent's specs for one local and one dummy announcement per family; returns what `ip -d addr` shows. */
  async function apply(config: LBNodeAgentConfig, ips: { local: string; dummy: string; prefix: number }): Promise<Map<string, AddrInfo>> {
    const announce = (kind: Announcement['kind'], ip: string, iface: string, prefix: number): Announcement => ({ service: 'a/b', ip, family: ip.includes(':') ? 'IPv6' : 'IPv4', kind, interface: iface, prefix });
    const specs = [
      addressSpec(announce('local', ips.local, 'eth0', ips.prefix), ifindex.eth0!, addressSettings(config, 'local')),
      addressSpec(announce('nonlocal', ips.dummy, 'kube-lb0', ips.local.includes(':') ? 128 : 32), ifindex['kube-lb0']!, addressSettings(config, 'nonlocal')),
    ];
    const results = await net.call<Array<{ outcome: string }>>('addAddresses', specs);
    assert.deepEqual(results.map((r) => r.outcome), ['added', 'added']);
    const shown = JSON.parse(ns.ip('-d', '-j', 'addr', 'show')) as Array<{ addr_info: AddrInfo[] }>;
    return new Map(shown.flatMap((l) => l.addr_info).map((a) => [a.local, a]));
  }

  /** For each family, what `ip -d addr` shows of one local and one dummy VIP added with `config` (`n` keeps the addresses apart). */
  async function observe(config: LBNodeAgentConfig, n: number): Promise<Array<{ v6: boolean; local?: AddrInfo; dummy?: AddrInfo }>> {
    const out = [];
    for (const ips of [
      { local: `198.51.100.${n}`, dummy: `203.0.113.${n}`, prefix: 24 },
      { local: `2001:db8:100::${n}`, dummy: `2001:db8:200::${n}`, prefix: 64 },
    ]) {
      const kernel = await apply(config, ips);
      out.push({ v6: ips.prefix === 64, local: kernel.get(ips.local), dummy: kernel.get(ips.dummy) });
    }
    return out;
  }

  test('the issue: local {validLifetime 300, preferredLifetime 120, noPrefixRoute}, dummy {validLifetime 600}', async () => {
    const config = agentConfig({ addressConfig: { localInterface: { validLifetime: 300, preferredLifetime: 120, noPrefixRoute: true }, dummyInterface: { validLifetime: 600 } } });
    for (const { local, dummy } of await observe(config, 10)) {
      assert.deepEqual([local?.valid_life_time, local?.preferred_life_time, local?.noprefixroute], [300, 120, true], JSON.stringify(local));
      assert.deepEqual([dummy?.valid_life_time, dummy?.preferred_life_time, dummy?.noprefixroute], [600, 600, undefined], JSON.stringify(dummy));
    }
  });

  test('defaults: local 5 s and no prefix route, dummy permanent with its prefix route; IPv6 without DAD', async () => {
    for (const { v6, local, dummy } of await observe(agentConfig({}), 11)) {
      assert.ok((local?.valid_life_time ?? 0) <= 5 && (local?.valid_life_time ?? 0) > 0, JSON.stringify(local));
      assert.equal(local?.noprefixroute, true);
      assert.deepEqual([dummy?.valid_life_time, dummy?.noprefixroute], [FOREVER, undefined], JSON.stringify(dummy));
      if (v6) for (const a of [local, dummy]) assert.deepEqual([a?.nodad, a?.tentative], [true, undefined], JSON.stringify(a));
    }
  });
});
