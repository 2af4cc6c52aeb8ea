// The two announcement frames, byte for byte. Pure functions, so the layouts can be
// pinned by tests without a network.
//
// Gratuitous ARP (DESIGN.md §3.2): a broadcast ARP *request* whose sender and target
// protocol addresses are both the VIP and whose sender hardware address is the
// interface's MAC, as iputils `arping -U` sends it. A Linux neighbour with an entry for
// the VIP moves it to the new MAC on receipt (arp_process updates an existing entry
// from any ARP request's sender fields).
//
// Unsolicited Neighbor Advertisement (RFC 4861 §7.2.6): ICMPv6 type 136 to ff02::1,
// hop limit 255, Override set, Solicited clear, target = VIP, with the Target
// Link-Layer Address option carrying the MAC. Linux (ndisc_recv_na) drops NAs whose hop
// limit is not 255 or that are solicited yet multicast; otherwise an existing entry
// takes the new MAC because of the Override flag.

export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
const ETH_HEADER = 14;
/** Shortest Ethernet payload + header; shorter frames are padded (NICs may not do it). */
const ETH_MIN_FRAME = 60;

export function parseMac(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) {
    throw new Error(`invalid MAC address ${JSON.stringify(mac)}`);
  }
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

function ethernet(destination: Buffer, source: Buffer, ethertype: number, payload: Buffer): Buffer {
  const frame = Buffer.alloc(Math.max(ETH_MIN_FRAME, ETH_HEADER + payload.length));
  destination.copy(frame, 0);
  source.copy(frame, 6);
  frame.writeUInt16BE(ethertype, 12);
  payload.copy(frame, ETH_HEADER);
  return frame;
}

/** Gratuitous ARP for `ip` (4 bytes) from `mac` (6 bytes). */
export function gratuitousArp(mac: Buffer, ip: Buffer): Buffer {
  if (mac.length !== 6 || ip.length !== 4) throw new Error('gratuitous ARP needs a 6-byte MAC and a 4-byte IPv4 address');
  const arp = Buffer.alloc(28);
  arp.writeUInt16BE(1, 0); // hardware type: Ethernet
  arp.writeUInt16BE(0x0800, 2); // protocol type: IPv4
  arp.writeUInt8(6, 4);
  arp.writeUInt8(4, 5);
  arp.writeUInt16BE(1, 6); // operation: request
  mac.copy(arp, 8); // sender hardware address
  ip.copy(arp, 14); // sender protocol address
  Buffer.alloc(6, 0xff).copy(arp, 18); // target hardware address, as arping -U sends it
  ip.copy(arp, 24); // target protocol address
  return ethernet(Buffer.alloc(6, 0xff), mac, ETHERTYPE_ARP, arp);
}

const ALL_NODES = Buffer.from('ff020000000000000000000000000001', 'hex');
const ALL_NODES_MAC = Buffer.from('333300000001', 'hex');

/**
 * Unsolicited NA for `target` (16 bytes) from `mac`. The IPv6 source defaults to the
 * target itself: it is an address of the sending interface (RFC 4861 §7.2.4), so no
 * link-local is needed, and Linux neighbours accept it.
 */
export function unsolicitedNeighborAdvertisement(mac: Buffer, target: Buffer, source: Buffer = target): Buffer {
  if (mac.length !== 6 || target.length !== 16 || source.length !== 16) {
    throw new Error('a Neighbor Advertisement needs a 6-byte MAC and 16-byte IPv6 addresses');
  }
  const icmp = Buffer.alloc(32);
  icmp.writeUInt8(136, 0); // type: Neighbor Advertisement
  icmp.writeUInt8(0, 1); // code
  icmp.writeUInt32BE(0x20000000, 4); // flags: Override only (not Router, not Solicited)
  target.copy(icmp, 8);
  icmp.writeUInt8(2, 24); // option: Target Link-Layer Address
  icmp.writeUInt8(1, 25); // option length in units of 8 bytes
  mac.copy(icmp, 26);
  icmp.writeUInt16BE(icmpv6Checksum(source, ALL_NODES, icmp), 2);

  const ipv6 = Buffer.alloc(40 + icmp.length);
  ipv6.writeUInt32BE(0x60000000, 0); // version 6, traffic class 0, flow label 0
  ipv6.writeUInt16BE(icmp.length, 4); // payload length
  ipv6.writeUInt8(58, 6); // next header: ICMPv6
  ipv6.writeUInt8(255, 7); // hop limit: neighbours drop anything else
  source.copy(ipv6, 8);
  ALL_NODES.copy(ipv6, 24);
  icmp.copy(ipv6, 40);
  return ethernet(ALL_NODES_MAC, mac, ETHERTYPE_IPV6, ipv6);
}

/** RFC 4443 §2.3: one's complement sum over the IPv6 pseudo-header and the message. */
export function icmpv6Checksum(source: Buffer, destination: Buffer, message: Buffer): number {
  const pseudo = Buffer.alloc(40);
  source.copy(pseudo, 0);
  destination.copy(pseudo, 16);
  pseudo.writeUInt32BE(message.length, 32);
  pseudo.writeUInt8(58, 39);
  let sum = 0;
  for (const part of [pseudo, message]) {
    for (let i = 0; i < part.length; i += 2) sum += (part[i] ?? 0) * 256 + (part[i + 1] ?? 0);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
