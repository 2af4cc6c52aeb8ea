// The node agent: keeps the kernel's addresses equal to `desiredAnnouncements(snapshot)`.
// Every trigger — an API event, a membership change, a netlink notification, the
// periodic timer — asks for one reconcile; reconciles never overlap and coalesce. Each
// reconcile reads the kernel afresh, so a VIP deleted by hand comes back and a stray
// VIP an earlier run added goes away. Only addresses marked as ours are ever touched.
//
// The stages, each pure but the last: snapshot (snapshot.ts, from the informers and
// membership) → desired (desired.ts) → plan (plan.ts, against the kernel's addresses)
// → apply (here: netlink, announcements, then the announcing annotations beside).

import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { KubeConfig, V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { DiscoveryV1Api } from '@kubernetes/client-node';
import { DEFAULT_LBNODEAGENT_CONFIG, formatIssue } from '../api/normalize.ts';
import type { LBNodeAgentConfig } from '../api/normalize.ts';
import { selects } from '../api/selector.ts';
import { EventRecorder } from '../k8s/events.ts';
import { Informer } from '../k8s/informer.ts';
import type { Logger } from '../log.ts';
import type { HostNetwork, Link } from '../netlink/host-network.ts';
import { ANNOTATIONS, REASONS } from '../api/annotations.ts';
import { GROUP } from '../api/meta.ts';
import type { Announcer } from './announce/announcer.ts';
import { desiredAnnouncements } from './desired.ts';
import { chooseAgentConfig } from './agent-config.ts';
import { resolveLocalInterface } from './local-interface.ts';
import { planKernel } from './plan.ts';
import { buildSnapshot } from './snapshot.ts';
import type { KernelPlan } from './plan.ts';
import type { Announcement, Snapshot } from './desired.ts';
import { mergeAnnouncing, ownedEntries } from './announcing.ts';
import type { OwnedEntries } from './announcing.ts';
import type { Family } from '../ipam/address.ts';
import type { MembershipSource } from './membership.ts';
import { announcedAddresses, electionChanges, reconcileSeconds, takeoverSeconds } from './metrics.ts';

const mergePatch = () => setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

interface CustomObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; uid?: string; generation?: number };
  spec?: unknown;
  status?: unknown;
}

export interface AgentOptions {
  kc: KubeConfig;
  namespace: string;
  node: string;
  net: HostNetwork;
  announcer: Announcer;
  membership: MembershipSource & {
    start(subnets: readonly string[], eligible: boolean): Promise<void>;
    publish(subnets: readonly string[], eligible: boolean): Promise<void>;
    stop(): Promise<void>;
  };
  log: Logger;
  /** Periodic re-read of the kernel to repair drift; shorter when lifetimes need renewing sooner. */
  reconcileIntervalMs?: number;
}

export interface AgentStats {
  reconciles: number;
  added: number;
  removed: number;
  lastReconcileMs: number;
}

/** The label Kubernetes itself uses to keep a node out of load balancers' target sets. */
const EXCLUDE_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';

export class Agent {
  private readonly opts: AgentOptions;
  private readonly log: Logger;
  private readonly core: CoreV1Api;
  private readonly services: Informer<V1Service>;
  private readonly slices: Informer<V1EndpointSlice>;
  private readonly groups: Informer<CustomObject>;
  private readonly agents: Informer<CustomObject>;
  private readonly events: EventRecorder;
  private config: LBNodeAgentConfig = DEFAULT_LBNODEAGENT_CONFIG;
  private configProblems = '';
  private nodeLabels: Record<string, string> = {};
  /** This node is cordoned (`kubectl cordon`/`drain`) or excluded from load balancers: it hands everything over. */
  private outOfService = false;
  private readonly self: Informer<V1Node>;
  private localLink: Link | undefined;
  private localSubnets: string[] = [];
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private started = false;
  private reconciled: () => void = () => {};
  private readonly firstReconcile = new Promise<void>((resolve) => (this.reconciled = resolve));
  private timer: { handle: NodeJS.Timeout; everyMs: number } | undefined;
  private unwatch: (() => void) | undefined;
  /** The annotation part this agent last wrote, per service (a fingerprint). */
  private announced = new Map<string, string>();
  /** What this agent announced last, per service: `ip|interface`, for Events. */
  private readonly announcedIps = new Map<string, Set<string>>();
  /** `family|service` whose dummy-interface entries this agent wrote last. */
  private readonly nonlocalWriter = new Set<string>();
  private readonly garpAborts = new Map<string, AbortController>();
  /** The kernel read in flight for holds(), shared. */
  private holdings: Promise<Set<string>> | undefined;
  /** Bumped by every informer event and membership change. */
  private inputsVersion = 0;
  private decided: { version: string; snapshot: Snapshot; desired: Announcement[]; annotated: boolean } | undefined;
  private pendingAnnotations: { desired: Announcement[]; snapshot: Snapshot } | undefined;
  private annotating: Promise<void> | undefined;
  /** When the membership last changed and no reconcile has acted on it yet. */
  private membershipChangedAt: number | undefined;
  private localSet = '';
  readonly stats: AgentStats = { reconciles: 0, added: 0, removed: 0, lastReconcileMs: 0 };

  constructor(opts: AgentOptions) {
    this.opts = opts;
    this.log = opts.log;
    const { kc, namespace } = opts;
    this.core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    this.events = new EventRecorder(kc, 'purelb-lbnodeagent', opts.node, opts.log);
    this.services = new Informer<V1Service>(kc, { name: 'services', path: '/api/v1/services', list: () => this.core.listServiceForAllNamespaces(), log: opts.log });
    this.slices = new Informer<V1EndpointSlice>(kc, {
      name: 'endpointslices',
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      list: () => discovery.listEndpointSliceForAllNamespaces(),
      log: opts.log,
    });
    const customInformer = (plural: string) =>
      new Informer<CustomObject>(kc, {
        name: plural,
        path: `/apis/${GROUP}/v1/namespaces/${namespace}/${plural}`,
        list: () => custom.listNamespacedCustomObject({ group: GROUP, version: 'v1', namespace, plural }) as Promise<{ items: CustomObject[] }>,
        log: opts.log,
      });
    this.groups = customInformer('servicegroups');
    this.agents = customInformer('lbnodeagents');
    const ownNode = `metadata.name=${opts.node}`;
    this.self = new Informer<V1Node>(kc, { name: 'node', path: '/api/v1/nodes', fieldSelector: ownNode, list: () => this.core.listNode({ fieldSelector: ownNode }), log: opts.log });
    this.self.on(() => void this.nodeChanged());
    const changed = () => {
      this.inputsVersion++;
      this.trigger();
    };
    this.services.on(changed);
    this.slices.on(changed);
    this.groups.on(changed);
    this.agents.on(changed);
    opts.membership.onChange(() => {
      this.membershipChangedAt ??= performance.now();
      this.inputsVersion++;
      this.trigger();
    });
  }

  /**
   * The own Node's labels (for nodeSelector) and whether it is in service. A node that is
   * cordoned, as `kubectl drain` does, or labelled node.kubernetes.io/exclude-from-external-load-balancers
   * leaves the membership first (peers take its layer-2 VIPs at once) and then withdraws,
   * like a graceful stop; uncordoned, it comes back.
   */
  private async nodeChanged(): Promise<void> {
    const node = this.self.get(this.opts.node);
    if (!node) return;
    const before = this.eligible();
    this.nodeLabels = node.metadata?.labels ?? {};
    this.outOfService = node.spec?.unschedulable === true || EXCLUDE_LABEL in this.nodeLabels;
    const now = this.eligible();
    if (this.started && now !== before) {
      this.log.info(now ? 'node back in service' : 'node out of service: handing over', { op: 'node', node: this.opts.node });
      await this.opts.membership.publish(this.localSubnets, now);
    }
    this.inputsVersion++;
    this.trigger();
  }

  async start(): Promise<void> {
    const t0 = Date.now();
    await Promise.all([this.services.start(), this.slices.start(), this.groups.start(), this.agents.start()]);
    // Without its Node (not there yet, or no right to read it) the agent still serves, with no labels.
    const nodeSynced = await Promise.race([this.self.start().then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 5000).unref())]);
    if (!nodeSynced) this.log.warn('cannot read own Node object; nodeSelector sees no labels, cordon is not seen', { op: 'start', node: this.opts.node });
    await this.nodeChanged();
    const synced = Date.now();
    this.pickConfig();
    await this.resolveLocalInterface();
    await this.opts.membership.start(this.localSubnets, this.eligible());
    this.log.debug('agent start phases', { op: 'start', syncMs: synced - t0, membershipMs: Date.now() - synced });
    // Drift and topology: one of our addresses removed (by hand, or expired), a node
    // address or link changing, lost notifications. Our own adds and lifetime refreshes
    // are ignored, or every refresh would trigger the next.
    const sub = this.opts.net.watch((e) => {
      if (e.type === 'address-added' && e.address.ours) return;
      this.trigger();
    });
    this.unwatch = () => sub.close();
    this.armTimer();
    this.started = true;
    this.trigger();
    await this.firstReconcile;
  }

  /**
   * Withdraws what this agent announces, leaves the membership, and stops. With
   * `keepRouted` (a restart: the DaemonSet brings the agent back on this node) the
   * addresses on the dummy interface stay for the next agent to adopt: routed VIPs are
   * on every eligible node anyway, so keeping them cannot duplicate anything, and the
   * router keeps this node as a next hop instead of losing and relearning it. Layer-2
   * VIPs are always handed over, since only one node may hold each.
   */
  async stop(opts: { keepRouted?: boolean } = {}): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer.handle);
    this.unwatch?.();
    for (const a of this.garpAborts.values()) a.abort();
    // Leave first: peers re-elect while we withdraw, so the hand-over gap is short.
    await Promise.allSettled([this.opts.membership.stop(), this.running]);
    const kept = opts.keepRouted ? (await this.opts.net.findLink(this.config.dummyInterface))?.index : undefined;
    const ours = (await this.opts.net.listAddresses({ ours: true })).filter((a) => a.ifindex !== kept);
    await this.opts.net.deleteAddresses(ours.map((a) => ({ ifindex: a.ifindex, ip: a.ip, prefix: a.prefix })));
    // Annotations are cleaned up when the API server answers soon; the addresses are already gone.
    this.pendingAnnotations = undefined;
    const cleanup = (async () => {
      await this.annotating;
      const none = (): Record<Family, OwnedEntries> => {
        const empty = (): OwnedEntries => ({ node: this.opts.node, dummyInterface: this.config.dummyInterface, local: [], nonlocal: undefined });
        return { IPv4: empty(), IPv6: empty() };
      };
      await Promise.allSettled([...this.announced.keys()].map((key) => this.writeAnnouncing(key, none())));
    })();
    await Promise.race([cleanup, new Promise((r) => setTimeout(r, 3000).unref())]);
    await Promise.all([this.self.stop(), this.services.stop(), this.slices.stop(), this.groups.stop(), this.agents.stop()]);
  }

  /** Asks for a reconcile; runs now or right after the one in progress. */
  trigger(): void {
    // Events that arrive while start() reads the kernel wait for the first reconcile.
    if (this.stopped || !this.started) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.reconcile();
        } catch (err) {
          this.log.error('reconcile failed', { op: 'reconcile', node: this.opts.node, err });
        }
        this.reconciled();
      } while (this.again && !this.stopped);
      this.running = undefined;
    })();
  }

  /**
   * The periodic pass, at least three times per finite address lifetime: every pass
   * renews the lifetimes, so an address expires only when the agent is gone.
   */
  private armTimer(): void {
    const finite = [this.config.addresses.local, this.config.addresses.dummy].map((a) => a.validLifetime).filter((s) => s > 0);
    const everyMs = Math.min(this.opts.reconcileIntervalMs ?? 10_000, ...finite.map((s) => (s * 1000) / 3));
    if (this.timer?.everyMs === everyMs) return;
    if (this.timer) clearInterval(this.timer.handle);
    this.timer = { handle: setInterval(() => this.trigger(), everyMs), everyMs };
    this.timer.handle.unref();
  }

  private eligible(): boolean {
    return !this.outOfService && selects(this.config.nodeSelector, this.nodeLabels);
  }

  /** The LBNodeAgent in force for this node (agent-config.ts); a Warning Event names its problems once. */
  private pickConfig(): void {
    const { config, chosen, issues, refused } = chooseAgentConfig(this.agents.list(), this.nodeLabels, this.config);
    this.config = config;
    const problems = issues.map((i) => `${formatIssue(i)}${i.value === '' ? '' : ` (value "${i.value}")`}`).join('; ');
    if (chosen && problems !== '' && problems !== this.configProblems) {
      const kept = refused ? '; the configuration in use stays' : '';
      this.events.record({ apiVersion: `${GROUP}/v1`, kind: 'LBNodeAgent', obj: chosen as never }, 'Warning', REASONS.configurationWarning, `node ${this.opts.node}: ${problems}${kept}`);
    }
    this.configProblems = problems;
  }

  private async resolveLocalInterface(): Promise<void> {
    const { link, subnets } = await resolveLocalInterface(this.opts.net, this.config);
    if (link?.name !== this.localLink?.name) this.log.info('local interface', { op: 'config', node: this.opts.node, interface: link?.name ?? '(none)', subnets });
    this.localLink = link;
    this.localSubnets = subnets;
  }

  private snapshot(): Snapshot {
    return buildSnapshot({
      self: {
        node: this.opts.node,
        localInterface: this.localLink ? { name: this.localLink.name, subnets: this.localSubnets } : undefined,
        dummyInterface: this.config.dummyInterface,
        eligible: this.eligible(),
      },
      services: this.services.list(),
      slices: this.slices.list(),
      groups: this.groups.list(),
      members: this.opts.membership.members(),
      deafPeers: this.opts.membership.deafPeers?.() ?? new Set(),
    });
  }

  private async reconcile(): Promise<void> {
    const t0 = performance.now();
    const changedAt = this.membershipChangedAt;
    this.membershipChangedAt = undefined;
    this.pickConfig();
    this.armTimer();
    const before = this.localSubnets.join(',');
    await this.resolveLocalInterface();
    if (before !== this.localSubnets.join(',')) await this.opts.membership.publish(this.localSubnets, this.eligible());
    // The snapshot and the decision are recomputed only when an input changed; the
    // periodic pass (drift repair, lifetime renewal) then costs a kernel read and a diff.
    const version = `${this.inputsVersion}|${this.localSubnets.join(',')}|${this.eligible()}`;
    if (this.decided?.version !== version) {
      const snap = this.snapshot();
      this.decided = { version, snapshot: snap, desired: desiredAnnouncements(snap), annotated: false };
    }
    const { snapshot, desired } = this.decided;
    const added = await this.applyKernel(desired, changedAt !== undefined);
    if (changedAt !== undefined && added > 0) takeoverSeconds.observe((performance.now() - changedAt) / 1000);
    const localSet = desired.filter((d) => d.kind === 'local').map((d) => d.ip).sort().join(',');
    if (localSet !== this.localSet) electionChanges.inc();
    this.localSet = localSet;
    announcedAddresses.set({ kind: 'local' }, new Set(desired.filter((d) => d.kind === 'local').map((d) => d.ip)).size);
    announcedAddresses.set({ kind: 'nonlocal' }, new Set(desired.filter((d) => d.kind === 'nonlocal').map((d) => d.ip)).size);
    if (!this.decided.annotated) {
      this.decided.annotated = true;
      this.scheduleAnnotations(desired, snapshot);
    }
    this.stats.reconciles++;
    this.stats.lastReconcileMs = performance.now() - t0;
    reconcileSeconds.observe(this.stats.lastReconcileMs / 1000);
    if (this.stats.lastReconcileMs > 1000) this.log.warn('slow reconcile', { op: 'reconcile', ms: Math.round(this.stats.lastReconcileMs), desired: desired.length });
  }

  /** Makes the kernel match (see plan.ts); returns how many addresses were newly added. */
  private async applyKernel(desired: Announcement[], membershipChanged: boolean): Promise<number> {
    const net = this.opts.net;
    const links = new Map((await net.listLinks()).map((l) => [l.name, l]));
    if (desired.some((d) => d.kind === 'nonlocal') && !links.has(this.config.dummyInterface)) {
      const { link } = await net.ensureDummyLink(this.config.dummyInterface);
      links.set(link.name, link);
    }
    const plan = planKernel(desired, links, await net.listAddresses({ ours: true }), this.config, membershipChanged);
    if (plan.remove.length > 0) {
      for (const r of plan.remove) this.garpAborts.get(r.ip)?.abort();
      const results = await net.deleteAddresses(plan.remove.map((a) => ({ ifindex: a.ifindex, ip: a.ip, prefix: a.prefix })));
      for (const r of results) {
        if (r.outcome === 'deleted') this.log.info('withdrew address', { op: 'withdraw', node: this.opts.node, ip: r.key.ip });
        else if (r.outcome !== 'absent') this.log.warn('address not withdrawn', { op: 'withdraw', ip: r.key.ip, outcome: r.outcome });
      }
      this.stats.removed += results.filter((r) => r.outcome === 'deleted').length;
    }
    for (const w of plan.reannounce) this.sendGarp(w.interface, w.ip);
    if (plan.add.length === 0) return 0;
    let addedCount = 0;
    const results = await net.addAddresses(plan.add.map((a) => a.spec));
    for (const [i, r] of results.entries()) {
      const w = (plan.add[i] as KernelPlan['add'][number]).announcement;
      if (r.outcome === 'added') {
        this.stats.added++;
        addedCount++;
        this.log.info('announced address', { op: 'announce', node: this.opts.node, ip: w.ip, interface: w.interface, kind: w.kind });
        if (w.kind === 'local' && this.config.garp.enabled) this.sendGarp(w.interface, w.ip);
      } else if (r.outcome === 'foreign') {
        this.log.warn('address already on the node and not ours: left alone', { op: 'announce', ip: w.ip, interface: w.interface });
      } else if (r.outcome === 'failed') {
        this.log.error('could not add address', { op: 'announce', ip: w.ip, interface: w.interface, err: r.error });
      }
    }
    return addedCount;
  }

  private sendGarp(ifname: string, ip: string): void {
    this.garpAborts.get(ip)?.abort();
    const abort = new AbortController();
    this.garpAborts.set(ip, abort);
    const g = this.config.garp;
    const verify = g.verifyBeforeSend ? { verify: () => this.holds(ifname, ip) } : {};
    this.opts.announcer
      .announce(ifname, ip, { count: g.count, intervalMs: g.intervalMs, initialDelayMs: g.initialDelayMs, signal: abort.signal, ...verify })
      .catch((err: unknown) => this.log.warn('gratuitous announcement failed', { op: 'garp', ip, interface: ifname, err }))
      .finally(() => {
        if (this.garpAborts.get(ip) === abort) this.garpAborts.delete(ip);
      });
  }

  /**
   * Whether `ifname` still carries our `ip` (garpConfig.verifyBeforeSend). One kernel
   * read serves every check asked for while it runs: after a failover hundreds of
   * bursts start at once.
   */
  private async holds(ifname: string, ip: string): Promise<boolean> {
    this.holdings ??= this.opts.net
      .listAddresses({ ours: true })
      .then(async (ours) => {
        const names = new Map((await this.opts.net.listLinks()).map((l) => [l.index, l.name]));
        return new Set(ours.map((a) => `${names.get(a.ifindex)}|${a.ip}`));
      })
      .finally(() => (this.holdings = undefined));
    return (await this.holdings).has(`${ifname}|${ip}`);
  }

  /**
   * API writes run beside the reconcile loop, never inside it: while the API server is
   * slow or away, the kernel side (including the dead-man lifetimes) keeps its pace.
   * Only the latest desired state is written when several pile up.
   */
  private scheduleAnnotations(desired: Announcement[], snapshot: Snapshot): void {
    this.pendingAnnotations = { desired, snapshot };
    if (this.annotating) return;
    this.annotating = (async () => {
      for (let d = this.pendingAnnotations; d !== undefined; d = this.pendingAnnotations) {
        this.pendingAnnotations = undefined;
        try {
          await this.applyAnnotations(d.desired, d.snapshot);
        } catch (err) {
          this.log.warn('announcing annotations not written', { op: 'annotate', err });
          if (this.decided) this.decided.annotated = false;
        }
      }
      this.annotating = undefined;
    })();
  }

  /** Keeps `purelb.io/announcing-*` and Events in line with what this node announces. */
  private async applyAnnotations(desired: Announcement[], snapshot: Snapshot): Promise<void> {
    const mine = new Map<string, Announcement[]>();
    for (const d of desired) mine.set(d.service, [...(mine.get(d.service) ?? []), d]);
    const views = new Map(snapshot.services.map((v) => [v.key, v]));
    const keys = new Set([...views.keys(), ...this.announced.keys(), ...[...this.nonlocalWriter].map((k) => k.slice(k.indexOf('|') + 1))]);
    const work: Array<Promise<void>> = [];
    for (const key of keys) {
      const svc = this.services.get(key);
      if (!svc) {
        this.forgetWritten(key);
        continue;
      }
      const owned = ownedEntries(snapshot, key, views.get(key), mine.get(key) ?? [], this.config.dummyInterface, (f) => this.nonlocalWriter.has(`${f}|${key}`));
      const fingerprint = JSON.stringify(owned);
      if (this.announced.get(key) === fingerprint && !this.annotationsDiffer(svc, owned)) continue;
      const announcing = mine.get(key) ?? [];
      const before = this.announcedIps.get(key) ?? new Set<string>();
      for (const d of announcing) {
        if (before.has(`${d.ip}|${d.interface}`)) continue;
        const reason = d.kind === 'local' ? REASONS.announcingLocal : REASONS.announcingNonLocal;
        this.events.record({ apiVersion: 'v1', kind: 'Service', obj: svc }, 'Normal', reason, `Node ${this.opts.node} announcing ${d.ip} on interface ${d.interface}`);
      }
      this.announcedIps.set(key, new Set(announcing.map((d) => `${d.ip}|${d.interface}`)));
      work.push(
        this.writeAnnouncing(key, owned).then(
          () => {
            // The record of what was written, updated once the write succeeded.
            if (owned.IPv4.local.length + owned.IPv6.local.length === 0 && !owned.IPv4.nonlocal && !owned.IPv6.nonlocal) this.announced.delete(key);
            else this.announced.set(key, fingerprint);
            for (const f of ['IPv4', 'IPv6'] as const) {
              if ((owned[f].nonlocal?.length ?? 0) > 0) this.nonlocalWriter.add(`${f}|${key}`);
              else this.nonlocalWriter.delete(`${f}|${key}`);
            }
          },
          (err: unknown) => {
            this.log.warn('announcing annotation not written', { op: 'annotate', service: key, err });
            // Retried by the next periodic pass.
            if (this.decided) this.decided.annotated = false;
          },
        ),
      );
      if (work.length >= 16) await Promise.allSettled(work.splice(0));
    }
    await Promise.allSettled(work);
  }

  /** The Service is gone: nothing of it is ours to write any more. */
  private forgetWritten(key: string): void {
    this.announced.delete(key);
    for (const f of ['IPv4', 'IPv6'] as const) this.nonlocalWriter.delete(`${f}|${key}`);
  }

  private annotationsDiffer(svc: V1Service, owned: Record<Family, OwnedEntries>): boolean {
    const a = svc.metadata?.annotations ?? {};
    return (['IPv4', 'IPv6'] as const).some((f) => {
      const name = f === 'IPv4' ? ANNOTATIONS.announcingIPv4 : ANNOTATIONS.announcingIPv6;
      return mergeAnnouncing(a[name], owned[f]) !== (a[name] ?? '');
    });
  }

  /** Read-modify-write of our part, guarded by resourceVersion against other agents. */
  private async writeAnnouncing(key: string, owned: Record<Family, OwnedEntries>): Promise<void> {
    const [namespace, name] = key.split('/') as [string, string];
    for (let attempt = 0; attempt < 8; attempt++) {
      const svc = attempt === 0 ? this.services.get(key) : await this.core.readNamespacedService({ name, namespace }).catch(() => undefined);
      if (!svc) return;
      const a = svc.metadata?.annotations ?? {};
      const patch: Record<string, string | null> = {};
      for (const f of ['IPv4', 'IPv6'] as const) {
        const annotation = f === 'IPv4' ? ANNOTATIONS.announcingIPv4 : ANNOTATIONS.announcingIPv6;
        const value = mergeAnnouncing(a[annotation], owned[f]);
        if (value !== (a[annotation] ?? '')) patch[annotation] = value === '' ? null : value;
      }
      if (Object.keys(patch).length === 0) return;
      try {
        await this.core.patchNamespacedService(
          { name, namespace, body: { metadata: { resourceVersion: svc.metadata?.resourceVersion, annotations: patch } } },
          mergePatch(),
        );
        return;
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code === 404) return;
        if (code !== 409) throw err;
      }
    }
    throw new Error(`announcing annotation of ${key}: too many conflicting writers`);
  }
}
