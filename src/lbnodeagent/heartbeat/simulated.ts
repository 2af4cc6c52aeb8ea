// Many agents' membership and heartbeat code in one process: a clock and a network in
// memory, and a cluster of real HeartbeatDetectors and FastMemberships on them, for
// the unit tests of scoping and partitions and for the scale bench. The datagrams are
// the real bytes, HMAC and all; only the wire, the passing of time and the Leases
// (a list every member sees alike) are simulated. Who holds an address is the real
// election (desiredAnnouncements) on each node's own view.

import { createLogger } from '../../log.ts';
import { desiredAnnouncements } from '../desired.ts';
import type { Member, ServiceView } from '../desired.ts';
import { FastMembership } from '../membership.ts';
import type { LeaseSource } from '../membership.ts';
import { HeartbeatDetector } from './detector.ts';
import type { Clock, Datagram, Endpoint, HeartbeatTransport } from './detector.ts';

interface Timer {
  at: number;
  order: number;
  fn: () => void;
}

/** Simulated time: timers run in time order when the test or bench advances the clock. */
export class SimulatedClock implements Clock {
  private t: number;
  private order = 0;
  /** A binary min-heap on (at, order). */
  private readonly heap: Timer[] = [];

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  /** Whole milliseconds, as Date.now(); timers run at fractions of one. */
  now(): number {
    return Math.floor(this.t);
  }

  every(ms: number, fn: () => void): () => void {
    let cancelled = false;
    const tick = () => {
      if (cancelled) return;
      fn();
      this.at(this.t + ms, tick);
    };
    this.at(this.t + ms, tick);
    return () => {
      cancelled = true;
    };
  }

  /** Runs `fn` at `time` (not before now). */
  at(time: number, fn: () => void): void {
    const heap = this.heap;
    heap.push({ at: Math.max(time, this.t), order: this.order++, fn });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i] as Timer, heap[parent] as Timer)) break;
      [heap[i], heap[parent]] = [heap[parent] as Timer, heap[i] as Timer];
      i = parent;
    }
  }

  /** Runs every timer due up to `ms` from now, then stands at that time. */
  advance(ms: number): void {
    const until = this.t + ms;
    // Bounded: a timer that schedules itself again runs at a later time.
    for (let first = this.heap[0]; first !== undefined && first.at <= until; first = this.heap[0]) {
      this.pop();
      this.t = first.at;
      first.fn();
    }
    this.t = until;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop() as Timer;
    if (heap.length === 0) return;
    heap[0] = last;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && before(heap[l] as Timer, heap[m] as Timer)) m = l;
      if (r < heap.length && before(heap[r] as Timer, heap[m] as Timer)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m] as Timer, heap[i] as Timer];
      i = m;
    }
  }
}

function before(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.order < b.order);
}

/** A small seeded generator (mulberry32), so that runs repeat. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

export type CutDirection = 'in' | 'out' | 'both';

/**
 * A LAN in memory, by host address. A round of datagrams arrives after the latency
 * (plus jitter); a host whose inbound or outbound side is cut loses what would cross it.
 */
export class SimulatedNetwork {
  private readonly clock: SimulatedClock;
  private readonly latencyMs: number;
  private readonly jitterMs: number;
  private readonly random: () => number;
  private readonly hosts = new Map<string, (packet: Buffer, from: Endpoint) => void>();
  private readonly cutIn = new Set<string>();
  private readonly cutOut = new Set<string>();
  /** Datagrams by sender address, and by pair (`from>to`), delivered or not; and all delivered. */
  readonly sent = new Map<string, number>();
  readonly pairs = new Map<string, number>();
  delivered = 0;
  /** Off by default: counting every pair costs a string per datagram. */
  countPairs = false;

  constructor(clock: SimulatedClock, opts: { latencyMs?: number; jitterMs?: number; seed?: number } = {}) {
    this.clock = clock;
    this.latencyMs = opts.latencyMs ?? 0.2;
    this.jitterMs = opts.jitterMs ?? 0.3;
    this.random = seededRandom(opts.seed ?? 1);
  }

  transport(address: string, port: number): HeartbeatTransport {
    const from = { address, port };
    return {
      open: async (receive) => {
        this.hosts.set(address, receive);
      },
      send: (datagrams) => this.send(from, datagrams.slice()),
      close: async () => {
        this.hosts.delete(address);
      },
    };
  }

  cut(address: string, direction: CutDirection): void {
    if (direction !== 'out') this.cutIn.add(address);
    if (direction !== 'in') this.cutOut.add(address);
  }

  heal(address: string): void {
    this.cutIn.delete(address);
    this.cutOut.delete(address);
  }

  resetCounts(): void {
    this.sent.clear();
    this.pairs.clear();
    this.delivered = 0;
  }

  private send(from: Endpoint, batch: Datagram[]): void {
    this.sent.set(from.address, (this.sent.get(from.address) ?? 0) + batch.length);
    if (this.countPairs) for (const d of batch) this.pairs.set(`${from.address}>${d.to.address}`, (this.pairs.get(`${from.address}>${d.to.address}`) ?? 0) + 1);
    if (this.cutOut.has(from.address)) {
      for (const d of batch) d.sent(null);
      return;
    }
    this.clock.at(this.clock.now() + this.latencyMs + this.random() * this.jitterMs, () => {
      for (const d of batch) {
        const receive = this.hosts.get(d.to.address);
        if (receive && !this.cutIn.has(d.to.address)) {
          this.delivered++;
          receive(d.packet, from);
        }
        d.sent(null);
      }
    });
  }
}

export interface SimulatedNode {
  name: string;
  address: string;
  subnets: readonly string[];
}

/**
 * The Leases as one member sees them: fixed for the run, as within a Lease duration,
 * except those a test lets expire in this member's view (`lapse`).
 */
export class StaticLeases implements LeaseSource {
  heartbeatEndpoint = '';
  private readonly list: () => Member[];
  private readonly expired = new Set<string>();
  private readonly listeners: Array<() => void> = [];

  constructor(list: () => Member[]) {
    this.list = list;
  }

  members(): Member[] {
    return this.expired.size === 0 ? this.list() : this.list().filter((m) => !this.expired.has(m.node));
  }

  lapsed(): Member[] {
    return this.list().filter((m) => this.expired.has(m.node));
  }

  /** These members' Leases expire in this view (their renewals stop reaching it). */
  lapse(nodes: readonly string[]): void {
    for (const n of nodes) this.expired.add(n);
    for (const l of this.listeners) l();
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  async start(): Promise<void> {}

  async publish(): Promise<void> {}

  async stop(): Promise<void> {}
}

export interface SimulatedAgent {
  node: SimulatedNode;
  detector: HeartbeatDetector;
  leases: StaticLeases;
  membership: FastMembership;
}

export const HEARTBEAT_PORT = 7934;

/** Nodes named `node-<i>` with addresses 10.<s>.x.y, `perSubnet` to a /22 (at most 1,000 per subnet). */
export function simulatedNodes(count: number, perSubnet: number): SimulatedNode[] {
  return Array.from({ length: count }, (_, i) => {
    const s = Math.floor(i / perSubnet);
    const host = (i % perSubnet) + 1;
    return { name: `node-${i}`, address: `10.${s}.${host >> 8}.${host & 255}`, subnets: [`10.${s}.0.0/22`] };
  });
}

/** A cluster of real detectors and memberships on a simulated clock and network. */
export class SimulatedCluster {
  readonly clock = new SimulatedClock();
  readonly network: SimulatedNetwork;
  readonly agents: SimulatedAgent[];
  private readonly members: Member[];

  constructor(nodes: readonly SimulatedNode[], opts: { intervalMs?: number; missCount?: number; seed?: number } = {}) {
    this.network = new SimulatedNetwork(this.clock, { seed: opts.seed ?? 1 });
    const key = Buffer.alloc(32, 42);
    const log = createLogger('simulated', 'error');
    this.members = nodes.map((n) => ({ node: n.name, subnets: n.subnets, heartbeat: `${n.address}:${HEARTBEAT_PORT}` }));
    this.agents = nodes.map((node) => {
      const detector = new HeartbeatDetector({
        node: node.name,
        key,
        bindAddress: node.address,
        port: HEARTBEAT_PORT,
        intervalMs: opts.intervalMs ?? 100,
        missCount: opts.missCount ?? 3,
        log,
        transport: this.network.transport(node.address, HEARTBEAT_PORT),
        clock: this.clock,
      });
      const leases = new StaticLeases(() => this.members);
      const membership = new FastMembership(leases, detector, node.name);
      return { node, detector, leases, membership };
    });
  }

  agent(name: string): SimulatedAgent {
    const a = this.agents.find((x) => x.node.name === name);
    if (!a) throw new Error(`no simulated node ${name}`);
    return a;
  }

  /** Starts every agent at a random phase within one interval, as real nodes start. */
  async start(intervalMs = 100): Promise<void> {
    const random = seededRandom(7);
    const starts = this.agents.map((agent) => ({ agent, offset: random() * intervalMs })).sort((a, b) => a.offset - b.offset);
    let at = 0;
    for (const { agent, offset } of starts) {
      this.clock.advance(offset - at);
      at = offset;
      await agent.membership.start(agent.node.subnets, true);
    }
    this.clock.advance(intervalMs - at);
  }

  /** Hard loss: nothing leaves or reaches the node any more. */
  lose(name: string): void {
    this.network.cut(this.agent(name).node.address, 'both');
  }

  heal(name: string): void {
    this.network.heal(this.agent(name).node.address);
  }

  /**
   * The nodes among `among` that put `ip` on their local interface, by the real election on
   * each one's own view: its members and its deaf peers.
   */
  holders(ip: string, among: readonly SimulatedAgent[] = this.agents): string[] {
    const service: ServiceView = { key: 'bench/vip', ips: [ip], group: undefined, local: false, endpointNodes: new Set() };
    return among
      .filter((a) =>
        desiredAnnouncements({
          self: { node: a.node.name, localInterface: { name: 'eth0', subnets: a.node.subnets }, dummyInterface: 'kube-lb0', eligible: true },
          members: a.membership.members(),
          services: [service],
          groups: new Map(),
          deafPeers: a.membership.deafPeers(),
        }).some((x) => x.ip === ip && x.kind === 'local'),
      )
      .map((a) => a.node.name);
  }
}
