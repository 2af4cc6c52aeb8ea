// The detector on real UDP sockets (loopback, no root): two agents hear each other,
// and a graceful stop is believed at once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../log.ts';
import { HeartbeatDetector } from './detector.ts';

const log = createLogger('detector-test', 'error');
const key = Buffer.alloc(32, 3);

async function until(what: string, ms: number, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('two detectors on UDP hear each other, and a leaving one is dropped at once', async () => {
  const port = 40_000 + Math.floor(Math.random() * 20_000);
  const a = new HeartbeatDetector({ node: 'a', key, bindAddress: '127.0.0.1', port, log, graceMs: 0 });
  const b = new HeartbeatDetector({ node: 'b', key, bindAddress: '127.0.0.1', port: port + 1, log, graceMs: 0 });
  await a.start();
  await b.start();
  try {
    a.setPeers([{ node: 'b', endpoint: b.endpoint }]);
    b.setPeers([{ node: 'a', endpoint: a.endpoint }]);
    await until('a hears b', 2000, () => a.counters.received >= 3 && a.usable('b'));
    await until('b hears a', 2000, () => b.counters.received >= 3 && b.usable('a'));
    assert.ok(a.counters.sent >= 3);
    assert.equal(a.counters.forged + a.counters.replayed + a.counters.malformed + a.counters.unknownSender, 0);
    await b.stop();
    await until('a drops b on its goodbye, before silence could tell', 250, () => !a.usable('b'));
  } finally {
    await a.stop();
  }
});
