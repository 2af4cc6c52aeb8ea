// A ServiceGroup spec (v1 or v2 shape) turned into the pool configuration the IPAM
// works from. The CRD schema already rejects most malformed input at admission; this
// step repeats the checks that need arithmetic (A ≤ B, pool inside subnet, overlaps)
// so that objects stored before a schema change are caught too.

import type { Family } from './address.ts';
import { describeShared, overlappingPairs } from './overlap.ts';
import { parseRange } from './range.ts';
import type { AddressRange, RangeContext } from './range.ts';
import { issue, rejected } from './result.ts';
import type { FieldIssue, Validated } from './result.ts';

/** `local` announces on the node's interface when it can; `remote` always on kube-lb0. */
export type Announce = 'local' | 'remote';

export interface PoolConfig {
  readonly announce: Announce;
  /** Ranges per family in allocation order: `v4pool`, then `v4pools`, then the legacy `pool`. */
  readonly ranges: Readonly<Record<Family, readonly AddressRange[]>>;
  /** One address from every range of a family (v2). */
  readonly multiPool: boolean;
  /** New addresses come from the least-used range (v2). */
  readonly balancePools: boolean;
}

type Fields = Readonly<Record<string, unknown>>;

export function parseServiceGroupSpec(spec: unknown, path = 'spec'): Validated<PoolConfig> {
  if (!isFields(spec)) return rejected(path, spec, 'spec must be an object');
  const chosen = (['local', 'remote'] as const).filter((k) => spec[k] !== undefined && spec[k] !== null);
  if (chosen.length !== 1) {
    const message =
      spec.external !== undefined
        ? 'external IPAM is not supported: use local or remote'
        : 'exactly one of local and remote must be set';
    return rejected(path, chosen.join(','), message);
  }
  const announce = chosen[0] as Announce;
  const body = spec[announce];
  const base = `${path}.${announce}`;
  if (!isFields(body)) return rejected(base, body, `${announce} must be an object`);
  return parseAddressSpace(body, base, announce);
}

function parseAddressSpace(body: Fields, base: string, announce: Announce): Validated<PoolConfig> {
  const errors: FieldIssue[] = [];
  const warnings: FieldIssue[] = [];
  const ranges: Record<Family, AddressRange[]> = { IPv4: [], IPv6: [] };
  const legacy = body.pool !== undefined && body.pool !== '';
  // v2's group-wide aggregation shares its name with v1's flat range field.
  const context: RangeContext = legacy ? {} : { aggregation: { value: body.aggregation, field: `${base}.aggregation` } };

  const add = (spec: unknown, field: string, family?: Family): void => {
    if (!isFields(spec)) {
      errors.push(issue(field, spec, 'must be an object with pool and subnet'));
      return;
    }
    const parsed = parseRange(spec, field, family === undefined ? context : { ...context, family });
    if (!parsed.ok) {
      errors.push(...parsed.errors);
      return;
    }
    warnings.push(...parsed.warnings);
    const range = parsed.value;
    if (family === undefined && ranges[range.family].length > 0) {
      errors.push(issue(`${field}.pool`, range.pool, `the legacy pool and another ${range.family} range are both set`));
      return;
    }
    ranges[range.family].push(range);
  };

  for (const [family, one, many] of [
    ['IPv4', 'v4pool', 'v4pools'],
    ['IPv6', 'v6pool', 'v6pools'],
  ] as const) {
    if (body[one] !== undefined && body[one] !== null) add(body[one], `${base}.${one}`, family);
    const list = body[many];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) errors.push(issue(`${base}.${many}`, list, 'must be a list of ranges'));
    else list.forEach((spec, i) => add(spec, `${base}.${many}[${i}]`, family));
  }
  if (legacy) add({ pool: body.pool, subnet: body.subnet, aggregation: body.aggregation }, base);

  const multiPool = flag(body, 'multiPool', base, errors);
  const balancePools = flag(body, 'balancePools', base, errors);
  if (multiPool && balancePools) {
    errors.push(issue(`${base}.balancePools`, true, 'balancePools and multiPool are mutually exclusive'));
  }
  if (errors.length === 0 && ranges.IPv4.length + ranges.IPv6.length === 0) {
    errors.push(issue(base, '', 'no address range: set v4pool, v6pool, v4pools or v6pools'));
  }
  for (const [x, y] of overlappingPairs([...ranges.IPv4, ...ranges.IPv6], (r) => r)) {
    errors.push(issue(`${y.field}.pool`, y.pool, `overlaps ${x.field}.pool ${x.pool} on ${describeShared(x, y)}`));
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value: { announce, ranges, multiPool, balancePools }, warnings };
}

function flag(body: Fields, name: string, base: string, errors: FieldIssue[]): boolean {
  const value = body[name];
  if (value === undefined || value === null) return false;
  if (typeof value === 'boolean') return value;
  errors.push(issue(`${base}.${name}`, value, 'must be true or false'));
  return false;
}

function isFields(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
