// The heartbeat datagram. Authenticated with HMAC-SHA256 under a key shared through a
// Kubernetes Secret, and replay-proof: each sender numbers its packets within an
// incarnation (its start time), receivers accept only numbers they have not seen, and a
// timestamp window bounds how old a captured packet can be when a receiver has no
// state yet (after its own restart).
//
// Layout (big-endian): magic "PLB1" | type u8 | flags u8 | name length u8 | name |
// incarnation u64 | seq u64 | sent-at ms u64 | HMAC-SHA256 over all that precedes (32).

import { createHmac, createSecretKey, timingSafeEqual } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

export const MAGIC = Buffer.from('PLB1');
export const MAC_BYTES = 32;

export type HeartbeatType = 'alive' | 'leaving';

export interface Heartbeat {
  type: HeartbeatType;
  node: string;
  incarnation: bigint;
  seq: bigint;
  sentAt: bigint;
  /** The sender heard the receiver recently (this flag is per destination). */
  hearsYou: boolean;
  /** The sender hears at least half of its peers, so it acts on what it does not hear. */
  quorate: boolean;
  /** The receiver is not the sender's peer: this only answers the receiver's datagrams, and is not to be answered. */
  answer?: boolean;
}

const TYPES: HeartbeatType[] = ['alive', 'leaving'];
const FLAG_HEARS_YOU = 1;
const FLAG_QUORATE = 2;
const FLAG_ANSWER = 4;

/**
 * The key as the HMAC wants it. Senders and receivers of many packets make it once:
 * preparing a raw key on every packet costs more than the HMAC itself.
 */
export function heartbeatKey(key: Buffer): KeyObject {
  return createSecretKey(key);
}

function mac(key: Buffer | KeyObject, body: Buffer): Buffer {
  return createHmac('sha256', key).update(body).digest();
}

/** Magic, type, flags and name length precede the name; incarnation, seq and sent-at follow it. */
const HEADER_BYTES = MAGIC.length + 3;
const MAGIC_WORD = MAGIC.readUInt32BE(0);

function writeU64(packet: Buffer, offset: number, value: number | bigint): void {
  if (typeof value === 'bigint') {
    packet.writeBigUInt64BE(value, offset);
    return;
  }
  // A number below 2^53 in two words: no BigInt per packet.
  packet.writeUInt32BE(Math.floor(value / 2 ** 32), offset);
  packet.writeUInt32BE(value >>> 0, offset + 4);
}

/**
 * One sender's datagrams, written in place: a destination's buffer gets the constant
 * fields (name, incarnation) once, and every send rewrites only type, flags, sequence,
 * time and MAC, so that a round of N datagrams allocates no N packets.
 */
export class HeartbeatWriter {
  private readonly name: Buffer;
  private readonly incarnation: bigint;
  private readonly key: Buffer | KeyObject;

  constructor(node: string, incarnation: bigint, key: Buffer | KeyObject) {
    this.name = Buffer.from(node, 'utf8');
    if (this.name.length === 0 || this.name.length > 253) throw new Error(`node name of ${this.name.length} bytes cannot be sent`);
    this.incarnation = incarnation;
    this.key = key;
  }

  /** A datagram buffer with the constant fields laid out. */
  allocate(): Buffer {
    const packet = Buffer.alloc(HEADER_BYTES + this.name.length + 24 + MAC_BYTES);
    MAGIC.copy(packet, 0);
    packet.writeUInt8(this.name.length, MAGIC.length + 2);
    this.name.copy(packet, HEADER_BYTES);
    packet.writeBigUInt64BE(this.incarnation, HEADER_BYTES + this.name.length);
    return packet;
  }

  /** Rewrites the varying fields of `packet` (from allocate()) and its MAC. */
  write(packet: Buffer, type: HeartbeatType, hearsYou: boolean, quorate: boolean, seq: number | bigint, sentAt: number | bigint, answer = false): void {
    packet.writeUInt8(TYPES.indexOf(type), MAGIC.length);
    packet.writeUInt8((hearsYou ? FLAG_HEARS_YOU : 0) | (quorate ? FLAG_QUORATE : 0) | (answer ? FLAG_ANSWER : 0), MAGIC.length + 1);
    const o = HEADER_BYTES + this.name.length + 8;
    writeU64(packet, o, seq);
    writeU64(packet, o + 8, sentAt);
    mac(this.key, packet.subarray(0, o + 16)).copy(packet, o + 16);
  }
}

export function encodeHeartbeat(h: Heartbeat, key: Buffer | KeyObject): Buffer {
  const writer = new HeartbeatWriter(h.node, h.incarnation, key);
  const packet = writer.allocate();
  writer.write(packet, h.type, h.hearsYou, h.quorate, h.seq, h.sentAt, h.answer);
  return packet;
}

export type DecodeResult = { ok: true; heartbeat: Heartbeat } | { ok: false; reason: 'malformed' | 'forged' };

export function decodeHeartbeat(packet: Buffer, key: Buffer | KeyObject): DecodeResult {
  const minimum = HEADER_BYTES + 1 + 24 + MAC_BYTES;
  if (packet.length < minimum || packet.readUInt32BE(0) !== MAGIC_WORD) return { ok: false, reason: 'malformed' };
  const nameLength = packet.readUInt8(MAGIC.length + 2);
  const bodyLength = HEADER_BYTES + nameLength + 24;
  if (packet.length !== bodyLength + MAC_BYTES) return { ok: false, reason: 'malformed' };
  const body = packet.subarray(0, bodyLength);
  if (!timingSafeEqual(mac(key, body), packet.subarray(bodyLength))) return { ok: false, reason: 'forged' };
  const type = TYPES[packet.readUInt8(MAGIC.length)];
  if (type === undefined) return { ok: false, reason: 'malformed' };
  const flags = packet.readUInt8(MAGIC.length + 1);
  let o = HEADER_BYTES;
  const node = body.toString('utf8', o, o + nameLength);
  o += nameLength;
  return {
    ok: true,
    heartbeat: {
      type,
      node,
      incarnation: body.readBigUInt64BE(o),
      seq: body.readBigUInt64BE(o + 8),
      sentAt: body.readBigUInt64BE(o + 16),
      hearsYou: (flags & FLAG_HEARS_YOU) !== 0,
      quorate: (flags & FLAG_QUORATE) !== 0,
      answer: (flags & FLAG_ANSWER) !== 0,
    },
  };
}

/**
 * Per-sender replay filter: a packet is fresh when its incarnation is newer than the
 * last seen, or equal with a higher sequence number; and in any case it was sent
 * within `windowMs` of our clock (bounds replays to a receiver that lost its state).
 */
export class ReplayFilter {
  private readonly last = new Map<string, { incarnation: bigint; seq: bigint }>();
  private readonly windowMs: number;

  constructor(windowMs = 30_000) {
    this.windowMs = windowMs;
  }

  accept(h: Heartbeat, nowMs: number): boolean {
    // In doubles: far from the window, rounding cannot turn a reject into an accept.
    if (Math.abs(Number(h.sentAt) - nowMs) > this.windowMs) return false;
    const prev = this.last.get(h.node);
    if (!prev) {
      this.last.set(h.node, { incarnation: h.incarnation, seq: h.seq });
      return true;
    }
    if (h.incarnation < prev.incarnation || (h.incarnation === prev.incarnation && h.seq <= prev.seq)) return false;
    prev.incarnation = h.incarnation;
    prev.seq = h.seq;
    return true;
  }
}
