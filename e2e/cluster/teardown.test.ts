// The cluster lab's `down` leaves nothing behind, also after a crash: no process, network
// namespace, mount, cgroup or file, and the host's global sysctls as they were. It runs
// last among the cluster tests (it takes the cluster down), with the state file removed
// first, as a crash before it was written would leave things.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { run } from '../lab/exec.ts';
import { labDown } from '../lab/lab.ts';
import { CLUSTER_BIN, CNI_CACHE, cgroupHierarchies, hostSysctls, labCgroupBase, sandboxIds } from './node.ts';
import { CLUSTER_RUN, CLUSTER_VAR } from './plan.ts';
import { STATE_FILE, readClusterState } from './state.ts';
import { requireCluster } from './kit.ts';

/** Processes running a binary of the cluster tier (kubelet, containerd, shims, …) or a lab pod's pause. */
function clusterProcesses(): string[] {
  const found: string[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ');
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (/\) [ZX] /.test(stat)) continue;
      if (cmd.includes(CLUSTER_BIN) || cmd.includes(CLUSTER_RUN) || cmd.includes(CLUSTER_VAR)) found.push(`${e}: ${cmd.slice(0, 120)}`);
    } catch {
      /* gone */
    }
  }
  return found;
}

test('cluster lab down, after a crash, leaves no process, namespace, mount, cgroup or file, and the sysctls as they were', async () => {
  await requireCluster();
  const state = readClusterState();
  assert.ok(state);
  // What the host had before the cluster came up, recorded by clusterUp.
  const hostBefore = state.hostSysctls;
  assert.ok(Object.keys(hostBefore).length >= 6);
  assert.deepEqual(hostSysctls(), hostBefore, "the host's sysctls are unchanged while the cluster runs");
  const base = labCgroupBase();
  const sandboxes = state.nodes.flatMap((n) => sandboxIds(n));
  assert.ok(sandboxes.length > 0, 'the nodes ran pod sandboxes');
  rmSync(STATE_FILE); // as after a crash before the record was written

  await labDown();

  assert.deepEqual(clusterProcesses(), [], 'no process of the cluster tier');
  const netns = (await run(['ip', 'netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith('plb-'));
  assert.deepEqual(netns, [], 'no lab network namespace');
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes('purelb-lab'));
  assert.deepEqual(mounts, [], 'no mount of the lab');
  const cgroups = cgroupHierarchies().filter((h) => existsSync(path.join(h, base, 'purelb-lab')));
  assert.deepEqual(cgroups, [], 'no cgroup of the lab');
  for (const dir of [CLUSTER_RUN, CLUSTER_VAR, '/run/containerd', '/var/log/containers']) assert.ok(!existsSync(dir), `${dir} removed`);
  const results = path.join(CNI_CACHE, 'results');
  const cached = existsSync(results) ? readdirSync(results).filter((f) => sandboxes.some((id) => f.includes(id))) : [];
  assert.deepEqual(cached, [], "no CNI result of the lab's sandboxes");
  if (state.ownCniCache) assert.ok(!existsSync(CNI_CACHE), `${CNI_CACHE} removed`);
  assert.deepEqual(hostSysctls(), hostBefore, "the host's sysctls are unchanged after down");
});
