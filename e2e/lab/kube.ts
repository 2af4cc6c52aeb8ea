// Kubernetes clients for lab tests, and the objects a kubelet would otherwise make:
// Node objects for the node namespaces and EndpointSlices placing endpoints on nodes.

import { CoreV1Api, DiscoveryV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { V1Node } from '@kubernetes/client-node';
import { loadConnection } from '../../src/k8s/connection.ts';
import type { Connection } from '../../src/k8s/connection.ts';
import { kubeconfigPath } from './controlplane.ts';
import type { Identity } from './controlplane.ts';
import type { LabNode } from './plan.ts';

export function kubeConfig(identity: Identity = 'admin'): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath(identity));
  return kc;
}

/** The components' own connection (src/k8s/connection.ts) with the kubeconfig of `identity`. */
export function connection(identity: Identity = 'admin'): Connection {
  return loadConnection(kubeconfigPath(identity));
}

function isConflict(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && (err as { code: unknown }).code === 409;
}

/** Creates (or keeps) one Ready Node object per lab node, with its LAN addresses. */
export async function ensureNodes(nodes: LabNode[], kc = kubeConfig()): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  for (const n of nodes) {
    const body: V1Node = {
      metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux', 'purelb.io/lab': 'true' } },
    };
    try {
      await core.createNode({ body });
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
    const now = new Date().toISOString();
    await core.patchNodeStatus(
      {
        name: n.name,
        body: {
          status: {
            addresses: [
              { type: 'InternalIP', address: n.v4 },
              { type: 'InternalIP', address: n.v6 },
              { type: 'Hostname', address: n.name },
            ],
            conditions: [{ type: 'Ready', status: 'True', reason: 'LabNode', message: 'lab network namespace', lastHeartbeatTime: now as unknown as Date, lastTransitionTime: now as unknown as Date }],
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }
}

export interface EndpointPlacement {
  node: string;
  address: string;
  ready?: boolean;
  serving?: boolean;
}

/** Replaces the EndpointSlice of `service` so that its endpoints sit on the given nodes. */
export async function setEndpoints(namespace: string, service: string, placements: EndpointPlacement[], kc = kubeConfig()): Promise<void> {
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const name = `${service}-lab`;
  const body = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace, labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'purelb-lab' } },
    addressType: 'IPv4',
    ports: [{ name: '', port: 80, protocol: 'TCP' }],
    endpoints: placements.map((p) => ({
      addresses: [p.address],
      nodeName: p.node,
      conditions: { ready: p.ready ?? true, serving: p.serving ?? p.ready ?? true, terminating: false },
    })),
  };
  try {
    await discovery.createNamespacedEndpointSlice({ namespace, body });
  } catch (err) {
    if (!isConflict(err)) throw err;
    await discovery.replaceNamespacedEndpointSlice({ name, namespace, body });
  }
}
