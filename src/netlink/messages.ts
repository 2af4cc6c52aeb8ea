// Byte layouts of the rtnetlink messages this module builds or reads itself. The npm
// `netlink` binding covers links and routes, but its address codec drops attributes it
// does not know (IFA_PROTO among them) and refuses to send them, and IFA_PROTO is how
// we recognise our own addresses, so address messages are encoded and decoded here.
// Everything in this file is pure; the constants come from linux/rtnetlink.h,
// linux/if_addr.h and linux/if_link.h.

import { addressBits, formatAddress, formatHextets, parseAddress } from '../ipam/address.ts';
import type { Family } from '../ipam/address.ts';

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const NLMSG_ERROR = 2;

export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_DUMP = 0x300;

export const AF_INET = 2;
export const AF_INET6 = 10;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_CACHEINFO = 6;
const IFA_FLAGS = 8;
const IFA_PROTO = 11;

export const IFA_F_SECONDARY = 0x01;
export const IFA_F_NODAD = 0x02;
export const IFA_F_DADFAILED = 0x08;
export const IFA_F_DEPRECATED = 0x20;
export const IFA_F_TENTATIVE = 0x40;
export const IFA_F_PERMANENT = 0x80;
export const IFA_F_NOPREFIXROUTE = 0x200;

/** ifa_valid / ifa_prefered value meaning "forever". */
const INFINITY_LIFE_TIME = 0xffffffff;

const IFLA_IFNAME = 3;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;
const NLA_F_NESTED = 0x8000;
const IFLA_INET_CONF = 1;
const IFLA_AF_SPEC = 26;
const IFF_UP = 0x1;
export const IPV4_DEVCONF_PROMOTE_SECONDARIES = 20;

export type { Family } from '../ipam/address.ts';

/** An address as the kernel reports it, before we decide whether it is ours. */
export interface AddressRecord {
  family: Family;
  ifindex: number;
  ip: string;
  prefix: number;
  scope: number;
  /** IFA_F_* bits (the 32-bit IFA_FLAGS attribute when present). */
  flags: number;
  /** IFA_PROTO, 0 when the kernel sent none. */
  protocol: number;
  /** Seconds; undefined means forever. */
  validLifetime: number | undefined;
  preferredLifetime: number | undefined;
  /**
   * When the kernel created the address (IFA_CACHEINFO cstamp, hundredths of a second
   * since boot); kept by lifetime renewals, new when the address is deleted and added again.
   */
  created: number | undefined;
}

export interface AddressRequest {
  ifindex: number;
  ip: string;
  prefix: number;
  flags?: number;
  protocol?: number;
  lifetimes?: { validSec: number; preferredSec: number };
}

/**
 * Parses an IP strictly (dotted quad for IPv4, no zone for IPv6) and returns its
 * family, canonical text (RFC 5952 for IPv6) and bytes. Anything else throws, naming
 * the value.
 */
export function parseIp(text: string): { family: Family; ip: string; bytes: Buffer } {
  // The IPAM's parser: one codec for the whole code base.
  const address = parseAddress(text);
  if (address === undefined) throw new Error(`invalid IP address ${JSON.stringify(text)}`);
  const bytes = Buffer.alloc(addressBits(address.family) / 8);
  for (let i = bytes.length - 1, v = address.value; i >= 0; i--, v >>= 8n) bytes[i] = Number(v & 0xffn);
  return { family: address.family, ip: formatAddress(address.family, address.value), bytes };
}

/**
 * The text of 4 or 16 address bytes: dotted quad, or RFC 5952. Written out rather
 * than through ipaddr.js because every reconcile formats every address of a kernel
 * dump; the tests hold it to ipaddr.js's output.
 */
export function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new Error(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  return formatHextets(groups);
}

function attribute(type: number, data: Buffer): Buffer {
  const length = 4 + data.length;
  const out = Buffer.alloc((length + 3) & ~3);
  out.writeUInt16LE(length, 0);
  out.writeUInt16LE(type, 2);
  data.copy(out, 4);
  return out;
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0, 0);
  return b;
}

/** Walks a run of netlink attributes (struct nlattr), calling `visit` for each. */
export function forEachAttribute(data: Buffer, offset: number, visit: (type: number, value: Buffer) => void): void {
  let at = offset;
  while (at + 4 <= data.length) {
    const length = data.readUInt16LE(at);
    if (length < 4 || at + length > data.length) break;
    visit(data.readUInt16LE(at + 2) & 0x3fff, data.subarray(at + 4, at + length));
    at += (length + 3) & ~3;
  }
}

/** struct ifaddrmsg followed by IFA_LOCAL, IFA_ADDRESS, IFA_FLAGS and, as asked, IFA_PROTO and IFA_CACHEINFO. */
export function encodeAddress(req: AddressRequest): Buffer {
  const { family, bytes } = parseIp(req.ip);
  const bits = addressBits(family);
  if (!Number.isInteger(req.prefix) || req.prefix < 0 || req.prefix > bits) {
    throw new Error(`invalid prefix length ${req.prefix} for ${req.ip}`);
  }
  if (!Number.isInteger(req.ifindex) || req.ifindex <= 0) throw new Error(`invalid interface index ${req.ifindex}`);
  const flags = req.flags ?? 0;
  const header = Buffer.alloc(8);
  header.writeUInt8(family === 'IPv4' ? AF_INET : AF_INET6, 0);
  header.writeUInt8(req.prefix, 1);
  header.writeUInt8(flags & 0xff, 2);
  header.writeUInt8(0, 3); // RT_SCOPE_UNIVERSE
  header.writeUInt32LE(req.ifindex, 4);
  const parts = [header, attribute(IFA_LOCAL, bytes), attribute(IFA_ADDRESS, bytes), attribute(IFA_FLAGS, u32(flags))];
  if (req.protocol !== undefined) parts.push(attribute(IFA_PROTO, Buffer.from([req.protocol])));
  if (req.lifetimes !== undefined) {
    const { validSec, preferredSec } = req.lifetimes;
    if (!Number.isInteger(validSec) || validSec <= 0 || validSec >= INFINITY_LIFE_TIME) {
      throw new Error(`invalid valid lifetime ${validSec} s for ${req.ip}`);
    }
    if (!Number.isInteger(preferredSec) || preferredSec < 0 || preferredSec > validSec) {
      throw new Error(`invalid preferred lifetime ${preferredSec} s for ${req.ip} (must be 0..${validSec})`);
    }
    const info = Buffer.alloc(16); // struct ifa_cacheinfo: prefered, valid, cstamp, tstamp
    info.writeUInt32LE(preferredSec, 0);
    info.writeUInt32LE(validSec, 4);
    parts.push(attribute(IFA_CACHEINFO, info));
  }
  return Buffer.concat(parts);
}

/** Decodes an RTM_NEWADDR / RTM_DELADDR payload; undefined for families other than IPv4/IPv6. */
export function decodeAddress(data: Buffer): AddressRecord | undefined {
  if (data.length < 8) return undefined;
  const af = data.readUInt8(0);
  if (af !== AF_INET && af !== AF_INET6) return undefined;
  let local: Buffer | undefined;
  let address: Buffer | undefined;
  let flags = data.readUInt8(2);
  let protocol = 0;
  let validLifetime: number | undefined;
  let preferredLifetime: number | undefined;
  let created: number | undefined;
  forEachAttribute(data, 8, (type, value) => {
    if (type === IFA_LOCAL) local = value;
    else if (type === IFA_ADDRESS) address = value;
    else if (type === IFA_FLAGS && value.length >= 4) flags = value.readUInt32LE(0);
    else if (type === IFA_PROTO && value.length >= 1) protocol = value.readUInt8(0);
    else if (type === IFA_CACHEINFO && value.length >= 8) {
      const preferred = value.readUInt32LE(0);
      const valid = value.readUInt32LE(4);
      preferredLifetime = preferred === INFINITY_LIFE_TIME ? undefined : preferred;
      validLifetime = valid === INFINITY_LIFE_TIME ? undefined : valid;
      if (value.length >= 12) created = value.readUInt32LE(8);
    }
  });
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point links.
  const own = local ?? address;
  if (own === undefined) return undefined;
  return {
    family: af === AF_INET ? 'IPv4' : 'IPv6',
    ifindex: data.readUInt32LE(4),
    ip: formatIp(own),
    prefix: data.readUInt8(1),
    scope: data.readUInt8(3),
    flags,
    protocol,
    validLifetime,
    preferredLifetime,
    created,
  };
}

/** Splits a datagram into its netlink messages (struct nlmsghdr + payload). */
export function decodeMessages(datagram: Buffer): Array<{ type: number; flags: number; data: Buffer }> {
  const out: Array<{ type: number; flags: number; data: Buffer }> = [];
  let at = 0;
  while (at + 16 <= datagram.length) {
    const length = datagram.readUInt32LE(at);
    if (length < 16 || at + length > datagram.length) break;
    out.push({ type: datagram.readUInt16LE(at + 4), flags: datagram.readUInt16LE(at + 6), data: datagram.subarray(at + 16, at + length) });
    at += (length + 3) & ~3;
  }
  return out;
}

/** The negative errno of an NLMSG_ERROR payload (0 is an ACK). */
export function decodeError(data: Buffer): number {
  return data.length >= 4 ? data.readInt32LE(0) : 0;
}

/**
 * struct ifinfomsg naming a link by IFLA_IFNAME, for RTM_GETLINK or, with a kind
 * (IFLA_LINKINFO { IFLA_INFO_KIND }), RTM_NEWLINK.
 */
export function encodeLinkByName(name: string, kind?: string): Buffer {
  const parts = [Buffer.alloc(16), attribute(IFLA_IFNAME, Buffer.from(`${name}\0`, 'latin1'))];
  if (kind !== undefined) {
    parts.push(attribute(IFLA_LINKINFO | NLA_F_NESTED, attribute(IFLA_INFO_KIND, Buffer.from(`${kind}\0`, 'latin1'))));
  }
  return Buffer.concat(parts);
}

/** RTM_SETLINK payload: interface `index` up (IFF_UP), with IFLA_AF_SPEC { AF_INET { `inetConf` } }. */
export function encodeLinkUp(index: number, inetConf: Buffer): Buffer {
  const header = Buffer.alloc(16); // struct ifinfomsg
  header.writeInt32LE(index, 4);
  header.writeUInt32LE(IFF_UP, 8); // flags
  header.writeUInt32LE(IFF_UP, 12); // change mask
  return Buffer.concat([header, attribute(IFLA_AF_SPEC | NLA_F_NESTED, attribute(AF_INET | NLA_F_NESTED, inetConf))]);
}

/** IFLA_AF_SPEC/AF_INET content setting one IPv4 devconf value (IFLA_INET_CONF holds nested u32s). */
export function encodeInetConf(devconf: number, value: number): Buffer {
  return attribute(IFLA_INET_CONF | NLA_F_NESTED, attribute(devconf, u32(value)));
}

/** Reads one IPv4 devconf value from a link dump's IFLA_AF_SPEC/AF_INET: there an array of u32, devconf n at n-1. */
export function decodeInetConf(spec: Buffer | undefined, devconf: number): number | undefined {
  if (spec === undefined) return undefined;
  let value: number | undefined;
  forEachAttribute(spec, 0, (type, data) => {
    if (type === IFLA_INET_CONF && data.length >= devconf * 4) value = data.readUInt32LE((devconf - 1) * 4);
  });
  return value;
}

export function decodeLinkInfoKind(linkinfo: Buffer | undefined): string | undefined {
  if (linkinfo === undefined) return undefined;
  let kind: string | undefined;
  forEachAttribute(linkinfo, 0, (type, value) => {
    if (type === IFLA_INFO_KIND) kind = value.toString('latin1').replace(/\0+$/, '');
  });
  return kind;
}

/** Whether `ip` lies in `network/prefix` (same family required). */
export function containsIp(network: string, prefix: number, ip: string): boolean {
  const a = parseIp(network);
  const b = parseIp(ip);
  if (a.family !== b.family) return false;
  let bits = prefix;
  for (let i = 0; i < a.bytes.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((a.bytes[i] ?? 0) & mask) !== ((b.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}
