// Lease-based leader election (coordination.k8s.io/v1), as client-go does it: a
// candidate takes the Lease when its holder has not renewed within the lease duration
// as measured on *our* clock (we note when we last saw the record change instead of
// trusting the holder's timestamps), updates are guarded by resourceVersion, and a
// leader that cannot renew within the renew deadline stops leading. The caller should
// then exit: a former leader that keeps writing is how addresses get given twice.

import type { Connection } from './connection.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.ts';
import { Api, PATHS, microTime } from './api.ts';
import { Informer } from './informer.ts';
import { writeLease } from './lease.ts';
import type { Lease } from './lease.ts';

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log?: Logger;
}

export class LeaderElector {
  private readonly api: Api;
  private readonly opts: Required<Omit<LeaderOptions, 'log'>> & { log?: Logger };
  private observed: { holder: string; renew: string; at: number } | undefined;
  private leading = false;
  private stopped = false;
  private renewal: Promise<boolean> | undefined;
  /** Watches the Lease while standing by, so that a released Lease is taken at once, not a retry period later. */
  private readonly lease: Informer<Lease>;
  private wake: (() => void) | undefined;

  constructor(conn: Connection, opts: LeaderOptions) {
    this.api = new Api(conn);
    this.opts = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...opts };
    if (this.opts.renewDeadlineMs >= this.opts.leaseDurationMs) throw new Error('renewDeadlineMs must be shorter than leaseDurationMs');
    const { namespace, name } = this.opts;
    const fieldSelector = `metadata.name=${name}`;
    this.lease = new Informer<Lease>(conn, {
      name: 'leader-lease',
      path: PATHS.leases(namespace),
      fieldSelector,
      ...(opts.log ? { log: opts.log } : {}),
    });
    this.lease.on(() => this.wake?.());
  }

  /** Sleeps for about a retry period, or less when the Lease changes (a release by the leader). */
  private async standBy(): Promise<void> {
    const { retryPeriodMs } = this.opts;
    const changed = new Promise<void>((resolve) => (this.wake = resolve));
    await Promise.race([sleep(retryPeriodMs * (1 + Math.random() * 0.2)), changed]);
    this.wake = undefined;
  }

  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Waits until this candidate leads, then keeps renewing. Resolves when leadership
   * is lost or `stop()` is called; `lost` tells which.
   */
  async run(onStartedLeading: () => void): Promise<{ lost: boolean }> {
    const { retryPeriodMs } = this.opts;
    // Not awaited: the informer retries by itself, and the campaign polls meanwhile.
    void this.lease.start();
    while (!this.stopped && !(await this.tryAcquireOrRenew())) await this.standBy();
    await this.lease.stop();
    if (this.stopped) return { lost: false };
    this.leading = true;
    this.opts.log?.info('started leading', { op: 'leader', lease: this.opts.name, identity: this.opts.identity });
    onStartedLeading();
    let lastRenew = Date.now();
    while (!this.stopped) {
      await sleep(retryPeriodMs);
      if (this.stopped) break;
      this.renewal = this.tryAcquireOrRenew();
      const renewed = await this.renewal;
      this.renewal = undefined;
      if (this.stopped) break;
      if (renewed) lastRenew = Date.now();
      else if (Date.now() - lastRenew > this.opts.renewDeadlineMs) {
        this.leading = false;
        this.opts.log?.error('lost leadership', { op: 'leader', lease: this.opts.name });
        return { lost: true };
      }
    }
    return { lost: false };
  }

  /** Stops campaigning; a leader hands the Lease back so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.lease.stop();
    if (!this.leading) return;
    this.leading = false;
    // A renewal in flight must land before the release, or it would re-take the Lease.
    await this.renewal;
    try {
      const path = PATHS.lease(this.opts.namespace, this.opts.name);
      const lease = await this.api.get<Lease>(path);
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      lease.spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime() };
      await this.api.replace(path, lease);
    } catch (err) {
      this.opts.log?.warn('could not release lease', { op: 'leader', err });
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.opts;
    const durationS = Math.ceil(this.opts.leaseDurationMs / 1000);
    const now = microTime();
    try {
      return await writeLease(this.api, namespace, name, (lease) => {
        if (lease === undefined) {
          return { metadata: { name, namespace }, spec: { holderIdentity: identity, leaseDurationSeconds: durationS, acquireTime: now, renewTime: now, leaseTransitions: 0 } };
        }
        const spec = lease.spec ?? {};
        const holder = spec.holderIdentity ?? '';
        const renew = spec.renewTime ? new Date(spec.renewTime).toISOString() : '';
        if (!this.observed || this.observed.holder !== holder || this.observed.renew !== renew) {
          this.observed = { holder, renew, at: Date.now() };
        }
        const theirDurationMs = (spec.leaseDurationSeconds ?? durationS) * 1000;
        if (holder !== '' && holder !== identity && this.observed.at + theirDurationMs > Date.now()) return undefined;
        const takeover = holder !== identity;
        return {
          ...lease,
          spec: {
            ...spec,
            holderIdentity: identity,
            leaseDurationSeconds: durationS,
            renewTime: now,
            acquireTime: takeover ? now : spec.acquireTime,
            leaseTransitions: (spec.leaseTransitions ?? 0) + (takeover ? 1 : 0),
          },
        };
      });
    } catch {
      return false;
    }
  }
}
