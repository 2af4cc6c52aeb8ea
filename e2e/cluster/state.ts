// The cluster tier's record of what it made, and the teardown of its nodes from that
// record (or, after a crash before the record, from what is on disk). Kept apart from
// cluster.ts so that the process lab's `labDown` can call it without a cycle.

import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { CLUSTER_DIR, clusterFilesDown, labCgroupBase, nodeDown } from './node.ts';
import { CLUSTER_RUN } from './plan.ts';

export const STATE_FILE = path.join(CLUSTER_DIR, 'state.json');

export interface ClusterState {
  nodes: string[];
  /** Per node, the cgroup root its kubelet was given (needed to clean up from another process). */
  cgroupRoots: Record<string, string>;
  images: ImageArchive[];
  /** False when CNI's cache folder was there before the lab: then only the lab's entries are removed. */
  ownCniCache: boolean;
  /** The host's global sysctls before the cluster came up (the teardown test compares). */
  hostSysctls: Record<string, string>;
  createdAt: string;
}

export interface ImageArchive {
  /** The reference pods use (`purelb-ts:0.1.0`, `registry.k8s.io/pause:3.10`). */
  name: string;
  archive: string;
}

export function readClusterState(): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(STATE_FILE, 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

/** Stops every node's runtime and pods and removes their state; no-op when there is none. */
export async function clusterNodesDown(): Promise<string[]> {
  const state = readClusterState();
  const nodes = new Set(state?.nodes ?? []);
  // After a crash before the state file was written: whatever node folders exist.
  if (existsSync(CLUSTER_RUN)) for (const d of readdirSync(CLUSTER_RUN)) if (/^plb-node\d+$/.test(d)) nodes.add(d);
  const base = labCgroupBase();
  const left: string[] = [];
  await Promise.all(
    [...nodes].map(async (n) => {
      const r = await nodeDown(n, state?.cgroupRoots[n] ?? `${base}/purelb-lab/${n}`);
      left.push(...r.leftovers);
    }),
  );
  left.push(...(await clusterFilesDown(state?.ownCniCache ?? false)));
  rmSync(STATE_FILE, { force: true });
  return left;
}

