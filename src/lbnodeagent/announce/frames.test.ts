import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gratuitousArp, icmpv6Checksum, parseMac, unsolicitedNeighborAdvertisement } from './frames.ts';
import { parseIp } from '../../netlink/messages.ts';

const mac = parseMac('02:11:22:33:44:55');

test('gratuitous ARP: broadcast request with sender IP = target IP = VIP, padded to 60 bytes', () => {
  const vip = parseIp('198.51.100.100').bytes;
  const f = gratuitousArp(mac, vip);
  assert.equal(f.length, 60);
  assert.equal(f.subarray(0, 6).toString('hex'), 'ffffffffffff');
  assert.equal(f.subarray(6, 12).toString('hex'), '021122334455');
  assert.equal(f.readUInt16BE(12), 0x0806);
  assert.equal(f.subarray(14, 22).toString('hex'), '0001080006040001'); // Ethernet/IPv4, request
  assert.equal(f.subarray(22, 28).toString('hex'), '021122334455'); // sender MAC
  assert.deepEqual(f.subarray(28, 32), vip); // sender IP
  assert.equal(f.subarray(32, 38).toString('hex'), 'ffffffffffff'); // target MAC, as arping -U
  assert.deepEqual(f.subarray(38, 42), vip); // target IP
  assert.ok(f.subarray(42).every((b) => b === 0));
});

test('unsolicited NA: all-nodes, hop limit 255, override only, target and TLLA option, valid checksum', () => {
  const vip = parseIp('2001:db8::100').bytes;
  const f = unsolicitedNeighborAdvertisement(mac, vip);
  assert.equal(f.length, 14 + 40 + 32);
  assert.equal(f.subarray(0, 6).toString('hex'), '333300000001');
  assert.equal(f.readUInt16BE(12), 0x86dd);
  const ip6 = f.subarray(14);
  assert.equal(ip6.readUInt16BE(4), 32); // payload length
  assert.equal(ip6[6], 58); // ICMPv6
  assert.equal(ip6[7], 255); // hop limit
  assert.deepEqual(ip6.subarray(8, 24), vip); // source: the VIP itself
  assert.equal(ip6.subarray(24, 40).toString('hex'), 'ff020000000000000000000000000001');
  const icmp = ip6.subarray(40);
  assert.equal(icmp[0], 136);
  assert.equal(icmp.readUInt32BE(4), 0x20000000); // O=1, R=0, S=0
  assert.deepEqual(icmp.subarray(8, 24), vip);
  assert.equal(icmp.subarray(24, 32).toString('hex'), '0201021122334455');
  // Summing a message that carries its checksum gives zero (RFC 4443 §2.3).
  assert.equal(icmpv6Checksum(ip6.subarray(8, 24), ip6.subarray(24, 40), icmp), 0);
});

test('a separate IPv6 source (e.g. the link-local) is honoured and checksummed', () => {
  const vip = parseIp('2001:db8::100').bytes;
  const ll = parseIp('fe80::11:22ff:fe33:4455').bytes;
  const ip6 = unsolicitedNeighborAdvertisement(mac, vip, ll).subarray(14);
  assert.deepEqual(ip6.subarray(8, 24), ll);
  assert.equal(icmpv6Checksum(ll, ip6.subarray(24, 40), ip6.subarray(40)), 0);
});

test('malformed MACs and address sizes are refused', () => {
  for (const bad of ['', '02:11:22:33:44', '02:11:22:33:44:5g', '0211.2233.4455']) {
    assert.throws(() => parseMac(bad), /invalid MAC/);
  }
  assert.throws(() => gratuitousArp(mac, Buffer.alloc(16)), /4-byte IPv4/);
  assert.throws(() => unsolicitedNeighborAdvertisement(mac, Buffer.alloc(4)), /16-byte IPv6/);
});
