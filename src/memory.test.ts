// Memory given back to the kernel: which mappings qualify, when a release happens, and
// a real release in this very process (which must go on working).

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseSmaps, releasable, releaseUnusedMemory, residentKiB, scheduleMemoryRelease } from './memory.ts';
import type { Release } from './memory.ts';
import { createLogger } from './log.ts';

const SMAPS = `00400000-00746000 r--p 00000000 fe:01 1234  /usr/local/bin/node
Size:               3352 kB
Rss:                3352 kB
Anonymous:             0 kB
0074a000-03044000 r-xp 0034a000 fe:01 1234  /usr/local/bin/node
Rss:               18056 kB
Anonymous:             0 kB
06b52000-06b56000 r--p 06751000 fe:01 1234  /usr/local/bin/node
Rss:                  16 kB
Anonymous:            16 kB
06b56000-06b7d000 rw-p 06755000 fe:01 1234  /usr/local/bin/node
Rss:                 156 kB
Anonymous:            40 kB
29c41000-29e8b000 rw-p 00000000 00:00 0  [heap]
Rss:                2200 kB
Anonymous:          2200 kB
7f3cda580000-7f3cda785000 r-xp 02e00000 fe:01 1234  /usr/local/bin/node
Rss:                1708 kB
Anonymous:             0 kB
7f3cf950e000-7f3cf961e000 rw-p 00000000 00:00 0 
Rss:                1028 kB
Anonymous:          1028 kB
7f3cf9644000-7f3cf979a000 r-xp 00028000 fe:01 99  /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                1048 kB
Anonymous:             0 kB
7f3cf97a0000-7f3cf97a1000 r--p 00000000 fe:01 77  /app/dist/kernel.node
Rss:                   0 kB
Anonymous:             0 kB
7f3cf97b0000-7f3cf97b1000 r-xp 00000000 fe:01 78  /tmp/old.node (deleted)
Rss:                   4 kB
Anonymous:             0 kB
7ffd1a3f0000-7ffd1a3f2000 r-xp 00000000 00:00 0  [vdso]
Rss:                   8 kB
Anonymous:             0 kB
`;

test('smaps: each mapping with its range, permissions, path, resident and copied pages', () => {
  const maps = parseSmaps(SMAPS);
  assert.equal(maps.length, 11);
  assert.deepEqual(maps[1], { start: 0x74a000, end: 0x3044000, perms: 'r-xp', path: '/usr/local/bin/node', rssKiB: 18056, anonymousKiB: 0 });
  assert.equal(maps[6]!.path, '');
  assert.equal(maps[4]!.path, '[heap]');
});

test('only read-only file mappings with resident pages and no copied pages are released', () => {
  const chosen = releasable(parseSmaps(SMAPS)).map((m) => `${m.start.toString(16)} ${m.perms} ${m.path}`);
  assert.deepEqual(chosen, [
    '400000 r--p /usr/local/bin/node',
    '74a000 r-xp /usr/local/bin/node',
    '7f3cda580000 r-xp /usr/local/bin/node',
    '7f3cf9644000 r-xp /usr/lib/x86_64-linux-gnu/libc.so.6',
  ]);
  // Left alone: relocated read-only data (its copied pages would be lost), writable
  // data, the heap, anonymous memory, nothing resident, a deleted file, the vDSO.
});

test('a real release in this process: the file pages go, the process goes on working', () => {
  // Touch a good deal of the binary first: crypto, JSON, regular expressions.
  for (let i = 0; i < 200; i++) createHmac('sha256', 'k').update(JSON.stringify({ i, s: 'x'.repeat(i) })).digest('hex').replace(/[a-f]/g, '');
  const r = releaseUnusedMemory();
  assert.ok(r.mappings > 0, 'some mappings qualified');
  assert.ok(r.before.file > 20_000, `a Node process has more than 20 MiB of its binary resident (${r.before.file} KiB)`);
  assert.ok(r.after.file < r.before.file / 2, `file pages resident ${r.before.file} → ${r.after.file} KiB`);
  // The dropped code and data come back on use: the same work gives the same answers.
  const digest = createHmac('sha256', 'k').update('purelb').digest('hex');
  assert.equal(digest, createHmac('sha256', 'k').update('purelb').digest('hex'));
  assert.match(readFileSync('/proc/self/status', 'utf8'), /VmRSS/);
  assert.ok(residentKiB().file < r.before.file, 'what came back is less than what was there');
});

test('the schedule: a release once settled, then one every period, until stopped', async () => {
  const log = createLogger('test');
  const at: number[] = [];
  const t0 = performance.now();
  const stop = scheduleMemoryRelease(log, { firstAfterMs: 40, everyMs: 25 }, (): Release => {
    at.push(performance.now() - t0);
    return { before: { total: 80_000, anon: 30_000, file: 50_000 }, after: { total: 40_000, anon: 30_000, file: 10_000 }, mappings: 3, ms: 1 };
  });
  await waitFor(() => at.length >= 4, 2000);
  stop();
  assert.ok(at[0]! >= 39, `the first after the settling time: ${at[0]} ms`);
  for (let i = 1; i < at.length; i++) assert.ok(at[i]! - at[i - 1]! >= 24, `then every period: ${at.map(Math.round).join(', ')}`);
  const n = at.length;
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(at.length, n, 'stopped');
});

async function waitFor(done: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!done()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('a failing release is reported once and not tried again', async () => {
  const lines: string[] = [];
  const log = { debug() {}, info() {}, error() {}, warn: (m: string) => lines.push(m), child() { return log; } };
  let n = 0;
  const stop = scheduleMemoryRelease(log, { firstAfterMs: 5, everyMs: 5 }, () => {
    n++;
    throw new Error('EINVAL');
  });
  await new Promise((r) => setTimeout(r, 60));
  stop();
  assert.equal(n, 1);
  assert.deepEqual(lines, ['releasing unused memory failed; not tried again']);
});
