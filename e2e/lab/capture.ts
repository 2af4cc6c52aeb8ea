// Packet capture in a lab namespace (default: the client) and a small pcap parser for
// the frames the lab cares about: ARP and IPv6 neighbour discovery.
//
// The capture runs `timeout -s INT <max> tcpdump … -w FILE` inside the namespace, so it
// ends by itself even if the test process dies; stop() ends it early (SIGTERM through
// timeout to tcpdump, which flushes the file) and parses the file.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ipaddr from 'ipaddr.js';
import { NET_DIR, ensureNetDir, pidMatches, sleep, startDaemon, stopDaemon } from './exec.ts';
import type { DaemonRecord } from './exec.ts';
import { CLIENT } from './plan.ts';

export interface ArpInfo {
  /** 1 = request, 2 = reply. */
  op: number;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
}

export interface NdpInfo {
  /** ICMPv6 type: 133 RS, 134 RA, 135 NS, 136 NA. */
  type: number;
  srcIp: string;
  dstIp: string;
  /** Target address of an NS/NA. */
  target?: string;
  router?: boolean;
  solicited?: boolean;
  override?: boolean;
  /** Source / target link-layer address options. */
  sourceLinkAddr?: string;
  targetLinkAddr?: string;
}

export interface CapturedFrame {
  /** Epoch seconds (fractional). */
  time: number;
  srcMac: string;
  dstMac: string;
  ethType: number;
  arp?: ArpInfo;
  ndp?: NdpInfo;
}

/** A gratuitous ARP (sender IP = target IP) or an unsolicited neighbour advertisement. */
export interface Announcement {
  family: 4 | 6;
  /** 'request' / 'reply' for ARP, 'na' for a neighbour advertisement. */
  op: 'request' | 'reply' | 'na';
  /** The link-layer address announced (ARP sender hardware address / NA target LLA option, else the frame's source). */
  senderMac: string;
  /** ARP sender IP; for an NA the IPv6 source address. */
  senderIp: string;
  /** ARP target IP; for an NA the target address (the announced IP). */
  targetIp: string;
  /** Ethernet source and destination of the frame. */
  ethSrc: string;
  ethDst: string;
  /** NA only: the Solicited flag (false for an unsolicited advertisement). */
  solicited?: boolean;
  time: number;
}

const mac = (b: Buffer, off: number): string =>
  Array.from(b.subarray(off, off + 6), (x) => x.toString(16).padStart(2, '0')).join(':');
const ip4 = (b: Buffer, off: number): string => Array.from(b.subarray(off, off + 4)).join('.');
const ip6 = (b: Buffer, off: number): string => ipaddr.fromByteArray(Array.from(b.subarray(off, off + 16))).toString();

const ETH_ARP = 0x0806;
const ETH_IPV6 = 0x86dd;
const ETH_VLAN = 0x8100;
const LINKTYPE_ETHERNET = 1;

/** Parses a classic pcap file (µs or ns timestamps, either byte order, Ethernet link type). */
export function parsePcap(buf: Buffer): CapturedFrame[] {
  if (buf.length < 24) return [];
  const magicLE = buf.readUInt32LE(0);
  let le: boolean;
  let nanos: boolean;
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) {
    le = true;
    nanos = magicLE === 0xa1b23c4d;
  } else {
    const magicBE = buf.readUInt32BE(0);
    if (magicBE !== 0xa1b2c3d4 && magicBE !== 0xa1b23c4d) throw new Error(`not a pcap file (magic ${magicLE.toString(16)})`);
    le = false;
    nanos = magicBE === 0xa1b23c4d;
  }
  const u32 = (off: number): number => (le ? buf.readUInt32LE(off) : buf.readUInt32BE(off));
  const linkType = u32(20) & 0x0fffffff;
  if (linkType !== LINKTYPE_ETHERNET) throw new Error(`pcap link type ${linkType} is not Ethernet`);
  const frames: CapturedFrame[] = [];
  let off = 24;
  for (let i = 0; i < 10_000_000 && off + 16 <= buf.length; i++) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    off += 16;
    if (off + incl > buf.length) break; // truncated last record (capture still writing)
    const f = parseEthernet(buf.subarray(off, off + incl), sec + frac / (nanos ? 1e9 : 1e6));
    if (f) frames.push(f);
    off += incl;
  }
  return frames;
}

export function parseEthernet(p: Buffer, time: number): CapturedFrame | undefined {
  if (p.length < 14) return undefined;
  let type = p.readUInt16BE(12);
  let l3 = 14;
  if (type === ETH_VLAN && p.length >= 18) {
    type = p.readUInt16BE(16);
    l3 = 18;
  }
  const frame: CapturedFrame = { time, dstMac: mac(p, 0), srcMac: mac(p, 6), ethType: type };
  if (type === ETH_ARP && p.length >= l3 + 28) {
    const a = p.subarray(l3);
    // Ethernet/IPv4 ARP only.
    if (a.readUInt16BE(0) === 1 && a.readUInt16BE(2) === 0x0800 && a[4] === 6 && a[5] === 4) {
      frame.arp = { op: a.readUInt16BE(6), senderMac: mac(a, 8), senderIp: ip4(a, 14), targetMac: mac(a, 18), targetIp: ip4(a, 24) };
    }
  } else if (type === ETH_IPV6 && p.length >= l3 + 40) {
    const ndp = parseNdp(p.subarray(l3));
    if (ndp) frame.ndp = ndp;
  }
  return frame;
}

function parseNdp(ip: Buffer): NdpInfo | undefined {
  let next = ip[6];
  let off = 40;
  // Skip hop-by-hop (0), routing (43) and destination-options (60) extension headers.
  for (let i = 0; i < 8 && (next === 0 || next === 43 || next === 60); i++) {
    if (ip.length < off + 2) return undefined;
    const n = ip[off];
    const len = ((ip[off + 1] ?? 0) + 1) * 8;
    next = n;
    off += len;
  }
  if (next !== 58 || ip.length < off + 4) return undefined;
  const icmp = ip.subarray(off);
  const type = icmp[0] ?? 0;
  if (type < 133 || type > 137) return undefined;
  const info: NdpInfo = { type, srcIp: ip6(ip, 8), dstIp: ip6(ip, 24) };
  let optOff: number;
  if ((type === 135 || type === 136) && icmp.length >= 24) {
    const flags = icmp[4] ?? 0;
    if (type === 136) {
      info.router = (flags & 0x80) !== 0;
      info.solicited = (flags & 0x40) !== 0;
      info.override = (flags & 0x20) !== 0;
    }
    info.target = ip6(icmp, 8);
    optOff = 24;
  } else if (type === 133) optOff = 8;
  else if (type === 134) optOff = 16;
  else optOff = icmp.length;
  for (let i = 0; i < 32 && optOff + 2 <= icmp.length; i++) {
    const ot = icmp[optOff] ?? 0;
    const ol = (icmp[optOff + 1] ?? 0) * 8;
    if (ol === 0 || optOff + ol > icmp.length) break;
    if (ol >= 8 && ot === 1) info.sourceLinkAddr = mac(icmp, optOff + 2);
    if (ol >= 8 && ot === 2) info.targetLinkAddr = mac(icmp, optOff + 2);
    optOff += ol;
  }
  return info;
}

/** Every ARP and neighbour advertisement as an Announcement (gratuitous or not). */
export function announcementsOf(frames: readonly CapturedFrame[]): Announcement[] {
  const out: Announcement[] = [];
  for (const f of frames) {
    if (f.arp && (f.arp.op === 1 || f.arp.op === 2)) {
      out.push({
        family: 4,
        op: f.arp.op === 1 ? 'request' : 'reply',
        senderMac: f.arp.senderMac,
        senderIp: f.arp.senderIp,
        targetIp: f.arp.targetIp,
        ethSrc: f.srcMac,
        ethDst: f.dstMac,
        time: f.time,
      });
    } else if (f.ndp && f.ndp.type === 136 && f.ndp.target !== undefined) {
      out.push({
        family: 6,
        op: 'na',
        senderMac: f.ndp.targetLinkAddr ?? f.srcMac,
        senderIp: f.ndp.srcIp,
        targetIp: f.ndp.target,
        ethSrc: f.srcMac,
        ethDst: f.dstMac,
        solicited: f.ndp.solicited === true,
        time: f.time,
      });
    }
  }
  return out;
}

/**
 * The gratuitous frames: ARP requests or replies whose sender IP equals the target IP,
 * and neighbour advertisements without the Solicited flag (unsolicited NA).
 */
export function gratuitousOf(frames: readonly CapturedFrame[]): Announcement[] {
  return announcementsOf(frames).filter((a) => {
    if (a.family === 4) return a.senderIp === a.targetIp && a.senderIp !== '0.0.0.0';
    return a.solicited === false;
  });
}

// ---------------------------------------------------------------------------------

export interface CaptureOptions {
  /** Namespace to capture in (default: the client). */
  ns?: string;
  /** Interface (default eth0). */
  iface?: string;
  /** pcap filter (default: `arp or icmp6`). */
  filter?: string;
  /** 'in' = only frames received by the interface (default 'inout'). */
  direction?: 'in' | 'out' | 'inout';
  /** The capture ends by itself after this long (default 30 s, at most 600 s). */
  maxDurationMs?: number;
  /** Distinguishes concurrent captures (file name); default: a counter. */
  name?: string;
  /** How long to wait for tcpdump to be listening (default 5 s). */
  startTimeoutMs?: number;
}

export interface Capture {
  readonly file: string;
  readonly ns: string;
  /** Frames written so far (the capture keeps running). */
  frames(): CapturedFrame[];
  /** Ends the capture (idempotent) and returns every frame captured. */
  stop(): Promise<CapturedFrame[]>;
}

let captureSeq = 0;

export async function startCapture(opts: CaptureOptions = {}): Promise<Capture> {
  const ns = opts.ns ?? CLIENT.ns;
  const iface = opts.iface ?? 'eth0';
  const filter = opts.filter ?? 'arp or icmp6';
  const maxMs = Math.min(Math.max(opts.maxDurationMs ?? 30_000, 1000), 600_000);
  const name = `capture-${opts.name ?? `${process.pid}-${++captureSeq}`}`;
  ensureNetDir();
  const file = join(NET_DIR, `${name}.pcap`);
  const argv = [
    'ip', 'netns', 'exec', ns,
    'timeout', '-s', 'INT', '-k', '2', `${Math.ceil(maxMs / 1000)}`,
    'tcpdump', '-i', iface, '-nn', '-U', '-Z', 'root', '-Q', opts.direction ?? 'inout', '-w', file, filter,
  ];
  const rec: DaemonRecord = startDaemon(name, argv, file);
  const startDeadline = performance.now() + (opts.startTimeoutMs ?? 5000);
  let ready = false;
  for (let i = 0; i < 1000 && performance.now() < startDeadline; i++) {
    const log = existsSync(rec.log) ? readFileSync(rec.log, 'utf8') : '';
    if (log.includes('listening on')) {
      ready = true;
      break;
    }
    // Right after spawn the child may not have exec'd yet (its cmdline is still ours):
    // only a process that stays unrecognisable for a second has really gone.
    if (i * 20 > 1000 && !pidMatches(rec.pid, rec.marker)) break;
    await sleep(20);
  }
  if (!ready) {
    const log = existsSync(rec.log) ? readFileSync(rec.log, 'utf8') : '';
    await stopDaemon(rec, 1000);
    throw new Error(`capture in ${ns} on ${iface} did not start: ${log.trim() || 'no output'}`);
  }
  const read = (): CapturedFrame[] => (existsSync(file) ? parsePcap(readFileSync(file)) : []);
  let stopped: Promise<CapturedFrame[]> | undefined;
  return {
    file,
    ns,
    frames: read,
    stop(): Promise<CapturedFrame[]> {
      stopped ??= stopDaemon(rec, 3000).then(read);
      return stopped;
    },
  };
}
