import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkQueue, success } from './workqueue.ts';
import type { SyncResult } from './workqueue.ts';

async function drain(q: WorkQueue, limitMs = 2000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!q.idle() && Date.now() < deadline) await sleep(5);
  assert.ok(q.idle(), 'queue did not drain in time');
}

test('a key added many times before processing is handled once', async () => {
  const q = new WorkQueue();
  const seen: string[] = [];
  for (let i = 0; i < 5; i++) q.add('ns/a');
  q.add('ns/b');
  const running = q.run(async (k) => (seen.push(k), success));
  await drain(q);
  q.stop();
  await running;
  assert.deepEqual(seen, ['ns/a', 'ns/b']);
});

test('a key changed while being processed is processed again, never concurrently', async () => {
  const q = new WorkQueue();
  let inFlight = 0;
  let maxInFlight = 0;
  let calls = 0;
  const running = q.run(async () => {
    calls++;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    if (calls === 1) q.add('k');
    await sleep(10);
    inFlight--;
    return success;
  });
  q.add('k');
  await drain(q);
  q.stop();
  await running;
  assert.equal(calls, 2);
  assert.equal(maxInFlight, 1);
});

test('failures retry with growing backoff, success forgets the count', async () => {
  const q = new WorkQueue({ backoff: { baseMs: 10, maxMs: 1000 } });
  const times: number[] = [];
  const running = q.run(async (): Promise<SyncResult> => {
    times.push(Date.now());
    return times.length < 4 ? { kind: 'error', err: new Error('boom') } : success;
  });
  q.add('k');
  await drain(q, 3000);
  q.stop();
  await running;
  assert.equal(times.length, 4);
  assert.equal(q.failureCount('k'), 0);
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  // Jittered delays lie in [ceiling/2, ceiling] with ceilings 10, 20, 40 ms.
  assert.ok(gaps[2]! >= 18, `third retry waited only ${gaps[2]} ms`);
});

test('reprocessAll enqueues every known key', async () => {
  const q = new WorkQueue({ allKeys: () => ['a', 'b', 'c'] });
  const seen: string[] = [];
  const running = q.run(async (k): Promise<SyncResult> => {
    seen.push(k);
    return k === 'config' ? { kind: 'reprocessAll' } : success;
  });
  q.add('config');
  await drain(q);
  q.stop();
  await running;
  assert.deepEqual(seen, ['config', 'a', 'b', 'c']);
});

test('a throwing handler counts as an error, not a crash', async () => {
  const errors: unknown[] = [];
  const q = new WorkQueue({ backoff: { baseMs: 1, maxMs: 2 }, onError: (_k, e) => errors.push(e) });
  let n = 0;
  const running = q.run(async () => {
    if (n++ === 0) throw new Error('thrown');
    return success;
  });
  q.add('k');
  await drain(q);
  q.stop();
  await running;
  assert.equal(errors.length, 1);
  assert.equal(n, 2);
});

test('every idle worker is woken: keys are processed in parallel and stop() ends all of them', async () => {
  const q = new WorkQueue();
  let inFlight = 0;
  let maxInFlight = 0;
  const handler = async (): Promise<SyncResult> => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await sleep(20);
    inFlight--;
    return success;
  };
  const workers = Array.from({ length: 4 }, () => q.run(handler));
  // All four are idle and waiting before the first key arrives.
  await sleep(10);
  for (let i = 0; i < 8; i++) q.add(`k${i}`);
  await drain(q);
  assert.equal(maxInFlight, 4);
  q.stop();
  const ended = await Promise.race([Promise.all(workers).then(() => true), sleep(1000).then(() => false)]);
  assert.ok(ended, 'a worker was still waiting after stop()');
});
