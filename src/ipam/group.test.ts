import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatSpan } from './range.ts';
import { parseServiceGroupSpec } from './group.ts';

interface Row {
  readonly name: string;
  readonly spec: unknown;
  /** Expected ranges as `first-last` per family, and flags; or the fields in error. */
  readonly ranges?: { readonly IPv4?: readonly string[]; readonly IPv6?: readonly string[] };
  readonly announce?: 'local' | 'remote';
  readonly flags?: { readonly multiPool?: boolean; readonly balancePools?: boolean };
  readonly errors?: readonly string[];
}

const v4 = (pool: string, subnet = '10.0.0.0/16'): object => ({ pool, subnet });
const v6 = (pool: string, subnet = '2001:db8::/64'): object => ({ pool, subnet });

const rows: readonly Row[] = [
  {
    name: 'v1 reference ServiceGroup',
    spec: { local: { v4pool: { subnet: '10.31.188.64/26', pool: '10.31.188.64-10.31.188.126', aggregation: '/32' } } },
    ranges: { IPv4: ['10.31.188.64-10.31.188.126'] },
    announce: 'local',
  },
  {
    name: 'v1 legacy flat fields',
    spec: { local: { subnet: '192.168.1.0/24', pool: '192.168.1.240/29', aggregation: 'default' } },
    ranges: { IPv4: ['192.168.1.240-192.168.1.247'] },
  },
  {
    name: 'legacy IPv6 pool beside a v4pool',
    spec: { local: { v4pool: v4('10.0.0.0/24'), subnet: '2001:db8::/64', pool: '2001:db8::/120' } },
    ranges: { IPv4: ['10.0.0.0-10.0.0.255'], IPv6: ['2001:db8::-2001:db8::ff'] },
  },
  {
    name: 'dual-stack with lists, singular range first',
    spec: {
      remote: {
        v4pool: v4('10.0.1.0/24'),
        v4pools: [v4('10.0.0.0/24'), v4('10.0.2.0-10.0.2.9')],
        v6pools: [v6('2001:db8::/112')],
        balancePools: true,
      },
    },
    ranges: { IPv4: ['10.0.1.0-10.0.1.255', '10.0.0.0-10.0.0.255', '10.0.2.0-10.0.2.9'], IPv6: ['2001:db8::-2001:db8::ffff'] },
    announce: 'remote',
    flags: { balancePools: true },
  },
  {
    name: 'multiPool',
    spec: { local: { v4pools: [v4('10.0.0.0/24'), v4('10.0.1.0/24')], multiPool: true } },
    ranges: { IPv4: ['10.0.0.0-10.0.0.255', '10.0.1.0-10.0.1.255'] },
    flags: { multiPool: true },
  },
  { name: 'not an object', spec: 'local', errors: ['spec'] },
  { name: 'neither local nor remote', spec: {}, errors: ['spec'] },
  { name: 'both local and remote', spec: { local: { v4pool: v4('10.0.0.0/24') }, remote: {} }, errors: ['spec'] },
  { name: 'external only', spec: { external: { provider: 'netbox' } }, errors: ['spec'] },
  { name: 'no range at all', spec: { local: {} }, errors: ['spec.local'] },
  {
    name: 'legacy pool and v4pool both IPv4 (as PureLB)',
    spec: { local: { v4pool: v4('10.0.0.0/24'), subnet: '10.0.0.0/16', pool: '10.0.1.0/24' } },
    errors: ['spec.local.pool'],
  },
  {
    name: 'ranges of one group overlap',
    spec: { remote: { v4pools: [v4('10.0.0.0/24'), v4('10.0.0.128-10.0.0.130')] } },
    errors: ['spec.remote.v4pools[1].pool'],
  },
  {
    name: 'multiPool and balancePools together',
    spec: { local: { v4pool: v4('10.0.0.0/24'), multiPool: true, balancePools: true } },
    errors: ['spec.local.balancePools'],
  },
  { name: 'flag that is not a boolean', spec: { local: { v4pool: v4('10.0.0.0/24'), multiPool: 'yes' } }, errors: ['spec.local.multiPool'] },
  { name: 'list that is not a list', spec: { local: { v4pools: v4('10.0.0.0/24') } }, errors: ['spec.local.v4pools'] },
  { name: 'list item that is not an object', spec: { local: { v6pools: ['2001:db8::/64'] } }, errors: ['spec.local.v6pools[0]'] },
  {
    name: 'every bad range is reported, with its index',
    spec: { local: { v4pools: [v4('10.0.0.9-10.0.0.1'), v4('10.0.0.0/24'), v4('10.9.0.0/24')] } },
    errors: ['spec.local.v4pools[0].pool', 'spec.local.v4pools[2].pool'],
  },
  { name: 'v4pool with IPv6 addresses', spec: { local: { v4pool: v6('2001:db8::/120') } }, errors: ['spec.local.v4pool.pool'] },
  {
    name: 'v2 group aggregation reported at the group',
    spec: { remote: { aggregation: '/40', v4pool: v4('10.0.0.0/24') } },
    errors: ['spec.remote.aggregation'],
  },
];

describe('parseServiceGroupSpec', () => {
  for (const row of rows) {
    test(row.name, () => {
      const result = parseServiceGroupSpec(row.spec);
      if (row.errors !== undefined) {
        assert.ok(!result.ok, 'expected errors');
        assert.deepEqual(
          result.errors.map((e) => e.field),
          row.errors,
          JSON.stringify(result.errors),
        );
        return;
      }
      assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
      const config = result.value;
      assert.deepEqual(config.ranges.IPv4.map(formatSpan), row.ranges?.IPv4 ?? []);
      assert.deepEqual(config.ranges.IPv6.map(formatSpan), row.ranges?.IPv6 ?? []);
      assert.equal(config.announce, row.announce ?? 'local');
      assert.equal(config.multiPool, row.flags?.multiPool ?? false);
      assert.equal(config.balancePools, row.flags?.balancePools ?? false);
    });
  }

  test('v2 group aggregation applies to ranges without their own', () => {
    const result = parseServiceGroupSpec({
      remote: { aggregation: '/32', v4pools: [v4('10.0.0.0/24'), { ...v4('10.0.1.0/24'), aggregation: '/28' }] },
    });
    assert.ok(result.ok);
    assert.deepEqual(
      result.value.ranges.IPv4.map((r) => r.aggregation),
      [32, 28],
    );
  });

  test('warnings from ranges are passed on', () => {
    const result = parseServiceGroupSpec({ local: { v4pool: { subnet: '192.168.1.0/24', pool: '192.168.1.245/29' } } });
    assert.ok(result.ok);
    assert.deepEqual(
      result.warnings.map((w) => w.field),
      ['spec.local.v4pool.pool'],
    );
  });
});
