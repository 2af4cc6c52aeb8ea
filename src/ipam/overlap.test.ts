import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { Family } from './address.ts';
import { findOverlaps } from './overlap.ts';
import type { NamedRanges } from './overlap.ts';
import type { AddressRange } from './range.ts';
import { parseServiceGroupSpec } from './group.ts';

function range(family: Family, first: bigint, last: bigint, field: string): AddressRange {
  const subnet = { family, address: 0n, prefix: 0, first: 0n, last: family === 'IPv4' ? 2n ** 32n - 1n : 2n ** 128n - 1n };
  return { family, first, last, pool: `${first}-${last}`, subnet, aggregation: 32, field };
}

describe('findOverlaps', () => {
  test('reports nested ranges, naming both groups and the shared addresses', () => {
    const outer = parseServiceGroupSpec({ local: { v4pool: { subnet: '10.0.0.0/16', pool: '10.0.0.0/16' } } });
    const inner = parseServiceGroupSpec({
      remote: { v4pools: [{ subnet: '10.1.0.0/16', pool: '10.1.0.0/24' }, { subnet: '10.0.0.0/16', pool: '10.0.5.1-10.0.5.9' }] },
    });
    assert.ok(outer.ok && inner.ok);
    const found = findOverlaps([
      { group: 'outer', ranges: outer.value.ranges.IPv4 },
      { group: 'inner', ranges: inner.value.ranges.IPv4 },
    ]);
    assert.equal(found.length, 1);
    assert.deepEqual(found[0]?.a, { group: 'outer', field: 'spec.local.v4pool', pool: '10.0.0.0/16' });
    assert.deepEqual(found[0]?.b, { group: 'inner', field: 'spec.remote.v4pools[1]', pool: '10.0.5.1-10.0.5.9' });
    assert.equal(
      found[0]?.message,
      'spec.local.v4pool.pool 10.0.0.0/16 of ServiceGroup outer overlaps spec.remote.v4pools[1].pool 10.0.5.1-10.0.5.9 of ServiceGroup inner on 10.0.5.1-10.0.5.9',
    );
  });

  test('ignores overlaps within one group and across families', () => {
    const found = findOverlaps([
      { group: 'a', ranges: [range('IPv4', 0n, 10n, 'x'), range('IPv4', 5n, 6n, 'y')] },
      { group: 'b', ranges: [range('IPv6', 0n, 10n, 'z')] },
    ]);
    assert.deepEqual(found, []);
  });

  test('matches brute force on small ranges', () => {
    const span = fc.tuple(fc.constantFrom<Family>('IPv4', 'IPv6'), fc.nat(30), fc.nat(8));
    const groups = fc.array(fc.array(span, { maxLength: 4 }), { maxLength: 5 });
    fc.assert(
      fc.property(groups, (spec) => {
        const named: NamedRanges[] = spec.map((spans, g) => ({
          group: `g${g}`,
          ranges: spans.map(([family, start, length], i) =>
            range(family, BigInt(start), BigInt(start + length), `r${i}`),
          ),
        }));
        const key = (a: string, b: string): string => [a, b].sort().join('|');
        const got = findOverlaps(named).map((o) => key(`${o.a.group}/${o.a.field}`, `${o.b.group}/${o.b.field}`));
        const expected: string[] = [];
        named.forEach((x, gx) =>
          named.slice(gx + 1).forEach((y) => {
            for (const r of x.ranges) {
              for (const s of y.ranges) {
                const sharesAddress = r.family === s.family && addresses(r).some((v) => s.first <= v && v <= s.last);
                if (sharesAddress) expected.push(key(`${x.group}/${r.field}`, `${y.group}/${s.field}`));
              }
            }
          }),
        );
        assert.deepEqual(got.sort(), expected.sort());
      }),
    );
  });
});

function addresses(r: AddressRange): bigint[] {
  const out: bigint[] = [];
  for (let v = r.first; v <= r.last; v++) out.push(v);
  return out;
}
