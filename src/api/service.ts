// What the allocator, the agents and the CLI read from a Service of type LoadBalancer.

import type { V1Service } from '@kubernetes/client-node';

/** The addresses `status.loadBalancer.ingress` shows. */
export function ingressIPs(svc: V1Service): string[] {
  return (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '').filter((ip) => ip !== '');
}
