// The agent on Linux 5.10 (the kernel drops IFA_PROTO, so it keeps the ownership
// record) against the lab's API server, and the same on the host kernel with the
// marker: VIPs come and go with their Services, an address equal to a VIP that was
// added by hand is reported and left alone through the Service's life and the agent's
// stop, and the stop (SIGTERM) leaves none of ours. Then two agents inside 5.10 on one
// subnet: a layer-2 VIP moved by election leaves the node that lost it. The guest boots
// under QEMU (scripts/old-kernel.sh); if it cannot, the test fails.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GUEST_PAIR, withOldKernelLab } from './old-kernel-kit.ts';
import type { VipTrialsResult } from './vip-trials.ts';

const TRIALS = 3;
const ELECTION_SERVICES = 6;

function assertSafe(r: VipTrialsResult, kernel: string): void {
  assert.equal(r.createToVipMs.length, TRIALS, `${kernel}: every VIP reached the kernel`);
  assert.equal(r.deleteToWithdrawnMs.length, TRIALS, `${kernel}: every VIP was withdrawn`);
  const s = r.safety;
  assert.ok(s, `${kernel}: the safety checks ran`);
  assert.equal(s.vip, s.handAdded, `${kernel}: the Service got the address added by hand`);
  assert.ok(s.reportedNotOurs, `${kernel}: the agent reported ${s.handAdded} as not ours`);
  assert.ok(s.presentAfterServiceDeleted, `${kernel}: the hand-added address outlived its Service`);
  assert.ok(s.presentAfterAgentStopped, `${kernel}: the hand-added address outlived the agent's stop`);
  assert.deepEqual(r.poolAddressesAfterStop, [], `${kernel}: the agent's stop left none of ours`);
}

// Two guest boots under software emulation: 300 s and more each on a loaded machine
// (675 s in all once here), past npm test's default bound of 900 s per test if CI is slower.
test('the agent on the host kernel and on Linux 5.10, against the lab', { timeout: 1_800_000 }, async (t) => {
  await withOldKernelLab(async (lab) => {
    await t.test('host kernel, marker: VIPs follow their Services, a hand-added address equal to a VIP is left alone', () => {
      const r = lab.onHost({ trials: TRIALS, safety: true });
      assert.equal(r.ownership, 'marker');
      assertSafe(r, r.kernel);
    });
    await t.test('Linux 5.10, ownership record: the same', () => {
      const r = lab.inGuest({ trials: TRIALS, safety: true });
      assert.match(r.kernel, /^5\.10\./);
      assert.equal(r.ownership, 'record');
      assertSafe(r, r.kernel);
    });
    await t.test('Linux 5.10, two agents on one subnet: the VIPs the joining node wins leave the other, none is left after the delete', () => {
      const r = lab.electionInGuest(ELECTION_SERVICES);
      assert.match(r.kernel, /^5\.10\./);
      const [a, b] = GUEST_PAIR.map((n) => n.name) as [string, string];
      assert.deepEqual(r.ownership, { [a]: 'record', [b]: 'record' });
      assert.equal(r.vips.length, ELECTION_SERVICES);
      assert.ok(r.expectedMoves.length > 0, `the second node wins some of ${r.vips.join(', ')}`);
      const logs = `\nthe agents' last log lines:\n${(r.log ?? []).join('\n')}`;
      assert.deepEqual(r.settled[b], r.expectedMoves, `the joining node holds what it wins${logs}`);
      assert.deepEqual(r.settled[a], r.vips.filter((ip) => !r.expectedMoves.includes(ip)), `the VIPs it lost left the first node${logs}`);
      assert.deepEqual(r.afterDelete, { [a]: [], [b]: [] }, `no address left after the Services went${logs}`);
    });
  });
});
