import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatAddress, parseAddress } from './address.ts';
import type { Family } from './address.ts';
import { parseServiceGroupSpec } from './group.ts';
import type { PoolConfig } from './group.ts';
import { IPAM } from './ipam.ts';
import type { AllocationRequest, AssignedAddress } from './ipam.ts';
import type { Port } from './sharing.ts';

function config(spec: unknown): PoolConfig {
  const parsed = parseServiceGroupSpec(spec);
  assert.ok(parsed.ok, JSON.stringify(!parsed.ok && parsed.errors));
  return parsed.value;
}

function build(groups: Record<string, unknown>): IPAM {
  const built = IPAM.build(Object.entries(groups).map(([name, spec]) => [name, config(spec)] as const));
  assert.ok(built.ok, JSON.stringify(!built.ok && built.error.map((o) => o.message)));
  return built.value;
}

function addressesOf(ipam: IPAM, service: string): string[] {
  return ipam.allocation(service)?.addresses.map((a) => a.address) ?? [];
}

function allocated(ipam: IPAM, service: string, request: AllocationRequest): string[] {
  const result = ipam.allocate(service, request);
  assert.ok(result.ok, JSON.stringify(!result.ok && result.error));
  return result.value.addresses.map((a) => a.address);
}

const TCP80: Port = { protocol: 'TCP', port: 80 };
const TCP443: Port = { protocol: 'TCP', port: 443 };
const UDP53: Port = { protocol: 'UDP', port: 53 };

const range = (pool: string, subnet: string): { pool: string; subnet: string } => ({ pool, subnet });

// Small pools, so that exhaustion, sharing and fragmentation all happen often.
const GROUPS = {
  plain: {
    local: {
      v4pools: [range('10.0.0.0-10.0.0.3', '10.0.0.0/24'), range('10.0.0.8/31', '10.0.0.0/24')],
      v6pool: range('2001:db8::-2001:db8::2', '2001:db8::/64'),
    },
  },
  balanced: {
    remote: {
      v4pools: [range('10.0.1.0-10.0.1.2', '10.0.1.0/24'), range('10.0.1.16-10.0.1.18', '10.0.1.0/24')],
      v6pool: range('2001:db8:1::/126', '2001:db8:1::/64'),
      balancePools: true,
    },
  },
  // The second range is the smaller, so a multiPool take can fail half-way.
  multi: {
    remote: { v4pools: [range('10.0.2.0-10.0.2.2', '10.0.2.0/24'), range('10.0.2.8-10.0.2.9', '10.0.2.0/24')], multiPool: true },
  },
} as const;
type Group = keyof typeof GROUPS;
const GROUP_NAMES = Object.keys(GROUPS) as Group[];

/** Every address of a group's ranges of one family, range by range (small pools only). */
function enumerate(ipam: IPAM, group: string, family: Family): bigint[][] {
  const ranges = ipam.poolConfig(group)?.ranges[family] ?? [];
  return ranges.map((r) => {
    const all: bigint[] = [];
    for (let v = r.first; v <= r.last; v++) all.push(v);
    return all;
  });
}

interface Model {
  readonly key: string | undefined;
  readonly ports: readonly Port[];
  readonly pool: Group;
}

/** Address → services holding it, per group and family, as the IPAM reports it. */
function holdings(ipam: IPAM, services: readonly string[]): Map<string, string[]> {
  const byAddress = new Map<string, string[]>();
  for (const s of services) {
    for (const a of ipam.allocation(s)?.addresses ?? []) {
      const key = `${a.pool}|${a.family}|${a.address}`;
      byAddress.set(key, [...(byAddress.get(key) ?? []), s]);
    }
  }
  return byAddress;
}

const SERVICES = Array.from({ length: 8 }, (_, i) => `ns/svc-${i}`);

const operation = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('allocate' as const),
      service: fc.constantFrom(...SERVICES),
      pool: fc.constantFrom(...GROUP_NAMES),
      families: fc.constantFrom<Family[]>(['IPv4'], ['IPv6'], ['IPv4', 'IPv6'], ['IPv6', 'IPv4']),
      key: fc.constantFrom(undefined, '', 'k1', 'k2'),
      ports: fc.subarray([TCP80, TCP443, UDP53]),
      // An index into the candidate addresses below, or none.
      wanted: fc.option(fc.nat(12), { nil: undefined }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('release' as const), service: fc.constantFrom(...SERVICES) }) },
);

const CANDIDATES = [
  '10.0.0.0', '10.0.0.3', '10.0.0.9', '10.0.0.5', '10.0.1.1', '10.0.1.17', '10.0.2.0', '10.0.2.9',
  '2001:db8::', '2001:db8::2', '2001:db8:1::3', '2001:db8::9', '192.0.2.1',
];

describe('IPAM allocation, against a brute-force model', () => {
  test('every invariant holds after every operation', () => {
    const outcomes = new Set<string>();
    fc.assert(
      fc.property(fc.array(operation, { minLength: 5, maxLength: 60, size: 'max' }), (ops) => {
        const ipam = build(GROUPS);
        const model = new Map<string, Model>();
        for (const op of ops) {
          if (op.kind === 'release') {
            const before = addressesOf(ipam, op.service);
            assert.deepEqual(
              ipam.release(op.service).map((a) => a.address),
              before,
            );
            model.delete(op.service);
          } else {
            outcomes.add(checkAllocate(ipam, model, op));
          }
          checkInvariants(ipam, model);
        }
      }),
      { numRuns: 150 },
    );
    // The operations must reach every outcome, or the invariants prove little.
    const expected = ['changed', 'unchanged', 'PoolExhausted', 'AddressInUse', 'PortConflict', 'SharingKeyBound', 'OutsidePool', 'NoRange'];
    assert.deepEqual(expected.filter((o) => !outcomes.has(o)), []);
  });
});

interface AllocateOp {
  readonly service: string;
  readonly pool: Group;
  readonly families: Family[];
  readonly key: string | undefined;
  readonly ports: Port[];
  readonly wanted: number | undefined;
}

/** Allocates, checks the result against the model, and names the outcome. */
function checkAllocate(ipam: IPAM, model: Map<string, Model>, op: AllocateOp): string {
  const wantedText = op.wanted === undefined ? undefined : CANDIDATES[op.wanted];
  const wantedFamily = wantedText === undefined ? undefined : parseAddress(wantedText)?.family;
  const wanted = wantedText !== undefined && op.families.includes(wantedFamily as Family) ? wantedText : undefined;
  const request: AllocationRequest = {
    pool: op.pool,
    families: op.families,
    ports: op.ports,
    ...(op.key === undefined ? {} : { sharingKey: op.key }),
    ...(wanted === undefined ? {} : { addresses: [wanted] }),
  };
  const before = ipam.allocation(op.service);
  const beforeKey = model.get(op.service)?.key;
  const heldBefore = holdings(ipam, SERVICES);
  const fresh = before === undefined;
  const result = ipam.allocate(op.service, request);
  const key = op.key === '' ? undefined : op.key;
  const multi = ipam.poolConfig(op.pool)?.multiPool ?? false;

  if (!result.ok) {
    // All or nothing: a failure leaves the Service exactly as it was.
    assert.deepEqual(ipam.allocation(op.service), before);
    if (result.error.reason === 'PoolExhausted' && fresh && key === undefined) {
      const family = result.error.family as Family;
      const ranges = enumerate(ipam, op.pool, family);
      const full = (range: bigint[]): boolean =>
        range.every((v) => heldBefore.has(`${op.pool}|${family}|${formatAddress(family, v)}`));
      assert.ok(multi ? ranges.some(full) : ranges.every(full), 'exhausted only when every address is held');
    }
    return result.error.reason;
  }
  model.set(op.service, { key, ports: op.ports, pool: op.pool });
  const got = result.value.addresses;
  for (const family of ['IPv4', 'IPv6'] as const) {
    const mine = got.filter((a) => a.family === family);
    const expected = !op.families.includes(family) ? 0 : multi ? enumerate(ipam, op.pool, family).length : 1;
    assert.equal(mine.length, expected, `one ${family} address per ${multi ? 'range' : 'family'}`);
  }
  if (wanted !== undefined) assert.ok(got.some((a) => a.address === wanted), 'the wanted address is given');
  assert.equal(got[0]?.family, op.families[0], 'addresses come in the requested family order');

  // Lowest free first, in range order, for fresh unpinned requests whose key (if
  // any) is not bound yet; a bound key gets its bound address.
  if (fresh && wanted === undefined && !(ipam.poolConfig(op.pool)?.balancePools ?? false)) {
    for (const family of op.families) {
      const bound = [...heldBefore.entries()]
        .filter(([where, services]) => where.startsWith(`${op.pool}|${family}|`) && services.some((s) => model.get(s)?.key === key))
        .map(([where]) => where.split('|')[2]);
      if (key !== undefined && bound.length > 0) {
        const mine = got.filter((a) => a.family === family).map((a) => a.address);
        assert.ok(mine.every((a) => bound.includes(a)), `key ${key} goes to its bound ${bound.join(',')}`);
        continue;
      }
      const ranges = enumerate(ipam, op.pool, family);
      const free = (range: bigint[]): bigint | undefined =>
        range.find((v) => !heldBefore.has(`${op.pool}|${family}|${formatAddress(family, v)}`));
      const expected = multi ? ranges.map(free) : [ranges.map(free).find((v) => v !== undefined)];
      assert.deepEqual(
        got.filter((a) => a.family === family).map((a) => a.address),
        expected.map((v) => formatAddress(family, v as bigint)),
      );
    }
  }
  if (!result.value.changed) assert.deepEqual(got, before?.addresses);
  // Re-allocating an unshared Service in the same pool never moves it.
  const previous = before?.addresses.map((a) => a.address).sort();
  if (!fresh && key === undefined && beforeKey === undefined && wanted === undefined && before.pool === op.pool && sameFamilies(before.addresses, op.families)) {
    assert.deepEqual(got.map((a) => a.address).sort(), previous);
  }
  return result.value.changed ? 'changed' : 'unchanged';
}

function sameFamilies(addresses: readonly AssignedAddress[], families: readonly Family[]): boolean {
  return new Set(addresses.map((a) => a.family)).size === families.length && addresses.every((a) => families.includes(a.family));
}

function checkInvariants(ipam: IPAM, model: ReadonlyMap<string, Model>): void {
  const held = holdings(ipam, SERVICES);
  for (const [where, services] of held) {
    const [group, family, address] = where.split('|') as [Group, Family, string];
    // Inside a range of the group and family the Service asked for.
    const value = parseAddress(address)?.value as bigint;
    assert.ok(
      ipam.poolConfig(group)?.ranges[family].some((r) => r.first <= value && value <= r.last),
      `${address} inside ${group}`,
    );
    for (const s of services) assert.equal(model.get(s)?.pool, group);
    // Never handed out twice, unless shared under the rules.
    if (services.length > 1) {
      const keys = new Set(services.map((s) => model.get(s)?.key));
      assert.equal(keys.size, 1, `${address} shared by ${services.join(',')} with different keys`);
      assert.notEqual([...keys][0], undefined, `${address} shared without a key`);
      const ports = services.flatMap((s) => model.get(s)?.ports ?? []).map((p) => `${p.protocol}/${p.port}`);
      assert.equal(new Set(ports).size, ports.length, `${address} shared with a port clash`);
    }
  }
  // A sharing key is bound to one address per family (per range with multiPool).
  for (const group of GROUP_NAMES) {
    for (const family of ['IPv4', 'IPv6'] as const) {
      const config = ipam.poolConfig(group) as PoolConfig;
      for (const k of ['k1', 'k2']) {
        const bound = [...held.entries()]
          .filter(([where, services]) => where.startsWith(`${group}|${family}|`) && services.some((s) => model.get(s)?.key === k))
          .map(([where]) => parseAddress(where.split('|')[2] as string)?.value as bigint);
        for (const range of config.multiPool ? config.ranges[family] : [undefined]) {
          const inScope = bound.filter((v) => range === undefined || (range.first <= v && v <= range.last));
          assert.ok(inScope.length <= 1, `key ${k} bound to ${inScope.length} ${family} addresses in ${group}`);
        }
      }
      // Sizes and in-use counts match enumeration.
      const stats = ipam.stats().find((s) => s.name === group)?.[family];
      const all = enumerate(ipam, group, family).flat();
      assert.equal(stats?.size, BigInt(all.length));
      const inUse = all.filter((v) => held.has(`${group}|${family}|${formatAddress(family, v)}`)).length;
      assert.equal(stats?.inUse, BigInt(inUse));
      assert.equal(stats?.available, BigInt(all.length - inUse));
    }
  }
}

describe('IPAM behaviour', () => {
  const reference = {
    'layer2-ippool': {
      local: { v4pool: { subnet: '10.31.188.64/26', pool: '10.31.188.64-10.31.188.126', aggregation: '/32' } },
    },
    'bgp-ippool': { local: { v4pool: { subnet: '10.189.0.0/16', pool: '10.189.0.0-10.189.255.254', aggregation: '/32' } } },
  };

  test('the reference scenario gets the documented addresses', () => {
    const ipam = build(reference);
    const l2 = { pool: 'layer2-ippool', families: ['IPv4'] } as const;
    assert.deepEqual(allocated(ipam, 'nginx/lb', l2), ['10.31.188.64']);
    assert.deepEqual(allocated(ipam, 'nginx/lb2', l2), ['10.31.188.65']);
    assert.deepEqual(allocated(ipam, 'nginx/lb3', l2), ['10.31.188.66']);
    assert.deepEqual(allocated(ipam, 'nginx/lb4', { ...l2, addresses: ['10.31.188.100'] }), ['10.31.188.100']);
    const bgp = { pool: 'bgp-ippool', families: ['IPv4'] } as const;
    assert.deepEqual(allocated(ipam, 'nginx/lb5', bgp), ['10.189.0.0']);
    const pinned = ipam.allocate('nginx/lb6', { ...bgp, addresses: ['10.189.100.100'] });
    assert.ok(pinned.ok);
    assert.deepEqual(pinned.value.addresses, [
      { family: 'IPv4', address: '10.189.100.100', pool: 'bgp-ippool', subnet: '10.189.0.0/16', aggregation: 32 },
    ]);
    assert.equal(ipam.poolOf('10.189.100.100'), 'bgp-ippool');
    assert.equal(ipam.poolOf('10.31.188.127'), undefined);
  });

  test('release makes an address allocatable again, and it is the one handed out next', () => {
    fc.assert(
      fc.property(fc.nat(7), (victim) => {
        const ipam = build({ g: { local: { v4pool: { subnet: '10.0.0.0/29', pool: '10.0.0.0/29' } } } });
        const request = { pool: 'g', families: ['IPv4'] } as const;
        for (let i = 0; i < 8; i++) allocated(ipam, `s${i}`, request);
        const full = ipam.allocate('late', request);
        assert.ok(!full.ok && full.error.reason === 'PoolExhausted');
        const [freed] = ipam.release(`s${victim}`);
        assert.deepEqual(allocated(ipam, 'late', request), [freed?.address]);
      }),
    );
  });

  test('a sharing key binds one address per family until its last holder leaves', () => {
    const ipam = build({ g: { local: { v4pool: { subnet: '10.0.0.0/24', pool: '10.0.0.0/24' } } } });
    const request = (key: string | undefined, ports: Port[]): AllocationRequest => ({
      pool: 'g',
      families: ['IPv4'],
      ports,
      ...(key === undefined ? {} : { sharingKey: key }),
    });
    assert.deepEqual(allocated(ipam, 'a', request(undefined, [TCP80])), ['10.0.0.0']);
    assert.deepEqual(allocated(ipam, 'web', request('k', [TCP80])), ['10.0.0.1']);
    assert.deepEqual(allocated(ipam, 'b', request(undefined, [TCP80])), ['10.0.0.2']);
    ipam.release('a');
    // 10.0.0.0 is free and lower, yet the key sends the Service to its bound address.
    assert.deepEqual(allocated(ipam, 'tls', request('k', [TCP443])), ['10.0.0.1']);
    const clash = ipam.allocate('web2', request('k', [TCP80]));
    assert.ok(!clash.ok);
    assert.equal(clash.error.reason, 'PortConflict');
    assert.match(clash.error.message, /10\.0\.0\.1 already serves TCP\/80 for web/);
    // A different key, or none, never joins.
    assert.deepEqual(allocated(ipam, 'other', request('k2', [UDP53])), ['10.0.0.0']);
    const pinned = ipam.allocate('c', { ...request(undefined, [UDP53]), addresses: ['10.0.0.1'] });
    assert.ok(!pinned.ok && pinned.error.reason === 'AddressInUse');
    const rebind = ipam.allocate('d', { ...request('k', [UDP53]), addresses: ['10.0.0.9'] });
    assert.ok(!rebind.ok && rebind.error.reason === 'SharingKeyBound');
    // Changing ports is checked against the other holders, and the new ports count.
    const moved = ipam.allocate('tls', request('k', [TCP80]));
    assert.ok(!moved.ok && moved.error.reason === 'PortConflict');
    assert.deepEqual(addressesOf(ipam, 'tls'), ['10.0.0.1']);
    const reported = ipam.allocate('tls', request('k', [UDP53]));
    assert.ok(reported.ok && !reported.value.changed);
    const late = ipam.allocate('dns', request('k', [UDP53]));
    assert.ok(!late.ok && late.error.reason === 'PortConflict');
    // Free only when the last holder goes, and then the key is unbound.
    ipam.release('web');
    assert.equal(ipam.stats()[0]?.IPv4.inUse, 3n);
    ipam.release('tls');
    assert.equal(ipam.stats()[0]?.IPv4.inUse, 2n);
    ipam.release('other');
    assert.deepEqual(allocated(ipam, 'e', request('k', [TCP80])), ['10.0.0.0']);
  });

  test('dual-stack is all or nothing', () => {
    const ipam = build({
      g: {
        local: {
          v4pool: { subnet: '10.0.0.0/24', pool: '10.0.0.0/24' },
          v6pool: { subnet: '2001:db8::/64', pool: '2001:db8::-2001:db8::1' },
        },
      },
    });
    const dual = { pool: 'g', families: ['IPv4', 'IPv6'] } as const;
    assert.deepEqual(allocated(ipam, 'a', dual), ['10.0.0.0', '2001:db8::']);
    assert.deepEqual(allocated(ipam, 'b', { ...dual, families: ['IPv6', 'IPv4'] }), ['2001:db8::1', '10.0.0.1']);
    const before = ipam.stats();
    const failed = ipam.allocate('c', dual);
    assert.ok(!failed.ok);
    assert.equal(failed.error.reason, 'PoolExhausted');
    assert.equal(failed.error.family, 'IPv6');
    assert.equal(ipam.allocation('c'), undefined);
    assert.deepEqual(ipam.stats(), before, 'the IPv4 address taken first was given back');
    assert.deepEqual(allocated(ipam, 'c', { pool: 'g', families: ['IPv4'] }), ['10.0.0.2']);
    const noRange = build({ g: { local: { v4pool: { subnet: '10.0.0.0/24', pool: '10.0.0.0/24' } } } });
    const missing = noRange.allocate('a', dual);
    assert.ok(!missing.ok && missing.error.reason === 'NoRange');
    assert.equal(noRange.stats()[0]?.IPv4.inUse, 0n);
  });

  test('re-allocating keeps what a Service holds, and a move that fails keeps the old address', () => {
    const ipam = build({
      g: { local: { v4pool: { subnet: '10.0.0.0/24', pool: '10.0.0.0-10.0.0.1' } } },
      h: { local: { v4pool: { subnet: '10.0.1.0/24', pool: '10.0.1.0/32' } } },
    });
    const g = { pool: 'g', families: ['IPv4'] } as const;
    assert.deepEqual(allocated(ipam, 'a', g), ['10.0.0.0']);
    const again = ipam.allocate('a', g);
    assert.ok(again.ok && !again.value.changed);
    // New ports, same address: nothing moves, even with a lower address free.
    assert.deepEqual(allocated(ipam, 'lower', g), ['10.0.0.1']);
    ipam.release('a');
    const ported = ipam.allocate('lower', { ...g, ports: [TCP80] });
    assert.ok(ported.ok && !ported.value.changed);
    assert.deepEqual(addressesOf(ipam, 'lower'), ['10.0.0.1']);
    ipam.release('lower');
    assert.deepEqual(allocated(ipam, 'a', g), ['10.0.0.0']);
    assert.deepEqual(allocated(ipam, 'a', { ...g, addresses: ['10.0.0.1'] }), ['10.0.0.1']);
    assert.deepEqual(allocated(ipam, 'a', { pool: 'h', families: ['IPv4'] }), ['10.0.1.0']);
    assert.deepEqual(allocated(ipam, 'b', { pool: 'g', families: ['IPv4'] }), ['10.0.0.0']);
    const blocked = ipam.allocate('a', { ...g, addresses: ['10.0.0.0'] });
    assert.ok(!blocked.ok && blocked.error.reason === 'AddressInUse');
    assert.deepEqual(addressesOf(ipam, 'a'), ['10.0.1.0']);
  });

  test('balancePools picks the least-used range; multiPool one address per range', () => {
    const ipam = build(GROUPS);
    const balanced = { pool: 'balanced', families: ['IPv4'] } as const;
    const got = ['a', 'b', 'c', 'd'].flatMap((s) => allocated(ipam, s, balanced));
    assert.deepEqual(got, ['10.0.1.0', '10.0.1.16', '10.0.1.1', '10.0.1.17']);
    assert.deepEqual(allocated(ipam, 'm', { pool: 'multi', families: ['IPv4'] }), ['10.0.2.0', '10.0.2.8']);
    const shared = { pool: 'multi', families: ['IPv4'], sharingKey: 'k' } as const;
    assert.deepEqual(allocated(ipam, 'n', { ...shared, ports: [TCP80] }), ['10.0.2.1', '10.0.2.9']);
    assert.deepEqual(allocated(ipam, 'o', { ...shared, ports: [TCP443] }), ['10.0.2.1', '10.0.2.9']);
    const full = ipam.allocate('p', { pool: 'multi', families: ['IPv4'] });
    assert.ok(!full.ok && full.error.reason === 'PoolExhausted');
    assert.equal(ipam.stats().find((s) => s.name === 'multi')?.IPv4.inUse, 4n, 'the partial take was rolled back');
  });

  test('bad requests are refused with a reason', () => {
    const ipam = build(GROUPS);
    const cases: [AllocationRequest, string][] = [
      [{ pool: 'nope', families: ['IPv4'] }, 'UnknownPool'],
      [{ pool: 'plain', families: [] }, 'InvalidRequest'],
      [{ pool: 'plain', families: ['IPv4', 'IPv4'] }, 'InvalidRequest'],
      [{ pool: 'plain', families: ['IPv4'], addresses: ['10.0.0.300'] }, 'InvalidRequest'],
      [{ pool: 'plain', families: ['IPv4'], addresses: ['2001:db8::1'] }, 'InvalidRequest'],
      [{ pool: 'plain', families: ['IPv4'], addresses: ['10.0.0.1', '10.0.0.2'] }, 'InvalidRequest'],
      [{ pool: 'plain', families: ['IPv4'], addresses: ['10.0.0.5'] }, 'OutsidePool'],
      [{ pool: 'plain', families: ['IPv4'], addresses: ['10.0.1.1'] }, 'OutsidePool'],
      [{ pool: 'multi', families: ['IPv6'] }, 'NoRange'],
    ];
    for (const [request, reason] of cases) {
      const result = ipam.allocate('s', request);
      assert.ok(!result.ok, JSON.stringify(request));
      assert.equal(result.error.reason, reason, JSON.stringify(request));
    }
    assert.deepEqual(ipam.services, []);
  });
});

describe('IPAM start-up and reconfiguration', () => {
  test('reserve accepts exactly what is there and reports what breaks the rules', () => {
    const ipam = build(GROUPS);
    const issues = [
      ...ipam.reserve('a', { pool: 'plain', addresses: ['10.0.0.2', '2001:db8::1'], ports: [TCP80] }),
      ...ipam.reserve('b', { pool: 'plain', addresses: ['10.0.0.2'], ports: [TCP80] }),
      ...ipam.reserve('c', { pool: 'plain', addresses: ['198.51.100.7'] }),
      ...ipam.reserve('d', { pool: 'plain', addresses: ['10.0.1.1'] }),
      ...ipam.reserve('e', { addresses: ['not-an-ip', '10.0.2.9'] }),
      ...ipam.reserve('f', { pool: 'gone', addresses: ['10.0.0.9'] }),
    ];
    assert.deepEqual(
      issues.map((i) => [i.service, i.address, i.reason]),
      [
        ['b', '10.0.0.2', 'AddressInUse'],
        ['c', '198.51.100.7', 'OutsideEveryRange'],
        ['d', '10.0.1.1', 'OutsideNamedPool'],
        ['e', 'not-an-ip', 'InvalidAddress'],
        ['f', '', 'UnknownPool'],
      ],
    );
    assert.deepEqual(addressesOf(ipam, 'a'), ['10.0.0.2', '2001:db8::1']);
    assert.deepEqual(addressesOf(ipam, 'b'), ['10.0.0.2']);
    assert.deepEqual(addressesOf(ipam, 'c'), ['198.51.100.7']);
    assert.equal(ipam.allocation('d')?.addresses[0]?.pool, 'balanced');
    assert.equal(ipam.allocation('e')?.pool, 'multi');
    assert.equal(ipam.allocation('f')?.pool, 'plain');
    assert.deepEqual(ipam.outsideRanges(), [{ service: 'c', address: '198.51.100.7' }]);
    // Nothing reserved is handed out again.
    const next = ['g1', 'g2', 'g3'].flatMap((s) => allocated(ipam, s, { pool: 'plain', families: ['IPv4'] }));
    assert.deepEqual(next, ['10.0.0.0', '10.0.0.1', '10.0.0.3']);
    // The shared-by-accident address is free only after both leave.
    ipam.release('a');
    assert.equal(ipam.allocate('h', { pool: 'plain', families: ['IPv4'], addresses: ['10.0.0.2'] }).ok, false);
    ipam.release('b');
    assert.deepEqual(allocated(ipam, 'h', { pool: 'plain', families: ['IPv4'], addresses: ['10.0.0.2'] }), ['10.0.0.2']);
  });

  test('reserving any existing state keeps every address, and new allocations avoid them', () => {
    const address = fc.constantFrom(...CANDIDATES, '10.0.0.1', '10.0.0.10');
    const existing = fc.array(fc.tuple(fc.constantFrom(...SERVICES), fc.array(address, { maxLength: 3 })), { maxLength: 10 });
    fc.assert(
      fc.property(existing, (state) => {
        const ipam = build(GROUPS);
        const truth = new Map<string, string[]>();
        for (const [service, addresses] of state) {
          ipam.reserve(service, { addresses });
          if (addresses.length > 0) truth.set(service, [...new Set(addresses)]);
          else truth.delete(service);
        }
        for (const [service, addresses] of truth) assert.deepEqual(addressesOf(ipam, service), addresses);
        const taken = new Set([...truth.values()].flat());
        for (let i = 0; i < 12; i++) {
          const result = ipam.allocate(`new-${i}`, { pool: 'plain', families: ['IPv4'] });
          if (result.ok) assert.ok(!taken.has(result.value.addresses[0]?.address as string));
        }
      }),
    );
  });

  test('reconfigure keeps every allocation and reports those left outside', () => {
    const ipam = build(GROUPS);
    allocated(ipam, 'a', { pool: 'plain', families: ['IPv4', 'IPv6'] });
    allocated(ipam, 'b', { pool: 'balanced', families: ['IPv4'], sharingKey: 'k', ports: [TCP80] });
    const smaller = { ...GROUPS, plain: { local: { v4pool: { subnet: '10.0.0.0/24', pool: '10.0.0.1-10.0.0.3' } } } };
    const next = ipam.reconfigure(Object.entries(smaller).map(([n, s]) => [n, config(s)] as const));
    assert.ok(next.ok);
    assert.deepEqual(
      next.value.issues.map((i) => [i.service, i.address, i.reason]),
      [
        ['a', '10.0.0.0', 'OutsideEveryRange'],
        ['a', '2001:db8::', 'OutsideEveryRange'],
      ],
    );
    assert.deepEqual(addressesOf(next.value.ipam, 'a'), ['10.0.0.0', '2001:db8::']);
    assert.equal(next.value.ipam.stats().find((s) => s.name === 'plain')?.IPv4.inUse, 0n);
    // Kept while the request stays the same; moved once the user changes it.
    const same = next.value.ipam.allocate('a', { pool: 'plain', families: ['IPv4', 'IPv6'] });
    assert.ok(same.ok && !same.value.changed);
    assert.deepEqual(allocated(next.value.ipam, 'a', { pool: 'plain', families: ['IPv4'] }), ['10.0.0.1']);
    assert.deepEqual(addressesOf(next.value.ipam, 'b'), ['10.0.1.0']);
    // The sharing key came along.
    assert.deepEqual(allocated(next.value.ipam, 'c', { pool: 'balanced', families: ['IPv4'], sharingKey: 'k' }), ['10.0.1.0']);
    const clash = ipam.reconfigure([
      ['x', config({ local: { v4pool: { subnet: '10.0.0.0/16', pool: '10.0.0.0/16' } } })],
      ['y', config({ local: { v4pool: { subnet: '10.0.0.0/16', pool: '10.0.3.0/24' } } })],
    ]);
    assert.ok(!clash.ok);
    assert.equal(clash.error.length, 1);
  });
});

describe('huge pools', () => {
  test('IPv6 /64 and /48 sizes are exact and allocation does not enumerate', () => {
    const ipam = build({
      v64: { remote: { v6pool: { subnet: '2001:db8::/64', pool: '2001:db8::/64' } } },
      v48: { remote: { v6pool: { subnet: '2001:db8:1::/48', pool: '2001:db8:1::/48' } } },
      v4all: { remote: { v4pool: { subnet: '0.0.0.0/0', pool: '0.0.0.0/0' } } },
    });
    const given: AssignedAddress[] = [];
    for (let i = 0; i < 1000; i++) {
      for (const pool of ['v64', 'v48']) {
        const result = ipam.allocate(`${pool}-${i}`, { pool, families: ['IPv6'] });
        assert.ok(result.ok);
        given.push(...result.value.addresses);
      }
    }
    assert.equal(given.at(-1)?.address, '2001:db8:1::3e7');
    const stats = Object.fromEntries(ipam.stats().map((s) => [s.name, s]));
    assert.equal(stats.v64?.IPv6.size, 2n ** 64n);
    assert.equal(stats.v48?.IPv6.size, 2n ** 80n);
    assert.equal(stats.v48?.IPv6.inUse, 1000n);
    assert.equal(stats.v48?.IPv6.available, 2n ** 80n - 1000n);
    assert.equal(stats.v4all?.IPv4.size, 2n ** 32n);
    const last = ipam.allocate('top', { pool: 'v64', families: ['IPv6'], addresses: ['2001:db8::ffff:ffff:ffff:ffff'] });
    assert.ok(last.ok);
  });
});
