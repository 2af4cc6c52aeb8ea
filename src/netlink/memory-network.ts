// An in-memory HostNetwork for unit tests: links, addresses with the ownership mark,
// lifetimes that run out on an injected clock, default routes, notifications. It keeps
// the rules of the real one that the agent relies on (only our addresses are changed
// or deleted; adding one of ours again renews its lifetimes), and records the last
// spec each address was added with, flags included, for tests to inspect.
//
// `{ marker: false }` plays a kernel that drops IFA_PROTO (before 5.18): ownership is
// then the record's (mode 'record'), the reported protocol is 0, and `loseRecord()`
// plays a deleted or corrupt record: every address we held becomes unknown, so it is
// reported as `foreign` and never changed or deleted.

import { parseAddress, parseCidr } from '../ipam/address.ts';
import type {
  AddResult,
  AddressKey,
  AddressSpec,
  DeleteResult,
  Family,
  HostNetwork,
  HostNetworkEvent,
  InterfaceAddress,
  Link,
  OwnershipStatus,
  Subscription,
} from './host-network.ts';
import { PURELB_ADDRESS_PROTOCOL } from './host-network.ts';
import { parseIp } from './messages.ts';

interface Held {
  address: InterfaceAddress;
  /** Clock time (ms) at which it expires; undefined: never. */
  validUntil: number | undefined;
  preferredUntil: number | undefined;
  spec: AddressSpec | undefined;
}

const keyOf = (k: AddressKey) => `${k.ifindex}|${parseIp(k.ip).ip}|${k.prefix}`;

export class MemoryNetwork implements HostNetwork {
  readonly addressProtocol = PURELB_ADDRESS_PROTOCOL;
  private readonly links = new Map<number, Link>();
  private readonly held = new Map<string, Held>();
  private readonly defaults = new Map<Family, number>();
  private readonly listeners = new Set<(e: HostNetworkEvent) => void>();
  private readonly now: () => number;
  private readonly marker: boolean;
  private recordProblem: string | undefined;

  constructor(opts: { now?: () => number; marker?: boolean } = {}) {
    this.now = opts.now ?? Date.now;
    this.marker = opts.marker ?? true;
  }

  async ownership(): Promise<OwnershipStatus> {
    if (this.marker) return { mode: 'marker', reason: 'in-memory kernel that keeps IFA_PROTO' };
    const status: OwnershipStatus = { mode: 'record', reason: 'in-memory kernel that drops IFA_PROTO', recordPath: 'memory' };
    return this.recordProblem === undefined ? status : { ...status, recordProblem: this.recordProblem };
  }

  /** Test set-up (marker: false): the record is lost; what it listed stays in the kernel, unknown. */
  loseRecord(problem = 'the ownership record was lost'): void {
    if (this.marker) throw new Error('loseRecord() plays a kernel without the marker: construct with { marker: false }');
    this.recordProblem = problem;
    for (const h of this.held.values()) h.address = { ...h.address, ours: false };
  }

  /** Test set-up: a link (up, with carrier). */
  addLink(name: string, kind?: string): Link {
    const index = Math.max(0, ...this.links.keys()) + 1;
    const link: Link = { name, index, kind, hardwareType: 'ETHER', mac: `02:00:00:00:00:${index.toString(16).padStart(2, '0')}`, up: true, lowerUp: true };
    this.links.set(index, link);
    return link;
  }

  /** Test set-up: an address that is not ours (the node's own), optionally the default route's. */
  addNodeAddress(ifname: string, cidr: string, defaultRoute = false): void {
    const link = this.byName(ifname);
    const [ip = '', prefix = ''] = cidr.split('/');
    const address = this.interfaceAddress({ ifindex: link.index, ip, prefix: Number(prefix) }, false);
    this.held.set(keyOf(address), { address, validUntil: undefined, preferredUntil: undefined, spec: undefined });
    if (defaultRoute) this.defaults.set(address.family, link.index);
  }

  /** Test set-up: an address deleted behind the agent's back (drift). */
  removeByHand(key: AddressKey): void {
    const h = this.held.get(keyOf(key));
    if (!h) return;
    this.held.delete(keyOf(key));
    this.emit({ type: 'address-removed', address: h.address });
  }

  /** The spec our address was last added or renewed with. */
  specOf(key: AddressKey): AddressSpec | undefined {
    this.expire();
    return this.held.get(keyOf(key))?.spec;
  }

  async listLinks(): Promise<Link[]> {
    return [...this.links.values()];
  }

  async findLink(name: string): Promise<Link | undefined> {
    return [...this.links.values()].find((l) => l.name === name);
  }

  async listAddresses(filter: { ifindex?: number; family?: Family; ours?: boolean } = {}): Promise<InterfaceAddress[]> {
    this.expire();
    const left = (until: number | undefined) => (until === undefined ? undefined : Math.max(0, Math.floor((until - this.now()) / 1000)));
    return [...this.held.values()]
      .filter(({ address: a }) => (filter.ifindex === undefined || a.ifindex === filter.ifindex) && (filter.family === undefined || a.family === filter.family) && (filter.ours === undefined || a.ours === filter.ours))
      .map((h) => ({ ...h.address, validLifetime: left(h.validUntil), preferredLifetime: left(h.preferredUntil) }));
  }

  async addAddresses(specs: readonly AddressSpec[]): Promise<AddResult[]> {
    this.expire();
    return specs.map((spec): AddResult => {
      if (!this.links.has(spec.ifindex)) return { spec, outcome: 'failed', error: new Error(`no link ${spec.ifindex}`) };
      const existing = this.held.get(keyOf(spec));
      if (existing && !existing.address.ours) return { spec, outcome: 'foreign', holder: existing.address };
      const at = this.now();
      const until = (sec: number | undefined) => (sec === undefined ? undefined : at + sec * 1000);
      const address = existing?.address ?? this.interfaceAddress(spec, true);
      this.held.set(keyOf(spec), { address, validUntil: until(spec.lifetimes?.validSec), preferredUntil: until(spec.lifetimes?.preferredSec), spec });
      if (existing) return { spec, outcome: 'refreshed' };
      this.emit({ type: 'address-added', address });
      return { spec, outcome: 'added' };
    });
  }

  async deleteAddresses(keys: readonly AddressKey[]): Promise<DeleteResult[]> {
    this.expire();
    return keys.map((key): DeleteResult => {
      const h = this.held.get(keyOf(key));
      if (!h) return { key, outcome: 'absent' };
      if (!h.address.ours) return { key, outcome: 'foreign', holder: h.address };
      this.held.delete(keyOf(key));
      this.emit({ type: 'address-removed', address: h.address });
      return { key, outcome: 'deleted' };
    });
  }

  async defaultRouteLink(family: Family): Promise<Link | undefined> {
    const index = this.defaults.get(family);
    return index === undefined ? undefined : this.links.get(index);
  }

  async linkForIp(ip: string): Promise<{ link: Link; address: InterfaceAddress } | undefined> {
    const wanted = parseAddress(ip);
    const inside = (a: InterfaceAddress) => {
      const c = parseCidr(`${a.ip}/${a.prefix}`);
      return wanted !== undefined && typeof c !== 'string' && c.family === wanted.family && c.first <= wanted.value && wanted.value <= c.last;
    };
    const candidates = (await this.listAddresses({ ours: false })).filter(inside);
    const best = candidates.sort((a, b) => b.prefix - a.prefix)[0];
    const link = best && this.links.get(best.ifindex);
    return best && link ? { link, address: best } : undefined;
  }

  async ensureDummyLink(name: string): Promise<{ link: Link; created: boolean }> {
    const found = await this.findLink(name);
    return found ? { link: found, created: false } : { link: this.addLink(name, 'dummy'), created: true };
  }

  watch(listener: (event: HostNetworkEvent) => void): Subscription {
    this.listeners.add(listener);
    return { close: () => this.listeners.delete(listener) };
  }

  close(): void {
    this.listeners.clear();
  }

  private byName(name: string): Link {
    const link = [...this.links.values()].find((l) => l.name === name);
    if (!link) throw new Error(`no link ${name}`);
    return link;
  }

  private interfaceAddress(key: AddressKey, ours: boolean): InterfaceAddress {
    const { family, ip } = parseIp(key.ip);
    return {
      family,
      ifindex: key.ifindex,
      ip,
      prefix: key.prefix,
      scope: 0,
      protocol: ours && this.marker ? this.addressProtocol : 0,
      ours,
      secondary: false,
      tentative: false,
      dadFailed: false,
      deprecated: false,
      validLifetime: undefined,
      preferredLifetime: undefined,
    };
  }

  /** Addresses whose valid lifetime ran out leave, as in the kernel. */
  private expire(): void {
    const at = this.now();
    for (const [key, h] of this.held) {
      if (h.validUntil !== undefined && h.validUntil <= at) {
        this.held.delete(key);
        this.emit({ type: 'address-removed', address: h.address });
      }
    }
  }

  private emit(event: HostNetworkEvent): void {
    for (const l of this.listeners) l(event);
  }
}
