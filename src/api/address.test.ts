import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatAddress } from '../ipam/address.ts';
import { admittedAddress, admittedCidr, admittedPool, poolFamily, poolInside } from './address.ts';

describe('what admission accepts', () => {
  it('refuses IPv4-mapped IPv6 like Kubernetes isIP and isCIDR', () => {
    assert.equal(admittedAddress('::ffff:192.0.2.1'), undefined);
    assert.equal(admittedAddress('::ffff:c000:201'), undefined);
    assert.equal(admittedCidr('::ffff:192.0.2.0/120'), undefined);
    assert.ok(admittedAddress('64:ff9b::192.0.2.1'));
    assert.ok(admittedCidr('64:ff9b::/96'));
  });

  it('reads pools as PureLB does, IPv6 range ends in hex only', () => {
    assert.deepEqual(admittedPool('192.0.2.1 - 192.0.2.9')?.kind, 'range');
    assert.deepEqual(admittedPool('192.168.1.245/29')?.kind, 'cidr');
    assert.equal(admittedPool('64:ff9b::192.0.2.1-64:ff9b::192.0.2.9'), undefined);
    assert.equal(admittedPool('192.0.2.1-192.0.2.5-192.0.2.9'), undefined);
    assert.equal(admittedPool('192.0.2.1'), undefined);
    assert.equal(poolFamily(admittedPool('192.0.2.1-2001:db8::1')!), undefined);
  });

  it('puts a host-bits CIDR inside a subnet only when the whole CIDR is inside', () => {
    const subnet = admittedCidr('192.168.1.240/28')!;
    assert.ok(poolInside(admittedPool('192.168.1.245/29')!, subnet));
    assert.ok(!poolInside(admittedPool('192.168.1.250/24')!, subnet));
  });

  it('a range of two addresses of a subnet lies inside it, one more address past its end does not', () => {
    const v6 = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n });
    fc.assert(
      fc.property(v6, fc.integer({ min: 1, max: 127 }), fc.bigInt({ min: 0n, max: (1n << 127n) - 1n }), (base, prefix, offset) => {
        const size = 1n << BigInt(128 - prefix);
        const first = base - (base % size);
        const a = first + (offset % size);
        const subnet = admittedCidr(`${formatAddress('IPv6', first)}/${prefix}`)!;
        const inside = admittedPool(`${formatAddress('IPv6', first)}-${formatAddress('IPv6', a)}`)!;
        assert.ok(poolInside(inside, subnet));
        const past = first + size;
        if (past < 1n << 128n) assert.ok(!poolInside(admittedPool(`${formatAddress('IPv6', a)}-${formatAddress('IPv6', past)}`)!, subnet));
      }),
      { numRuns: 300, seed: 4858 },
    );
  });
});
