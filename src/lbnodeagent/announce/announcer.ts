// Gratuitous ARP / unsolicited NA bursts: after a VIP lands on this node, neighbours
// that cached the previous holder's MAC must switch to ours now, not when their entry
// times out (the kernel announces nothing when an address is added). The first frame
// leaves inside the call (with no initial delay): the failover budget is < 1 s. Unset
// options take the LBNodeAgent defaults (LBNODEAGENT_DEFAULTS.garp).

import { setTimeout as sleep } from 'node:timers/promises';
import { parseIp } from '../../netlink/messages.ts';
import type { Link } from '../../netlink/host-network.ts';
import { gratuitousArp, parseMac, unsolicitedNeighborAdvertisement } from './frames.ts';
import { sendFrames } from '../../netlink/native.ts';
import { LBNODEAGENT_DEFAULTS } from '../../api/normalize.ts';
import type { FrameSender } from '../../netlink/native.ts';

export interface AnnounceOptions {
  /** Frames in the burst. */
  count?: number;
  /** Pause between frames. */
  intervalMs?: number;
  /** Pause before the first frame. */
  initialDelayMs?: number;
  /** Stops the rest of the burst (e.g. the VIP was withdrawn meanwhile). */
  signal?: AbortSignal;
  /** Asked before each frame (garpConfig.verifyBeforeSend); false ends the burst: the address left this node. */
  verify?: () => Promise<boolean>;
}

export interface AnnounceResult {
  ifname: string;
  ip: string;
  protocol: 'arp' | 'ndp';
  sent: number;
  /** The burst was stopped (the signal, or `verify` said no) before all frames left. */
  aborted: boolean;
}

/** Monotonic totals, e.g. for Prometheus counters. */
export interface AnnouncementCounters {
  garpSent: number;
  garpFailed: number;
  naSent: number;
  naFailed: number;
}

export interface AnnouncerDeps {
  findLink(name: string): Promise<Link | undefined>;
  send?: FrameSender;
}

const MAX_COUNT = 100;
const MAX_DELAY_MS = 60_000;

export class Announcer {
  private readonly findLink: AnnouncerDeps['findLink'];
  private readonly send: FrameSender;
  private readonly totals: AnnouncementCounters = { garpSent: 0, garpFailed: 0, naSent: 0, naFailed: 0 };
  /** Lookups in flight, shared: after a failover hundreds of VIPs announce on one interface at once. */
  private readonly lookups = new Map<string, Promise<Link | undefined>>();

  constructor(deps: AnnouncerDeps) {
    this.findLink = deps.findLink;
    this.send = deps.send ?? sendFrames;
  }

  counters(): AnnouncementCounters {
    return { ...this.totals };
  }

  /**
   * Sends a burst announcing that `ip` now lives at `ifname`'s MAC: gratuitous ARP for
   * IPv4, unsolicited Neighbor Advertisement for IPv6. Resolves when the last frame has
   * been handed to the interface; rejects when the interface is missing or a send fails.
   */
  async announce(ifname: string, ip: string, options: AnnounceOptions = {}): Promise<AnnounceResult> {
    const d = LBNODEAGENT_DEFAULTS.garp;
    const count = options.count ?? d.count;
    const intervalMs = options.intervalMs ?? d.intervalMs;
    const initialDelayMs = options.initialDelayMs ?? d.initialDelayMs;
    if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT) throw new Error(`announcement count ${count} outside 1..${MAX_COUNT}`);
    for (const [name, value] of [['interval', intervalMs], ['initial delay', initialDelayMs]] as const) {
      if (!Number.isFinite(value) || value < 0 || value > MAX_DELAY_MS) throw new Error(`announcement ${name} ${value} ms outside 0..${MAX_DELAY_MS}`);
    }
    const target = parseIp(ip);
    const protocol = target.family === 'IPv4' ? 'arp' : 'ndp';
    const link = await this.lookUp(ifname);
    if (link === undefined) throw new Error(`cannot announce ${target.ip}: no interface ${ifname}`);
    if (link.mac === undefined) throw new Error(`cannot announce ${target.ip}: interface ${ifname} has no MAC address`);
    const mac = parseMac(link.mac);
    const frame = protocol === 'arp' ? gratuitousArp(mac, target.bytes) : unsolicitedNeighborAdvertisement(mac, target.bytes);

    const result: AnnounceResult = { ifname, ip: target.ip, protocol, sent: 0, aborted: false };
    const signal = options.signal;
    try {
      if (initialDelayMs > 0) await sleep(initialDelayMs, undefined, { signal });
      for (let i = 0; i < count; i++) {
        if (signal?.aborted === true) break;
        if (i > 0) await sleep(intervalMs, undefined, { signal });
        if (options.verify && !(await options.verify())) break;
        // The check is asynchronous: the burst may have been stopped meanwhile.
        if ((signal as AbortSignal | undefined)?.aborted === true) break;
        this.sendOne(link.index, frame, protocol);
        result.sent++;
      }
    } catch (error) {
      if (signal?.aborted !== true) throw error;
    }
    result.aborted = result.sent < count;
    return result;
  }

  private lookUp(ifname: string): Promise<Link | undefined> {
    let lookup = this.lookups.get(ifname);
    if (lookup === undefined) {
      lookup = this.findLink(ifname).finally(() => this.lookups.delete(ifname));
      this.lookups.set(ifname, lookup);
    }
    return lookup;
  }

  private sendOne(ifindex: number, frame: Buffer, protocol: 'arp' | 'ndp'): void {
    try {
      this.send(ifindex, [frame]);
    } catch (error) {
      if (protocol === 'arp') this.totals.garpFailed++;
      else this.totals.naFailed++;
      throw error;
    }
    if (protocol === 'arp') this.totals.garpSent++;
    else this.totals.naSent++;
  }
}
