import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ranking, winner } from './winner.ts';

const nodes = ['test-node0', 'test-node1', 'test-node2'];

test("PureLB's published vectors", () => {
  assert.equal(winner(nodes, 'test-key'), 'test-node0');
  assert.equal(winner(nodes, 'test-key-nodeXX'), 'test-node1');
  assert.equal(winner(nodes, 'test-key-foo'), 'test-node2');
});

test('no candidates, no winner', () => {
  assert.equal(winner([], '198.51.100.64'), undefined);
});

test('the winner does not depend on the order in which members are listed', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 8 }), fc.string(), (members, key) => {
      const reversed = [...members].reverse();
      assert.equal(winner(members, key), winner(reversed, key));
      assert.equal(ranking(members, key)[0], winner(members, key));
    }),
  );
});

test('removing a loser never moves the address; removing the winner moves it to the runner-up', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 2, maxLength: 8 }), fc.string(), fc.nat(), (members, key, pick) => {
      const order = ranking(members, key);
      const gone = members[pick % members.length] as string;
      const rest = members.filter((m) => m !== gone);
      const expected = gone === order[0] ? order[1] : order[0];
      assert.equal(winner(rest, key), expected);
    }),
  );
});

test('addresses spread over nodes', () => {
  const counts = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const w = winner(nodes, `198.51.${i >> 8}.${i & 255}`) as string;
    counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  for (const n of nodes) assert.ok((counts.get(n) ?? 0) > 800, `${n} won only ${counts.get(n)} of 3000`);
});
