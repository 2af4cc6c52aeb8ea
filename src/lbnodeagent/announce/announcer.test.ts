// The announcer's burst logic without a kernel: a fake link lookup and a fake frame
// sender. Frames on a real link are in announcer.kernel.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LBNODEAGENT_DEFAULTS } from '../../api/normalize.ts';
import { Announcer } from './announcer.ts';

const link = { name: 'eth0', index: 7, kind: undefined, hardwareType: 'ETHER', mac: '02:00:00:00:00:01', up: true, lowerUp: true };

function announcer(): { a: Announcer; sent: number[] } {
  const sent: number[] = [];
  const a = new Announcer({ findLink: async (name) => (name === 'eth0' ? link : undefined), send: (ifindex, frames) => (sent.push(ifindex), frames.length) });
  return { a, sent };
}

test('verifyBeforeSend: the burst stops at the first frame whose check says the address is gone', async () => {
  const { a, sent } = announcer();
  let checks = 0;
  const result = await a.announce('eth0', '198.51.100.10', { count: 5, intervalMs: 1, initialDelayMs: 0, verify: async () => ++checks <= 2 });
  assert.deepEqual([result.sent, result.aborted, checks, sent.length], [2, true, 3, 2]);
});

test('without verify every frame of the burst leaves, on the link looked up', async () => {
  const { a, sent } = announcer();
  const result = await a.announce('eth0', '2001:db8::10', { count: 3, intervalMs: 1, initialDelayMs: 0 });
  assert.deepEqual([result.protocol, result.sent, result.aborted], ['ndp', 3, false]);
  assert.deepEqual(sent, [7, 7, 7]);
});

test('unset options are the LBNodeAgent defaults', async () => {
  const { a, sent } = announcer();
  const result = await a.announce('eth0', '198.51.100.11', { intervalMs: 1 });
  assert.equal(result.sent, LBNODEAGENT_DEFAULTS.garp.count);
  assert.equal(sent.length, LBNODEAGENT_DEFAULTS.garp.count);
});
