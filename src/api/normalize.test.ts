import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatAddress } from '../ipam/address.ts';
import type { AddressRange } from '../ipam/range.ts';
import { MORE_GOOD, referenceManifests, V2_REFERENCE } from './fixtures.ts';
import type { Manifest } from './fixtures.ts';
import { parseDuration } from './lbnodeagent.ts';
import { fieldPath, formatIssue, LBNODEAGENT_DEFAULTS, normalizeLBNodeAgent, normalizeServiceGroup } from './normalize.ts';
import type { LBNodeAgentConfig, ServiceGroupConfig } from './normalize.ts';

function group(m: unknown): ServiceGroupConfig {
  const r = normalizeServiceGroup(m);
  assert.ok(r.ok, r.ok ? '' : r.errors.map(formatIssue).join('; '));
  return r.value;
}

function agent(m: unknown): LBNodeAgentConfig {
  const r = normalizeLBNodeAgent(m);
  assert.ok(r.ok, r.ok ? '' : r.errors.map(formatIssue).join('; '));
  return r.value;
}

const named = (list: Manifest[], name: string) => list.find((m) => m.metadata.name === name)!;
const span = (r: AddressRange) => `${formatAddress(r.family, r.first)}-${formatAddress(r.family, r.last)}/${r.aggregation}@${r.field}`;

describe('normalizeServiceGroup', () => {
  it('reads the reference layer-2 pool', () => {
    const g = group(named(referenceManifests(), 'layer2-ippool'));
    assert.equal(g.name, 'layer2-ippool');
    assert.equal(g.namespace, 'purelb');
    assert.equal(g.pools.announce, 'local');
    assert.deepEqual(g.pools.ranges.IPv4.map(span), ['10.31.188.64-10.31.188.126/32@spec.local.v4pool']);
    assert.deepEqual(g.pools.ranges.IPv6, []);
  });

  it('keeps v1 local semantics for the routed pool and announces v2 remote on the dummy interface', () => {
    assert.equal(group(named(referenceManifests(), 'bgp-ippool')).pools.announce, 'local');
    const remote = group(named(V2_REFERENCE, 'bgp-ippool'));
    assert.equal(remote.pools.announce, 'remote');
    assert.deepEqual(remote.pools.ranges.IPv4.map(span), ['10.189.0.0-10.189.255.254/32@spec.remote.v4pool']);
  });

  it('gives the same configuration for a v1 manifest and its v2 form', () => {
    const v1 = group(named(referenceManifests(), 'layer2-ippool'));
    const v2 = group(named(V2_REFERENCE, 'layer2-ippool'));
    assert.deepEqual(v2, v1);
  });

  it("reads the v1 flat fields, 'default' aggregation being the subnet's prefix", () => {
    const g = group(named(MORE_GOOD, 'legacy-flat'));
    assert.deepEqual(g.pools.ranges.IPv4.map(span), ['192.168.1.200-192.168.1.210/24@spec.local']);
  });

  it('treats the empty strings of Go clients as unset', () => {
    const g = group(named(MORE_GOOD, 'go-client-empties'));
    assert.deepEqual(g.pools.ranges.IPv4.map(span), ['192.0.2.0-192.0.2.15/24@spec.local.v4pool']);
  });

  it('starts a CIDR with host bits at the written address, with a warning naming the field', () => {
    const r = normalizeServiceGroup(named(MORE_GOOD, 'host-bits'));
    assert.ok(r.ok);
    assert.deepEqual(r.value.pools.ranges.IPv4.map(span), ['192.168.1.245-192.168.1.247/24@spec.local.v4pool']);
    assert.equal(r.warnings.length, 1);
    assert.equal(r.warnings[0]!.field, 'spec.local.v4pool.pool');
    assert.match(r.warnings[0]!.message, /host bits/);
  });

  it('carries the v2 group settings', () => {
    const g = group(named(MORE_GOOD, 'dual-stack-lists'));
    assert.equal(g.pools.multiPool, true);
    assert.equal(g.pools.balancePools, false);
    assert.deepEqual(g.namespaces, ['team-a', 'team-b']);
    assert.equal(g.enforceNamespaces, true);
    assert.equal(g.namespaceDefault, true);
    assert.deepEqual(g.pools.ranges.IPv6.map(span), ['2001:db8:100::10-2001:db8:100::20/128@spec.local.v6pools[0]']);
  });

  it('applies a group aggregation to the ranges that set none', () => {
    const g = group(named(MORE_GOOD, 'remote-v6'));
    assert.deepEqual(
      [...g.pools.ranges.IPv4, ...g.pools.ranges.IPv6].map(span),
      ['203.0.113.0-203.0.113.15/32@spec.remote.v4pool', '2001:db8:5::-2001:db8:5:0:ffff:ffff:ffff:ffff/64@spec.remote.v6pool'],
    );
  });

  it('names field and value of every problem', () => {
    const r = normalizeServiceGroup({
      apiVersion: 'purelb.io/v2',
      kind: 'ServiceGroup',
      metadata: { name: 'x' },
      spec: { local: { v4pool: { pool: '192.0.2.9-192.0.2.1', subnet: '192.0.2.0/24', aggregation: '/40' } } },
    });
    assert.ok(!r.ok);
    assert.deepEqual(
      r.errors.map((e) => [e.field, e.value]),
      [
        ['spec.local.v4pool.pool', '192.0.2.9-192.0.2.1'],
        ['spec.local.v4pool.aggregation', '/40'],
      ],
    );
  });

  it('warns that skipIPv6DAD: false is ignored, naming the field', () => {
    const base = named(MORE_GOOD, 'dual-stack-lists') as unknown as { spec: { local: Record<string, unknown> } };
    const r = normalizeServiceGroup({ ...base, spec: { ...base.spec, local: { ...base.spec.local, skipIPv6DAD: false } } });
    assert.ok(r.ok);
    assert.deepEqual(r.warnings.map((w) => [w.field, w.value]), [['spec.local.skipIPv6DAD', 'false']]);
    assert.deepEqual(group(base).pools, r.value.pools);
  });

  it('refuses an object of another group or kind', () => {
    for (const m of [{ ...V2_REFERENCE[1]!, apiVersion: 'metallb.io/v1beta1' }, { ...V2_REFERENCE[1]!, kind: 'IPAddressPool' }]) {
      assert.ok(!normalizeServiceGroup(m).ok);
    }
  });
});

describe('normalizeLBNodeAgent', () => {
  it('fills the defaults for the reference agent', () => {
    const a = agent(referenceManifests()[0]);
    assert.deepEqual(a, {
      name: 'default',
      namespace: 'purelb',
      nodeSelector: undefined,
      localInterface: 'default',
      dummyInterface: 'kube-lb0',
      interfaces: [],
      garp: LBNODEAGENT_DEFAULTS.garp,
      addresses: {
        local: { validLifetime: 5, preferredLifetime: 5, noPrefixRoute: true },
        dummy: { validLifetime: 0, preferredLifetime: 0, noPrefixRoute: false },
      },
    });
    assert.deepEqual(agent(V2_REFERENCE[0]), { ...a });
  });

  it('anchors the interface expression to the whole name', () => {
    const a = agent(named(MORE_GOOD, 'full'));
    assert.ok(a.localInterface instanceof RegExp);
    assert.deepEqual(
      ['eth0', 'enp3s0', 'veth0', 'eth0x'].filter((n) => (a.localInterface as RegExp).test(n)),
      ['eth0', 'enp3s0'],
    );
    assert.deepEqual(a.interfaces, ['eth1', 'bond0.100']);
    assert.deepEqual(a.nodeSelector?.matchLabels, { 'purelb.io/lab': 'true' });
    assert.deepEqual(a.garp, { enabled: true, count: 3, intervalMs: 500, initialDelayMs: 0, verifyBeforeSend: false });
    assert.deepEqual(a.addresses.local, { validLifetime: 300, preferredLifetime: 120, noPrefixRoute: true });
  });

  it('honours an explicit sendgarp: false and lets garpConfig.enabled win, with a warning', () => {
    const base = referenceManifests()[0]!;
    const off = { ...base, spec: { local: { sendgarp: false } } };
    assert.equal(agent(off).garp.enabled, false);
    const r = normalizeLBNodeAgent({ ...base, spec: { local: { sendgarp: false, garpConfig: { enabled: true } } } });
    assert.ok(r.ok);
    assert.equal(r.value.garp.enabled, true);
    assert.deepEqual(r.warnings.map((w) => w.field), ['spec.local.sendgarp']);
  });

  it('accepts both names of a setting when they agree, as after an edit through the other version', () => {
    const m = { ...V2_REFERENCE[0]!, spec: { local: { localint: 'eth0', localInterface: 'eth0', extlbint: 'lb0', dummyInterface: 'lb0' } } };
    const a = agent(m);
    assert.equal(a.dummyInterface, 'lb0');
    assert.ok((a.localInterface as RegExp).test('eth0'));
  });

  it('a preferred lifetime of 0 under a finite valid one means the valid one', () => {
    const a = agent({ ...V2_REFERENCE[0]!, spec: { local: { addressConfig: { dummyInterface: { validLifetime: 600, preferredLifetime: 0 } } } } });
    assert.deepEqual(a.addresses.dummy, { validLifetime: 600, preferredLifetime: 600, noPrefixRoute: false });
  });

  it('uses the v1 names', () => {
    const a = agent({ ...referenceManifests()[0]!, spec: { local: { localint: 'ens[0-9]', extlbint: 'purelb0' } } });
    assert.equal(a.dummyInterface, 'purelb0');
    assert.ok((a.localInterface as RegExp).test('ens3'));
  });
});

describe('helpers', () => {
  it('writes field paths like the API server', () => {
    assert.equal(fieldPath(['spec', 'local', 'v4pools', 3, 'pool']), 'spec.local.v4pools[3].pool');
    assert.equal(fieldPath(['spec']), 'spec');
  });

  it('reads Go durations', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('250us'), 0.25);
    assert.equal(parseDuration('5 seconds'), undefined);
    assert.equal(parseDuration('10'), undefined);
  });
});
