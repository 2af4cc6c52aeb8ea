// Shared by the allocator's lab tests: Service manifests that fit the lab (IPv6
// single-stack, so ClusterIPs come from the /108 and not the ~250-address IPv4 range;
// no NodePorts), bounded concurrency, and a ledger that checks every observed Service
// version against the allocator's promises.

import type { CoreV1Api, CoreV1Event, V1Service } from '@kubernetes/client-node';
import { startAllocator } from '../lab/components.ts';
import type { Component } from '../lab/components.ts';
import { waitUntil } from '../lab/exec.ts';
import { applyCRDs, applyServiceGroup, ensureNamespace, httpStatus, kubectl, waitUntil as waitFor } from '../lab/testkit.ts';

export const CLASS = 'purelb.io/purelb';

export type AllocatorProcess = Component;

/**
 * An allocator process like `startAllocator`'s, recorded under a name that other
 * tests' "stop every allocator and agent" clean-up does not match: in the shared lab a
 * test that starts must not take down the allocators a running test is measuring.
 * `lab down` still stops it (every recorded daemon).
 */
export function startTestAllocator(opts: { id: string; namespace: string; metricsPort: number; env?: Record<string, string> }): AllocatorProcess {
  return startAllocator({ ...opts, unmanaged: true });
}

/** Whether the allocator on `port` answers 200 on `path`: /leader (leading, caches synced, allocations registered) or /readyz (also a standby). */
export async function answers(port: number, path: '/leader' | '/readyz' = '/leader'): Promise<boolean> {
  return (await httpStatus(`http://127.0.0.1:${port}${path}`)) === 200;
}

/** A clean start for a test: CRDs, the namespaces, no Services and no ServiceGroups left from an earlier run. */
export async function freshNamespaces(core: CoreV1Api, serviceNamespaces: readonly string[], groupNamespace: string): Promise<void> {
  await applyCRDs();
  for (const ns of [...serviceNamespaces, groupNamespace]) await ensureNamespace(ns);
  for (const ns of serviceNamespaces) await deleteServices(core, ns);
  await kubectl(['delete', 'servicegroups', '--all', '-n', groupNamespace]);
}

/** Applies a ServiceGroup whose one range is all of the IPv6 `cidr`, announced as host routes. */
export async function applyV6Group(namespace: string, name: string, cidr: string): Promise<void> {
  const spec = { local: { v6pool: { subnet: cidr, pool: cidr, aggregation: '/128' } } };
  await applyServiceGroup(namespace, name, spec);
}

/**
 * Deletes every Service of the namespace. A deletecollection of thousands can time
 * out (504) part-way, so it is repeated until the namespace is empty.
 */
export async function deleteServices(core: CoreV1Api, namespace: string, timeoutMs = 15 * 60_000): Promise<void> {
  await waitUntil(
    async () => {
      await core.deleteCollectionNamespacedService({ namespace }).catch(() => undefined);
      return (await core.listNamespacedService({ namespace, limit: 1 })).items.length === 0;
    },
    { timeoutMs, intervalMs: 1000, what: `the Services of ${namespace} to be deleted` },
  );
}

export interface ServiceOptions {
  group?: string;
  addresses?: string;
  sharingKey?: string;
  ports?: Array<{ port: number; protocol?: string }>;
  family?: 'IPv4' | 'IPv6';
  ipFamilyPolicy?: 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';
  loadBalancerClass?: string | null;
  labels?: Record<string, string>;
}

/**
 * A `type: LoadBalancer` Service of class purelb.io/purelb (so that no allocator
 * configured to skip class-less Services takes it for someone else's and clears it).
 */
export function lbService(namespace: string, name: string, o: ServiceOptions = {}): V1Service {
  const annotations: Record<string, string> = {};
  if (o.group !== undefined) annotations['purelb.io/service-group'] = o.group;
  if (o.addresses !== undefined) annotations['purelb.io/addresses'] = o.addresses;
  if (o.sharingKey !== undefined) annotations['purelb.io/allow-shared-ip'] = o.sharingKey;
  const policy = o.ipFamilyPolicy ?? 'SingleStack';
  const family = o.family ?? 'IPv6';
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, annotations, ...(o.labels ? { labels: o.labels } : {}) },
    spec: {
      type: 'LoadBalancer',
      ...(o.loadBalancerClass === null ? {} : { loadBalancerClass: o.loadBalancerClass ?? CLASS }),
      allocateLoadBalancerNodePorts: false,
      ipFamilyPolicy: policy,
      ipFamilies: policy === 'SingleStack' ? [family] : [family, family === 'IPv6' ? 'IPv4' : 'IPv6'],
      ports: (o.ports ?? [{ port: 80 }]).map((p) => ({ name: `p${p.port}`, port: p.port, protocol: p.protocol ?? 'TCP' })),
    },
  };
}

export function ingressOf(svc: V1Service): string[] {
  return (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '').filter((ip) => ip !== '');
}

/** Runs `task` over `items` with at most `limit` in flight; resolves when all are done. */
export async function bounded<T>(items: Iterable<T>, limit: number, task: (item: T) => Promise<void>): Promise<void> {
  const it = items[Symbol.iterator]();
  const lane = async (): Promise<void> => {
    for (let n = it.next(); !n.done; n = it.next()) await task(n.value);
  };
  await Promise.all(Array.from({ length: limit }, lane));
}

interface Holder {
  name: string;
  ips: string[];
  sharingKey: string;
}

/**
 * Every Service version seen by a watch, in the API server's order, checked for the
 * two things an allocator must never do: give one address to two live Services that
 * do not share a sharing key, and change an address a Service already holds.
 */
export class AddressLedger {
  versions = 0;
  readonly violations: string[] = [];
  private readonly live = new Map<string, Holder>();
  private readonly holders = new Map<string, Set<string>>();

  observe(type: 'add' | 'update' | 'delete', svc: V1Service): void {
    this.versions++;
    const uid = svc.metadata?.uid ?? '';
    const name = `${svc.metadata?.namespace}/${svc.metadata?.name}`;
    const before = this.live.get(uid);
    if (before) for (const ip of before.ips) this.holders.get(ip)?.delete(uid);
    if (type === 'delete') {
      this.live.delete(uid);
      return;
    }
    const now: Holder = { name, ips: ingressOf(svc), sharingKey: svc.metadata?.annotations?.['purelb.io/allow-shared-ip']?.trim() ?? '' };
    if (before && before.ips.length > 0 && before.ips.join() !== now.ips.join()) {
      this.violations.push(`${name} changed its address from [${before.ips.join(', ')}] to [${now.ips.join(', ')}] (resourceVersion ${svc.metadata?.resourceVersion})`);
    }
    for (const ip of now.ips) {
      let set = this.holders.get(ip);
      if (!set) this.holders.set(ip, (set = new Set()));
      for (const other of set) {
        const o = this.live.get(other);
        if (o && (now.sharingKey === '' || o.sharingKey !== now.sharingKey)) {
          this.violations.push(`${ip} held by ${name} and ${o.name} without a shared sharing key (resourceVersion ${svc.metadata?.resourceVersion})`);
        }
      }
      set.add(uid);
    }
    this.live.set(uid, now);
  }

  /** Live Services that hold no address yet. */
  unallocated(): string[] {
    return [...this.live.values()].filter((h) => h.ips.length === 0).map((h) => h.name);
  }

  get liveCount(): number {
    return this.live.size;
  }
}

type Involved = { metadata?: { name?: string; uid?: string } };

/** Events the allocator `identity` wrote about the object (other allocators share the lab). */
export async function eventsBy(core: CoreV1Api, identity: string, namespace: string, kind: string, obj: Involved): Promise<CoreV1Event[]> {
  const list = await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${obj.metadata?.name}` });
  return list.items.filter((e) => e.involvedObject.uid === obj.metadata?.uid && (e.reportingInstance === identity || e.source?.host === identity));
}

/** Waits for such an Event of `type` and `reason` whose message matches; the error lists the Events seen. */
export async function waitForEventBy(core: CoreV1Api, identity: string, namespace: string, kind: string, obj: Involved, type: 'Normal' | 'Warning', reason: string, message: RegExp): Promise<CoreV1Event> {
  let seen: CoreV1Event[] = [];
  let found: CoreV1Event | undefined;
  await waitFor(`${type} ${reason} Event on ${kind} ${obj.metadata?.name} matching ${message}`, 20_000, async () => {
    seen = await eventsBy(core, identity, namespace, kind, obj);
    found = seen.find((e) => e.type === type && e.reason === reason && message.test(e.message ?? ''));
    return found !== undefined;
  }, 200).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; events: ${JSON.stringify(seen.map((e) => [e.type, e.reason, e.message]))}`);
  });
  return found as CoreV1Event;
}
