// The takeover from a real MetalLB (issue #13), in both orders, with the client's outage
// measured per VIP (e2e/allocator/takeover-kit.ts says how). Figures go out as
// diagnostics; the bench suite `takeover` repeats them.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cleanUp, setUpTakeoverLab, takeover } from './takeover-kit.ts';

before(async () => {
  await setUpTakeoverLab();
});

after(async () => {
  await cleanUp();
});

test("MetalLB → purelb-ts, the doc's order (speakers removed, then agents): every address kept, the outage measured", { timeout: 240_000 }, async (t) => {
  const o = await takeover('speakers first', (l) => t.diagnostic(l));
  // The warm client never loses its path: the node it knows forwards throughout.
  assert.ok(Math.max(...o.warm) < 1000, `warm gaps ${o.warm.join(', ')} ms`);
});

test('MetalLB → purelb-ts, agents started before the speakers are removed: every address kept, the outage measured', { timeout: 240_000 }, async (t) => {
  const o = await takeover('agents first', (l) => t.diagnostic(l));
  // Someone announces every address at every moment: only an ARP resolution's time is lost.
  assert.ok(Math.max(...o.cold, ...o.warm) < 1000, `gaps ${[...o.cold, ...o.warm].join(', ')} ms`);
});
