import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import {
  IFA_F_NODAD,
  containsIp,
  decodeAddress,
  decodeInetConf,
  decodeLinkInfoKind,
  decodeMessages,
  encodeAddress,
  encodeLinkByName,
  forEachAttribute,
  formatIp,
  parseIp,
} from './messages.ts';
import { kernelKeepsAddressProtocol } from './rtnetlink.ts';

test('parseIp is strict and canonical', () => {
  assert.deepEqual(parseIp('2001:DB8:0:0::1').ip, '2001:db8::1');
  assert.equal(parseIp('192.0.2.1').family, 'IPv4');
  for (const bad of ['192.0.2', '192.0.2.256', '0xc0.0.2.1', '10.1', 'fe80::1%eth0', '', 'a::b::c']) {
    assert.throws(() => parseIp(bad), /invalid IP address/, bad);
  }
});

test('formatIp writes what ipaddr.js writes, for any bytes and for zero runs in any place', () => {
  const reference = (b: Buffer): string => {
    const ip = ipaddr.fromByteArray([...b]);
    return ip.kind() === 'ipv6' ? (ip as ipaddr.IPv6).toRFC5952String() : ip.toString();
  };
  // Groups drawn mostly from 0 so that runs of zeros of every length and position occur.
  const group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
  const v6 = fc.array(group, { minLength: 8, maxLength: 8 }).map((gs) => {
    const b = Buffer.alloc(16);
    gs.forEach((g, i) => b.writeUInt16BE(g, i * 2));
    return b;
  });
  const v4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((a) => Buffer.from(a));
  fc.assert(fc.property(fc.oneof(v6, v4), (b) => formatIp(b) === reference(b)), { numRuns: 5000 });
  for (const text of ['::', '::1', '1::', '2001:db8::', '::ffff:c000:201', '2001:db8:0:1:0:0:1:1', '0:0:1:0:0:1:0:0']) {
    assert.equal(formatIp(parseIp(text).bytes), parseIp(text).ip, text);
  }
  assert.throws(() => formatIp(Buffer.alloc(5)), /4 or 16 bytes/);
});

test('an address request decodes back to what was asked, IFA_PROTO and lifetimes included', () => {
  const data = encodeAddress({
    ifindex: 7,
    ip: '2001:db8::5',
    prefix: 64,
    flags: IFA_F_NODAD,
    protocol: 0x50,
    lifetimes: { validSec: 30, preferredSec: 20 },
  });
  assert.deepEqual(decodeAddress(data), {
    family: 'IPv6',
    ifindex: 7,
    ip: '2001:db8::5',
    prefix: 64,
    scope: 0,
    flags: IFA_F_NODAD,
    protocol: 0x50,
    validLifetime: 30,
    preferredLifetime: 20,
    created: 0, // a request's cacheinfo carries no creation stamp
  });
  const plain = decodeAddress(encodeAddress({ ifindex: 1, ip: '192.0.2.9', prefix: 32 }));
  assert.equal(plain?.protocol, 0);
  assert.equal(plain?.validLifetime, undefined);
  assert.equal(plain?.created, undefined);
});

test('bad requests name the offending value', () => {
  assert.throws(() => encodeAddress({ ifindex: 1, ip: '192.0.2.1', prefix: 33 }), /prefix length 33 for 192\.0\.2\.1/);
  assert.throws(() => encodeAddress({ ifindex: 0, ip: '192.0.2.1', prefix: 32 }), /interface index 0/);
  assert.throws(
    () => encodeAddress({ ifindex: 1, ip: '192.0.2.1', prefix: 32, lifetimes: { validSec: 10, preferredSec: 11 } }),
    /preferred lifetime 11/,
  );
  assert.throws(() => encodeAddress({ ifindex: 1, ip: '192.0.2.1', prefix: 32, lifetimes: { validSec: 0, preferredSec: 0 } }), /valid lifetime 0/);
});

test('datagrams split into messages; truncated tails are ignored', () => {
  const message = (type: number, payload: Buffer): Buffer => {
    const header = Buffer.alloc(16);
    header.writeUInt32LE(16 + payload.length, 0);
    header.writeUInt16LE(type, 4);
    return Buffer.concat([header, payload, Buffer.alloc((4 - (payload.length % 4)) % 4)]);
  };
  const a = encodeAddress({ ifindex: 3, ip: '192.0.2.1', prefix: 32 });
  const datagram = Buffer.concat([message(20, a), message(21, a), Buffer.from([1, 2, 3])]);
  assert.deepEqual(decodeMessages(datagram).map((m) => [m.type, decodeAddress(m.data)?.ip]), [
    [20, '192.0.2.1'],
    [21, '192.0.2.1'],
  ]);
});

test('link kind and IPv4 devconf are read from their nested attributes', () => {
  const request = encodeLinkByName('kube-lb0', 'dummy');
  const attributes = new Map<number, Buffer>();
  forEachAttribute(request, 16, (type, value) => attributes.set(type, value)); // after struct ifinfomsg
  assert.equal(attributes.get(3)?.toString('latin1'), 'kube-lb0\0'); // IFLA_IFNAME
  assert.equal(decodeLinkInfoKind(attributes.get(18)), 'dummy'); // IFLA_LINKINFO
  const conf = Buffer.alloc(4 + 4 * 32);
  conf.writeUInt16LE(conf.length, 0);
  conf.writeUInt16LE(1, 2); // IFLA_INET_CONF: u32 array, devconf n at n-1
  conf.writeUInt32LE(1, 4 + 19 * 4);
  assert.equal(decodeInetConf(conf, 20), 1);
  assert.equal(decodeInetConf(conf, 19), 0);
});

test('containsIp compares the network bits only', () => {
  assert.ok(containsIp('198.51.100.2', 24, '198.51.100.250'));
  assert.ok(!containsIp('198.51.100.2', 25, '198.51.100.250'));
  assert.ok(containsIp('2001:db8:100::2', 64, '2001:db8:100::ffff'));
  assert.ok(!containsIp('2001:db8:100::2', 64, '2001:db8:101::1'));
  assert.ok(!containsIp('198.51.100.2', 0, '2001:db8::1'));
  assert.ok(containsIp('198.51.100.2', 0, '203.0.113.1'));
});

test('by its version, a kernel keeps IFA_PROTO from Linux 5.18 on (the fallback when the probe cannot run)', () => {
  assert.ok(kernelKeepsAddressProtocol('6.18.44-fc-v669'));
  assert.ok(kernelKeepsAddressProtocol('6.1.0-18-amd64'));
  assert.ok(kernelKeepsAddressProtocol('5.18.0'));
  assert.ok(kernelKeepsAddressProtocol('7.0.1'));
  assert.ok(!kernelKeepsAddressProtocol('5.17.15'));
  assert.ok(!kernelKeepsAddressProtocol('5.15.0-91-generic'));
  assert.ok(!kernelKeepsAddressProtocol('5.10.0-32-amd64'));
  assert.ok(!kernelKeepsAddressProtocol('4.18.0-553.el8_10.x86_64'));
  assert.ok(!kernelKeepsAddressProtocol('garbage'));
});
