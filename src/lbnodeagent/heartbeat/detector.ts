// The fast failure detector: every agent sends a small authenticated UDP datagram to
// each of its peers every interval and declares a peer dead after `missCount`
// intervals of silence (defaults: 100 ms × 3). The peers are the members that share a
// local subnet with this node (see `heartbeatPeers` in membership.ts): the nodes that
// can take over its layer-2 addresses, or whose addresses it can take over. Cost per
// node: P/interval datagrams of ~90 bytes each way, P = its peers.
//
// Partitions: a datagram to a peer says whether we hear that peer (`hearsYou`) and
// whether we hear at least half of our peers (`quorate`). A node that is not quorate
// assumes that it is the one cut off and stops acting on silence (its view freezes),
// and peers exclude it from elections, since traffic may not reach it. A node that a
// quorate peer cannot hear yields the addresses that this peer will take over. Both
// judgements are over the same peer set: the candidates for the addresses at stake.
// Silence is death only when it is one peer's alone (others were heard well after it
// went quiet; when we are the one cut off, all go quiet at once), and not in the first
// detection window after our quorum comes back (their first datagrams are still coming).

import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import type { Logger } from '../../log.ts';
import { HeartbeatWriter, ReplayFilter, decodeHeartbeat, heartbeatKey } from './packet.ts';
import type { KeyObject } from 'node:crypto';
import type { HeartbeatType } from './packet.ts';

export interface Peer {
  node: string;
  /** `ip:port`, `[ipv6]:port`. */
  endpoint: string;
}

export interface Endpoint {
  address: string;
  port: number;
}

/** One datagram of a round; `sent` is told once the transport is done with `packet`. */
export interface Datagram {
  packet: Buffer;
  to: Endpoint;
  sent: (err: Error | null) => void;
}

/** How datagrams leave and arrive: UDP in the agent, a simulated network in tests and the scale bench. */
export interface HeartbeatTransport {
  open(receive: (packet: Buffer, from: Endpoint) => void): Promise<void>;
  /** One round's datagrams at once, so that a transport can batch them. */
  send(datagrams: readonly Datagram[]): void;
  /** Closes once the datagrams already given have left. */
  close(): Promise<void>;
}

/** Time and periodic timers: the wall clock in the agent, a simulated one in tests and the scale bench. */
export interface Clock {
  now(): number;
  /** Calls `fn` every `ms` until the returned function is called. */
  every(ms: number, fn: () => void): () => void;
}

export const wallClock: Clock = {
  now: () => Date.now(),
  every(ms, fn) {
    const timer = setInterval(fn, ms);
    return () => clearInterval(timer);
  },
};

export interface DetectorOptions {
  node: string;
  key: Buffer;
  bindAddress: string;
  port: number;
  intervalMs?: number;
  missCount?: number;
  /** A newly listed peer counts as alive this long before its first datagram. */
  graceMs?: number;
  log: Logger;
  /** Defaults: UDP on bindAddress:port, and the wall clock. */
  transport?: HeartbeatTransport;
  clock?: Clock;
}

export interface DetectorCounters {
  sent: number;
  received: number;
  forged: number;
  replayed: number;
  malformed: number;
  unknownSender: number;
}

interface PeerState {
  addedAt: number;
  lastHeard: number;
  /** Set by a `leaving` datagram: dead until a newer incarnation speaks. */
  leftIncarnation: bigint | undefined;
  /** What the peer's last datagram said about us and about itself. */
  hearsMe: boolean;
  quorate: boolean;
  alive: boolean;
  /** The view listeners were last told about (see `view`). */
  told: number;
  /** This peer's datagram, rewritten every round; not reused while the transport still holds it. */
  datagram: Datagram;
  inFlight: boolean;
}

export function parseEndpoint(text: string): Endpoint | undefined {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(text) ?? /^([0-9.]+):(\d+)$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  return port > 0 && port < 65536 ? { address: m[1] as string, port } : undefined;
}

export function formatEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * UDP on one socket. Node's dgram has no sendmmsg, so a round is one sendto per
 * datagram; the literal addresses need no resolver, and the buffers are the peers' own.
 */
export class UdpTransport implements HeartbeatTransport {
  private readonly bindAddress: string;
  private readonly port: number;
  private readonly log: Logger;
  private socket: Socket | undefined;

  constructor(bindAddress: string, port: number, log: Logger) {
    this.bindAddress = bindAddress;
    this.port = port;
    this.log = log;
  }

  async open(receive: (packet: Buffer, from: Endpoint) => void): Promise<void> {
    const socket = createSocket({ type: this.bindAddress.includes(':') ? 'udp6' : 'udp4', reuseAddr: true });
    socket.on('message', receive);
    socket.on('error', (err) => this.log.warn('heartbeat socket error', { op: 'heartbeat', err }));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.port, this.bindAddress, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    this.socket = socket;
  }

  send(datagrams: readonly Datagram[]): void {
    const socket = this.socket;
    if (!socket) return;
    for (const d of datagrams) socket.send(d.packet, d.to.port, d.to.address, d.sent);
  }

  async close(): Promise<void> {
    await new Promise((r) => setTimeout(r, 5));
    this.socket?.close();
    this.socket = undefined;
  }
}

export class HeartbeatDetector {
  private readonly opts: Required<Omit<DetectorOptions, 'transport' | 'clock'>>;
  /** opts.key, prepared once for every packet's HMAC. */
  private readonly key: KeyObject;
  private readonly writer: HeartbeatWriter;
  private readonly transport: HeartbeatTransport;
  private readonly clock: Clock;
  private readonly peers = new Map<string, PeerState>();
  /**
   * Senders that are not our peers: an agent that does not scope its heartbeats (an
   * older version, during a rolling upgrade), or one whose view of our Lease lags. They
   * are answered, so that they do not count us as silent and lose their quorum, but
   * not watched; the answers stop once they have been silent for graceMs.
   */
  private readonly callers = new Map<string, PeerState>();
  private readonly replay = new ReplayFilter();
  private readonly listeners: Array<() => void> = [];
  private readonly incarnation: bigint;
  /** The datagrams of one round, reused. */
  private readonly round: Datagram[] = [];
  private seq = 0;
  private started = false;
  private cancels: Array<() => void> = [];
  private quorateNow = true;
  /** When we last became quorate again after hearing too few peers (0: never lost it). */
  private regainedAt = 0;
  /** How many peers listeners were last told about. */
  private toldPeers = 0;
  readonly counters: DetectorCounters = { sent: 0, received: 0, forged: 0, replayed: 0, malformed: 0, unknownSender: 0 };

  constructor(opts: DetectorOptions) {
    const { transport, clock, ...rest } = opts;
    this.opts = { intervalMs: 100, missCount: 3, graceMs: 2000, ...rest };
    this.clock = clock ?? wallClock;
    this.transport = transport ?? new UdpTransport(opts.bindAddress, opts.port, opts.log);
    this.key = heartbeatKey(opts.key);
    this.incarnation = BigInt(this.clock.now());
    this.writer = new HeartbeatWriter(opts.node, this.incarnation, this.key);
  }

  get endpoint(): string {
    return formatEndpoint(this.opts.bindAddress, this.opts.port);
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** The peers to send to and to watch; ourselves excluded. */
  setPeers(peers: readonly Peer[]): void {
    const now = this.clock.now();
    const wanted = new Map(peers.filter((p) => p.node !== this.opts.node).map((p) => [p.node, p]));
    for (const node of [...this.peers.keys()]) if (!wanted.has(node)) this.peers.delete(node);
    for (const [node, p] of wanted) {
      const endpoint = parseEndpoint(p.endpoint);
      if (!endpoint) continue;
      this.callers.delete(node);
      const state = this.peers.get(node);
      if (state) state.datagram.to = endpoint;
      else this.peers.set(node, this.newPeer(endpoint, now));
    }
    this.evaluate();
  }

  /** The nodes this detector sends to and watches. */
  peerNodes(): string[] {
    return [...this.peers.keys()];
  }

  /** Whether a peer counts for elections: heard recently and quorate itself. Members that are not peers count on their Lease. */
  usable(node: string): boolean {
    const p = this.peers.get(node);
    return p === undefined || (p.alive && p.quorate);
  }

  /** Quorate peers that report they cannot hear us: they will take over what they win without us. */
  deafPeers(): Set<string> {
    const out = new Set<string>();
    for (const [node, p] of this.peers) if (p.alive && p.quorate && !p.hearsMe) out.add(node);
    return out;
  }

  quorate(): boolean {
    return this.quorateNow;
  }

  async start(): Promise<void> {
    await this.transport.open((packet, from) => this.receive(packet, from));
    this.started = true;
    this.cancels = [
      this.clock.every(this.opts.intervalMs, () => this.sendAll('alive')),
      this.clock.every(Math.max(10, Math.floor(this.opts.intervalMs / 2)), () => this.evaluate()),
    ];
    this.sendAll('alive');
  }

  /** Tells every peer we are leaving (three copies against loss), then closes. */
  async stop(): Promise<void> {
    for (const cancel of this.cancels) cancel();
    this.cancels = [];
    for (let i = 0; i < 3; i++) this.sendAll('leaving');
    this.started = false;
    await this.transport.close();
  }

  private newPeer(to: Endpoint, now: number): PeerState {
    const state: PeerState = {
      addedAt: now,
      lastHeard: 0,
      leftIncarnation: undefined,
      hearsMe: true,
      quorate: true,
      alive: true,
      told: -1,
      inFlight: false,
      datagram: {
        packet: this.writer.allocate(),
        to,
        sent: (err) => {
          state.inFlight = false;
          if (!err) this.counters.sent++;
        },
      },
    };
    return state;
  }

  private sendAll(type: HeartbeatType): void {
    if (!this.started) return;
    const now = this.clock.now();
    this.round.length = 0;
    for (const p of this.peers.values()) this.queue(p, type, this.hears(p, now), now);
    for (const [node, c] of this.callers) {
      if (now - c.lastHeard > this.opts.graceMs) this.callers.delete(node);
      else this.queue(c, type, true, now, true);
    }
    this.transport.send(this.round);
  }

  private queue(p: PeerState, type: HeartbeatType, hearsYou: boolean, now: number, answer = false): void {
    // Still held by the transport since the last round: this round gets its own buffer.
    if (p.inFlight) p.datagram = { ...p.datagram, packet: this.writer.allocate() };
    this.writer.write(p.datagram.packet, type, hearsYou, this.quorateNow, ++this.seq, now, answer);
    p.inFlight = true;
    this.round.push(p.datagram);
  }

  private answer(node: string, type: HeartbeatType, from: Endpoint, now: number): void {
    if (node === this.opts.node || type === 'leaving') {
      this.callers.delete(node);
      return;
    }
    const caller = this.callers.get(node) ?? this.newPeer({ address: from.address, port: from.port }, now);
    caller.lastHeard = now;
    this.callers.set(node, caller);
  }

  private receive(msg: Buffer, from: Endpoint): void {
    const decoded = decodeHeartbeat(msg, this.key);
    if (!decoded.ok) {
      this.counters[decoded.reason]++;
      return;
    }
    const h = decoded.heartbeat;
    const now = this.clock.now();
    if (!this.replay.accept(h, now)) {
      this.counters.replayed++;
      return;
    }
    const p = this.peers.get(h.node);
    if (!p) {
      this.counters.unknownSender++;
      // Answers are not answered: two nodes that are not each other's peers would keep each other going.
      if (!h.answer) this.answer(h.node, h.type, from, now);
      return;
    }
    this.counters.received++;
    const wasHeard = this.hears(p, now);
    if (h.type === 'leaving') {
      p.leftIncarnation = h.incarnation;
    } else if (p.leftIncarnation === undefined || h.incarnation > p.leftIncarnation) {
      p.leftIncarnation = undefined;
      p.lastHeard = now;
    }
    p.hearsMe = h.hearsYou;
    p.quorate = h.quorate;
    // The common datagram confirms what we already believe: no pass over all peers.
    if (h.type === 'leaving' || !wasHeard || p.told !== view(p)) this.evaluate();
  }

  /** Heard within the detection window, or new and still within its grace period. */
  private hears(p: PeerState, now: number): boolean {
    if (p.leftIncarnation !== undefined) return false;
    if (p.lastHeard === 0) return now - p.addedAt < this.opts.graceMs;
    return now - p.lastHeard <= this.opts.intervalMs * this.opts.missCount;
  }

  /**
   * Whether a silent peer fell silent alone: enough of the others were heard well after
   * its last datagram (more than 1.5 intervals later). When we are the one cut off,
   * every peer falls silent at once, but we notice them one evaluation after another;
   * without this rule the first ones would be declared dead while the rest still made a
   * quorum, and we would claim their addresses until the quorum went too.
   */
  private diedAlone(p: PeerState, heardAt: readonly number[]): boolean {
    const others = this.peers.size - 1;
    if (others < 1) return true;
    const after = p.lastHeard + 1.5 * this.opts.intervalMs;
    let lo = 0;
    let hi = heardAt.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((heardAt[mid] as number) > after) hi = mid;
      else lo = mid + 1;
    }
    return (heardAt.length - lo) * 2 >= others;
  }

  private evaluate(): void {
    const now = this.clock.now();
    let heard = 0;
    for (const p of this.peers.values()) if (this.hears(p, now)) heard++;
    /** When each peer was last heard, sorted: built once a pass, when a live peer has fallen silent. */
    let heardAt: number[] | undefined;
    const quorate = this.peers.size < 2 || heard * 2 >= this.peers.size;
    // Our own quorum is news to listeners as well: while we were cut off, peers took
    // over our addresses and announced them, so the ones we kept are announced again.
    let changed = quorate !== this.quorateNow;
    if (changed) this.opts.log.info(quorate ? 'heartbeat quorum regained' : 'heartbeat quorum lost: peers kept as last heard', { op: 'heartbeat', node: this.opts.node, heard, peers: this.peers.size });
    if (quorate && !this.quorateNow) this.regainedAt = now;
    const window = this.opts.intervalMs * this.opts.missCount;
    this.quorateNow = quorate;
    // Back from being cut off (a healed link, or this process paused): the peers' first
    // datagrams arrive over one interval, and a quorum is reached before all of them
    // are in. Until a whole detection window has passed, silence is not death.
    const settling = this.regainedAt > 0 && now - this.regainedAt < window;
    for (const p of this.peers.values()) {
      // Not quorate: we are probably the one cut off; keep the last view instead of
      // declaring everybody dead. A goodbye is believed in any case.
      const heardNow = this.hears(p, now);
      if (p.leftIncarnation !== undefined) p.alive = false;
      else if (heardNow) p.alive = this.quorateNow || p.alive;
      else if (p.alive && this.quorateNow && !settling) {
        heardAt ??= [...this.peers.values()].map((q) => q.lastHeard).sort((a, b) => a - b);
        p.alive = !this.diedAlone(p, heardAt);
      }
      const v = view(p);
      if (v !== p.told) {
        p.told = v;
        changed = true;
      }
    }
    if (this.peers.size !== this.toldPeers) {
      this.toldPeers = this.peers.size;
      changed = true;
    }
    if (!changed) return;
    for (const l of this.listeners) l();
  }
}

/** What listeners see of a peer, as three bits. */
function view(p: PeerState): number {
  return (p.alive ? 4 : 0) | (p.quorate ? 2 : 0) | (p.hearsMe ? 1 : 0);
}
