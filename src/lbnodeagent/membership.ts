// Who is alive, from per-node Leases (coordination.k8s.io/v1) that carry each agent's
// subnets. Each agent renews its own Lease and watches the others'. A Lease whose
// renewals stop is dead after its duration, measured on our clock from when we saw it
// last change; a deleted Lease (graceful stop) is dead at once.
//
// When our own renewals fail too, the API server is what is broken, not the peers:
// the member set is frozen at its last known value instead of expiring everybody, so
// that announcements do not all stop while the API server is away. The same holds when
// our renewals succeed but our watch does not show them: the peers' renewals are not
// reaching us either (after a link that dropped our inbound packets heals, a new
// request gets through at once while the watch's connection waits out TCP's backoff).
// The view stays frozen until a recent renewal of ours comes back through the watch,
// and a watch that shows none for as long as a renewal may fail is restarted.

import type { Connection } from '../k8s/connection.ts';
import { Api, PATHS, microTime } from '../k8s/api.ts';
import { Informer } from '../k8s/informer.ts';
import { httpCode, writeLease } from '../k8s/lease.ts';
import type { Lease } from '../k8s/lease.ts';
import type { Logger } from '../log.ts';
import { parseCidr } from '../ipam/address.ts';
import type { Cidr } from '../ipam/address.ts';
import type { Member } from './desired.ts';
import type { HeartbeatDetector, Peer } from './heartbeat/detector.ts';

export const LEASE_LABEL = 'purelb.io/component';
export const LEASE_LABEL_VALUE = 'lbnodeagent';
export const SUBNETS_ANNOTATION = 'purelb.io/subnets';
export const HEARTBEAT_ANNOTATION = 'purelb.io/heartbeat';

export interface MembershipSource {
  members(): Member[];
  onChange(listener: () => void): void;
  /** Peers that cannot hear us and will act on it (see desired.ts). */
  deafPeers?(): Set<string>;
}

export interface LeaseMembershipOptions {
  conn: Connection;
  namespace: string;
  node: string;
  leaseDurationMs?: number;
  renewIntervalMs?: number;
  log: Logger;
}

export function leaseName(node: string): string {
  return `lbnodeagent-${node}`;
}

/** What FastMembership needs of the Lease membership (LeaseMembership in the agent). */
export interface LeaseSource extends MembershipSource {
  /** Members whose Lease is still there but has expired (ourselves never). */
  lapsed(): Member[];
  /** Our heartbeat endpoint, published on our Lease. */
  heartbeatEndpoint: string;
  start(subnets: readonly string[], eligible: boolean): Promise<void>;
  publish(subnets: readonly string[], eligible: boolean): Promise<void>;
  stop(): Promise<void>;
}

export class LeaseMembership implements LeaseSource {
  private readonly api: Api;
  private readonly leases: Informer<Lease>;
  private readonly opts: Required<Omit<LeaseMembershipOptions, 'log'>> & { log: Logger };
  private readonly seen = new Map<string, { renew: string; at: number }>();
  private readonly listeners: Array<() => void> = [];
  private subnets: readonly string[] = [];
  /** Our heartbeat endpoint, published for peers; empty without heartbeats. */
  heartbeatEndpoint = '';
  private eligible = true;
  private lastRenewOk = 0;
  private lastWatchRestart = 0;
  private renewing = false;
  private live: Member[] = [];
  private lapsedMembers: Member[] = [];
  private fingerprint = '';
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;

  constructor(opts: LeaseMembershipOptions) {
    this.opts = { leaseDurationMs: 10_000, renewIntervalMs: 2_000, ...opts };
    this.api = new Api(opts.conn);
    const selector = `${LEASE_LABEL}=${LEASE_LABEL_VALUE}`;
    this.leases = new Informer<Lease>(opts.conn, {
      name: 'leases',
      path: PATHS.leases(opts.namespace),
      labelSelector: selector,
      log: opts.log,
    });
    this.leases.on(() => this.recompute());
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  members(): Member[] {
    return this.live;
  }

  lapsed(): Member[] {
    return this.lapsedMembers;
  }

  /** Publishes this node's Lease with its subnets (or withdraws it when not eligible). */
  async publish(subnets: readonly string[], eligible: boolean): Promise<void> {
    const changed = eligible !== this.eligible || subnets.join(',') !== this.subnets.join(',');
    this.subnets = [...subnets];
    this.eligible = eligible;
    if (!changed) return;
    if (eligible) await this.renew();
    else await this.deleteOwn();
  }

  async start(subnets: readonly string[], eligible: boolean): Promise<void> {
    this.subnets = [...subnets];
    this.eligible = eligible;
    if (eligible) await this.renew();
    await this.leases.start();
    this.recompute();
    const renew = setInterval(() => {
      if (this.eligible) void this.renew();
    }, this.opts.renewIntervalMs);
    const expire = setInterval(() => this.recompute(), Math.max(100, Math.floor(this.opts.leaseDurationMs / 20)));
    renew.unref();
    expire.unref();
    this.timers = [renew, expire];
  }

  /** Stops renewing and deletes our Lease so that peers take over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    await this.leases.stop();
    await this.deleteOwn();
  }

  private async deleteOwn(): Promise<void> {
    try {
      await this.api.delete(PATHS.lease(this.opts.namespace, leaseName(this.opts.node)));
    } catch (err) {
      if (httpCode(err) !== 404) this.opts.log.warn('could not delete own lease', { op: 'membership', err });
    }
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    const { node, namespace } = this.opts;
    const name = leaseName(node);
    const body: Lease = {
      metadata: {
        name,
        namespace,
        labels: { [LEASE_LABEL]: LEASE_LABEL_VALUE },
        annotations: { [SUBNETS_ANNOTATION]: this.subnets.join(','), ...(this.heartbeatEndpoint ? { [HEARTBEAT_ANNOTATION]: this.heartbeatEndpoint } : {}) },
      },
      spec: { holderIdentity: node, leaseDurationSeconds: Math.ceil(this.opts.leaseDurationMs / 1000), renewTime: microTime() },
    };
    if (this.renewing) return;
    this.renewing = true;
    try {
      const write = (current: Lease | undefined): Lease =>
        current ? { ...body, spec: { ...current.spec, ...body.spec } } : { ...body, spec: { ...body.spec, acquireTime: microTime() } };
      await writeLease(this.api, namespace, name, write, this.opts.renewIntervalMs);
      this.lastRenewOk = Date.now();
    } catch (err) {
      this.opts.log.warn('lease renewal failed', { op: 'membership', node, err });
    } finally {
      this.renewing = false;
    }
  }

  private recompute(): void {
    const now = Date.now();
    // Our own renewals notice a broken API server before peers' Leases could expire.
    const healthWindow = Math.min(this.opts.leaseDurationMs, 2.5 * this.opts.renewIntervalMs);
    const leases = this.leases.list();
    const present = new Set<string>();
    for (const lease of leases) {
      const node = lease.spec?.holderIdentity;
      if (!node) continue;
      present.add(node);
      const renew = lease.spec?.renewTime ? new Date(lease.spec.renewTime).toISOString() : '';
      const prior = this.seen.get(node);
      if (!prior || prior.renew !== renew) this.seen.set(node, { renew, at: now });
    }
    for (const node of [...this.seen.keys()]) if (!present.has(node)) this.seen.delete(node);
    const renewing = now - this.lastRenewOk < healthWindow;
    // Our renewTime is from our clock; the watch delivers in order, so once it shows a
    // recent renewal of ours it has shown the peers' renewals up to then as well.
    const ownRenew = this.seen.get(this.opts.node)?.renew;
    const echoed = !this.leases.hasSynced() || (ownRenew !== undefined && ownRenew !== '' && now - Date.parse(ownRenew) < healthWindow);
    const apiHealthy = !this.eligible || (renewing && echoed);
    if (this.eligible && renewing && !echoed && now - this.lastWatchRestart >= healthWindow) {
      this.lastWatchRestart = now;
      this.opts.log.warn('lease watch shows none of our renewals: member view frozen, watch restarted', { op: 'membership', node: this.opts.node });
      this.leases.restartWatch();
    }
    const live: Member[] = [];
    const lapsed: Member[] = [];
    for (const lease of leases) {
      const node = lease.spec?.holderIdentity;
      if (!node) continue;
      const at = this.seen.get(node)?.at ?? now;
      const durationMs = (lease.spec?.leaseDurationSeconds ?? 10) * 1000;
      const subnets = (lease.metadata?.annotations?.[SUBNETS_ANNOTATION] ?? '').split(',').filter((s) => s !== '');
      const alive = node === this.opts.node ? this.eligible : !apiHealthy || at + durationMs > now;
      const heartbeat = lease.metadata?.annotations?.[HEARTBEAT_ANNOTATION];
      const member = { node, subnets, ...(heartbeat ? { heartbeat } : {}) };
      if (alive) live.push(member);
      else if (node !== this.opts.node) lapsed.push(member);
    }
    if (this.eligible && !present.has(this.opts.node)) live.push({ node: this.opts.node, subnets: [...this.subnets] });
    if (!apiHealthy && this.fingerprint !== '') return;
    live.sort((a, b) => a.node.localeCompare(b.node));
    lapsed.sort((a, b) => a.node.localeCompare(b.node));
    const fingerprint = JSON.stringify([live, lapsed]);
    if (fingerprint === this.fingerprint) return;
    this.fingerprint = fingerprint;
    this.live = live;
    this.lapsedMembers = lapsed;
    for (const l of this.listeners) l();
  }
}

function cidrs(texts: readonly string[]): Cidr[] {
  return texts.map((t) => parseCidr(t)).filter((c): c is Cidr => typeof c !== 'string');
}

function overlaps(a: readonly Cidr[], b: readonly Cidr[]): boolean {
  return a.some((x) => b.some((y) => x.family === y.family && x.first <= y.last && y.first <= x.last));
}

/**
 * The members that `node` exchanges heartbeats with: those with a heartbeat endpoint
 * whose subnets overlap its own, as their Leases publish them. Only they can take over
 * an address of its local subnets or hold one that it could take over; a member of
 * another subnet is noticed by Lease expiry, which costs its routed addresses nothing
 * since those are on every node. The relation is symmetric, so a node expects
 * datagrams exactly from the peers it sends to.
 */
export function heartbeatPeers(node: string, members: readonly Member[]): Peer[] {
  const self = members.find((m) => m.node === node);
  if (!self) return [];
  const mine = cidrs(self.subnets);
  return members
    .filter((m): m is Member & { heartbeat: string } => m.node !== node && m.heartbeat !== undefined)
    .filter((m) => overlaps(mine, cidrs(m.subnets)))
    .map((m) => ({ node: m.node, endpoint: m.heartbeat }));
}

/**
 * The Lease membership sharpened by the heartbeat detector: a member counts when its
 * Lease is live and, if it is one of our heartbeat peers, the detector hears it and it
 * is quorate. The Lease stays the authority on who exists (a deleted Lease is a member
 * gone) and on their subnets; for our heartbeat peers the datagrams are the better
 * evidence of life, so a peer whose Lease has expired but which we still hear (its
 * renewals are what fails: the API server slow or unreachable for it, or our watch
 * behind) stays a member and a peer until it falls silent. This also keeps a node that
 * is cut off from its peers, and not quorate, from shrinking its peer set as their
 * Leases expire in its view: its quorum would come back with nobody left to count.
 */
export class FastMembership implements MembershipSource {
  private readonly leases: LeaseSource;
  private readonly detector: HeartbeatDetector;
  private readonly node: string;

  constructor(leases: LeaseSource, detector: HeartbeatDetector, node: string) {
    this.leases = leases;
    this.detector = detector;
    this.node = node;
    leases.heartbeatEndpoint = detector.endpoint;
    leases.onChange(() => this.detector.setPeers(this.peers()));
    // A lapsed peer that falls silent leaves the peer set (and the quorum's count).
    detector.onChange(() => {
      if (this.leases.lapsed().length === 0) return;
      const peers = this.peers();
      const watched = new Set(this.detector.peerNodes());
      if (peers.length !== watched.size || peers.some((p) => !watched.has(p.node))) this.detector.setPeers(peers);
    });
  }

  /** Members by Lease, and the lapsed ones that are heartbeat peers we still hear. */
  private candidates(): Member[] {
    const lapsed = this.leases.lapsed();
    if (lapsed.length === 0) return this.leases.members();
    const watched = new Set(this.detector.peerNodes());
    const heard = lapsed.filter((m) => m.heartbeat !== undefined && watched.has(m.node) && this.detector.usable(m.node));
    return heard.length === 0 ? this.leases.members() : [...this.leases.members(), ...heard].sort((a, b) => a.node.localeCompare(b.node));
  }

  private peers(): Peer[] {
    return heartbeatPeers(this.node, this.candidates());
  }

  members(): Member[] {
    return this.candidates().filter((m) => m.node === this.node || m.heartbeat === undefined || this.detector.usable(m.node));
  }

  deafPeers(): Set<string> {
    return this.detector.deafPeers();
  }

  onChange(listener: () => void): void {
    this.leases.onChange(listener);
    this.detector.onChange(listener);
  }

  async start(subnets: readonly string[], eligible: boolean): Promise<void> {
    await this.detector.start();
    await this.leases.start(subnets, eligible);
    this.detector.setPeers(this.peers());
  }

  publish(subnets: readonly string[], eligible: boolean): Promise<void> {
    return this.leases.publish(subnets, eligible);
  }

  /** Says goodbye over the heartbeat path first (peers take over at once), then deletes the Lease. */
  async stop(): Promise<void> {
    await this.detector.stop();
    await this.leases.stop();
  }
}
