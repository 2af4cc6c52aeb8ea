// The address entries of MetalLB and OpenELB pools, and the purelb-ts pool objects they
// become. Both write a pool as a CIDR or a range `A-B`, OpenELB also as one address.
// Both read a CIDR with Go's net.ParseCIDR, which drops host bits: `10.0.0.7/24` is the
// whole 10.0.0.0/24 there, while in PureLB it would start at .7, so the network form is
// written out. Addresses are parsed as Kubernetes admits them (src/api/address.ts), so
// what comes out passes admission.
//
// A purelb-ts pool object also needs a `subnet` that contains it. Nothing in the source
// says which subnet the addresses belong to; the smallest CIDR around the pool is the
// honest choice, and it decides nothing: the agents find local addresses by the nodes'
// own subnets, and every converted pool sets its aggregation explicitly.

import { admittedAddress, admittedCidr } from '../api/address.ts';
import { addressBits, formatAddress, formatCidr } from '../ipam/address.ts';
import type { Cidr, Family } from '../ipam/address.ts';
import { formatSpan } from '../ipam/range.ts';
import type { Span } from '../ipam/range.ts';

export interface AddressEntry {
  /** Where it was written, e.g. `spec.addresses[1]`. */
  readonly field: string;
  readonly text: string;
  readonly span: Span;
  /** How it was written: a CIDR (or a single address) keeps that form when nothing is cut out of it. */
  readonly form: 'cidr' | 'range';
  /** Set when a CIDR was written with host bits. */
  readonly hostBits?: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const rangeOf = (cidr: Cidr): Span => ({ family: cidr.family, first: cidr.first, last: cidr.last });

/** One entry of a pool's address list: `A-B`, a CIDR or one address. */
export function parseEntry(text: string, field: string): Parsed<AddressEntry> {
  const trimmed = text.trim();
  if (trimmed.includes('-')) {
    const ends = trimmed.split('-').map((e) => e.trim());
    if (ends.length !== 2) return { ok: false, message: `"${text}" is not a range A-B, a CIDR or an address` };
    const [start, end] = ends.map((e) => admittedAddress(e));
    if (start === undefined || end === undefined) {
      const bad = start === undefined ? ends[0] : ends[1];
      return { ok: false, message: `"${text}": "${bad}" is not an IP address` };
    }
    if (start.family !== end.family) return { ok: false, message: `"${text}" mixes IPv4 and IPv6` };
    if (start.value > end.value) return { ok: false, message: `"${text}": the start lies after the end` };
    return { ok: true, value: { field, text, span: { family: start.family, first: start.value, last: end.value }, form: 'range' } };
  }
  if (trimmed.includes('/')) {
    const cidr = admittedCidr(trimmed);
    if (cidr === undefined) return { ok: false, message: `"${text}" is not a range A-B, a CIDR or an address` };
    const entry: AddressEntry = { field, text, span: rangeOf(cidr), form: 'cidr' };
    return { ok: true, value: cidr.address === cidr.first ? entry : { ...entry, hostBits: formatCidr(cidr) } };
  }
  const address = admittedAddress(trimmed);
  if (address === undefined) return { ok: false, message: `"${text}" is not a range A-B, a CIDR or an address` };
  return { ok: true, value: { field, text, span: { family: address.family, first: address.value, last: address.value }, form: 'cidr' } };
}

/** The smallest CIDR that holds the whole span. */
export function enclosingCidr(span: Span): string {
  const bits = addressBits(span.family);
  const differing = (span.first ^ span.last).toString(2).length - (span.first === span.last ? 1 : 0);
  const prefix = bits - differing;
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  const first = span.first & ~hostMask;
  return `${formatAddress(span.family, first)}/${prefix}`;
}

/** The span as a CIDR when it is exactly one, else undefined. */
function exactCidr(span: Span): string | undefined {
  const cidr = enclosingCidr(span);
  const [, prefix] = cidr.split('/');
  const size = 1n << BigInt(addressBits(span.family) - Number(prefix));
  return span.last - span.first + 1n === size ? cidr : undefined;
}

/**
 * MetalLB's avoid-buggy-ips skips every IPv4 address whose last octet is 0 or 255 (old
 * CPE firmware drops traffic to them as smurf attacks). The span without those
 * addresses, as runs inside each /24; undefined when that takes more than `limit` runs.
 */
export function withoutBuggyAddresses(span: Span, limit: number): Span[] | undefined {
  if (span.family !== 'IPv4') return [span];
  const runs: Span[] = [];
  for (let block = span.first >> 8n; block <= span.last >> 8n; block++) {
    const first = span.first > (block << 8n) + 1n ? span.first : (block << 8n) + 1n;
    const last = span.last < (block << 8n) + 254n ? span.last : (block << 8n) + 254n;
    if (first > last) continue;
    if (runs.length === limit) return undefined;
    runs.push({ family: 'IPv4', first, last });
  }
  return runs;
}

/** A purelb-ts pool object, and the source entry it came from. */
export interface PoolPiece {
  readonly pool: string;
  readonly subnet: string;
  readonly family: Family;
  readonly field: string;
}

export function pieceOf(entry: AddressEntry, span: Span): PoolPiece {
  const whole = span.first === entry.span.first && span.last === entry.span.last;
  const cidr = whole && entry.form === 'cidr' ? exactCidr(span) : undefined;
  return { pool: cidr ?? formatSpan(span), subnet: enclosingCidr(span), family: span.family, field: entry.field };
}
