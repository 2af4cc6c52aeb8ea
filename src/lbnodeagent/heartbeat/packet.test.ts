import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HeartbeatWriter, ReplayFilter, decodeHeartbeat, encodeHeartbeat } from './packet.ts';
import type { Heartbeat } from './packet.ts';

const key = Buffer.alloc(32, 7);
const hb = (over: Partial<Heartbeat> = {}): Heartbeat => ({
  type: 'alive',
  node: 'plb-node1',
  incarnation: 1000n,
  seq: 1n,
  sentAt: BigInt(Date.now()),
  hearsYou: true,
  quorate: true,
  ...over,
});

test('round trip keeps every field', () => {
  fc.assert(
    fc.property(
      fc.record({
        type: fc.constantFrom<Heartbeat['type']>('alive', 'leaving'),
        node: fc.string({ minLength: 1, maxLength: 60 }),
        incarnation: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        seq: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        sentAt: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        hearsYou: fc.boolean(),
        quorate: fc.boolean(),
        answer: fc.boolean(),
      }),
      (h) => {
        const d = decodeHeartbeat(encodeHeartbeat(h, key), key);
        assert.ok(d.ok);
        assert.deepEqual(d.heartbeat, { ...h });
      },
    ),
  );
});

test('a packet with a wrong key, or any flipped bit, is rejected as forged or malformed', () => {
  const packet = encodeHeartbeat(hb(), key);
  const other = decodeHeartbeat(packet, Buffer.alloc(32, 8));
  assert.deepEqual(other, { ok: false, reason: 'forged' });
  fc.assert(
    fc.property(fc.nat(packet.length * 8 - 1), (bit) => {
      const copy = Buffer.from(packet);
      copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7));
      assert.equal(decodeHeartbeat(copy, key).ok, false);
    }),
  );
  assert.equal(decodeHeartbeat(Buffer.from('hello'), key).ok, false);
});

test('replays are refused: same or older sequence, older incarnation, or outside the time window', () => {
  const now = Date.now();
  const f = new ReplayFilter(30_000);
  assert.equal(f.accept(hb({ seq: 5n, sentAt: BigInt(now) }), now), true);
  assert.equal(f.accept(hb({ seq: 5n, sentAt: BigInt(now) }), now), false, 'same packet twice');
  assert.equal(f.accept(hb({ seq: 4n, sentAt: BigInt(now) }), now), false, 'older sequence');
  assert.equal(f.accept(hb({ seq: 6n, sentAt: BigInt(now) }), now), true);
  assert.equal(f.accept(hb({ incarnation: 999n, seq: 100n, sentAt: BigInt(now) }), now), false, 'older incarnation');
  assert.equal(f.accept(hb({ incarnation: 1001n, seq: 1n, sentAt: BigInt(now) }), now), true, 'a restarted sender starts over');
  const fresh = new ReplayFilter(30_000);
  assert.equal(fresh.accept(hb({ sentAt: BigInt(now - 60_000) }), now), false, 'a captured packet older than the window');
});

test('a writer rewrites one buffer per destination into the same bytes encodeHeartbeat makes', () => {
  const writer = new HeartbeatWriter('plb-node1', 1000n, key);
  const packet = writer.allocate();
  for (const [seq, sentAt] of [
    [1, 1_700_000_000_000],
    [2 ** 32 + 5, 1_700_000_000_100],
  ] as const) {
    writer.write(packet, 'alive', false, true, seq, sentAt);
    assert.deepEqual(packet, encodeHeartbeat(hb({ seq: BigInt(seq), sentAt: BigInt(sentAt), hearsYou: false }), key));
    const d = decodeHeartbeat(packet, key);
    assert.ok(d.ok);
    assert.equal(d.heartbeat.seq, BigInt(seq));
  }
});
