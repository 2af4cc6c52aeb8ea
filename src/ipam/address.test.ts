import assert from 'node:assert/strict';
import { isIPv4, isIPv6 } from 'node:net';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatAddress, parseAddress, parseCidr } from './address.ts';

// The WHATWG URL parser is an independent IPv6 parser and RFC 5952 serializer.
function urlCanonical(text: string): string | undefined {
  try {
    return new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}

describe('parseAddress and formatAddress', () => {
  const table: readonly [string, string | undefined][] = [
    ['10.31.188.64', '10.31.188.64'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['256.0.0.1', undefined],
    ['010.0.0.1', undefined],
    ['10.1', undefined],
    ['10.0.0.1 ', undefined],
    ['::', '::'],
    ['::1', '::1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8::1:0', '2001:db8::1:0'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['::192.0.2.1', '::c000:201'],
    ['fe80::1%eth0', undefined],
    ['1::2::3', undefined],
    [':::', undefined],
    ['1:2:3:4:5:6:7:8:9', undefined],
    ['1:2:3:4:5:6:7:8::', undefined],
    ['12345::', undefined],
    ['::1.2.3', undefined],
    ['1.2.3.4::', undefined],
    ['', undefined],
  ];
  for (const [text, canonical] of table) {
    test(`${JSON.stringify(text)} → ${canonical ?? 'invalid'}`, () => {
      const address = parseAddress(text);
      assert.equal(address === undefined ? undefined : formatAddress(address.family, address.value), canonical);
    });
  }

  test('IPv6 agrees with the URL parser on valid and invalid text', () => {
    const hextet = fc.oneof(fc.constant('0'), fc.nat(0xffff).map((n) => n.toString(16)), fc.constant('00ff'));
    const text = fc.oneof(
      fc.array(hextet, { minLength: 8, maxLength: 8 }).map((h) => h.join(':')),
      fc
        .tuple(fc.array(hextet, { maxLength: 8 }), fc.array(hextet, { maxLength: 8 }))
        .map(([a, b]) => `${a.join(':')}::${b.join(':')}`),
      fc.stringMatching(/^[0-9a-f:.]{0,30}$/),
    );
    fc.assert(
      fc.property(text, (t) => {
        const address = parseAddress(t);
        const expected = isIPv6(t) ? urlCanonical(t) : undefined;
        const got = address?.family === 'IPv6' ? formatAddress('IPv6', address.value) : undefined;
        assert.equal(got, expected, t);
      }),
      { numRuns: 2000 },
    );
  });

  test('IPv4 agrees with node:net', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9.]{0,16}$/), (t) => {
        // node:net accepts leading zeros; we refuse them (is 010 octal?).
        const expected = isIPv4(t) && !/(^|\.)0\d/.test(t);
        assert.equal(parseAddress(t)?.family === 'IPv4', expected, t);
      }),
      { numRuns: 2000 },
    );
  });

  test('format then parse is the identity for every value', () => {
    fc.assert(
      fc.property(fc.bigInt(0n, 2n ** 128n - 1n), (v) => {
        assert.equal(parseAddress(formatAddress('IPv6', v))?.value, v);
        const v4 = v % 2n ** 32n;
        assert.equal(parseAddress(formatAddress('IPv4', v4))?.value, v4);
      }),
    );
  });
});

describe('parseCidr', () => {
  test('keeps the written address and bounds the network', () => {
    assert.deepEqual(parseCidr('192.168.1.245/29'), {
      family: 'IPv4',
      address: 0xc0a801f5n,
      prefix: 29,
      first: 0xc0a801f0n,
      last: 0xc0a801f7n,
    });
  });
  test('handles /0 and /128', () => {
    const all = parseCidr('::/0');
    assert.ok(typeof all !== 'string');
    assert.equal(all.last, 2n ** 128n - 1n);
    const one = parseCidr('2001:db8::5/128');
    assert.ok(typeof one !== 'string');
    assert.equal(one.first, one.last);
  });
  for (const bad of ['10.0.0.0', '10.0.0.0/', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/+8', '::/129', 'x/8', '10.0.0.0/8/8']) {
    test(`refuses ${bad}`, () => assert.equal(typeof parseCidr(bad), 'string'));
  }
});
