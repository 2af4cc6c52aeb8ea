// The whole lab as one unit: network first (the API server listens on the bridge),
// then the control plane, then the Node objects. `labDown` is idempotent and also
// cleans up after a crashed run, of either tier: the cluster tier's node runtimes
// (e2e/cluster) go first.

import { clusterNodesDown } from '../cluster/state.ts';
import { controlPlaneDown, controlPlaneStatus, controlPlaneUp } from './controlplane.ts';
import { ensureNodes } from './kube.ts';
import { networkDown, networkStatus, networkUp } from './network.ts';
import { DEFAULT_NODE_COUNT, labNodes } from './plan.ts';

export interface LabOptions {
  nodes?: number;
}

export async function labUp(opts: LabOptions = {}): Promise<void> {
  const count = opts.nodes ?? DEFAULT_NODE_COUNT;
  await networkUp({ nodes: count });
  await controlPlaneUp();
  await ensureNodes(labNodes(count));
}

export async function labDown(): Promise<void> {
  // Pods and node runtimes first (they live in the network's namespaces); then each half
  // is torn down even if the other fails; the first error is reported.
  const left = await clusterNodesDown();
  const results = await Promise.allSettled([controlPlaneDown(), networkDown()]);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  if (left.length > 0) throw new Error(`lab down left: ${left.join('; ')}`);
}

export async function labStatus(): Promise<{ controlPlane: ReturnType<typeof controlPlaneStatus>; network: Awaited<ReturnType<typeof networkStatus>> }> {
  return { controlPlane: controlPlaneStatus(), network: await networkStatus() };
}
