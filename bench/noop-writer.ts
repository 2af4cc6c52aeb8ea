// The allocator benchmark's baseline: the least a controller can do to give Services
// addresses. It watches Services cluster-wide as the allocator does and, for each
// Service of its group without an address, makes the two writes the allocator makes
// (a merge patch of the two annotations, a merge patch of the status) with an address
// from a counter, and with NOOP_EVENTS=1 also the allocator's third write, its
// AddressAssigned Event, through the same EventRecorder. No pools, no decisions, no
// ServiceGroups. Started by bench/allocator.ts
// as its own process, like the allocator; prints "ready" once its cache is synced.
//
// argv[2] is the process marker the bench records it by. Environment: KUBECONFIG, NOOP_GROUP (purelb.io/service-group to act on),
// NOOP_PREFIX (IPv6 prefix the counter is appended to, e.g. "2001:db8:be01::"),
// NOOP_WORKERS (default 8, the allocator's default).

import type { V1Service } from '@kubernetes/client-node';
import { Api, PATHS } from '../src/k8s/api.ts';
import { loadConnection } from '../src/k8s/connection.ts';
import { Informer, objectKey } from '../src/k8s/informer.ts';
import { WorkQueue, success } from '../src/k8s/workqueue.ts';
import { EventRecorder } from '../src/k8s/events.ts';
import { REASONS } from '../src/api/annotations.ts';

const group = process.env.NOOP_GROUP ?? 'noop-pool';
const prefix = process.env.NOOP_PREFIX ?? '2001:db8:be01::';
const workers = Number(process.env.NOOP_WORKERS ?? 8);
const events = process.env.NOOP_EVENTS === '1' ? new EventRecorder(loadConnection(), 'purelb-allocator', 'noop-writer') : undefined;

const conn = loadConnection();
const api = new Api(conn);
const services = new Informer<V1Service>(conn, { name: 'services', path: PATHS.services() });
const assigned = new Map<string, string>();
let counter = 0;

const queue = new WorkQueue({ onError: (key, err) => console.error(`sync ${key} failed: ${String(err)}`) });
services.on((e) => queue.add(objectKey(e.obj)));

await services.start();
const runners = Array.from({ length: workers }, () =>
  queue.run(async (key) => {
    const svc = services.get(key);
    if (svc === undefined) {
      assigned.delete(key);
      return success;
    }
    if (svc.metadata?.annotations?.['purelb.io/service-group'] !== group || assigned.has(key)) return success;
    if ((svc.status?.loadBalancer?.ingress ?? []).length > 0) return success;
    const ip = `${prefix}${(++counter).toString(16)}`;
    const name = svc.metadata?.name ?? '';
    const namespace = svc.metadata?.namespace ?? '';
    await api.patch(PATHS.service(namespace, name), { metadata: { annotations: { 'purelb.io/allocated-by': 'PureLB', 'purelb.io/allocated-from': group } } });
    await api.patch(PATHS.serviceStatus(namespace, name), { status: { loadBalancer: { ingress: [{ ip, ipMode: 'VIP' }] } } });
    assigned.set(key, ip);
    events?.record({ apiVersion: 'v1', kind: 'Service', obj: svc }, 'Normal', REASONS.addressAssigned, `Assigned ${ip} from pool ${group}`);
    return success;
  }),
);
console.log('ready');

process.on('SIGTERM', () => {
  queue.stop();
  void Promise.all([services.stop(), ...runners]).then(() => process.exit(0));
});
