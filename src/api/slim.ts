// What the allocator and the agents keep of each Service and EndpointSlice in their
// caches: only the fields their decisions, writes and Events read. A Service as served
// carries managedFields, the last-applied-configuration of `kubectl apply` and other
// controllers' annotations; with 10,000 Services those would be most of the memory.

import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { ANNOTATION_ALIASES } from './annotations.ts';

const OURS = 'purelb.io/';
/** Other load balancers' spellings the allocator reads as aliases of ours. */
const ALIASES: ReadonlySet<string> = new Set(Object.values(ANNOTATION_ALIASES).flat());

export function slimService(svc: V1Service): V1Service {
  const md = svc.metadata ?? {};
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(md.annotations ?? {})) if (k.startsWith(OURS) || ALIASES.has(k)) annotations[k] = v;
  const spec = svc.spec ?? {};
  const ingress = svc.status?.loadBalancer?.ingress;
  return {
    metadata: {
      name: md.name,
      namespace: md.namespace,
      uid: md.uid,
      resourceVersion: md.resourceVersion,
      generation: md.generation,
      creationTimestamp: md.creationTimestamp,
      annotations,
    },
    spec: {
      type: spec.type,
      loadBalancerClass: spec.loadBalancerClass,
      loadBalancerIP: spec.loadBalancerIP,
      ipFamilies: spec.ipFamilies,
      ipFamilyPolicy: spec.ipFamilyPolicy,
      externalTrafficPolicy: spec.externalTrafficPolicy,
      ports: spec.ports?.map((p) => ({ protocol: p.protocol, port: p.port })),
    },
    status: { loadBalancer: ingress === undefined ? {} : { ingress: ingress.map((i) => ({ ip: i.ip, ipMode: i.ipMode })) } },
  };
}

/** The label that ties an EndpointSlice to its Service. */
export const SERVICE_NAME = 'kubernetes.io/service-name';

/** An EndpointSlice as the agents read it: its Service, and where its endpoints are and whether they serve. */
export function slimEndpointSlice(slice: V1EndpointSlice): V1EndpointSlice {
  const md = slice.metadata ?? {};
  const service = md.labels?.[SERVICE_NAME];
  return {
    addressType: slice.addressType,
    metadata: { name: md.name, namespace: md.namespace, resourceVersion: md.resourceVersion, labels: service === undefined ? {} : { [SERVICE_NAME]: service } },
    endpoints: (slice.endpoints ?? []).map((ep) => ({
      addresses: [],
      nodeName: ep.nodeName,
      conditions: { ready: ep.conditions?.ready, serving: ep.conditions?.serving },
    })),
  };
}
