// What to write to a Service for the addresses the IPAM gave it, as a pure function of
// the Service as cached and the allocation: the controller applies it (API writes,
// Events). Only the difference is written.

import type { V1LoadBalancerIngress, V1Service } from '@kubernetes/client-node';
import { ANNOTATIONS, BRAND } from '../api/annotations.ts';
import { ingressIPs } from '../api/service.ts';

export interface ServiceWrites {
  /** status.loadBalancer.ingress as it should read, in the Service's family order. */
  ingress: V1LoadBalancerIngress[];
  ips: string[];
  /** The brand and `allocated-from` annotations need writing. */
  meta: boolean;
  /** The ingress list needs writing. */
  status: boolean;
  /** Addresses the Service shows and no longer holds (for the AddressReleased Event). */
  released: string[];
}

export function planServiceWrites(svc: V1Service, alloc: { pool: string | undefined; addresses: readonly { family: string; address: string }[] }): ServiceWrites {
  const order = svc.spec?.ipFamilies ?? ['IPv4', 'IPv6'];
  const rank = (f: string) => (order.indexOf(f) < 0 ? 9 : order.indexOf(f));
  const ingress = [...alloc.addresses].sort((a, b) => rank(a.family) - rank(b.family)).map((a) => ({ ip: a.address, ipMode: 'VIP' }));
  const ips = ingress.map((i) => i.ip);
  const shown = ingressIPs(svc);
  const annotations = svc.metadata?.annotations ?? {};
  return {
    ingress,
    ips,
    meta: annotations[ANNOTATIONS.allocatedBy] !== BRAND || annotations[ANNOTATIONS.allocatedFrom] !== alloc.pool,
    // ipMode VIP keeps kube-proxy short-circuiting in-cluster traffic to the address.
    status: shown.join() !== ips.join() || (svc.status?.loadBalancer?.ingress ?? []).some((i) => i.ipMode !== 'VIP'),
    released: shown.filter((ip) => !ips.includes(ip)),
  };
}
