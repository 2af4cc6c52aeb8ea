// HostNetwork over rtnetlink (npm `netlink`). It acts on the network namespace of the
// calling process, so an agent started with `ip netns exec NS …` (or in a pod with
// hostNetwork) manages that namespace and nothing else.
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
  Subscription,
} from './host-network.ts';

export interface RtnetlinkOptions {
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
 * Whether the kernel keeps IFA_PROTO (Linux 6.1+). Older kernels accept the attribute
 * and drop it, so our addresses would not be recognised as ours: never deleted (safe),
 * but strays from a crash would stay until their lifetime ends.
 */
export function kernelKeepsAddressProtocol(release: string = kernelRelease()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (m === null) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 6 || (major === 6 && minor >= 1);
}

export function openHostNetwork(options: RtnetlinkOptions = {}): HostNetwork {
  return new RtnetlinkHostNetwork(options);
}

class RtnetlinkHostNetwork implements HostNetwork {
  readonly addressProtocol: number;
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

  async listLinks(): Promise<Link[]> {
    return (await this.linkMessages()).map(toLink);
  }

  async findLink(name: string): Promise<Link | undefined> {
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

  async listAddresses(filter: { ifindex?: number; family?: Family; ours?: boolean } = {}): Promise<InterfaceAddress[]> {
    const request = Buffer.alloc(8);
    request.writeUInt8(filter.family === undefined ? 0 : filter.family === 'IPv4' ? AF_INET : AF_INET6, 0);
    const replies = await this.dump(RTM_GETADDR, request, 'list addresses');
    const out: InterfaceAddress[] = [];
    for (const m of replies) {
      if (m.type !== RTM_NEWADDR) continue;
      const record = decodeAddress(m.data);
      if (record === undefined) continue;
      const address = this.toInterfaceAddress(record);
      if (filter.ifindex !== undefined && address.ifindex !== filter.ifindex) continue;
      if (filter.family !== undefined && address.family !== filter.family) continue;
      if (filter.ours !== undefined && address.ours !== filter.ours) continue;
      out.push(address);
    }
    return out;
  }

  async addAddresses(specs: readonly AddressSpec[]): Promise<AddResult[]> {
    const first = await Promise.all(specs.map(async (spec): Promise<AddResult | 'exists'> => {
      try {
        const errno = await this.command(RTM_NEWADDR, this.encodeSpec(spec), NLM_F_CREATE | NLM_F_EXCL);
        if (errno === 0) return { spec, outcome: 'added' };
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
    const present = await this.listAddresses();
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
    const subscription = listenRtnetlink(
      groups,
      this.notificationBufferBytes,
      (datagram) => {
        for (const m of decodeMessages(datagram)) {
          const event = this.toEvent(m);
          if (event !== undefined) listener(event);
        }
      },
      () => listener({ type: 'overflow' }),
    );
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
      if (record === undefined) return undefined;
      return { type: m.type === RTM_NEWADDR ? 'address-added' : 'address-removed', address: this.toInterfaceAddress(record) };
    }
    if (m.type === RTM_NEWLINK || m.type === RTM_DELLINK) {
      const link = toLink(rt.parseLinkMessage(m.data));
      return { type: m.type === RTM_NEWLINK ? 'link-changed' : 'link-removed', link };
    }
    return undefined;
  }

  private toInterfaceAddress(r: AddressRecord): InterfaceAddress {
    return {
      family: r.family,
      ifindex: r.ifindex,
      ip: r.ip,
      prefix: r.prefix,
      scope: r.scope,
      protocol: r.protocol,
      ours: r.protocol === this.addressProtocol,
      secondary: (r.flags & IFA_F_SECONDARY) !== 0,
      tentative: (r.flags & IFA_F_TENTATIVE) !== 0,
      dadFailed: (r.flags & IFA_F_DADFAILED) !== 0,
      deprecated: (r.flags & IFA_F_DEPRECATED) !== 0,
      validLifetime: r.validLifetime,
      preferredLifetime: r.preferredLifetime,
    };
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
   * dumps queue here behind each other (other requests still share the window): a
   * gratuitous burst's kernel check may dump while a reconcile does.
   */
  private dumps: Promise<unknown> = Promise.resolve();

  private async dump(type: number, payload: Buffer, operation: string): Promise<NetlinkMessage[]> {
    const turn = this.dumps.then(() => this.exchange(type, payload, NLM_F_DUMP));
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

/** Bounds how many requests are in flight; the rest wait their turn in order. */
class Window {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`request window ${size} must be a positive integer`);
    this.free = size;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((turn) => this.waiting.push(turn));
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.free++;
    }
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
