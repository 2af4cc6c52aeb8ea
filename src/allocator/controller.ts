// The allocator: ServiceGroups in, addresses on Services out. Level-triggered: every
// event only enqueues a key; a worker reads the cache, decides with pure functions
// (`decide`, the IPAM) and writes the difference. Nothing is allocated before both
// caches are synced and every address Services already hold is registered, so a
// restart or a new leader never moves or duplicates an address.

import type { Connection } from '../k8s/connection.ts';
import { isDeepStrictEqual } from 'node:util';
import type { V1Service } from '@kubernetes/client-node';
import { IPAM } from '../ipam/ipam.ts';
import type { FailureReason } from '../ipam/pool.ts';
import type { ReservationIssue } from '../ipam/ipam.ts';
import { EventRecorder } from '../k8s/events.ts';
import { Reporter } from '../k8s/reporter.ts';
import { Informer, objectKey } from '../k8s/informer.ts';
import { Api, PATHS } from '../k8s/api.ts';
import { WorkQueue, success } from '../k8s/workqueue.ts';
import type { SyncResult } from '../k8s/workqueue.ts';
import type { Logger } from '../log.ts';
import { ANNOTATIONS, BRAND, REASONS } from '../api/annotations.ts';
import { GROUP } from '../api/meta.ts';
import { createdAt, poolsInForce, recorded, resolveServiceGroups } from '../api/configuration.ts';
import type { GroupState, ServiceGroupConfiguration, ServiceGroupObject } from '../api/configuration.ts';
import { DEFAULT_POLICY, adoption, decide, poolViewOf, servicePorts, sharingKeyOf } from './request.ts';
import type { AllocatorPolicy } from './request.ts';
import { ingressIPs } from '../api/service.ts';
import { planServiceWrites } from './plan.ts';
import { slimService } from '../api/slim.ts';
import { groupStatus } from './status.ts';
import { allocationFailures, allocations } from './metrics.ts';
import type { PoolStats } from '../ipam/pool.ts';

const CONFIG_KEY = '\u0000config';
/** Refusals that an address given back to the pool can cure. */
const WAIT_FOR_ADDRESS: ReadonlySet<FailureReason> = new Set(['PoolExhausted', 'AddressInUse', 'PortConflict', 'SharingKeyBound']);
const SG_VERSION = 'v1';

export interface AllocatorOptions {
  conn: Connection;
  /** Where ServiceGroups live (PureLB: `purelb`). */
  namespace: string;
  /** Pod or host name, for Events. */
  identity: string;
  policy?: AllocatorPolicy;
  workers?: number;
  log: Logger;
}

/** The field an IPAM refusal is about, so that the Event names it; undefined when the message names the ServiceGroup. */
function failureField(reason: FailureReason, addressField: string | undefined, sharingField: string = ANNOTATIONS.allowSharedIP): string | undefined {
  switch (reason) {
    case 'PortConflict':
    case 'SharingKeyBound':
      return sharingField;
    case 'AddressInUse':
      return addressField ?? sharingField;
    case 'OutsidePool':
    case 'InvalidRequest':
      return addressField;
    default:
      return undefined;
  }
}

/**
 * Whether resourceVersion `a` is older than `b`. They are opaque to clients in
 * general; for the etcd-backed built-in types they are etcd revisions (client-go's
 * mutation cache compares them the same way). Anything else counts as not older.
 */
function olderThan(a: string | undefined, b: string): boolean {
  try {
    return a !== undefined && BigInt(a) < BigInt(b);
  } catch {
    return false;
  }
}

export class Allocator {
  readonly services: Informer<V1Service>;
  readonly groups: Informer<ServiceGroupObject>;
  private readonly queue: WorkQueue;
  private readonly api: Api;
  private readonly events: EventRecorder;
  private readonly opts: AllocatorOptions;
  private readonly policy: AllocatorPolicy;
  private readonly log: Logger;
  private ipam: IPAM | undefined;
  private conf: ServiceGroupConfiguration | undefined;
  /**
   * Services refused for want of an address (pool exhausted, address or port taken,
   * sharing key bound elsewhere), by pool: retried when that pool gives addresses
   * back. Other refusals wait for the Service or the configuration to change.
   */
  private readonly waiting = new Map<string, string>();
  /**
   * Our last write to each Service until the cache has caught up with it: the watch
   * event of our metadata patch often arrives before the one of our status patch, and
   * must not make us write the status (and an Event) a second time.
   */
  private readonly unwitnessed = new Map<string, { resourceVersion: string; ips: string; pool: string | undefined }>();
  /**
   * What was reported per Service or ServiceGroup: a retry that fails the same way, a
   * resync or a reconfiguration writes no Event again.
   */
  private readonly reports = new Reporter<'failure' | 'warning' | 'reservation' | 'group'>();
  private readonly statusTimers = new Map<string, NodeJS.Timeout>();
  private workers: Promise<void>[] = [];
  private ready = false;

  constructor(opts: AllocatorOptions) {
    this.opts = opts;
    this.log = opts.log;
    this.policy = opts.policy ?? DEFAULT_POLICY;
    this.api = new Api(opts.conn);
    this.events = new EventRecorder(opts.conn, 'purelb-allocator', opts.identity, opts.log);
    this.queue = new WorkQueue({
      allKeys: () => this.services.keys(),
      onError: (key, err, n) => this.log.warn('sync failed, will retry', { op: 'sync', service: key, err, failures: n }),
    });
    this.services = new Informer<V1Service>(opts.conn, {
      name: 'services',
      path: PATHS.services(),
      // Small pages: a page of typed Services is garbage once slimmed, and 100 of them
      // die young; pages of 500 outlive a scavenge and grow the old generation (measured:
      // ~100 MB more RSS at 10,000 Services).
      pageSize: 100,
      transform: slimService,
      log: opts.log,
    });
    const ns = opts.namespace;
    this.groups = new Informer<ServiceGroupObject>(opts.conn, {
      name: 'servicegroups',
      path: PATHS.custom(GROUP, SG_VERSION, ns, 'servicegroups'),
      log: opts.log,
    });
    this.services.on((e) => this.queue.add(objectKey(e.obj)));
    // Our own status writes come back as updates with the same generation: they must
    // not rebuild the configuration and resync every Service.
    this.groups.on((e) => {
      if (e.type === 'update' && e.old.metadata?.generation === e.obj.metadata?.generation) return;
      this.queue.add(CONFIG_KEY);
    });
  }

  isReady(): boolean {
    return this.ready;
  }

  /** Sizes and use per ServiceGroup, for metrics. */
  poolStats(): readonly PoolStats[] {
    return this.ipam?.stats() ?? [];
  }

  /** Syncs, registers existing allocations, then starts the workers. */
  async start(): Promise<void> {
    const t0 = Date.now();
    await Promise.all([this.services.start(), this.groups.start()]);
    const synced = Date.now();
    await this.configure();
    const reserved = this.reserveExisting() + this.reserveAdoptable();
    this.queue.addAll(this.services.keys());
    const n = this.opts.workers ?? 8;
    this.workers = Array.from({ length: n }, () => this.queue.run((key) => this.sync(key)));
    this.ready = true;
    this.log.info('allocator ready', { op: 'start', services: this.services.keys().length, reserved, syncMs: synced - t0, readyMs: Date.now() - t0 });
  }

  async stop(): Promise<void> {
    this.queue.stop();
    for (const t of this.statusTimers.values()) clearTimeout(t);
    await Promise.all([this.services.stop(), this.groups.stop(), ...this.workers]);
  }

  /** True when nothing is queued or in flight (for tests and benchmarks). */
  idle(): boolean {
    return this.queue.idle();
  }

  private async sync(key: string): Promise<SyncResult> {
    if (key === CONFIG_KEY) return (await this.configure()) ? { kind: 'reprocessAll' } : success;
    return this.syncService(key);
  }

  // ---- configuration ----

  /**
   * Builds the configuration from the ServiceGroups; false when it is what is already in
   * force. A group whose record of what is in force changes gets it written first: the
   * IPAM (and so any allocation) uses it only once the agents can read it too. A failed
   * write throws, and the queue retries the whole step.
   */
  private async configure(): Promise<boolean> {
    const objects = this.groups.list();
    const conf = resolveServiceGroups(objects);
    // A ServiceGroup event that changes nothing in force (the informer's first list,
    // a label edit) must not rebuild the IPAM: with thousands of Services that is a
    // burst of garbage and a pass over every Service for nothing.
    if (this.ipam !== undefined && this.conf !== undefined && isDeepStrictEqual([...conf.groups], [...this.conf.groups])) {
      for (const obj of objects) {
        this.reportGroup(obj);
        const state = conf.groups.get(obj.metadata?.name ?? '');
        if (state && !recorded(obj, state)) this.scheduleGroupStatus(state.name);
      }
      return false;
    }
    const stale = objects.flatMap((obj) => {
      const state = conf.groups.get(obj.metadata?.name ?? '');
      return state && !recorded(obj, state) ? [{ obj, state }] : [];
    });
    await Promise.all(stale.map(({ obj, state }) => this.writeStatus(obj, state)));
    let issues: readonly ReservationIssue[] = [];
    if (this.ipam === undefined) {
      const built = IPAM.build(poolsInForce(conf));
      if (!built.ok) throw new Error(`configuration still overlaps: ${built.error.map((o) => o.message).join('; ')}`);
      this.ipam = built.value;
    } else {
      const re = this.ipam.reconfigure(poolsInForce(conf));
      if (!re.ok) throw new Error(`configuration still overlaps: ${re.error.map((o) => o.message).join('; ')}`);
      this.ipam = re.value.ipam;
      issues = re.value.issues;
    }
    const rebuilt = this.conf !== undefined;
    this.conf = conf;
    this.reportIssues(issues);
    // New pools may contain addresses another controller gave: held before any resync allocates.
    if (rebuilt) this.reserveAdoptable();
    for (const obj of objects) this.reportGroup(obj);
    for (const obj of objects) this.scheduleGroupStatus(obj.metadata?.name ?? '');
    return true;
  }

  /** Warning Events on a ServiceGroup whose spec is not (fully) in force; once per distinct problem. */
  private reportGroup(obj: ServiceGroupObject): void {
    const name = obj.metadata?.name ?? '';
    const state = this.conf?.groups.get(name);
    if (!state) return;
    const problems = [...state.errors, ...state.warnings].map((i) => `${i.field}: ${i.message}${i.value ? ` (value "${i.value}")` : ''}`);
    if (problems.length === 0) {
      this.reports.clear('group', name);
      return;
    }
    this.reports.say('group', name, `${obj.metadata?.generation}|${problems.join('|')}`, () => this.recordGroupProblems(obj, state, problems));
  }

  private recordGroupProblems(obj: ServiceGroupObject, state: GroupState, problems: string[]): void {
    const name = state.name;
    const kept = state.errors.length > 0 ? (state.config ? ' The last good configuration stays in force.' : ' The group is not in use.') : '';
    const target = { apiVersion: `${GROUP}/${SG_VERSION}`, kind: 'ServiceGroup', obj };
    const type = state.errors.length > 0 ? 'Warning' : 'Normal';
    this.events.record(target, type === 'Warning' ? 'Warning' : 'Normal', REASONS.configurationWarning, `${problems.join('; ')}.${kept}`);
    this.log.warn('ServiceGroup problem', { op: 'config', group: name, problems });
  }

  /**
   * Reports the problems of existing allocations (`issues` is the complete list) once
   * per Service and set of problems, not again on every reconfiguration.
   */
  private reportIssues(issues: readonly ReservationIssue[]): void {
    const byService = new Map<string, ReservationIssue[]>();
    for (const issue of issues) byService.set(issue.service, [...(byService.get(issue.service) ?? []), issue]);
    for (const service of this.reports.objects('reservation')) if (!byService.has(service)) this.reports.clear('reservation', service);
    for (const [service, list] of byService) {
      this.reports.say('reservation', service, list.map((i) => i.message).join('|'), () => {
        const svc = this.services.get(service);
        for (const issue of list) {
          this.log.warn('existing allocation outside the rules', { op: 'reserve', service, ip: issue.address, reason: issue.reason });
          if (svc) this.events.record({ apiVersion: 'v1', kind: 'Service', obj: svc }, 'Warning', REASONS.configurationWarning, `${issue.message}; the address is kept until the Service or the pools change`);
        }
      });
    }
  }

  private scheduleGroupStatus(name: string): void {
    if (name === '' || this.statusTimers.has(name)) return;
    const t = setTimeout(() => {
      this.statusTimers.delete(name);
      this.writeGroupStatus(name).catch((err: unknown) => this.log.warn('ServiceGroup status not written', { op: 'status', group: name, err }));
    }, 500);
    t.unref();
    this.statusTimers.set(name, t);
  }

  private async writeGroupStatus(name: string): Promise<void> {
    const obj = this.groups.get(`${this.opts.namespace}/${name}`);
    const state = this.conf?.groups.get(name);
    if (obj && state) await this.writeStatus(obj, state);
  }

  /** The whole status, replaced (the allocator owns it): a merge patch would keep fields of an older in-force spec. */
  private async writeStatus(obj: ServiceGroupObject, state: GroupState): Promise<void> {
    const name = state.name;
    const stats = this.ipam?.stats().find((s) => s.name === name);
    const outside = this.ipam?.outsideRanges().filter((o) => this.ipam?.allocation(o.service)?.pool === name) ?? [];
    const status = groupStatus(obj, state, stats, outside);
    if (isDeepStrictEqual(status, obj.status)) return;
    await this.api.patch(PATHS.customStatus(GROUP, SG_VERSION, this.opts.namespace, 'servicegroups', name), [{ op: 'add', path: '/status', value: status }], 'json');
  }

  // ---- services ----

  /** Registers every address that Services already hold, oldest Service first. */
  private reserveExisting(): number {
    const ipam = this.ipam as IPAM;
    const branded = this.services
      .list()
      .filter((s) => s.metadata?.annotations?.[ANNOTATIONS.allocatedBy] === BRAND && ingressIPs(s).length > 0)
      .map((s) => ({ s, at: createdAt(s) }))
      .sort((a, b) => a.at - b.at)
      .map(({ s }) => s);
    const issues: ReservationIssue[] = [];
    for (const svc of branded) {
      const from = svc.metadata?.annotations?.[ANNOTATIONS.allocatedFrom];
      const key = sharingKeyOf(svc, this.policy);
      issues.push(
        ...ipam.reserve(objectKey(svc), {
          ...(from ? { pool: from } : {}),
          addresses: ingressIPs(svc),
          ...(key ? { sharingKey: key } : {}),
          ports: servicePorts(svc),
        }),
      );
    }
    this.reportIssues(issues);
    return branded.length;
  }

  /**
   * Registers the addresses that Services hold from another controller (MetalLB, OpenELB)
   * and that lie in one of our pools, oldest Service first, so that a takeover moves none:
   * each is kept when its Service syncs (`decide`), and no other Service can take it first.
   */
  private reserveAdoptable(): number {
    const ipam = this.ipam as IPAM;
    const pools = poolViewOf(ipam, this.conf as ServiceGroupConfiguration);
    const found = this.services
      .list()
      .filter((s) => ipam.allocation(objectKey(s)) === undefined)
      .flatMap((s) => {
        const a = adoption(s, pools, this.policy);
        return a ? [{ s, a, at: createdAt(s) }] : [];
      })
      .sort((x, y) => x.at - y.at);
    for (const { s, a } of found) {
      const issues = ipam.reserve(objectKey(s), { ...a, ports: servicePorts(s) });
      for (const issue of issues) this.log.warn('address held from another controller outside the rules', { op: 'adopt', service: issue.service, ip: issue.address, reason: issue.reason });
    }
    return found.length;
  }

  /** Records an AllocationFailed Event and log line, unless this Service already failed this way. */
  private fail(key: string, svc: V1Service, message: string, fields: Record<string, unknown> = {}): void {
    allocationFailures.inc({ reason: typeof fields.reason === 'string' ? fields.reason : 'InvalidRequest' });
    this.reports.say('failure', key, `${svc.metadata?.uid}|${message}`, () => {
      this.events.record({ apiVersion: 'v1', kind: 'Service', obj: svc }, 'Warning', REASONS.allocationFailed, message);
      this.log.warn('allocation failed', { op: 'allocate', service: key, err: message, ...fields });
    });
  }

  private forget(key: string): void {
    this.unwitnessed.delete(key);
    this.waiting.delete(key);
    this.reports.forget(key);
  }

  private async syncService(key: string): Promise<SyncResult> {
    const ipam = this.ipam as IPAM;
    const svc = this.services.get(key);
    if (svc === undefined) {
      const gone = ipam.release(key);
      this.forget(key);
      if (gone.length > 0) {
        this.log.info('released addresses of deleted Service', { op: 'release', service: key, ip: gone.map((a) => a.address).join(',') });
        this.afterChange(gone.map((a) => a.pool), gone.map((a) => a.pool));
      }
      return success;
    }
    const target = { apiVersion: 'v1', kind: 'Service', obj: svc };
    const decision = decide(svc, poolViewOf(this.ipam as IPAM, this.conf as ServiceGroupConfiguration), this.policy);
    this.warnOnce(key, svc, decision.kind === 'notOurs' ? [] : decision.warnings);

    if (decision.kind === 'notOurs') {
      this.unwitnessed.delete(key);
      this.waiting.delete(key);
      this.reports.clear('failure', key);
      const gone = ipam.release(key);
      const branded = svc.metadata?.annotations?.[ANNOTATIONS.allocatedBy] === BRAND;
      if (branded) {
        await this.clearService(svc);
        const ips = gone.map((a) => a.address).join(', ') || ingressIPs(svc).join(', ');
        this.events.record(target, 'Normal', REASONS.addressReleased, `Released ${ips}: ${decision.why}`);
        this.log.info('released addresses', { op: 'release', service: key, ip: ips, why: decision.why });
      }
      if (gone.length > 0) this.afterChange(gone.map((a) => a.pool), gone.map((a) => a.pool));
      return success;
    }
    if (decision.kind === 'invalid') {
      this.waiting.delete(key);
      this.fail(key, svc, decision.message);
      return success;
    }

    const before = ipam.allocation(key);
    const result = ipam.allocate(key, decision.request);
    if (!result.ok) {
      if (WAIT_FOR_ADDRESS.has(result.error.reason)) this.waiting.set(key, decision.request.pool);
      else this.waiting.delete(key);
      const field = failureField(result.error.reason, decision.addressField, decision.sharingField);
      const msg = `${field ? `${field}: ` : ''}${result.error.message}${before ? `; keeping ${before.addresses.map((a) => a.address).join(', ')}` : ''}`;
      this.fail(key, svc, msg, { reason: result.error.reason });
      return success;
    }
    this.waiting.delete(key);
    this.reports.clear('failure', key);
    const alloc = result.value;
    const writes = planServiceWrites(svc, alloc);
    const ips = writes.ips;
    const written = this.unwitnessed.get(key);
    if (written !== undefined) {
      // The cache is behind our own last write of exactly this: writing again would
      // only repeat it. The write's watch event brings the key back.
      if (olderThan(svc.metadata?.resourceVersion, written.resourceVersion) && written.ips === ips.join() && written.pool === alloc.pool) return success;
      this.unwitnessed.delete(key);
    }
    let writtenVersion: string | undefined;
    if (writes.meta) {
      const res = await this.api.patch<V1Service>(PATHS.service(svc.metadata?.namespace ?? '', svc.metadata?.name ?? ''), {
        metadata: { annotations: { [ANNOTATIONS.allocatedBy]: BRAND, [ANNOTATIONS.allocatedFrom]: alloc.pool ?? '' } },
      });
      writtenVersion = res.metadata?.resourceVersion;
      if (decision.adopted) this.events.record(target, 'Normal', REASONS.addressAdopted, `Kept ${ips.join(', ')}, given by another controller, in pool ${alloc.pool}`);
    }
    if (writes.status) {
      const res = await this.api.patch<V1Service>(PATHS.serviceStatus(svc.metadata?.namespace ?? '', svc.metadata?.name ?? ''), { status: { loadBalancer: { ingress: writes.ingress } } });
      writtenVersion = res.metadata?.resourceVersion;
      if (writes.released.length > 0) this.events.record(target, 'Normal', REASONS.addressReleased, `Released ${writes.released.join(', ')}`);
      this.events.record(target, 'Normal', REASONS.addressAssigned, `Assigned ${ips.join(', ')} from pool ${alloc.pool}`);
      allocations.inc({ pool: alloc.pool ?? '' });
      this.log.info('assigned addresses', { op: 'allocate', service: key, ip: ips.join(','), pool: alloc.pool });
    }
    if (writtenVersion !== undefined) this.unwitnessed.set(key, { resourceVersion: writtenVersion, ips: ips.join(), pool: alloc.pool });
    if (alloc.changed || writes.status) {
      // A Service that moved gave its old addresses back.
      const freed = before !== undefined && before.addresses.some((b) => !alloc.addresses.some((a) => a.address === b.address));
      this.afterChange([alloc.pool, before?.pool], freed ? [before.pool] : []);
    }
    return success;
  }

  /** ConfigurationWarning Events once per Service generation, not on every sync. */
  private warnOnce(key: string, svc: V1Service, warnings: readonly string[]): void {
    if (warnings.length === 0) {
      this.reports.clear('warning', key);
      return;
    }
    this.reports.say('warning', key, `${svc.metadata?.generation}|${warnings.join('|')}`, () => {
      for (const w of warnings) this.events.record({ apiVersion: 'v1', kind: 'Service', obj: svc }, 'Warning', REASONS.configurationWarning, w);
    });
  }

  /** After addresses changed hands in `pools`: their status; and where some were `freed`, the Services waiting there. */
  private afterChange(pools: ReadonlyArray<string | undefined>, freed: ReadonlyArray<string | undefined>): void {
    for (const p of new Set(pools)) if (p) this.scheduleGroupStatus(p);
    const gaveBack = new Set(freed);
    if (gaveBack.size > 0) for (const [key, pool] of this.waiting) if (gaveBack.has(pool)) this.queue.add(key);
  }

  /** Removes our addresses and brand from a Service that is no longer ours. */
  private async clearService(svc: V1Service): Promise<void> {
    const name = svc.metadata?.name ?? '';
    const namespace = svc.metadata?.namespace ?? '';
    if (ingressIPs(svc).length > 0) {
      try {
        await this.api.patch(PATHS.serviceStatus(namespace, name), { status: { loadBalancer: { ingress: null } } });
      } catch (err) {
        // The API server itself drops the status of a Service that left type LoadBalancer.
        if ((err as { code?: number }).code !== 422) throw err;
      }
    }
    await this.api.patch(PATHS.service(namespace, name), { metadata: { annotations: { [ANNOTATIONS.allocatedBy]: null, [ANNOTATIONS.allocatedFrom]: null } } });
  }
}
