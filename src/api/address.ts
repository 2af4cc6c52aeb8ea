// Address syntax as the API server's CEL library sees it (Kubernetes `isIP`, `isCIDR`),
// so that a manifest checked offline gets the verdict it would get at admission. The
// parsing itself is the IPAM's; this adds what Kubernetes refuses on top of it.

import { parseAddress, parseCidr } from '../ipam/address.ts';
import type { Address, Cidr, Family } from '../ipam/address.ts';

export type { Address, Cidr, Family };

/** The family number CEL's `ip(...).family()` returns. */
export type FamilyNumber = 4 | 6;
export const familyNumber = (family: Family): FamilyNumber => (family === 'IPv4' ? 4 : 6);

const isIPv4Mapped = (a: Address) => a.family === 'IPv6' && a.value >> 32n === 0xffffn;

/** Like Kubernetes `isIP`/`ip()`: no IPv4-mapped IPv6 (::ffff:a.b.c.d). */
export function admittedAddress(text: string): Address | undefined {
  const address = parseAddress(text);
  return address && !isIPv4Mapped(address) ? address : undefined;
}

/** Like Kubernetes `isCIDR`/`cidr()`: host bits allowed, no IPv4-mapped IPv6. */
export function admittedCidr(text: string): Cidr | undefined {
  const cidr = parseCidr(text);
  if (typeof cidr === 'string' || admittedAddress(text.slice(0, text.indexOf('/'))) === undefined) return undefined;
  return cidr;
}

/** A pool as written: `A-B` (spaces around `-` allowed, as PureLB) or a CIDR. */
export type PoolSyntax = { kind: 'range'; start: Address; end: Address } | { kind: 'cidr'; cidr: Cidr };

/**
 * IPv6 range ends must be written in hex: the admission rule that orders them cannot
 * read a dotted IPv4 tail (`64:ff9b::192.0.2.1`). A CIDR may have one.
 */
export function admittedPool(text: string): PoolSyntax | undefined {
  if (!text.includes('-')) {
    const cidr = admittedCidr(text);
    return cidr && { kind: 'cidr', cidr };
  }
  const ends = text.split('-').map((e) => e.trim());
  if (ends.length !== 2 || ends.some((e) => e.includes(':') && e.includes('.'))) return undefined;
  const start = admittedAddress(ends[0]!);
  const end = admittedAddress(ends[1]!);
  return start && end && { kind: 'range', start, end };
}

/** The pool's family, or undefined when a range mixes IPv4 and IPv6. */
export function poolFamily(pool: PoolSyntax): Family | undefined {
  if (pool.kind === 'cidr') return pool.cidr.family;
  return pool.start.family === pool.end.family ? pool.start.family : undefined;
}

/** Like CEL `cidr(subnet).containsIP(a) && containsIP(b)` for a range, `containsCIDR` for a CIDR. */
export function poolInside(pool: PoolSyntax, subnet: Cidr): boolean {
  const inside = (family: Family, first: bigint, last: bigint) =>
    family === subnet.family && subnet.first <= first && last <= subnet.last;
  return pool.kind === 'range'
    ? inside(pool.start.family, pool.start.value, pool.start.value) && inside(pool.end.family, pool.end.value, pool.end.value)
    : inside(pool.cidr.family, pool.cidr.first, pool.cidr.last);
}
