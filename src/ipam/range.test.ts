import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatAddress } from './address.ts';
import type { Family } from './address.ts';
import { parsePool, parseRange } from './range.ts';
import type { RangeContext, RangeSpec } from './range.ts';

const F = 'spec.local.v4pool';

type Expected =
  | { readonly span: string; readonly aggregation: number; readonly warning?: readonly [string, string] }
  | { readonly errors: readonly (readonly [string, string])[] };

type Row = readonly [name: string, spec: RangeSpec, expected: Expected, context?: RangeContext];

const spec = (pool: unknown, subnet?: unknown, aggregation?: unknown): RangeSpec => ({ pool, subnet, aggregation });
const good = (span: string, aggregation: number, warning?: readonly [string, string]): Expected =>
  warning === undefined ? { span, aggregation } : { span, aggregation, warning };
/** Errors as [field suffix, text the message must contain]. */
const bad = (...errors: (readonly [string, string])[]): Expected => ({
  errors: errors.map(([field, text]) => [`${F}${field}`, text] as const),
});
const groupAggregation = (value: string): RangeContext => ({ aggregation: { value, field: 'spec.remote.aggregation' } });

const rows: readonly Row[] = [
  // good ranges
  ['reference layer-2 range', spec('10.31.188.64-10.31.188.126', '10.31.188.64/26', '/32'), good('10.31.188.64-10.31.188.126', 32)],
  ['reference BGP range', spec('10.189.0.0-10.189.255.254', '10.189.0.0/16', '/32'), good('10.189.0.0-10.189.255.254', 32)],
  ['blanks around the dash (PureLB trims)', spec('10.0.0.1 - 10.0.0.9', '10.0.0.0/24'), good('10.0.0.1-10.0.0.9', 24)],
  ['single-address range A-A', spec('10.0.0.7-10.0.0.7', '10.0.0.0/24'), good('10.0.0.7-10.0.0.7', 24)],
  ['CIDR pool includes network and broadcast', spec('192.168.1.240/29', '192.168.1.0/24'), good('192.168.1.240-192.168.1.247', 24)],
  [
    'CIDR pool with host bits runs from the written address to the end, with a warning',
    spec('192.168.1.245/29', '192.168.1.0/24'),
    good('192.168.1.245-192.168.1.247', 24, [`${F}.pool`, 'the pool is 192.168.1.245-192.168.1.247']),
  ],
  ['/32 CIDR pool is one address', spec('10.1.2.3/32', '10.0.0.0/8'), good('10.1.2.3-10.1.2.3', 8)],
  ['pool equal to the subnet', spec('10.0.0.0/24', '10.0.0.0/24'), good('10.0.0.0-10.0.0.255', 24)],
  ['aggregation "default" is the subnet prefix', spec('10.0.1.0/24', '10.0.0.0/22', 'default'), good('10.0.1.0-10.0.1.255', 22)],
  ['empty aggregation is the default', spec('10.0.1.0/24', '10.0.0.0/22', ''), good('10.0.1.0-10.0.1.255', 22)],
  ['aggregation /8 is the lower bound', spec('10.0.0.0/25', '10.0.0.0/24', '/8'), good('10.0.0.0-10.0.0.127', 8)],
  [
    'subnet with host bits is accepted with a warning',
    spec('10.0.0.10-10.0.0.20', '10.0.0.1/24'),
    good('10.0.0.10-10.0.0.20', 24, [`${F}.subnet`, 'the subnet is 10.0.0.0/24']),
  ],
  [
    'IPv6 /64 CIDR pool with /128 aggregation',
    spec('2001:db8:1::/64', '2001:db8:1::/64', '/128'),
    good('2001:db8:1::-2001:db8:1:0:ffff:ffff:ffff:ffff', 128),
    { family: 'IPv6' },
  ],
  ['IPv6 in upper case and long form', spec('2001:0DB8:0:0::10-2001:db8::1f', '2001:DB8::/48'), good('2001:db8::10-2001:db8::1f', 48)],
  ['IPv6 /64 aggregation on a /48', spec('2001:db8::/56', '2001:db8::/48', '/64'), good('2001:db8::-2001:db8:0:ff:ffff:ffff:ffff:ffff', 64)],
  ['group aggregation applies when the range sets none', spec('10.0.0.0/28', '10.0.0.0/24'), good('10.0.0.0-10.0.0.15', 32), groupAggregation('/32')],
  ['the range aggregation wins over the group one', spec('10.0.0.0/28', '10.0.0.0/24', '/30'), good('10.0.0.0-10.0.0.15', 30), groupAggregation('/32')],
  // bad ranges
  ['start after end', spec('10.0.0.9-10.0.0.1', '10.0.0.0/24'), bad(['.pool', 'start 10.0.0.9 is after end 10.0.0.1'])],
  ['start one after end', spec('2001:db8::10-2001:db8::f', '2001:db8::/64'), bad(['.pool', 'start 2001:db8::10 is after end 2001:db8::f'])],
  ['mixed families', spec('10.0.0.1-2001:db8::1', '10.0.0.0/24'), bad(['.pool', 'IPv4 but end 2001:db8::1 is IPv6'])],
  ['garbage start', spec('ten-10.0.0.9', '10.0.0.0/24'), bad(['.pool', 'start "ten"'])],
  ['garbage end', spec('10.0.0.1-', '10.0.0.0/24'), bad(['.pool', 'end ""'])],
  ['three addresses', spec('10.0.0.1-10.0.0.5-10.0.0.9', '10.0.0.0/24'), bad(['.pool', 'end "10.0.0.5-10.0.0.9"'])],
  ['octet above 255', spec('10.0.0.1-10.0.0.256', '10.0.0.0/24'), bad(['.pool', 'end "10.0.0.256"'])],
  ['leading zeros are ambiguous (octal?)', spec('010.0.0.1-10.0.0.9', '10.0.0.0/24'), bad(['.pool', 'start "010.0.0.1"'])],
  ['shorthand IPv4', spec('10.1/32', '10.0.0.0/24'), bad(['.pool', 'invalid address "10.1"'])],
  ['IPv6 zone', spec('fe80::1%eth0-fe80::9', 'fe80::/64'), bad(['.pool', 'start "fe80::1%eth0"'])],
  ['plain address without prefix', spec('10.0.0.1', '10.0.0.0/24'), bad(['.pool', 'not a CIDR'])],
  ['IPv4 prefix above 32', spec('10.0.0.0/33', '10.0.0.0/24'), bad(['.pool', 'invalid prefix length "33"'])],
  ['IPv6 prefix above 128', spec('2001:db8::/129', '2001:db8::/64'), bad(['.pool', 'invalid prefix length "129"'])],
  ['prefix with a leading zero', spec('10.0.0.0/25', '10.0.0.0/024'), bad(['.subnet', 'invalid prefix length "024"'])],
  ['empty pool', spec('', '10.0.0.0/24'), bad(['.pool', 'pool is required'])],
  ['pool that is not a string', spec(42, '10.0.0.0/24'), bad(['.pool', 'pool is required'])],
  ['missing subnet', spec('10.0.0.0/25'), bad(['.subnet', 'subnet is required'])],
  ['subnet without prefix', spec('10.0.0.0/25', '10.0.0.0'), bad(['.subnet', 'not a CIDR'])],
  [
    'pool and subnet both bad: both reported',
    spec('1-2', 'x/24'),
    bad(['.pool', 'start "1"'], ['.pool', 'end "2"'], ['.subnet', 'invalid address "x"']),
  ],
  ['pool entirely outside the subnet', spec('10.0.1.0-10.0.1.9', '10.0.0.0/24'), bad(['.pool', 'is not inside subnet 10.0.0.0/24'])],
  ['pool partly outside the subnet', spec('10.0.0.250-10.0.1.3', '10.0.0.0/24'), bad(['.pool', 'is not inside subnet'])],
  ['CIDR pool larger than the subnet', spec('10.0.0.0/24', '10.0.0.0/25'), bad(['.pool', 'is not inside subnet 10.0.0.0/25'])],
  ['subnet family differs from the pool', spec('10.0.0.0/25', '2001:db8::/64'), bad(['.subnet', 'subnet is IPv6 but the pool is IPv4'])],
  ['v4pool holding IPv6', spec('2001:db8::/120', '2001:db8::/64'), bad(['.pool', 'expected an IPv4 range, got IPv6']), { family: 'IPv4' }],
  ['v6pool holding IPv4', spec('10.0.0.0/25', '10.0.0.0/24'), bad(['.pool', 'expected an IPv6 range, got IPv4']), { family: 'IPv6' }],
  ['aggregation /33 for IPv4', spec('10.0.0.0/25', '10.0.0.0/24', '/33'), bad(['.aggregation', '/8-/32 for IPv4'])],
  ['aggregation /7 is below the bound', spec('10.0.0.0/25', '10.0.0.0/24', '/7'), bad(['.aggregation', '"default" or /8-/32'])],
  ['aggregation /129 for IPv6', spec('2001:db8::/120', '2001:db8::/64', '/129'), bad(['.aggregation', '/8-/128 for IPv6'])],
  ['aggregation without its slash (PureLB never announces it)', spec('10.0.0.0/25', '10.0.0.0/24', '32'), bad(['.aggregation', 'must be'])],
  ['aggregation as a number', spec('10.0.0.0/25', '10.0.0.0/24', 32), bad(['.aggregation', 'aggregation must be'])],
  [
    'a bad group aggregation is reported at the group field',
    spec('10.0.0.0/25', '10.0.0.0/24'),
    { errors: [['spec.remote.aggregation', '/8-/32 for IPv4']] },
    groupAggregation('/99'),
  ],
];

describe('parseRange', () => {
  test('the table has enough rows', () => assert.ok(rows.length >= 30));
  for (const [name, input, expected, context] of rows) {
    test(name, () => {
      const result = parseRange(input, F, context);
      if ('span' in expected) {
        assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
        const range = result.value;
        assert.equal(`${formatAddress(range.family, range.first)}-${formatAddress(range.family, range.last)}`, expected.span);
        assert.equal(range.aggregation, expected.aggregation);
        assert.equal(range.field, F);
        const warnings = result.warnings.map((w) => [w.field, w.message] as const);
        if (expected.warning === undefined) assert.deepEqual(warnings, []);
        else {
          assert.equal(warnings.length, 1);
          assert.equal(warnings[0]?.[0], expected.warning[0]);
          assert.ok(warnings[0]?.[1].includes(expected.warning[1]), warnings[0]?.[1]);
        }
      } else {
        assert.ok(!result.ok, 'expected errors');
        assert.deepEqual(
          result.errors.map((e) => e.field),
          expected.errors.map(([field]) => field),
        );
        result.errors.forEach((e, i) => assert.ok(e.message.includes(expected.errors[i]?.[1] ?? '?'), e.message));
      }
    });
  }

  test('errors carry the value as written', () => {
    const result = parseRange({ subnet: '10.0.0.0/24', pool: '10.0.0.9-10.0.0.1' }, F);
    assert.deepEqual(result, {
      ok: false,
      errors: [{ field: `${F}.pool`, value: '10.0.0.9-10.0.0.1', message: 'start 10.0.0.9 is after end 10.0.0.1' }],
    });
  });
});

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const family = fc.constantFrom<Family>('IPv4', 'IPv6');

describe('parsePool properties', () => {
  test('never throws on arbitrary text, and every result is a well-formed span or an error', () => {
    const text = fc.oneof(
      fc.string(),
      fc.tuple(v4, fc.constantFrom('-', ' - ', '/'), fc.oneof(v4, fc.nat(40).map(String))).map((p) => p.join('')),
      fc.stringMatching(/^[0-9a-f:.\-/ ]{0,40}$/),
    );
    fc.assert(
      fc.property(text, (t) => {
        const result = parsePool(t, 'f');
        if (result.ok) assert.ok(result.value.first <= result.value.last);
        else assert.ok(result.errors.length > 0 && result.errors.every((e) => e.field === 'f' && e.value === t));
      }),
    );
  });

  test('A-B parses to exactly [A, B] when A ≤ B and fails otherwise', () => {
    const bits = (f: Family): bigint => (f === 'IPv4' ? 32n : 128n);
    fc.assert(
      fc.property(family, fc.bigInt(0n, 2n ** 128n - 1n), fc.bigInt(0n, 2n ** 128n - 1n), (f, x, y) => {
        const a = x % (1n << bits(f));
        const b = y % (1n << bits(f));
        const result = parsePool(`${formatAddress(f, a)}-${formatAddress(f, b)}`, 'f');
        assert.equal(result.ok, a <= b);
        if (result.ok) assert.deepEqual(result.value, { family: f, first: a, last: b });
      }),
    );
  });
});
