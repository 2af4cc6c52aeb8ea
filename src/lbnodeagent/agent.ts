// The node agent: keeps the kernel's addresses equal to `desiredAnnouncements(snapshot)`.
// Every trigger — an API event, a membership change, a netlink notification, the
// periodic timer — asks for one reconcile; reconciles never overlap and coalesce. Each
// reconcile reads the kernel afresh, so a VIP deleted by hand comes back and a stray
// VIP an earlier run added goes away. Only addresses marked as ours are ever touched.
//
// A reconcile is four stages, pure but the last:
//   snapshot (snapshot.ts, from the informers in inputs.ts and the membership)
//   → desired (desired.ts)
//   → plan (plan.ts: against the kernel's addresses, and the annotations last written)
//   → apply (kernel.ts: netlink and announcements; publish.ts: annotations and Events).
// This file only orders them and decides when they run.

import type { Connection } from '../k8s/connection.ts';
import { REASONS } from '../api/annotations.ts';
import { GROUP } from '../api/meta.ts';
import { DEFAULT_LBNODEAGENT_CONFIG, formatIssue } from '../api/normalize.ts';
import type { LBNodeAgentConfig } from '../api/normalize.ts';
import { selects } from '../api/selector.ts';
import { EventRecorder } from '../k8s/events.ts';
import type { Logger } from '../log.ts';
import type { HostNetwork } from '../netlink/host-network.ts';
import type { Announcer } from './announce/announcer.ts';
import { chooseAgentConfig } from './agent-config.ts';
import { desiredAnnouncements } from './desired.ts';
import type { Announcement, Snapshot } from './desired.ts';
import { AgentInputs } from './inputs.ts';
import type { NodeState } from './inputs.ts';
import { KernelApplier } from './kernel.ts';
import { readKernelView, resolveLocalInterface } from './local-interface.ts';
import type { KernelView } from './local-interface.ts';
import type { LocalInterface } from './local-interface.ts';
import type { MembershipSource } from './membership.ts';
import { announcedAddresses, electionChanges, reconcileSeconds, takeoverSeconds, unknownAddresses } from './metrics.ts';
import { AnnouncingPublisher } from './publish.ts';
import { buildSnapshot } from './snapshot.ts';

export interface AgentOptions {
  conn: Connection;
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

/** The inputs' decision, kept while no input changes: the periodic pass then costs a kernel read and a diff. */
interface Decision {
  version: string;
  snapshot: Snapshot;
  desired: Announcement[];
  published: boolean;
}

export class Agent {
  private readonly opts: AgentOptions;
  private readonly log: Logger;
  private readonly inputs: AgentInputs;
  private readonly kernel: KernelApplier;
  private readonly publisher: AnnouncingPublisher;
  private readonly events: EventRecorder;
  private config: LBNodeAgentConfig = DEFAULT_LBNODEAGENT_CONFIG;
  private configProblems = '';
  private node: NodeState = { labels: {}, outOfService: false };
  private local: LocalInterface = { link: undefined, subnets: [] };
  /** Bumped by every informer event and membership change. */
  private inputsVersion = 0;
  private decided: Decision | undefined;
  /** When the membership last changed and no reconcile has acted on it yet. */
  private membershipChangedAt: number | undefined;
  /** The members and deaf peers last logged. */
  private electorate = '';
  private localSet = '';
  private running: Promise<void> | undefined;
  private again = false;
  private started = false;
  private stopped = false;
  private reconciled: () => void = () => {};
  private readonly firstReconcile = new Promise<void>((resolve) => (this.reconciled = resolve));
  private timer: { handle: NodeJS.Timeout; everyMs: number } | undefined;
  private unwatch: (() => void) | undefined;

  /** How many objects each cache holds (purelb_informer_objects). */
  cachedObjects(): Record<string, number> {
    return this.inputs.sizes();
  }

  constructor(opts: AgentOptions) {
    this.opts = opts;
    this.log = opts.log;
    this.events = new EventRecorder(opts.conn, 'purelb-lbnodeagent', opts.node, opts.log);
    this.inputs = new AgentInputs(opts.conn, opts.namespace, opts.node, opts.log);
    this.kernel = new KernelApplier({ net: opts.net, announcer: opts.announcer, node: opts.node, log: opts.log });
    this.publisher = new AnnouncingPublisher({
      conn: opts.conn,
      node: opts.node,
      services: this.inputs.services,
      events: this.events,
      log: opts.log,
      // Retried by the next periodic pass.
      onFailure: () => {
        if (this.decided) this.decided.published = false;
      },
    });
    this.inputs.on(
      () => this.inputsChanged(),
      () => void this.nodeChanged(),
    );
    opts.membership.onChange(() => {
      this.membershipChangedAt ??= performance.now();
      this.inputsChanged();
    });
  }

  async start(): Promise<void> {
    const t0 = Date.now();
    await this.inputs.start();
    await this.nodeChanged();
    const synced = Date.now();
    this.pickConfig();
    await this.resolveLocalInterface();
    await this.opts.membership.start(this.local.subnets, this.eligible());
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
   * Takes on nothing more: no new reconcile, and one under way stops before it decides.
   * Called as soon as the agent is told to stop, before it asks whether this is a
   * restart: in an uninstall or a rollout its peers are leaving at the same time, and an
   * election without them would hand it their addresses just before it withdraws.
   */
  beginStop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer.handle);
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
    this.beginStop();
    this.unwatch?.();
    // Leave first: peers re-elect while we withdraw, so the hand-over gap is short.
    await Promise.allSettled([this.opts.membership.stop(), this.running]);
    await this.kernel.withdrawAll(opts.keepRouted ? this.config.dummyInterface : undefined);
    // Annotations are cleaned up when the API server answers soon; the addresses are already gone.
    await this.publisher.withdrawAll(this.config.dummyInterface, 3000);
    await this.inputs.stop();
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

  private inputsChanged(): void {
    this.inputsVersion++;
    this.trigger();
  }

  private async reconcile(): Promise<void> {
    const t0 = performance.now();
    const changedAt = this.membershipChangedAt;
    this.membershipChangedAt = undefined;
    this.pickConfig();
    this.armTimer();
    // The kernel is read once per pass: the local interface and the plan share it.
    const view = await readKernelView(this.opts.net);
    await this.resolveLocalInterface(view);
    if (this.stopped) return; // see beginStop
    const version = `${this.inputsVersion}|${this.local.link?.name}|${this.local.subnets.join(',')}|${this.eligible()}`;
    if (this.decided?.version !== version) {
      const snapshot = this.snapshot();
      this.decided = { version, snapshot, desired: desiredAnnouncements(snapshot), published: false };
    }
    const { snapshot, desired } = this.decided;
    const { added, notOurs } = await this.kernel.apply(desired, this.config, changedAt !== undefined, view);
    this.reportNotOurs(notOurs);
    if (!this.decided.published) {
      this.decided.published = true;
      this.publisher.publish(desired, snapshot, this.config.dummyInterface);
    }
    if (changedAt !== undefined && added > 0) takeoverSeconds.observe((performance.now() - changedAt) / 1000);
    this.recordMetrics(desired);
    const ms = performance.now() - t0;
    reconcileSeconds.observe(ms / 1000);
    if (ms > 1000) this.log.warn('slow reconcile', { op: 'reconcile', ms: Math.round(ms), desired: desired.length });
  }

  private snapshot(): Snapshot {
    const link = this.local.link;
    const members = this.opts.membership.members();
    const deafPeers = this.opts.membership.deafPeers?.() ?? new Set<string>();
    // Who the elections count is what decides every local address: a change is logged.
    const names = members.map((m) => m.node);
    const deaf = [...deafPeers].sort();
    const electorate = `${names.join(',')}|${deaf.join(',')}`;
    if (electorate !== this.electorate) {
      this.electorate = electorate;
      this.log.info('members', { op: 'membership', node: this.opts.node, members: names, deafPeers: deaf });
    }
    return buildSnapshot({
      self: {
        node: this.opts.node,
        localInterface: link ? { name: link.name, subnets: this.local.subnets } : undefined,
        dummyInterface: this.config.dummyInterface,
        eligible: this.eligible(),
      },
      services: this.inputs.services.list(),
      slices: this.inputs.slices.list(),
      groups: this.inputs.groups.list(),
      members,
      deafPeers,
    });
  }

  /**
   * Wanted addresses that are on this node but not ours (its own address, one added by
   * hand or by another daemon): never touched; a gauge and a Warning Event on the
   * Service say so. The recorder folds repeats, so the periodic pass does not flood.
   */
  private reportNotOurs(notOurs: readonly Announcement[]): void {
    unknownAddresses.set(notOurs.length);
    for (const d of notOurs) {
      const svc = this.inputs.services.get(d.service);
      if (!svc) continue;
      const message = `Node ${this.opts.node} does not announce ${d.ip}: the address is already on interface ${d.interface} and was not added by purelb-ts; it is left alone`;
      this.events.record({ apiVersion: 'v1', kind: 'Service', obj: svc }, 'Warning', REASONS.addressNotOurs, message);
    }
  }

  private recordMetrics(desired: readonly Announcement[]): void {
    const ips = (kind: Announcement['kind']) => new Set(desired.filter((d) => d.kind === kind).map((d) => d.ip));
    const local = ips('local');
    const localSet = [...local].sort().join(',');
    if (localSet !== this.localSet) electionChanges.inc();
    this.localSet = localSet;
    announcedAddresses.set({ kind: 'local' }, local.size);
    announcedAddresses.set({ kind: 'nonlocal' }, ips('nonlocal').size);
  }

  /**
   * The own Node's labels (for nodeSelector) and whether it is in service. A node that is
   * cordoned, as `kubectl drain` does, or labelled node.kubernetes.io/exclude-from-external-load-balancers
   * leaves the membership first (peers take its layer-2 VIPs at once) and then withdraws,
   * like a graceful stop; uncordoned, it comes back.
   */
  private async nodeChanged(): Promise<void> {
    const state = this.inputs.nodeState();
    if (!state) return;
    const before = this.eligible();
    this.node = state;
    const now = this.eligible();
    if (this.started && now !== before) {
      this.log.info(now ? 'node back in service' : 'node out of service: handing over', { op: 'node', node: this.opts.node });
      await this.opts.membership.publish(this.local.subnets, now);
    }
    this.inputsChanged();
  }

  private eligible(): boolean {
    return !this.node.outOfService && selects(this.config.nodeSelector, this.node.labels);
  }

  /** The LBNodeAgent in force for this node (agent-config.ts); a Warning Event names its problems once. */
  private pickConfig(): void {
    const { config, chosen, issues, refused } = chooseAgentConfig(this.inputs.agents.list(), this.node.labels, this.config);
    this.config = config;
    const problems = issues.map((i) => `${formatIssue(i)}${i.value === '' ? '' : ` (value "${i.value}")`}`).join('; ');
    if (chosen && problems !== '' && problems !== this.configProblems) {
      const kept = refused ? '; the configuration in use stays' : '';
      this.events.record({ apiVersion: `${GROUP}/v1`, kind: 'LBNodeAgent', obj: chosen as never }, 'Warning', REASONS.configurationWarning, `node ${this.opts.node}: ${problems}${kept}`);
    }
    this.configProblems = problems;
  }

  /** The local interface and its subnets; a change of subnets is published to the membership (election). */
  private async resolveLocalInterface(view?: KernelView): Promise<void> {
    const before = this.local;
    this.local = await resolveLocalInterface(this.opts.net, this.config, view);
    const { link, subnets } = this.local;
    if (link?.name !== before.link?.name) this.log.info('local interface', { op: 'config', node: this.opts.node, interface: link?.name ?? '(none)', subnets });
    if (this.started && subnets.join(',') !== before.subnets.join(',')) await this.opts.membership.publish(subnets, this.eligible());
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
}
