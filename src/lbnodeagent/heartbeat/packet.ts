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
}

const TYPES: HeartbeatType[] = ['alive', 'leaving'];
const FLAG_HEARS_YOU = 1;
const FLAG_QUORATE = 2;

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

export function encodeHeartbeat(h: Heartbeat, key: Buffer | KeyObject): Buffer {
  const name = Buffer.from(h.node, 'utf8');
  if (name.length === 0 || name.length > 253) throw new Error(`node name of ${name.length} bytes cannot be sent`);
  const body = Buffer.alloc(MAGIC.length + 3 + name.length + 24);
  let o = MAGIC.copy(body, 0);
  body.writeUInt8(TYPES.indexOf(h.type), o++);
  body.writeUInt8((h.hearsYou ? FLAG_HEARS_YOU : 0) | (h.quorate ? FLAG_QUORATE : 0), o++);
  body.writeUInt8(name.length, o++);
  o += name.copy(body, o);
  body.writeBigUInt64BE(h.incarnation, o);
  body.writeBigUInt64BE(h.seq, o + 8);
  body.writeBigUInt64BE(h.sentAt, o + 16);
  return Buffer.concat([body, mac(key, body)]);
}

export type DecodeResult = { ok: true; heartbeat: Heartbeat } | { ok: false; reason: 'malformed' | 'forged' };

export function decodeHeartbeat(packet: Buffer, key: Buffer | KeyObject): DecodeResult {
  const minimum = MAGIC.length + 3 + 1 + 24 + MAC_BYTES;
  if (packet.length < minimum || !packet.subarray(0, MAGIC.length).equals(MAGIC)) return { ok: false, reason: 'malformed' };
  const nameLength = packet.readUInt8(MAGIC.length + 2);
  const bodyLength = MAGIC.length + 3 + nameLength + 24;
  if (packet.length !== bodyLength + MAC_BYTES) return { ok: false, reason: 'malformed' };
  const body = packet.subarray(0, bodyLength);
  if (!timingSafeEqual(mac(key, body), packet.subarray(bodyLength))) return { ok: false, reason: 'forged' };
  const type = TYPES[packet.readUInt8(MAGIC.length)];
  if (type === undefined) return { ok: false, reason: 'malformed' };
  const flags = packet.readUInt8(MAGIC.length + 1);
  let o = MAGIC.length + 3;
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
  private readonly windowMs: bigint;

  constructor(windowMs = 30_000) {
    this.windowMs = BigInt(windowMs);
  }

  accept(h: Heartbeat, nowMs: number): boolean {
    const now = BigInt(nowMs);
    const skew = h.sentAt > now ? h.sentAt - now : now - h.sentAt;
    if (skew > this.windowMs) return false;
    const prev = this.last.get(h.node);
    if (prev && (h.incarnation < prev.incarnation || (h.incarnation === prev.incarnation && h.seq <= prev.seq))) return false;
    this.last.set(h.node, { incarnation: h.incarnation, seq: h.seq });
    return true;
  }
}
