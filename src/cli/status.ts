// `kubectl purelb status`: what each ServiceGroup has given out (from the counts the
// allocator writes into its status) and, for each address, the node(s) announcing it
// (from the purelb.io/announcing-IPv4/-IPv6 annotations the agents write). Pure
// formatting of objects read from the API; main.ts does the reading.

import { isIP } from 'node:net';
import type { V1Service } from '@kubernetes/client-node';
import { ANNOTATIONS, BRAND } from '../api/annotations.ts';

export interface ServiceGroupObject {
  metadata?: { name?: string };
  status?: {
    conditions?: Array<{ type?: string; status?: string }>;
    allocatedIPv4?: number;
    allocatedIPv6?: number;
    availableIPv4?: number | string;
    availableIPv6?: number | string;
  };
}

/** Left-aligned columns separated by two spaces, like kubectl's tables. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

/** `used/size (pct%)` of one family; sizes beyond 2^53 arrive as decimal strings. */
export function usage(allocated: number | undefined, available: number | string | undefined): string {
  if (allocated === undefined && available === undefined) return '-';
  const used = BigInt(allocated ?? 0);
  const size = used + BigInt(available ?? 0);
  if (size === 0n) return '-';
  const permille = Number((used * 2000n + size) / (2n * size));
  return `${used}/${size} (${(permille / 10).toFixed(1)}%)`;
}

export function groupRows(groups: readonly ServiceGroupObject[]): string[][] {
  return [...groups]
    .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))
    .map((g) => {
      const s = g.status ?? {};
      const ready = s.conditions?.find((c) => c.type === 'Ready')?.status ?? 'Unknown';
      const conflict = s.conditions?.find((c) => c.type === 'Conflict')?.status === 'True' ? 'Conflict' : '';
      return [g.metadata?.name ?? '', [ready, conflict].filter((x) => x !== '').join(','), usage(s.allocatedIPv4, s.availableIPv4), usage(s.allocatedIPv6, s.availableIPv6)];
    });
}

/** `node,interface` entries of an announcing annotation → `node (interface)`. */
export function announcers(value: string | undefined): string[] {
  return (value ?? '')
    .split(/\s+/)
    .filter((e) => e !== '')
    .map((e) => {
      const [node, iface] = e.split(',');
      return iface ? `${node} (${iface})` : (node ?? e);
    });
}

/** One row per address of each LoadBalancer Service that purelb-ts allocated. */
export function addressRows(services: readonly V1Service[]): string[][] {
  const rows: string[][] = [];
  for (const svc of services) {
    const a = svc.metadata?.annotations ?? {};
    if (a[ANNOTATIONS.allocatedBy] !== BRAND) continue;
    for (const ingress of svc.status?.loadBalancer?.ingress ?? []) {
      const ip = ingress.ip ?? '';
      if (ip === '') continue;
      const annotation = isIP(ip) === 6 ? ANNOTATIONS.announcingIPv6 : ANNOTATIONS.announcingIPv4;
      const by = announcers(a[annotation]);
      rows.push([`${svc.metadata?.namespace}/${svc.metadata?.name}`, a[ANNOTATIONS.allocatedFrom] ?? '', ip, by.length > 0 ? by.join(', ') : '-']);
    }
  }
  return rows.sort((x, y) => (x[0] ?? '').localeCompare(y[0] ?? '') || (x[2] ?? '').localeCompare(y[2] ?? ''));
}

export function statusReport(groups: readonly ServiceGroupObject[], services: readonly V1Service[], namespace: string): string {
  const g = groupRows(groups);
  const s = addressRows(services);
  const parts = [
    g.length > 0 ? table(['SERVICEGROUP', 'READY', 'IPV4 USED', 'IPV6 USED'], g) : `No ServiceGroups in namespace ${namespace}.`,
    s.length > 0 ? table(['SERVICE', 'GROUP', 'ADDRESS', 'ANNOUNCED BY'], s) : 'No Service has an address from purelb-ts.',
  ];
  return parts.join('\n\n') + '\n';
}
