// The kernel side of the apply stage: with the pass's one read of the kernel
// (KernelView), lets planKernel() (plan.ts) diff our addresses against the desired
// announcements, and carries the plan out through the
// HostNetwork — deletes, then adds — with the gratuitous announcements for the local
// addresses it adds or holds through a membership change.

import type { LBNodeAgentConfig } from '../api/normalize.ts';
import type { Logger } from '../log.ts';
import type { HostNetwork } from '../netlink/host-network.ts';
import type { Announcer } from './announce/announcer.ts';
import type { Announcement } from './desired.ts';
import type { KernelView } from './local-interface.ts';
import { planKernel } from './plan.ts';

export class KernelApplier {
  private readonly net: HostNetwork;
  private readonly announcer: Announcer;
  private readonly node: string;
  private readonly log: Logger;
  private garp: LBNodeAgentConfig['garp'] | undefined;
  private readonly garpAborts = new Map<string, AbortController>();
  /** The kernel read in flight for holds(), shared. */
  private holdings: Promise<Set<string>> | undefined;

  constructor(opts: { net: HostNetwork; announcer: Announcer; node: string; log: Logger }) {
    this.net = opts.net;
    this.announcer = opts.announcer;
    this.node = opts.node;
    this.log = opts.log;
  }

  /**
   * Makes the kernel match `desired`. Returns how many addresses were newly added, and
   * the announcements whose address is already there but not ours (left alone).
   */
  async apply(desired: readonly Announcement[], config: LBNodeAgentConfig, membershipChanged: boolean, view: KernelView): Promise<{ added: number; notOurs: Announcement[] }> {
    this.garp = config.garp;
    const links = new Map(view.links.map((l) => [l.name, l]));
    if (desired.some((d) => d.kind === 'nonlocal') && !links.has(config.dummyInterface)) {
      const { link } = await this.net.ensureDummyLink(config.dummyInterface);
      links.set(link.name, link);
    }
    const plan = planKernel(desired, links, view.addresses.filter((a) => a.ours), config, membershipChanged);
    if (plan.remove.length > 0) {
      for (const r of plan.remove) this.garpAborts.get(r.ip)?.abort();
      const results = await this.net.deleteAddresses(plan.remove.map((a) => ({ ifindex: a.ifindex, ip: a.ip, prefix: a.prefix })));
      for (const r of results) {
        if (r.outcome === 'deleted') this.log.info('withdrew address', { op: 'withdraw', node: this.node, ip: r.key.ip });
        else if (r.outcome !== 'absent') this.log.warn('address not withdrawn', { op: 'withdraw', ip: r.key.ip, outcome: r.outcome });
      }
    }
    for (const w of plan.reannounce) this.sendGarp(w.interface, w.ip);
    const notOurs: Announcement[] = [];
    if (plan.add.length === 0) return { added: 0, notOurs };
    let added = 0;
    const results = await this.net.addAddresses(plan.add.map((a) => a.spec));
    for (const [i, r] of results.entries()) {
      const w = plan.add[i]!.announcement;
      if (r.outcome === 'added') {
        added++;
        this.log.info('announced address', { op: 'announce', node: this.node, ip: w.ip, interface: w.interface, kind: w.kind });
        if (w.kind === 'local' && config.garp.enabled) this.sendGarp(w.interface, w.ip);
      } else if (r.outcome === 'foreign') {
        notOurs.push(w);
        this.log.warn('address already on the node and not ours: left alone', { op: 'announce', ip: w.ip, interface: w.interface });
      } else if (r.outcome === 'failed') {
        this.log.error('could not add address', { op: 'announce', ip: w.ip, interface: w.interface, err: r.error });
      }
    }
    return { added, notOurs };
  }

  /** Stops the announcements and deletes our addresses, except those on `keep` (an interface name). */
  async withdrawAll(keep?: string): Promise<void> {
    for (const a of this.garpAborts.values()) a.abort();
    const kept = keep === undefined ? undefined : (await this.net.findLink(keep))?.index;
    const ours = (await this.net.listAddresses({ ours: true })).filter((a) => a.ifindex !== kept);
    await this.net.deleteAddresses(ours.map((a) => ({ ifindex: a.ifindex, ip: a.ip, prefix: a.prefix })));
  }

  private sendGarp(ifname: string, ip: string): void {
    const g = this.garp;
    if (!g) return;
    this.garpAborts.get(ip)?.abort();
    const abort = new AbortController();
    this.garpAborts.set(ip, abort);
    const verify = g.verifyBeforeSend ? { verify: () => this.holds(ifname, ip) } : {};
    this.announcer
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
    this.holdings ??= this.net
      .listAddresses({ ours: true })
      .then(async (ours) => {
        const names = new Map((await this.net.listLinks()).map((l) => [l.index, l.name]));
        return new Set(ours.map((a) => `${names.get(a.ifindex)}|${a.ip}`));
      })
      .finally(() => (this.holdings = undefined));
    return (await this.holdings).has(`${ifname}|${ip}`);
  }
}
