// The agent's inputs, read from the informers and membership, turned into the Snapshot
// that desiredAnnouncements() decides from. Pure: ServiceGroups count only through
// what the allocator recorded as in force (status.inForce), never through their specs,
// so a refused edit changes nothing here.

import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { ANNOTATIONS, BRAND } from '../api/annotations.ts';
import { inForceConfigs } from '../api/configuration.ts';
import type { ServiceGroupObject } from '../api/configuration.ts';
import { ingressIPs } from '../api/service.ts';
import { objectKey } from '../k8s/informer.ts';
import type { Member, NodeView, ServiceView, Snapshot } from './desired.ts';

export interface SnapshotInputs {
  self: NodeView;
  services: readonly V1Service[];
  slices: readonly V1EndpointSlice[];
  groups: readonly ServiceGroupObject[];
  members: readonly Member[];
  deafPeers: ReadonlySet<string>;
}

/** Nodes with a ready endpoint, or one serving while terminating (traffic sent there is still answered), per Service. */
function endpointNodes(slices: readonly V1EndpointSlice[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const slice of slices) {
    const svc = slice.metadata?.labels?.['kubernetes.io/service-name'];
    if (!svc) continue;
    const key = `${slice.metadata?.namespace}/${svc}`;
    for (const ep of slice.endpoints ?? []) {
      const c = ep.conditions ?? {};
      if (!ep.nodeName || (c.ready === false && c.serving !== true)) continue;
      let set = out.get(key);
      if (!set) out.set(key, (set = new Set()));
      set.add(ep.nodeName);
    }
  }
  return out;
}

export function buildSnapshot(inputs: SnapshotInputs): Snapshot {
  const endpoints = endpointNodes(inputs.slices);
  const services: ServiceView[] = [];
  for (const svc of inputs.services) {
    if (svc.spec?.type !== 'LoadBalancer' || svc.metadata?.annotations?.[ANNOTATIONS.allocatedBy] !== BRAND) continue;
    const ips = ingressIPs(svc);
    if (ips.length === 0) continue;
    const key = objectKey(svc);
    services.push({
      key,
      ips,
      group: svc.metadata?.annotations?.[ANNOTATIONS.allocatedFrom],
      local: svc.spec.externalTrafficPolicy === 'Local',
      endpointNodes: endpoints.get(key) ?? new Set(),
    });
  }
  return {
    self: inputs.self,
    members: inputs.members,
    services,
    groups: new Map([...inForceConfigs(inputs.groups)].map(([name, c]) => [name, c.pools])),
    deafPeers: inputs.deafPeers,
  };
}
