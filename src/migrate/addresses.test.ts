import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatSpan } from '../ipam/range.ts';
import { enclosingCidr, parseEntry, pieceOf, withoutBuggyAddresses } from './addresses.ts';
import type { AddressEntry } from './addresses.ts';

function entry(text: string): AddressEntry {
  const parsed = parseEntry(text, 'spec.addresses[0]');
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.message);
  return parsed.value;
}

const entries: Array<[string, string, string, string | undefined]> = [
  ['a range', '10.1.3.220-10.1.3.224', '10.1.3.220-10.1.3.224', undefined],
  ['a range with blanks, as MetalLB trims them', '192.168.1.240 - 192.168.1.250', '192.168.1.240-192.168.1.250', undefined],
  ['a CIDR', '192.168.144.0/20', '192.168.144.0-192.168.159.255', undefined],
  ['a CIDR with host bits: the whole network, as net.ParseCIDR reads it', '192.168.1.245/29', '192.168.1.240-192.168.1.247', '192.168.1.240/29'],
  ['one address (OpenELB)', '192.168.0.100', '192.168.0.100-192.168.0.100', undefined],
  ['IPv6 with leading zeros in a group', 'fc00:f853:0ccd:e799::/124', 'fc00:f853:ccd:e799::-fc00:f853:ccd:e799::f', undefined],
];
for (const [name, text, span, hostBits] of entries) {
  test(`address entry: ${name}`, () => {
    const e = entry(text);
    assert.equal(formatSpan(e.span), span);
    assert.equal(e.hostBits, hostBits);
  });
}

const bad: Array<[string, RegExp]> = [
  ['10.0.0.300', /not a range A-B, a CIDR or an address/],
  ['10.0.0.9-10.0.0.1', /the start lies after the end/],
  ['10.0.0.1-2001:db8::1', /mixes IPv4 and IPv6/],
  ['10.0.0.1-10.0.0.2-10.0.0.3', /not a range/],
  ['10.0.0.0/33', /not a range A-B, a CIDR or an address/],
  ['::ffff:10.0.0.1', /not a range A-B, a CIDR or an address/],
  ['10.0.0.1-banana', /"banana" is not an IP address/],
];
for (const [text, message] of bad) {
  test(`address entry refused: ${text}`, () => {
    const parsed = parseEntry(text, 'f');
    assert.equal(parsed.ok, false);
    assert.match(parsed.ok ? '' : parsed.message, message);
  });
}

test('the subnet of a pool object is the smallest CIDR around it', () => {
  assert.equal(enclosingCidr(entry('10.1.3.220-10.1.3.224').span), '10.1.3.192/26');
  assert.equal(enclosingCidr(entry('192.168.144.0/20').span), '192.168.144.0/20');
  assert.equal(enclosingCidr(entry('192.168.0.100').span), '192.168.0.100/32');
  assert.equal(enclosingCidr(entry('10.0.0.255-10.0.1.0').span), '10.0.0.0/23');
  assert.equal(enclosingCidr(entry('2001:db8::1-2001:db8::2').span), '2001:db8::/126');
});

test('avoid-buggy-ips cuts the addresses ending in .0 and .255 out, /24 by /24', () => {
  const runs = (text: string, limit = 32) => withoutBuggyAddresses(entry(text).span, limit)?.map(formatSpan);
  assert.deepEqual(runs('10.0.0.0/23'), ['10.0.0.1-10.0.0.254', '10.0.1.1-10.0.1.254']);
  assert.deepEqual(runs('10.0.0.250-10.0.1.5'), ['10.0.0.250-10.0.0.254', '10.0.1.1-10.0.1.5']);
  assert.deepEqual(runs('10.1.3.220-10.1.3.224'), ['10.1.3.220-10.1.3.224']);
  assert.deepEqual(runs('10.0.0.255-10.0.1.0'), []);
  assert.deepEqual(runs('2001:db8::/120'), ['2001:db8::-2001:db8::ff']);
  assert.equal(runs('10.0.0.0/16'), undefined, 'more runs than the limit');
  assert.deepEqual(runs('10.0.0.0/22', 4)?.length, 4);
  assert.equal(runs('10.0.0.0/21', 4), undefined);
});

test('a pool object keeps the form it was written in while nothing is cut out of it', () => {
  const cidr = entry('192.168.144.0/20');
  assert.equal(pieceOf(cidr, cidr.span).pool, '192.168.144.0/20');
  const single = entry('192.168.0.100');
  assert.equal(pieceOf(single, single.span).pool, '192.168.0.100/32');
  const range = entry('10.0.0.0-10.0.0.255');
  assert.equal(pieceOf(range, range.span).pool, '10.0.0.0-10.0.0.255');
  const [firstRun] = withoutBuggyAddresses(cidr.span, 32)!;
  assert.deepEqual(pieceOf(cidr, firstRun!), { pool: '192.168.144.1-192.168.144.254', subnet: '192.168.144.0/24', family: 'IPv4', field: 'spec.addresses[0]' });
});
