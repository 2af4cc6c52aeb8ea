// The lab's liveness check (pidMatches) against real processes that exec after they
// start, as `ip netns exec` and `env` do: the moment of the exec, when the kernel shows
// an empty command line, is not taken for a death. It was, once in about 20 CI runs
// ("networkUp failed: exited: clientd:" with an empty log).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { NODE_BIN, pidMatches } from './exec.ts';

test('a daemon in the middle of its exec is alive to pidMatches; a finished one is not', async () => {
  let checks = 0;
  let takenForDead = 0;
  for (let i = 0; i < 20; i++) {
    const marker = `plb-exec-test-${process.pid}-${i}`;
    const child = spawn('env', ['PLB_EXEC_TEST=1', NODE_BIN, '-e', 'setTimeout(() => {}, 200)', marker], { stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    const pid = child.pid as number;
    const t0 = Date.now();
    // Read while `env` execs node and node starts: the window the empty cmdline shows in.
    while (Date.now() - t0 < 150) {
      checks++;
      if (!pidMatches(pid, marker)) takenForDead++;
    }
    await exited;
    assert.equal(pidMatches(pid, marker), false, 'the finished process is not alive');
  }
  assert.ok(checks > 1000, `read often enough to meet the exec (${checks} checks)`);
  assert.equal(takenForDead, 0, `a live process was taken for dead ${takenForDead} times in ${checks} checks`);
});
