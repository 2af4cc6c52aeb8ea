// HostNetwork over rtnetlink (npm `netlink`). It acts on the network namespace of the
// calling process, so an agent started with `ip netns exec NS …` (or in a pod with
// hostNetwork) manages that namespace and nothing else.
//
// Which addresses are ours (host-network.ts): on first use a probe address on `lo`
// tells whether the kernel keeps IFA_PROTO; where it does not, or where the marker is
// turned off, the ownership record (ownership.ts) decides, and every change of our
// addresses goes through it: recorded before the kernel add, updated after, entries
// removed after the kernel delete.
//
// Requests are pipelined, at most `window` in flight: 1,000 addresses go into the
// kernel in well under a second, and the replies of a bounded window always fit the
// socket's buffer. (An overrun would be fatal: the npm binding aborts the process on
// one, which is also why notifications come through our own addon, native.ts.)

import { readFileSync } from 'node:fs';
import { release as kernelRelease } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { createNetlink, Protocol, rt } from 'netlink';
import type { NetlinkMessage, NetlinkSocket } from 'netlink';
import {
  AF_INET,
  AF_INET6,
  IFA_F_DADFAILED,
  IFA_F_DEPRECATED,
  IFA_F_NODAD,
  IFA_F_NOPREFIXROUTE,
  IFA_F_SECONDARY,
  IFA_F_TENTATIVE,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NLMSG_ERROR,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_GETLINK,
  RTM_SETLINK,
  RTM_GETADDR,
  RTM_NEWADDR,
  RTM_NEWLINK,
  containsIp,
  decodeAddress,
  decodeError,
  decodeInetConf,
  decodeLinkInfoKind,
  decodeMessages,
  IPV4_DEVCONF_PROMOTE_SECONDARIES,
  encodeAddress,
  encodeInetConf,
  encodeLinkByName,
  encodeLinkUp,
  parseIp,
} from './messages.ts';
import type { AddressRecord, Family } from './messages.ts';
import { PURELB_ADDRESS_PROTOCOL } from './host-network.ts';
import { DEFAULT_OWNERSHIP_DIR, OwnershipRecord, entryKey, inTurn, recordPathIn, recordedAs } from './ownership.ts';
import type { RecordedAddress } from './ownership.ts';
import { listenRtnetlink } from './native.ts';
import type {
  AddResult,
  AddressKey,
  AddressSpec,
  DeleteResult,
  HostNetwork,
  HostNetworkEvent,
  InterfaceAddress,
  Link,
  OwnershipStatus,
  Subscription,
} from './host-network.ts';

export interface RtnetlinkOptions {
  /**
   * 'auto' (default): probe whether the kernel keeps IFA_PROTO and use it where it
   * does; 'off': use the ownership record even then (to run the fallback on any
   * kernel). Default from PURELB_ADDRESS_MARKER.
   */
  addressMarker?: 'auto' | 'off';
  /** Directory of the ownership record; default PURELB_OWNERSHIP_DIR, else /run/purelb-ts. */
  ownershipDir?: string;
  /** IFA_PROTO marking our addresses; default PURELB_ADDRESS_PROTOCOL. */
  addressProtocol?: number;
  /** Per-request timeout; default 5 s. */
  requestTimeoutMs?: number;
  /** Requests in flight at once; default 32 (their replies must fit the socket buffer). */
  window?: number;
  /**
   * Receive buffer of a watch's socket; default 8 MiB. When notifications arrive faster
   * than they are read and overrun it, the watcher gets an 'overflow' event.
   */
  notificationBufferBytes?: number;
}

const RTNLGRP_LINK = 1;
const RTNLGRP_IPV4_IFADDR = 5;
const RTNLGRP_IPV6_IFADDR = 9;
const RT_TABLE_MAIN = 254;
const EEXIST = 17;
const ENODEV = 19;
const ENOENT = 2;
const EADDRNOTAVAIL = 99;
const EOPNOTSUPP = 95;
const REQUEST_BUFFER_BYTES = 4 << 20;
const RTM_NEWROUTE = 24;
const RTM_GETROUTE = 26;
const RTM_NEWNEXTHOP = 104;
const RTM_GETNEXTHOP = 106;

/** An Error carrying the errno the kernel answered, named like Node's system errors. */
export class NetlinkError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(operation: string, errno: number) {
    const code = errnoName(errno);
    super(`${operation}: ${code}`);
    this.name = 'NetlinkError';
    this.errno = errno;
    this.code = code;
  }
}

function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-errno);
  } catch {
    return `errno ${errno}`;
  }
}

/**
 * Whether a kernel of this release keeps IFA_PROTO (Linux 5.18 on; older ones accept
 * the attribute and drop it). Only the fallback when the probe cannot run: vendor
 * kernels backport (late RHEL 9), so the probe decides.
 */
export function kernelKeepsAddressProtocol(release: string = kernelRelease()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (m === null) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 5 || (major === 5 && minor >= 18);
}

/**
 * The probe: a /32 on `lo` inside 127/8 (already local there), deprecated, without a
 * prefix route and with a 10 s lifetime, so that even a crash leaves nothing for long.
 */
const PROBE_IP = '127.80.80.80';

/** The setting from the environment, refused loudly when it is not one of the two. */
function markerSetting(env: NodeJS.ProcessEnv = process.env): 'auto' | 'off' {
  const v = env['PURELB_ADDRESS_MARKER'];
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === 'off') return 'off';
  throw new Error(`PURELB_ADDRESS_MARKER must be "auto" or "off", got ${JSON.stringify(v)}`);
}

interface Ownership {
  status: OwnershipStatus;
  /** Set in mode 'record'. */
  record: OwnershipRecord | undefined;
}

export function openHostNetwork(options: RtnetlinkOptions = {}): HostNetwork {
  return new RtnetlinkHostNetwork(options);
}

class RtnetlinkHostNetwork implements HostNetwork {
  readonly addressProtocol: number;
  private readonly marker: 'auto' | 'off';
  private readonly recordPath: string;
  private detected: Promise<Ownership> | undefined;
  private known: Ownership | undefined;
  /** The record as last read or written: notifications are judged by it. */
  private entries = new Map<string, RecordedAddress>();
  private recordProblem: string | undefined;
  /** The last address dump's messages (their bytes) and what each decoded to. */
  private lastDecoded = new Map<string, AddressRecord | null>();
  private readonly timeoutMs: number;
  private readonly notificationBufferBytes: number;
  private readonly window: Window;
  private readonly socket: NetlinkSocket;
  private readonly subscriptions = new Set<Subscription>();

  constructor(options: RtnetlinkOptions) {
    this.addressProtocol = options.addressProtocol ?? PURELB_ADDRESS_PROTOCOL;
    if (!Number.isInteger(this.addressProtocol) || this.addressProtocol < 4 || this.addressProtocol > 255) {
      throw new Error(`address protocol ${this.addressProtocol} outside 4..255 (0-3 belong to the kernel)`);
    }
    this.marker = options.addressMarker ?? markerSetting();
    this.recordPath = recordPathIn(options.ownershipDir ?? (process.env['PURELB_OWNERSHIP_DIR'] || DEFAULT_OWNERSHIP_DIR));
    this.timeoutMs = options.requestTimeoutMs ?? 5000;
    this.window = new Window(options.window ?? 32);
    this.notificationBufferBytes = options.notificationBufferBytes ?? 8 << 20;
    this.socket = createNetlink(Protocol.ROUTE);
    // Request failures reach their promises; a socket-level error has no one to tell.
    this.socket.on('error', () => undefined);
    try {
      this.socket.setRecvBufferSize(REQUEST_BUFFER_BYTES);
    } catch {
      // Capped by net.core.rmem_max: the window alone keeps replies within the default.
    }
  }

  // Every public method waits for the probe first: its requests must not interleave
  // with others' dumps on the one socket (the binding mixes up their replies).

  async listLinks(): Promise<Link[]> {
    await this.ready();
    return (await this.linkMessages()).map(toLink);
  }

  async findLink(name: string): Promise<Link | undefined> {
    await this.ready();
    return this.lookupLink(name);
  }

  private async lookupLink(name: string): Promise<Link | undefined> {
    // One link by name, not a dump: nodes with hundreds of pod veths make dumps costly.
    if (name.length === 0 || name.length > 15) return undefined;
    const reply = (await this.exchange(RTM_GETLINK, encodeLinkByName(name), 0))[0];
    if (reply === undefined) return undefined;
    if (reply.type === NLMSG_ERROR) {
      const errno = decodeError(reply.data);
      if (errno === -ENODEV) return undefined;
      throw new NetlinkError(`find interface ${name}`, -errno);
    }
    return toLink(rt.parseLinkMessage(reply.data));
  }

  async ownership(): Promise<OwnershipStatus> {
    const { status, record } = await this.ready();
    if (record !== undefined) this.loadRecord(record);
    return this.recordProblem === undefined ? status : { ...status, recordProblem: this.recordProblem };
  }

  async listAddresses(filter: { ifindex?: number; family?: Family; ours?: boolean } = {}): Promise<InterfaceAddress[]> {
    const { record } = await this.ready();
    const records = await this.kernelAddresses(filter.family);
    const entries = record === undefined ? this.entries : this.loadRecord(record);
    const out: InterfaceAddress[] = [];
    for (const r of records) {
      const address = this.toInterfaceAddress(r, entries);
      if (filter.ifindex !== undefined && address.ifindex !== filter.ifindex) continue;
      if (filter.family !== undefined && address.family !== filter.family) continue;
      if (filter.ours !== undefined && address.ours !== filter.ours) continue;
      out.push(address);
    }
    return out;
  }

  async addAddresses(specs: readonly AddressSpec[]): Promise<AddResult[]> {
    const { record } = await this.ready();
    if (record !== undefined) return inTurn(record.path, () => this.addRecorded(record, specs));
    const first = await Promise.all(specs.map(async (spec): Promise<AddResult | 'exists'> => {
      try {
        // A renewal replaces in place: the caller read the address as ours in this pass.
        const errno = await this.command(RTM_NEWADDR, this.encodeSpec(spec), NLM_F_CREATE | (spec.renew === true ? NLM_F_REPLACE : NLM_F_EXCL));
        if (errno === 0) return { spec, outcome: spec.renew === true ? 'refreshed' : 'added' };
        if (errno === -EEXIST) return 'exists';
        return { spec, outcome: 'failed', error: new NetlinkError(`add ${spec.ip}/${spec.prefix}`, -errno) };
      } catch (error) {
        return { spec, outcome: 'failed', error: asError(error) };
      }
    }));
    if (!first.includes('exists')) return first as AddResult[];

    // Already there: renew it if it is ours, report its holder if not.
    const present = await this.listAddresses();
    const findAddress = addressFinder(present);
    return Promise.all(specs.map(async (spec, i): Promise<AddResult> => {
      const result = first[i];
      if (result !== 'exists' && result !== undefined) return result;
      const holder = findAddress(spec);
      if (holder === undefined) {
        return { spec, outcome: 'failed', error: new Error(`add ${spec.ip}/${spec.prefix}: EEXIST, but no such address is listed`) };
      }
      if (!holder.ours) return { spec, outcome: 'foreign', holder };
      try {
        const errno = await this.command(RTM_NEWADDR, this.encodeSpec(spec), NLM_F_CREATE | NLM_F_REPLACE);
        if (errno === 0) return { spec, outcome: 'refreshed' };
        return { spec, outcome: 'failed', error: new NetlinkError(`refresh ${spec.ip}/${spec.prefix}`, -errno) };
      } catch (error) {
        return { spec, outcome: 'failed', error: asError(error) };
      }
    }));
  }

  async deleteAddresses(keys: readonly AddressKey[]): Promise<DeleteResult[]> {
    if (keys.length === 0) return [];
    const { record } = await this.ready();
    if (record !== undefined) return inTurn(record.path, () => this.deleteRecorded(record, keys));
    return this.deleteJudged(keys, await this.listAddresses());
  }

  /** Deletes the keys found ours among `present` (the kernel's addresses, judged). */
  private async deleteJudged(keys: readonly AddressKey[], present: readonly InterfaceAddress[]): Promise<DeleteResult[]> {
    const promoting = await this.promotesSecondaries(keys);
    const findAddress = addressFinder(present);
    return Promise.all(keys.map(async (key): Promise<DeleteResult> => {
      let existing: InterfaceAddress | undefined;
      try {
        existing = findAddress(key);
      } catch (error) {
        return { key, outcome: 'failed', error: asError(error) };
      }
      if (existing === undefined) return { key, outcome: 'absent' };
      if (!existing.ours) return { key, outcome: 'foreign', holder: existing };
      if (!promoting.has(existing.ifindex)) {
        const dependents = foreignSecondariesOf(existing, present);
        if (dependents.length > 0) return { key, outcome: 'unsafe', dependents };
      }
      try {
        // The kernel's own prefix length: IPv6 matches it on delete, and ours may differ from the key's.
        const payload = encodeAddress({ ifindex: existing.ifindex, ip: existing.ip, prefix: existing.prefix });
        const errno = await this.command(RTM_DELADDR, payload, 0);
        if (errno === 0) return { key, outcome: 'deleted' };
        if (errno === -EADDRNOTAVAIL || errno === -ENOENT) return { key, outcome: 'absent' };
        return { key, outcome: 'failed', error: new NetlinkError(`delete ${key.ip}/${existing.prefix}`, -errno) };
      } catch (error) {
        return { key, outcome: 'failed', error: asError(error) };
      }
    }));
  }

  async defaultRouteLink(family: Family): Promise<Link | undefined> {
    await this.ready();
    const request = Buffer.alloc(12); // struct rtmsg
    request.writeUInt8(family === 'IPv4' ? AF_INET : AF_INET6, 0);
    const routes = (await this.dump(RTM_GETROUTE, request, 'list routes'))
      .filter((m) => m.type === RTM_NEWROUTE)
      .map((m) => rt.parseRouteMessage(m.data));
    let best: { metric: number; ifindex: number } | undefined;
    let nextHops: Map<number, number> | undefined;
    for (const r of routes) {
      const table = r.attrs.table ?? r.data.table;
      if (r.data.dstLen !== 0 || table !== RT_TABLE_MAIN || !isUnicast(r.data.type)) continue;
      let ifindex = r.attrs.oif ?? firstMultipathIfindex(r.attrs.multipath);
      if (ifindex === undefined && r.attrs.nhId !== undefined) {
        nextHops ??= await this.nextHopInterfaces();
        ifindex = nextHops.get(r.attrs.nhId.readUInt32LE(0));
      }
      if (ifindex === undefined) continue;
      const metric = r.attrs.priority ?? 0;
      if (best === undefined || metric < best.metric) best = { metric, ifindex };
    }
    if (best === undefined) return undefined;
    const index = best.ifindex;
    return (await this.listLinks()).find((l) => l.index === index);
  }

  async linkForIp(ip: string): Promise<{ link: Link; address: InterfaceAddress } | undefined> {
    const target = parseIp(ip);
    const candidates = (await this.listAddresses({ family: target.family, ours: false }))
      .filter((a) => a.scope === 0 && containsIp(a.ip, a.prefix, target.ip))
      .sort((a, b) => b.prefix - a.prefix);
    const address = candidates[0];
    if (address === undefined) return undefined;
    const link = (await this.listLinks()).find((l) => l.index === address.ifindex);
    return link === undefined ? undefined : { link, address };
  }

  async ensureDummyLink(name: string): Promise<{ link: Link; created: boolean }> {
    if (!/^[^\s/:]{1,15}$/.test(name)) throw new Error(`invalid interface name ${JSON.stringify(name)} (1-15 characters, no space, '/' or ':')`);
    let created = false;
    if ((await this.findLink(name)) === undefined) {
      const errno = await this.command(RTM_NEWLINK, encodeLinkByName(name, 'dummy'), NLM_F_CREATE | NLM_F_EXCL);
      if (errno === -EOPNOTSUPP) {
        throw new Error(
          `cannot create interface ${name}: this kernel has no "dummy" link type (CONFIG_DUMMY); ` +
            `create ${name} beforehand with a type it has (e.g. "ip link add ${name} type ifb") and it will be adopted`,
        );
      }
      if (errno !== 0 && errno !== -EEXIST) throw new NetlinkError(`create interface ${name} (type dummy)`, -errno);
      created = errno === 0;
    }
    const link = await this.findLink(name);
    if (link === undefined) throw new Error(`interface ${name} vanished right after it was created or found`);
    // Up, and IPv4 secondaries promoted: with an aggregation prefix shorter than /32 our
    // VIPs share subnets, and removing the first (primary) must not remove the others.
    const errno = await this.command(RTM_SETLINK, encodeLinkUp(link.index, encodeInetConf(IPV4_DEVCONF_PROMOTE_SECONDARIES, 1)), 0);
    if (errno !== 0) throw new NetlinkError(`set interface ${name} up`, -errno);
    return { link: { ...link, up: true }, created };
  }

  watch(listener: (event: HostNetworkEvent) => void): Subscription {
    const groups = [RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR];
    // Whether an address is ours is known once the probe ran: until then messages wait.
    let waiting: Array<{ type: number; data: Buffer }> | undefined = this.known === undefined ? [] : undefined;
    const deliver = (m: { type: number; data: Buffer }) => {
      const event = this.toEvent(m);
      if (event !== undefined) listener(event);
    };
    const subscription = listenRtnetlink(
      groups,
      this.notificationBufferBytes,
      (datagram) => {
        for (const m of decodeMessages(datagram)) {
          if (waiting === undefined) deliver(m);
          else waiting.push(m);
        }
      },
      () => listener({ type: 'overflow' }),
    );
    if (waiting !== undefined) {
      void this.ready().then(() => {
        const held = waiting ?? [];
        waiting = undefined;
        for (const m of held) deliver(m);
      });
    }
    this.subscriptions.add(subscription);
    return {
      close: () => {
        this.subscriptions.delete(subscription);
        subscription.close();
      },
    };
  }

  close(): void {
    for (const s of this.subscriptions) s.close();
    this.subscriptions.clear();
    this.socket.close();
  }

  private toEvent(m: { type: number; data: Buffer }): HostNetworkEvent | undefined {
    if (m.type === RTM_NEWADDR || m.type === RTM_DELADDR) {
      const record = decodeAddress(m.data);
      if (record === undefined || record.ip === PROBE_IP) return undefined;
      return { type: m.type === RTM_NEWADDR ? 'address-added' : 'address-removed', address: this.toInterfaceAddress(record, this.entries) };
    }
    if (m.type === RTM_NEWLINK || m.type === RTM_DELLINK) {
      const link = toLink(rt.parseLinkMessage(m.data));
      return { type: m.type === RTM_NEWLINK ? 'link-changed' : 'link-removed', link };
    }
    return undefined;
  }

  /** The kernel's address as the agent sees it: `ours` by the marker, or by the record's `entries`. */
  private toInterfaceAddress(r: AddressRecord, entries: ReadonlyMap<string, RecordedAddress>): InterfaceAddress {
    const ours = this.known?.record === undefined ? r.protocol === this.addressProtocol : recordedAs(entries.get(entryKey(r)), r);
    return {
      family: r.family,
      ifindex: r.ifindex,
      ip: r.ip,
      prefix: r.prefix,
      scope: r.scope,
      protocol: r.protocol,
      ours,
      secondary: (r.flags & IFA_F_SECONDARY) !== 0,
      tentative: (r.flags & IFA_F_TENTATIVE) !== 0,
      dadFailed: (r.flags & IFA_F_DADFAILED) !== 0,
      deprecated: (r.flags & IFA_F_DEPRECATED) !== 0,
      validLifetime: r.validLifetime,
      preferredLifetime: r.preferredLifetime,
    };
  }

  /** The ownership mode, probed on first use (once per instance). */
  private ready(): Promise<Ownership> {
    this.detected ??= this.detect().then((o) => {
      // Notifications are judged by the record from the start, before any other call reads it.
      if (o.record !== undefined) this.loadRecord(o.record);
      return (this.known = o);
    });
    return this.detected;
  }

  private async detect(): Promise<Ownership> {
    const recordMode = (reason: string): Ownership => {
      const record = new OwnershipRecord(this.recordPath);
      return { status: { mode: 'record', reason, recordPath: record.path }, record };
    };
    if (this.marker === 'off') return recordMode('the address marker is turned off (PURELB_ADDRESS_MARKER=off)');
    let kept: boolean | undefined;
    let why: string;
    try {
      kept = await this.probeMarker();
      why = kept === undefined ? `the probe address ${PROBE_IP} on lo could not be read back` : '';
    } catch (error) {
      why = `the probe address ${PROBE_IP} on lo could not be added (${asError(error).message})`;
    }
    if (kept === true) return { status: { mode: 'marker', reason: `the kernel kept IFA_PROTO on a probe address` }, record: undefined };
    if (kept === false) return recordMode(`the kernel dropped IFA_PROTO from a probe address (Linux ${kernelRelease()}; it keeps it from 5.18 on)`);
    // The probe could not tell: go by the version.
    const byVersion = kernelKeepsAddressProtocol();
    const reason = `${why}; by its version (${kernelRelease()}) the kernel ${byVersion ? 'keeps' : 'drops'} IFA_PROTO`;
    return byVersion ? { status: { mode: 'marker', reason }, record: undefined } : recordMode(reason);
  }

  /**
   * Adds the probe address and reads it back: true when the marker came back, false
   * when it did not, undefined when that cannot be told. An address already there
   * with that IP is someone else's unless it carries our marker, and is left alone.
   */
  private async probeMarker(): Promise<boolean | undefined> {
    const lo = await this.lookupLink('lo');
    if (lo === undefined) return undefined;
    const spec: AddressSpec = { ifindex: lo.index, ip: PROBE_IP, prefix: 32, noPrefixRoute: true, lifetimes: { validSec: 10, preferredSec: 0 } };
    const errno = await this.command(RTM_NEWADDR, this.encodeSpec(spec), NLM_F_CREATE | NLM_F_EXCL);
    if (errno !== 0 && errno !== -EEXIST) throw new NetlinkError(`add ${PROBE_IP}/32 to lo`, -errno);
    const found = (await this.kernelAddresses('IPv4')).find((r) => r.ifindex === lo.index && r.ip === PROBE_IP && r.prefix === 32);
    if (errno === 0) await this.command(RTM_DELADDR, encodeAddress({ ifindex: lo.index, ip: PROBE_IP, prefix: 32 }), 0);
    if (found === undefined) return undefined;
    if (found.protocol === this.addressProtocol) return true;
    return errno === 0 ? false : undefined;
  }

  /**
   * The kernel's addresses, of one family or both. A message the previous dump already had, byte for byte, is
   * not decoded again: an agent's periodic pass reads every address, a thousand VIPs and
   * more, and finds them as they were (permanent addresses carry constant time stamps;
   * one with a running lifetime differs each time and is decoded).
   */
  private async kernelAddresses(family?: Family): Promise<AddressRecord[]> {
    const request = Buffer.alloc(8);
    request.writeUInt8(family === undefined ? 0 : family === 'IPv4' ? AF_INET : AF_INET6, 0);
    const out: AddressRecord[] = [];
    const decoded = new Map<string, AddressRecord | null>();
    for (const m of await this.dump(RTM_GETADDR, request, 'list addresses')) {
      if (m.type !== RTM_NEWADDR) continue;
      const bytes = m.data.toString('latin1');
      let record = this.lastDecoded.get(bytes);
      if (record === undefined) {
        const fresh = decodeAddress(m.data);
        record = fresh === undefined ? null : Object.freeze(fresh);
      }
      decoded.set(bytes, record);
      if (record !== null && record.ip !== PROBE_IP) out.push(record);
    }
    this.lastDecoded = decoded;
    return out;
  }

  /** Reads the record (noting a problem with it once) and keeps it for judging notifications. */
  private loadRecord(record: OwnershipRecord): Map<string, RecordedAddress> {
    const loaded = record.load();
    if (loaded.problem !== undefined) this.recordProblem = loaded.problem;
    this.entries = loaded.entries;
    return loaded.entries;
  }

  /**
   * The record against the kernel: entries whose address is gone, or is another
   * address now, leave; `adding` entries the kernel confirms become `held`.
   */
  private settle(entries: ReadonlyMap<string, RecordedAddress>, present: readonly AddressRecord[]): Map<string, RecordedAddress> {
    const byKey = new Map(present.map((r) => [entryKey(r), r]));
    const out = new Map<string, RecordedAddress>();
    for (const [key, entry] of entries) {
      const r = byKey.get(key);
      if (r === undefined || !recordedAs(entry, r)) continue;
      out.set(key, entry.state === 'held' ? entry : { ...entry, state: 'held', created: r.created, at: new Date().toISOString() });
    }
    return out;
  }

  private store(record: OwnershipRecord, entries: Map<string, RecordedAddress>): void {
    record.store(entries);
    this.entries = entries;
  }

  /** addAddresses where the record tells what is ours: record, add, record again. */
  private async addRecorded(record: OwnershipRecord, specs: readonly AddressSpec[]): Promise<AddResult[]> {
    const names = new Map((await this.linkMessages()).map(toLink).map((l) => [l.index, l.name]));
    const present = await this.kernelAddresses();
    const entries = this.settle(this.loadRecord(record), present);
    const findAddress = addressFinder(present.map((r) => this.toInterfaceAddress(r, entries)));
    const results: Array<AddResult | undefined> = specs.map(() => undefined);
    const adding: Array<{ i: number; key: string; payload: Buffer }> = [];
    const refreshing: Array<{ i: number; key: string; payload: Buffer }> = [];
    const at = new Date().toISOString();
    for (const [i, spec] of specs.entries()) {
      let payload: Buffer;
      let holder: InterfaceAddress | undefined;
      let ip: string;
      try {
        payload = this.encodeSpec(spec);
        holder = findAddress(spec);
        ip = parseIp(spec.ip).ip;
      } catch (error) {
        results[i] = { spec, outcome: 'failed', error: asError(error) };
        continue;
      }
      const ifname = names.get(spec.ifindex);
      if (ifname === undefined) results[i] = { spec, outcome: 'failed', error: new NetlinkError(`add ${spec.ip}/${spec.prefix}`, ENODEV) };
      else if (holder !== undefined && !holder.ours) results[i] = { spec, outcome: 'foreign', holder };
      else if (holder !== undefined) refreshing.push({ i, key: entryKey(holder), payload });
      else {
        const key = entryKey({ ifindex: spec.ifindex, ip, prefix: spec.prefix });
        if (entries.has(key)) {
          results[i] = { spec, outcome: 'failed', error: new Error(`add ${spec.ip}/${spec.prefix}: asked for twice in one batch`) };
          continue;
        }
        const lifetimes = spec.lifetimes === undefined ? {} : { lifetimes: { ...spec.lifetimes } };
        entries.set(key, { ifname, ifindex: spec.ifindex, ip, prefix: spec.prefix, state: 'adding', noPrefixRoute: spec.noPrefixRoute === true, ...lifetimes, at });
        adding.push({ i, key, payload });
      }
    }
    // Recorded before the kernel has them: a crash from here on leaves `adding` entries.
    if (adding.length > 0) this.store(record, entries);
    const raced: number[] = [];
    await Promise.all([
      ...adding.map(async ({ i, key, payload }) => {
        const spec = specs[i] as AddressSpec;
        try {
          const errno = await this.command(RTM_NEWADDR, payload, NLM_F_CREATE | NLM_F_EXCL);
          if (errno === 0) results[i] = { spec, outcome: 'added' };
          else {
            entries.delete(key);
            if (errno === -EEXIST) raced.push(i); // someone else added it meanwhile
            else results[i] = { spec, outcome: 'failed', error: new NetlinkError(`add ${spec.ip}/${spec.prefix}`, -errno) };
          }
        } catch (error) {
          // No answer: the add may or may not have happened; the entry stays `adding`.
          results[i] = { spec, outcome: 'failed', error: asError(error) };
        }
      }),
      ...refreshing.map(async ({ i, key, payload }) => {
        const spec = specs[i] as AddressSpec;
        try {
          const errno = await this.command(RTM_NEWADDR, payload, NLM_F_CREATE | NLM_F_REPLACE);
          if (errno !== 0) throw new NetlinkError(`refresh ${spec.ip}/${spec.prefix}`, -errno);
          const entry = entries.get(key);
          if (entry !== undefined) entries.set(key, { ...entry, ...(spec.lifetimes === undefined ? {} : { lifetimes: { ...spec.lifetimes } }), at });
          results[i] = { spec, outcome: 'refreshed' };
        } catch (error) {
          results[i] = { spec, outcome: 'failed', error: asError(error) };
        }
      }),
    ]);
    if (adding.length > 0 || refreshing.length > 0) {
      // The kernel's creation stamps of what we added: from now on they identify them.
      const after = await this.kernelAddresses();
      const confirmed = this.settle(entries, after);
      const findAfter = addressFinder(after.map((r) => this.toInterfaceAddress(r, confirmed)));
      this.store(record, confirmed);
      for (const i of raced) {
        const spec = specs[i] as AddressSpec;
        const holder = findAfter(spec);
        results[i] = holder === undefined ? { spec, outcome: 'failed', error: new Error(`add ${spec.ip}/${spec.prefix}: EEXIST, but no such address is listed`) } : { spec, outcome: 'foreign', holder };
      }
    }
    return results as AddResult[];
  }

  /** deleteAddresses where the record tells what is ours: delete, then drop the entries. */
  private async deleteRecorded(record: OwnershipRecord, keys: readonly AddressKey[]): Promise<DeleteResult[]> {
    const present = await this.kernelAddresses();
    const entries = this.settle(this.loadRecord(record), present);
    const judged = present.map((r) => this.toInterfaceAddress(r, entries));
    const results = await this.deleteJudged(keys, judged);
    const findAddress = addressFinder(judged);
    for (const r of results) {
      if (r.outcome !== 'deleted' && r.outcome !== 'absent') continue;
      const held = findAddress(r.key);
      if (held !== undefined) entries.delete(entryKey(held));
    }
    this.store(record, entries);
    return results;
  }

  private encodeSpec(spec: AddressSpec): Buffer {
    const { family } = parseIp(spec.ip);
    let flags = family === 'IPv6' ? IFA_F_NODAD : 0;
    if (spec.noPrefixRoute === true) flags |= IFA_F_NOPREFIXROUTE;
    return encodeAddress({ ...spec, flags, protocol: this.addressProtocol });
  }

  /** One request under the window; the replies, NLMSG_ERROR included (checked by the caller). */
  private exchange(type: number, payload: Buffer, flags: number): Promise<NetlinkMessage[]> {
    return this.window.run(async () => {
      const [replies] = await this.socket.request(type, payload, { flags, timeout: this.timeoutMs, checkError: false });
      return replies;
    });
  }

  /** Sends one request and returns the kernel's answer: 0 or a negative errno. */
  private async command(type: number, payload: Buffer, flags: number): Promise<number> {
    const first = (await this.exchange(type, payload, flags))[0];
    return first !== undefined && first.type === NLMSG_ERROR ? decodeError(first.data) : 0;
  }

  /**
   * The kernel runs one dump per socket at a time and answers a second with EBUSY, so
   * dumps queue here behind each other, and each runs alone on the socket (Window): a
   * gratuitous burst's kernel check may dump while a reconcile adds.
   */
  private dumps: Promise<unknown> = Promise.resolve();

  private async dump(type: number, payload: Buffer, operation: string): Promise<NetlinkMessage[]> {
    const turn = this.dumps.then(() =>
      this.window.runAlone(async () => {
        const [replies] = await this.socket.request(type, payload, { flags: NLM_F_DUMP, timeout: this.timeoutMs, checkError: false });
        return replies;
      }),
    );
    this.dumps = turn.catch(() => undefined);
    const replies = await turn;
    const error = replies.find((m) => m.type === NLMSG_ERROR);
    if (error !== undefined && decodeError(error.data) !== 0) throw new NetlinkError(operation, -decodeError(error.data));
    return replies;
  }

  private async linkMessages(): Promise<rt.LinkMessage[]> {
    const replies = await this.dump(RTM_GETLINK, Buffer.alloc(16), 'list interfaces');
    return replies.filter((m) => m.type === RTM_NEWLINK).map((m) => rt.parseLinkMessage(m.data));
  }

  /** Interfaces (of those named by `keys`) on which the kernel promotes IPv4 secondaries. */
  private async promotesSecondaries(keys: readonly AddressKey[]): Promise<Set<number>> {
    const out = new Set<number>();
    let all = false;
    try {
      all = readFileSync('/proc/sys/net/ipv4/conf/all/promote_secondaries', 'utf8').trim() === '1';
    } catch {
      // Unreadable: decide per interface only.
    }
    const wanted = new Set(keys.map((k) => k.ifindex));
    for (const link of await this.linkMessages()) {
      const index = link.data.index ?? 0;
      if (!wanted.has(index)) continue;
      if (all || decodeInetConf(link.attrs.afSpec?.get(AF_INET), IPV4_DEVCONF_PROMOTE_SECONDARIES) === 1) out.add(index);
    }
    return out;
  }

  private async nextHopInterfaces(): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    const groups = new Map<number, number>();
    const replies = await this.dump(RTM_GETNEXTHOP, Buffer.alloc(8), 'list next hops');
    for (const nh of replies.filter((m) => m.type === RTM_NEWNEXTHOP).map((m) => rt.parseNextHopMessage(m.data))) {
      const id = nh.attrs.id;
      if (id === undefined) continue;
      if (nh.attrs.oif !== undefined) out.set(id, nh.attrs.oif);
      // struct nexthop_grp { u32 id; u8 weight; u8 resvd1; u16 resvd2; }: take the first member.
      else if (nh.attrs.group !== undefined && nh.attrs.group.length >= 4) groups.set(id, nh.attrs.group.readUInt32LE(0));
    }
    for (const [id, member] of groups) {
      const oif = out.get(member);
      if (oif !== undefined) out.set(id, oif);
    }
    return out;
  }
}

function toLink(m: rt.LinkMessage): Link {
  const flags = m.data.flags ?? {};
  const mac = m.attrs.address;
  return {
    name: m.attrs.ifname ?? `if${m.data.index ?? 0}`,
    index: m.data.index ?? 0,
    kind: decodeLinkInfoKind(m.attrs.linkinfo),
    hardwareType: String(m.data.type ?? 'NONE'),
    mac: mac !== undefined && mac.length === 6 ? [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':') : undefined,
    up: flags.up === true,
    lowerUp: flags.lowerUp === true,
  };
}

function isUnicast(type: rt.Route['type']): boolean {
  return type === undefined || type === 'UNICAST' || type === 1;
}

/** The interface of the first hop of an RTA_MULTIPATH (struct rtnexthop: len u16, flags u8, hops u8, ifindex s32). */
function firstMultipathIfindex(multipath: Buffer | undefined): number | undefined {
  return multipath !== undefined && multipath.length >= 8 ? multipath.readInt32LE(4) : undefined;
}

/**
 * Finds the counterpart of an address key among `present`: same interface and IP
 * (and, for IPv4, prefix, as the kernel matches). Indexed, since a reconcile looks up
 * every one of thousands of addresses.
 */
function addressFinder(present: readonly InterfaceAddress[]): (key: AddressKey) => InterfaceAddress | undefined {
  const index = new Map<string, InterfaceAddress[]>();
  for (const a of present) {
    const k = `${a.ifindex}|${a.ip}`;
    const list = index.get(k);
    if (list) list.push(a);
    else index.set(k, [a]);
  }
  return (key) => {
    const { family, ip } = parseIp(key.ip);
    return index.get(`${key.ifindex}|${ip}`)?.find((a) => a.family === family && (family === 'IPv6' || a.prefix === key.prefix));
  };
}

/** Foreign IPv4 secondaries the kernel would delete along with `primary` (same subnet and prefix). */
function foreignSecondariesOf(primary: InterfaceAddress, present: readonly InterfaceAddress[]): InterfaceAddress[] {
  if (primary.family !== 'IPv4' || primary.secondary) return [];
  return present.filter(
    (a) =>
      a.ifindex === primary.ifindex &&
      a.family === 'IPv4' &&
      a.secondary &&
      !a.ours &&
      a.prefix === primary.prefix &&
      containsIp(primary.ip, primary.prefix, a.ip),
  );
}

/**
 * Bounds how many requests are in flight; the rest wait their turn in order. A dump runs
 * alone: a reply to another request that arrives in the middle of a dump's multipart
 * answer breaks the binding's parse ("Multipart message not terminated properly", seen
 * when a gratuitous burst's kernel check ran beside a reconcile's adds).
 */
class Window {
  private free: number;
  private readonly size: number;
  private readonly waiting: Array<() => void> = [];

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`request window ${size} must be a positive integer`);
    this.free = size;
    this.size = size;
  }

  private async acquire(): Promise<void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((turn) => this.waiting.push(turn));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.free++;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  /** Takes every slot, in turn, so that `work` has the socket to itself. Callers run one at a time (the dump queue). */
  async runAlone<T>(work: () => Promise<T>): Promise<T> {
    for (let i = 0; i < this.size; i++) await this.acquire();
    try {
      return await work();
    } finally {
      for (let i = 0; i < this.size; i++) this.release();
    }
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
