// The cluster tier as one unit: the process lab's network, the control plane with
// kube-controller-manager and kube-scheduler, and in each node namespace containerd,
// kubelet and kube-proxy with the images imported. `clusterDown` (and `labDown`, which
// calls the same node teardown) leaves no process, namespace, mount, cgroup or file.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { controlPlaneUp } from '../lab/controlplane.ts';
import { labDown as clusterDown } from '../lab/lab.ts';
import { REPO_ROOT, waitUntil } from '../lab/exec.ts';
import { kubectl } from '../lab/testkit.ts';
import { networkUp } from '../lab/network.ts';
import { CLUSTER_DIR, CNI_CACHE, ensureSharedHostDirs, hostSysctls, labCgroupBase, nodeUp } from './node.ts';
import { CLUSTER_NODE_COUNT, CLUSTER_POD_CIDRS, CLUSTER_SERVICE_CIDRS, clusterNodes } from './plan.ts';
import { STATE_FILE } from './state.ts';
import type { ClusterState, ImageArchive } from './state.ts';

export { readClusterState } from './state.ts';
export type { ImageArchive } from './state.ts';

/** Builds (or finds cached) the node binaries and the two images; returns the image archives. */
export function buildClusterParts(): ImageArchive[] {
  execFileSync('bash', [path.join(REPO_ROOT, 'e2e', 'cluster', 'build.sh')], { stdio: 'inherit', timeout: 3_600_000 });
  const image = path.join(REPO_ROOT, 'scripts', 'image.sh');
  execFileSync('bash', [image], { stdio: 'inherit', timeout: 3_600_000 });
  const ask = (flag: string, which: string) => execFileSync('bash', [image, flag, which], { encoding: 'utf8', timeout: 60_000 }).trim();
  return ['pause', 'purelb-ts'].map((which) => ({ name: ask('--print-name', which), archive: ask('--print-path', which) }));
}

export interface ClusterUpOptions {
  nodes?: number;
}

/** Brings the whole cluster lab up from nothing (tearing down leftovers first); Nodes Ready. */
export async function clusterUp(opts: ClusterUpOptions = {}): Promise<void> {
  const images = buildClusterParts();
  for (const i of images) if (!existsSync(i.archive)) throw new Error(`image archive ${i.archive} (${i.name}) missing after the build`);
  await clusterDown();
  const nodes = clusterNodes(opts.nodes ?? CLUSTER_NODE_COUNT);
  const base = labCgroupBase();
  const state: ClusterState = {
    nodes: nodes.map((n) => n.name),
    cgroupRoots: Object.fromEntries(nodes.map((n) => [n.name, `${base}/purelb-lab/${n.name}`])),
    images,
    ownCniCache: !existsSync(CNI_CACHE),
    hostSysctls: hostSysctls(),
    createdAt: new Date().toISOString(),
  };
  mkdirSync(CLUSTER_DIR, { recursive: true });
  writeFileSync(STATE_FILE, JSON.stringify(state, null, 2) + '\n');
  try {
    await networkUp({ nodes: nodes.length, responders: false });
    await controlPlaneUp({ cluster: { nodes: state.nodes, serviceCidrs: CLUSTER_SERVICE_CIDRS, podCidrs: CLUSTER_POD_CIDRS } });
    ensureSharedHostDirs();
    await Promise.all(nodes.map((n) => nodeUp(n, nodes, images.map((i) => i.archive), state.cgroupRoots[n.name] as string)));
    await waitUntil(async () => (await kubectl(['wait', '--for=condition=Ready', 'node', '--all', '--timeout=5s'], { check: false })).code === 0, {
      timeoutMs: 90_000,
      intervalMs: 1000,
      what: 'every Node Ready',
    });
  } catch (e) {
    await clusterDown().catch(() => undefined);
    throw e;
  }
}

/** Tears everything down: nodes, control plane, network (the same as `labDown`). */
export { clusterDown };
