// The cluster tier's address plan and file layout, beside the process lab's (e2e/lab/plan.ts):
// the same LAN, router and client, but every node namespace also runs containerd, a
// kubelet and kube-proxy, and pods get addresses of their own.
//
// Addresses stay in documentation ranges. The process lab gives Services all of
// 192.0.2.0/24; the cluster tier gives them the lower half and the pods the upper half,
// a /27 per node, and IPv6 pods a /64 each from 2001:db8:244::/56. Node namespaces route
// each other's pod subnets over the LAN, and so does the root namespace (the API server's
// side), so pods reach the API server without masquerading.

import path from 'node:path';
import { labNode } from '../lab/plan.ts';
import type { LabNode } from '../lab/plan.ts';

export const CLUSTER_NODE_COUNT = 3;
export const CLUSTER_SERVICE_CIDRS = ['192.0.2.0/25', '2001:db8:96::/108'] as const;
export const CLUSTER_POD_CIDRS = ['192.0.2.128/25', '2001:db8:244::/56'] as const;

export interface ClusterNode extends LabNode {
  podV4: string;
  podV6: string;
}

export function clusterNode(i: number): ClusterNode {
  if (i < 1 || i > 4) throw new Error(`cluster node index ${i} outside 1..4 (four /27 pod subnets)`);
  return { ...labNode(i), podV4: `192.0.2.${128 + 32 * (i - 1)}/27`, podV6: `2001:db8:244:${i}::/64` };
}

export function clusterNodes(count = CLUSTER_NODE_COUNT): ClusterNode[] {
  return Array.from({ length: count }, (_, k) => clusterNode(k + 1));
}

// Fixed paths outside the checkout: sockets need short paths, and the lab's namespaces
// are machine-wide anyway, so there is one cluster lab per machine.
/** Sockets, runtime state, mount-namespace files, CNI config. */
export const CLUSTER_RUN = '/run/purelb-lab';
/** containerd's image store and snapshots, kubelet's root and pod logs. */
export const CLUSTER_VAR = '/var/lib/purelb-lab';
/** Persistent mount namespaces, one file per node (a private mount, so they can be bound). */
export const MOUNT_NS_DIR = path.join(CLUSTER_RUN, 'mntns');

export function nodePaths(node: string) {
  const run = path.join(CLUSTER_RUN, node);
  const vari = path.join(CLUSTER_VAR, node);
  return {
    run,
    vari,
    mountNs: path.join(MOUNT_NS_DIR, node),
    containerdConfig: path.join(run, 'containerd.toml'),
    containerdSocket: path.join(run, 'containerd.sock'),
    containerdState: path.join(run, 'containerd'),
    containerdRoot: path.join(vari, 'containerd'),
    runcRoot: path.join(run, 'runc'),
    cniConfDir: path.join(run, 'cni', 'net.d'),
    cniDataDir: path.join(run, 'cni', 'ipam'),
    kubeletConfig: path.join(run, 'kubelet.yaml'),
    kubeletKubeconfig: path.join(run, 'kubelet.kubeconfig'),
    kubeletRoot: path.join(vari, 'kubelet'),
    kubeletCerts: path.join(vari, 'kubelet-pki'),
    podLogs: path.join(vari, 'pod-logs'),
    volumePlugins: path.join(vari, 'volume-plugins'),
    proxyConfig: path.join(run, 'kube-proxy.yaml'),
    proxyKubeconfig: path.join(run, 'kube-proxy.kubeconfig'),
    sysctlPins: path.join(run, 'sysctl'),
    resolvConf: path.join(run, 'resolv.conf'),
  };
}

/** The cgroup (in every v1 hierarchy) under which a node's kubelet puts its pods. */
export const cgroupRoot = (node: string): string => `/${node}`;

/**
 * Global sysctls kubelet sets at start-up when they differ from what it wants. On a shared
 * machine it must not, so each node's mount namespace has files holding these values
 * bound over the /proc/sys entries: kubelet reads them, finds them right, writes nothing.
 */
export const KUBELET_SYSCTLS: Readonly<Record<string, string>> = {
  'vm/overcommit_memory': '1',
  'vm/panic_on_oom': '0',
  'kernel/panic': '10',
  'kernel/panic_on_oops': '1',
  'kernel/keys/root_maxkeys': '1000000',
  'kernel/keys/root_maxbytes': '25000000',
};

/** containerd's sandbox image, pinned against GC (built by scripts/image.sh). */
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10';
