// A range is one `{pool, subnet, aggregation}` object of a ServiceGroup, parsed the
// way PureLB reads it, with every problem reported against the field that holds it.

import { addressBits, formatAddress, formatCidr, parseAddress, parseCidr, parsePrefix } from './address.ts';
import type { Cidr, Family } from './address.ts';
import { issue, rejected } from './result.ts';
import type { FieldIssue, Validated } from './result.ts';

/** A contiguous, inclusive run of addresses of one family. */
export interface Span {
  readonly family: Family;
  readonly first: bigint;
  readonly last: bigint;
}

export interface AddressRange extends Span {
  /** The pool as the user wrote it, for messages. */
  readonly pool: string;
  readonly subnet: Cidr;
  /** Prefix length of the address put on `kube-lb0`. */
  readonly aggregation: number;
  /** Where the range was written, e.g. `spec.local.v4pools[1]`. */
  readonly field: string;
}

export interface RangeSpec {
  readonly pool?: unknown;
  readonly subnet?: unknown;
  readonly aggregation?: unknown;
}

export interface RangeContext {
  /** The family the enclosing field promises (`v4pool` holds IPv4). */
  readonly family?: Family;
  /** A group-level aggregation that applies where the range sets none (v2). */
  readonly aggregation?: { readonly value: unknown; readonly field: string };
}

export function spanSize(span: Span): bigint {
  return span.last - span.first + 1n;
}

export function spanContains(span: Span, family: Family, value: bigint): boolean {
  return span.family === family && span.first <= value && value <= span.last;
}

export function formatSpan(span: Span): string {
  return `${formatAddress(span.family, span.first)}-${formatAddress(span.family, span.last)}`;
}

export function parseRange(spec: RangeSpec, field: string, context: RangeContext = {}): Validated<AddressRange> {
  const errors: FieldIssue[] = [];
  const warnings: FieldIssue[] = [];
  const pool = parsePool(spec.pool, `${field}.pool`);
  const subnet = parseSubnet(spec.subnet, `${field}.subnet`);
  for (const part of [pool, subnet]) {
    if (part.ok) warnings.push(...part.warnings);
    else errors.push(...part.errors);
  }
  if (!pool.ok || !subnet.ok) return { ok: false, errors };

  const span = pool.value;
  const net = subnet.value;
  if (context.family !== undefined && span.family !== context.family) {
    errors.push(issue(`${field}.pool`, spec.pool, `expected an ${context.family} range, got ${span.family}`));
  }
  if (net.family !== span.family) {
    errors.push(issue(`${field}.subnet`, spec.subnet, `subnet is ${net.family} but the pool is ${span.family}`));
  } else if (span.first < net.first || span.last > net.last) {
    errors.push(issue(`${field}.pool`, spec.pool, `pool ${formatSpan(span)} is not inside subnet ${formatCidr(net)}`));
  }
  const own = spec.aggregation !== undefined && spec.aggregation !== '';
  const aggregation = parseAggregation(
    own ? spec.aggregation : context.aggregation?.value,
    own || context.aggregation === undefined ? `${field}.aggregation` : context.aggregation.field,
    net,
  );
  if (!aggregation.ok) errors.push(...aggregation.errors);
  if (errors.length > 0 || !aggregation.ok) return { ok: false, errors };
  return {
    ok: true,
    value: { ...span, pool: String(spec.pool), subnet: net, aggregation: aggregation.value, field },
    warnings,
  };
}

/** `A-B` (inclusive) or a CIDR; a CIDR with host bits set starts at the written address. */
export function parsePool(text: unknown, field: string): Validated<Span> {
  if (typeof text !== 'string' || text === '') {
    return rejected(field, text, 'pool is required: an address range A-B or a CIDR');
  }
  const dash = text.indexOf('-');
  if (dash >= 0) return parseFromTo(text, dash, field);
  const cidr = parseCidr(text);
  if (typeof cidr === 'string') return rejected(field, text, `not an address range A-B or a CIDR: ${cidr}`);
  const span = { family: cidr.family, first: cidr.address, last: cidr.last };
  const warnings =
    cidr.address === cidr.first
      ? []
      : [
          issue(
            field,
            text,
            `host bits are set: the pool is ${formatSpan(span)}, from the written address to the end of ${formatCidr(cidr)}`,
          ),
        ];
  return { ok: true, value: span, warnings };
}

function parseFromTo(text: string, dash: number, field: string): Validated<Span> {
  // PureLB trims blanks around the two addresses (`10.0.0.1 - 10.0.0.9`).
  const startText = text.slice(0, dash).trim();
  const endText = text.slice(dash + 1).trim();
  const start = parseAddress(startText);
  const end = parseAddress(endText);
  const errors: FieldIssue[] = [];
  if (start === undefined) errors.push(issue(field, text, `start "${startText}" is not an IP address`));
  if (end === undefined) errors.push(issue(field, text, `end "${endText}" is not an IP address`));
  if (start === undefined || end === undefined) return { ok: false, errors };
  if (start.family !== end.family) {
    return rejected(field, text, `start ${startText} is ${start.family} but end ${endText} is ${end.family}`);
  }
  if (start.value > end.value) {
    return rejected(
      field,
      text,
      `start ${formatAddress(start.family, start.value)} is after end ${formatAddress(end.family, end.value)}`,
    );
  }
  return { ok: true, value: { family: start.family, first: start.value, last: end.value }, warnings: [] };
}

function parseSubnet(text: unknown, field: string): Validated<Cidr> {
  if (typeof text !== 'string' || text === '') return rejected(field, text, 'subnet is required: a CIDR');
  const cidr = parseCidr(text);
  if (typeof cidr === 'string') return rejected(field, text, `not a CIDR: ${cidr}`);
  const warnings =
    cidr.address === cidr.first ? [] : [issue(field, text, `host bits are set: the subnet is ${formatCidr(cidr)}`)];
  return { ok: true, value: cidr, warnings };
}

const MIN_AGGREGATION = 8;

/** `default` (or absent) means the subnet's prefix length; otherwise `/N` within the family. */
function parseAggregation(text: unknown, field: string, subnet: Cidr): Validated<number> {
  if (text === undefined || text === '' || text === 'default') {
    return { ok: true, value: subnet.prefix, warnings: [] };
  }
  const bits = addressBits(subnet.family);
  const prefix = typeof text === 'string' && text.startsWith('/') ? parsePrefix(text.slice(1), bits) : undefined;
  if (prefix === undefined || prefix < MIN_AGGREGATION) {
    return rejected(field, text, `aggregation must be "default" or /${MIN_AGGREGATION}-/${bits} for ${subnet.family}`);
  }
  return { ok: true, value: prefix, warnings: [] };
}
