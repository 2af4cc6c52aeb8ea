// IP addresses as BigInt, so that IPv4 and IPv6 share one arithmetic and an IPv6 /48
// never overflows. Parsing is strict on purpose (no zone IDs, no leading zeros, no
// shorthand like `10.1`): an address we accept must mean the same to the kernel, to
// Kubernetes and to the operator.

export type Family = 'IPv4' | 'IPv6';
export const FAMILIES: readonly Family[] = ['IPv4', 'IPv6'];

export interface Address {
  readonly family: Family;
  readonly value: bigint;
}

/** A CIDR as written: `address` keeps the host bits, `first`/`last` bound the network. */
export interface Cidr {
  readonly family: Family;
  readonly address: bigint;
  readonly prefix: number;
  readonly first: bigint;
  readonly last: bigint;
}

export function addressBits(family: Family): number {
  return family === 'IPv4' ? 32 : 128;
}

export function parseAddress(text: string): Address | undefined {
  if (text.includes(':')) {
    const value = parseIPv6(text);
    return value === undefined ? undefined : { family: 'IPv6', value };
  }
  const value = parseIPv4(text);
  return value === undefined ? undefined : { family: 'IPv4', value: BigInt(value) };
}

export function formatAddress(family: Family, value: bigint): string {
  return family === 'IPv4' ? formatIPv4(Number(value)) : formatIPv6(value);
}

/** Parses `address/prefix`; the reason is returned in words when it fails. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  if (slash < 0) return 'not a CIDR (address/prefix)';
  const address = parseAddress(text.slice(0, slash));
  if (address === undefined) return `invalid address "${text.slice(0, slash)}"`;
  const bits = addressBits(address.family);
  const prefix = parsePrefix(text.slice(slash + 1), bits);
  if (prefix === undefined) return `invalid prefix length "${text.slice(slash + 1)}" (0-${bits} for ${address.family})`;
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  const first = address.value - (address.value & hostMask);
  return { family: address.family, address: address.value, prefix, first, last: first | hostMask };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatAddress(cidr.family, cidr.first)}/${cidr.prefix}`;
}

/** A decimal prefix length within 0..bits, without sign or leading zeros. */
export function parsePrefix(text: string, bits: number): number | undefined {
  if (!/^(0|[1-9]\d{0,2})$/.test(text)) return undefined;
  const prefix = Number(text);
  return prefix <= bits ? prefix : undefined;
}

const IPV4 = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

function parseIPv4(text: string): number | undefined {
  const m = IPV4.exec(text);
  if (m === null) return undefined;
  let value = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

const HEXTET = /^[0-9a-fA-F]{1,4}$/;

// RFC 4291 §2.2: eight hextets, at most one `::` standing for one or more zero
// hextets, and optionally a dotted IPv4 address as the last 32 bits.
function parseIPv6(text: string): bigint | undefined {
  const gap = text.indexOf('::');
  if (gap !== text.lastIndexOf('::')) return undefined;
  const head = gap < 0 ? hextets(text, true) : hextets(text.slice(0, gap), false);
  const tail = gap < 0 ? [] : hextets(text.slice(gap + 2), true);
  if (head === undefined || tail === undefined) return undefined;
  const count = head.length + tail.length;
  if (gap < 0 ? count !== 8 : count > 7) return undefined;
  let value = 0n;
  for (const h of head) value = (value << 16n) | BigInt(h);
  value <<= BigInt(16 * (8 - count));
  for (const h of tail) value = (value << 16n) | BigInt(h);
  return value;
}

function hextets(text: string, mayEndInIPv4: boolean): number[] | undefined {
  if (text === '') return [];
  const groups = text.split(':');
  const out: number[] = [];
  for (const [i, group] of groups.entries()) {
    if (HEXTET.test(group)) {
      out.push(parseInt(group, 16));
    } else if (mayEndInIPv4 && i === groups.length - 1) {
      const v4 = parseIPv4(group);
      if (v4 === undefined) return undefined;
      out.push(Math.floor(v4 / 65536), v4 % 65536);
    } else {
      return undefined;
    }
  }
  return out;
}

function formatIPv4(value: number): string {
  return `${(value >>> 24) & 255}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

// RFC 5952: lower case, no leading zeros, the first longest run of two or more zero
// hextets written as `::`. Matches the WHATWG URL serializer and `ip addr` output.
function formatIPv6(value: bigint): string {
  const groups: number[] = [];
  for (let shift = 96n; shift >= 0n; shift -= 32n) {
    const word = Number((value >> shift) & 0xffffffffn);
    groups.push(word >>> 16, word & 0xffff);
  }
  return formatHextets(groups);
}

/** RFC 5952 text of eight 16-bit groups (see formatIPv6). */
export function formatHextets(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
