import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Occupancy } from './occupancy.ts';

const SIZE = 40;

/** Take/free a random sequence on a small range and compare with a plain Set. */
describe('Occupancy', () => {
  test('matches a Set of taken addresses after any sequence of takes and frees', () => {
    const base = 2n ** 64n - 20n; // straddles 2^64 to catch Number conversions
    fc.assert(
      fc.property(fc.array(fc.nat(SIZE - 1), { maxLength: 200 }), (ops) => {
        const occupancy = new Occupancy(base, base + BigInt(SIZE - 1));
        const model = new Set<bigint>();
        for (const op of ops) {
          const value = base + BigInt(op);
          if (model.has(value)) {
            occupancy.free(value);
            model.delete(value);
          } else {
            occupancy.take(value);
            model.add(value);
          }
          check(occupancy, model, base);
        }
      }),
    );
  });

  test('filling in lowest-free order keeps a single run', () => {
    const occupancy = new Occupancy(0n, 999n);
    for (let i = 0; i < 1000; i++) occupancy.take(occupancy.firstFree() as bigint);
    assert.equal(occupancy.firstFree(), undefined);
    assert.equal(occupancy.runCount, 1);
    assert.equal(occupancy.used, 1000n);
  });

  test('refuses to take twice, to free what is free, and to go outside the range', () => {
    const occupancy = new Occupancy(10n, 20n);
    occupancy.take(15n);
    assert.throws(() => occupancy.take(15n), RangeError);
    assert.throws(() => occupancy.free(14n), RangeError);
    assert.throws(() => occupancy.take(21n), RangeError);
    assert.throws(() => occupancy.take(9n), RangeError);
  });

  test('handles 50,000 separate runs in an IPv6 /64 and merges them back into one', () => {
    const first = 0x20010db8n << 96n;
    const occupancy = new Occupancy(first, first + 2n ** 64n - 1n);
    // Every other address taken: 50,000 separate runs, the treap's worst shape for order.
    for (let i = 0n; i < 100_000n; i += 2n) occupancy.take(first + i);
    assert.equal(occupancy.runCount, 50_000);
    assert.equal(occupancy.firstFree(), first + 1n);
    for (let i = 1n; i < 100_000n; i += 2n) occupancy.take(first + i);
    assert.equal(occupancy.runCount, 1);
  });
});

function check(occupancy: Occupancy, model: ReadonlySet<bigint>, base: bigint): void {
  assert.equal(occupancy.used, BigInt(model.size));
  let expectedFree: bigint | undefined;
  for (let i = 0; i < SIZE; i++) {
    const value = base + BigInt(i);
    assert.equal(occupancy.has(value), model.has(value));
    if (expectedFree === undefined && !model.has(value)) expectedFree = value;
  }
  assert.equal(occupancy.firstFree(), expectedFree);
  // Runs are ordered, disjoint, non-adjacent, and cover exactly the taken addresses.
  const runs = [...occupancy.runs()];
  assert.equal(runs.length, occupancy.runCount);
  let covered = 0n;
  runs.forEach(([lo, hi], i) => {
    assert.ok(lo <= hi);
    const next = runs[i + 1];
    if (next !== undefined) assert.ok(hi + 1n < next[0], 'runs must be merged');
    covered += hi - lo + 1n;
  });
  assert.equal(covered, occupancy.used);
}
