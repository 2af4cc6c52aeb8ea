// What the allocator keeps of each Service in its cache: only the fields its decisions,
// writes and Events read. A Service as served carries managedFields, the
// last-applied-configuration of `kubectl apply` and other controllers' annotations;
// with 10,000 Services those would be most of the allocator's memory.

import type { V1Service } from '@kubernetes/client-node';

const OURS = 'purelb.io/';

export function slimService(svc: V1Service): V1Service {
  const md = svc.metadata ?? {};
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(md.annotations ?? {})) if (k.startsWith(OURS)) annotations[k] = v;
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
      ports: spec.ports?.map((p) => ({ protocol: p.protocol, port: p.port })),
    },
    status: { loadBalancer: ingress === undefined ? {} : { ingress: ingress.map((i) => ({ ip: i.ip, ipMode: i.ipMode })) } },
  };
}
