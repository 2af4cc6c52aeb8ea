// Overlaps between ranges, nested ranges included. PureLB's own check compares only
// the ends of one range against the other, so a range nested strictly inside another
// slipped through; here the test is the plain interval one.

import { formatAddress } from './address.ts';
import type { Family } from './address.ts';
import type { AddressRange, Span } from './range.ts';
import { formatSpan } from './range.ts';

export interface NamedRanges {
  /** The ServiceGroup (or any owner) the ranges belong to. */
  readonly group: string;
  readonly ranges: readonly AddressRange[];
}

export interface RangeRef {
  readonly group: string;
  readonly field: string;
  readonly pool: string;
}

export interface Overlap {
  readonly a: RangeRef;
  readonly b: RangeRef;
  readonly family: Family;
  /** The addresses both ranges hold. */
  readonly first: bigint;
  readonly last: bigint;
  readonly message: string;
}

/** Every pair of ranges of different groups that share an address. */
export function findOverlaps(groups: Iterable<NamedRanges>): Overlap[] {
  const owned: { group: string; range: AddressRange }[] = [];
  for (const { group, ranges } of groups) for (const range of ranges) owned.push({ group, range });
  const found: Overlap[] = [];
  for (const [x, y] of overlappingPairs(owned, (o) => o.range)) {
    if (x.group === y.group) continue;
    const a = { group: x.group, field: x.range.field, pool: x.range.pool };
    const b = { group: y.group, field: y.range.field, pool: y.range.pool };
    const shared = intersection(x.range, y.range);
    found.push({
      a,
      b,
      ...shared,
      message: `${a.field}.pool ${a.pool} of ServiceGroup ${a.group} overlaps ${b.field}.pool ${b.pool} of ServiceGroup ${b.group} on ${describeShared(x.range, y.range)}`,
    });
  }
  return found;
}

/**
 * All pairs of items whose spans share an address, each pair once, the earlier
 * starting item first. A sweep over the items sorted by start: O(n log n + pairs).
 */
export function overlappingPairs<T>(items: readonly T[], spanOf: (item: T) => Span): [T, T][] {
  const sorted = [...items].sort((x, y) => compareSpans(spanOf(x), spanOf(y)));
  const pairs: [T, T][] = [];
  let open: T[] = [];
  for (const item of sorted) {
    const span = spanOf(item);
    open = open.filter((o) => spanOf(o).family === span.family && spanOf(o).last >= span.first);
    for (const o of open) pairs.push([o, item]);
    open.push(item);
  }
  return pairs;
}

export function intersection(x: Span, y: Span): Span {
  return { family: x.family, first: x.first > y.first ? x.first : y.first, last: x.last < y.last ? x.last : y.last };
}

function compareSpans(x: Span, y: Span): number {
  if (x.family !== y.family) return x.family < y.family ? -1 : 1;
  if (x.first !== y.first) return x.first < y.first ? -1 : 1;
  return 0;
}

/** The addresses two overlapping spans share, in words: one address or `first-last`. */
export function describeShared(x: Span, y: Span): string {
  const shared = intersection(x, y);
  return shared.first === shared.last ? formatAddress(shared.family, shared.first) : formatSpan(shared);
}
