// The lab's network: real namespaces on a real bridge, a client, and a router running
// BIRD 2 that peers with BIRD on every node.
//
//   root ns:  plb-lan0 (bridge, HOST_V4/HOST_V6; the API server listens there)
//               ├─ plb-router-br ── eth0 @ plb-router   (ROUTER v4/v6, BIRD ASN 64512, forwarding)
//               ├─ plb-client-br ── eth0 @ plb-client   (CLIENT v4/v6, clientd helper)
//               └─ plb-nodeN-br  ── eth0 @ plb-nodeN    (node v4/v6, kube-lb0, BIRD ASN 64515, responder :80)
//
// Every namespace has lo up and default routes (v4, v6) via the router. Addresses come
// from plan.ts; MACs are fixed (topology.ts). Processes the lab starts are recorded by
// PID under .lab/net/ and stopped by PID. networkDown() removes everything and succeeds
// when nothing is there; networkUp() calls it first, so it also cleans up after a crash.
//
// Sysctls (inside the lab namespaces only):
//   all namespaces: IPv6 accept_ra=0, autoconf=0, accept_dad=0, dad_transmits=0 (addresses
//     are usable at once and nothing is learnt from stray RAs); rp_filter=0 (asymmetric
//     paths are normal with VIPs and ECMP).
//   nodes: arp_ignore=1 (answer ARP only for addresses on the interface the request came
//     in on: a routed VIP on kube-lb0 is not answered on eth0, a layer-2 VIP on eth0 is),
//     arp_announce=2 (ARP requests use the best local address of the outgoing interface
//     as source, never a VIP held elsewhere), ip_forward=0, IPv6 forwarding=0.
//     kube-lb0 is an `ifb` device (this kernel has no `dummy`), up, no IPv6 link-local.
//   router: ip_forward=1, IPv6 forwarding=1, fib_multipath_hash_policy=1 (v4 and v6:
//     layer-4 hashing, so flows from the one client spread over ECMP next hops).
//   client: left as a default Linux host otherwise (arp_accept=0 and so on).
// Root namespace: only the lab's own interfaces are touched (accept_dad=0 and
// accept_ra=0 on the bridge, IPv6 off on the bridge ports).

import { readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import ipaddr from 'ipaddr.js';
import type { BirdProtocol } from './bird.ts';
import { birdArgv, birdConfig, birdProtocols, birdSocket, checkBirdConfig, nodeBirdConfig, routerBirdConfig, routerProtocol, writeBirdConfig } from './bird.ts';
import type { ConnectResult } from './clientd.ts';
import type { DaemonRecord } from './exec.ts';
import { NET_DIR, NODE_BIN, REPO_ROOT, WaitAbort, daemonAlive, ensureNetDir, logTail, nsExec, readDaemons, run, sleep, startDaemon, stopDaemon, stopPid, waitUntil } from './exec.ts';
import { faultTables, healAll } from './faults.ts';
import type { LabNode } from './plan.ts';
import { BRIDGE, CLIENT, DEFAULT_NODE_COUNT, HOST_V4, HOST_V6, LAN_V4, LAN_V6, ROUTER, labNodes } from './plan.ts';
import type { LabHost } from './topology.ts';
import { BRIDGE_MAC, hostOf, isLabLink, isLabNamespace, labHosts, nodeByAddress } from './topology.ts';

export { nsExec, run, waitUntil, WaitAbort, NET_DIR, REPO_ROOT } from './exec.ts';
export type { ExecOptions, ExecResult } from './exec.ts';
export { failNode, restoreNode, cutLink, healLink, healAll, faultState } from './faults.ts';
export type { FailMode, CutDirection, FaultState } from './faults.ts';
export { startCapture, parsePcap, announcementsOf, gratuitousOf } from './capture.ts';
export type { Capture, CaptureOptions, CapturedFrame, Announcement, ArpInfo, NdpInfo } from './capture.ts';
export { labMac, bridgePort, hostOf, labHosts, BRIDGE_MAC } from './topology.ts';
export type { LabHost } from './topology.ts';
export type { ConnectResult } from './clientd.ts';

export const CLIENT_SOCKET = join(NET_DIR, 'client.sock');
const STATE_FILE = join(NET_DIR, 'state.json');
const RESPONDER = join(REPO_ROOT, 'e2e', 'lab', 'responder.ts');
const CLIENTD = join(REPO_ROOT, 'e2e', 'lab', 'clientd.ts');
export const RESPONDER_PORT = 80;

interface NetworkState {
  nodes: number;
  bfd: boolean;
  /** False in the cluster tier, where pods answer on the VIPs' port. */
  responders?: boolean;
  createdAt: string;
}

function readState(): NetworkState | undefined {
  try {
    return JSON.parse(readFileSync(STATE_FILE, 'utf8')) as NetworkState;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------
// Inspection of what exists.

async function listNamespaces(): Promise<string[]> {
  const r = await run(['ip', '-j', 'netns', 'list'], { check: false });
  if (!r.stdout.trim()) return [];
  return (JSON.parse(r.stdout) as Array<{ name: string }>).map((e) => e.name);
}

async function listRootLinks(): Promise<string[]> {
  const r = await run(['ip', '-j', 'link', 'show']);
  return (JSON.parse(r.stdout) as Array<{ ifname: string }>).map((l) => l.ifname);
}

export interface ProcessStatus {
  name: string;
  pid: number;
  alive: boolean;
}

export interface NetworkStatus {
  /** True when the bridge, every namespace and every lab process are there. */
  up: boolean;
  /** Node count of the running lab (0 when down). */
  nodes: number;
  bridge: boolean;
  /** Lab namespaces present. */
  namespaces: string[];
  /** What is expected but missing or dead (empty when up). */
  problems: string[];
  processes: ProcessStatus[];
}

export async function networkStatus(): Promise<NetworkStatus> {
  const state = readState();
  const namespaces = (await listNamespaces()).filter(isLabNamespace).sort();
  const links = await listRootLinks();
  const bridge = links.includes(BRIDGE);
  const processes = readDaemons().map((d) => ({ name: d.name, pid: d.pid, alive: daemonAlive(d) }));
  const problems: string[] = [];
  if (!state) problems.push('no state file (networkUp has not completed)');
  if (!bridge) problems.push(`bridge ${BRIDGE} missing`);
  const nodes = state?.nodes ?? 0;
  for (const h of labHosts(nodes)) {
    if (!namespaces.includes(h.ns)) problems.push(`namespace ${h.ns} missing`);
    if (!links.includes(h.port)) problems.push(`link ${h.port} missing`);
  }
  if (state) {
    for (const name of expectedDaemons(nodes, state.responders ?? true)) {
      const p = processes.find((x) => x.name === name);
      if (!p) problems.push(`process ${name} not recorded`);
      else if (!p.alive) problems.push(`process ${name} (pid ${p.pid}) not running`);
    }
  }
  return { up: problems.length === 0, nodes: state ? nodes : 0, bridge, namespaces, problems, processes };
}

function expectedDaemons(nodes: number, responders: boolean): string[] {
  const n = labNodes(nodes);
  return [`bird-${ROUTER.ns}`, ...n.map((x) => `bird-${x.name}`), ...(responders ? n.map((x) => `responder-${x.name}`) : []), 'clientd'];
}

// ---------------------------------------------------------------------------------
// Down.

export interface NetworkDownResult {
  /** Recorded processes stopped. */
  processes: string[];
  /** PIDs found running in lab namespaces that were not recorded (stopped too). */
  strays: number[];
  namespaces: string[];
  links: string[];
  faultTables: string[];
}

/**
 * Removes everything the lab's network made: recorded processes (by PID), any process
 * still inside a lab namespace (by PID, from `ip netns pids`), fault tables, the veths,
 * the bridge and the namespaces. Succeeds when nothing is there.
 */
export async function networkDown(): Promise<NetworkDownResult> {
  const result: NetworkDownResult = { processes: [], strays: [], namespaces: [], links: [], faultTables: [] };
  // 1. Processes the lab recorded.
  const daemons = readDaemons();
  await Promise.all(
    daemons.map(async (d: DaemonRecord) => {
      if (await stopDaemon(d, 3000)) result.processes.push(d.name);
    }),
  );
  // 2. Anything else still running in a lab namespace (e.g. agents of a crashed test run).
  const namespaces = (await listNamespaces()).filter(isLabNamespace);
  for (const ns of namespaces) {
    const r = await run(['ip', 'netns', 'pids', ns], { check: false });
    const pids = r.stdout.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number);
    for (const pid of pids.slice(0, 1000)) {
      if (pid === process.pid) continue;
      if (await stopPid(pid, undefined, 2000)) result.strays.push(pid);
    }
  }
  // 3. Fault tables (netdev chains bound to the ports).
  try {
    result.faultTables = await faultTables();
    await healAll();
  } catch (e) {
    // nft missing: there cannot be fault tables either, unless someone else made them.
    if (!String(e).includes('ENOENT')) throw e;
  }
  // 4. Root-namespace links: veth ends first (removes the pairs), then the bridge.
  const links = (await listRootLinks()).filter(isLabLink);
  for (const l of links.filter((x) => x !== BRIDGE)) {
    await run(['ip', 'link', 'del', 'dev', l], { check: false });
    result.links.push(l);
  }
  if (links.includes(BRIDGE)) {
    await run(['ip', 'link', 'del', 'dev', BRIDGE]);
    result.links.push(BRIDGE);
  }
  // 5. Namespaces.
  for (const ns of namespaces) {
    await run(['ip', 'netns', 'del', ns]);
    result.namespaces.push(ns);
  }
  // 6. State (logs stay for post-mortems; the next networkUp overwrites them).
  rmSync(STATE_FILE, { force: true });
  rmSync(CLIENT_SOCKET, { force: true });
  if (existsSync(NET_DIR)) {
    for (const f of readdirSync(NET_DIR)) if (f.endsWith('.ctl') || f.endsWith('.pid') || f.endsWith('.pid.json')) rmSync(join(NET_DIR, f), { force: true });
  }
  const left = (await listNamespaces()).filter(isLabNamespace);
  if (left.length > 0) throw new Error(`networkDown: namespaces still present: ${left.join(', ')}`);
  return result;
}

// ---------------------------------------------------------------------------------
// Up.

export interface NetworkUpOptions {
  /** Number of node namespaces (default 3, at most 40). */
  nodes?: number;
  /** BFD on the BGP sessions (default true): routes of a dead node go in ~1 s. */
  bfd?: boolean;
  /**
   * A responder on port 80 in every node (default true). The cluster tier turns them off:
   * there kube-proxy forwards the VIPs' port 80 to pods, and a node-local answer before
   * kube-proxy has programmed a new VIP would pass for a backend's.
   */
  responders?: boolean;
  /** Wait until every BGP session is Established (default true). */
  waitForBgp?: boolean;
  /** Bound for the readiness waits (default 60 s each). */
  timeoutMs?: number;
}

const COMMON_SYSCTLS = [
  'net.ipv6.conf.all.accept_ra=0',
  'net.ipv6.conf.default.accept_ra=0',
  'net.ipv6.conf.all.autoconf=0',
  'net.ipv6.conf.default.autoconf=0',
  'net.ipv6.conf.all.accept_dad=0',
  'net.ipv6.conf.default.accept_dad=0',
  'net.ipv6.conf.all.dad_transmits=0',
  'net.ipv6.conf.default.dad_transmits=0',
  'net.ipv4.conf.all.rp_filter=0',
  'net.ipv4.conf.default.rp_filter=0',
];
const NODE_SYSCTLS = [
  'net.ipv4.conf.all.arp_ignore=1',
  'net.ipv4.conf.default.arp_ignore=1',
  'net.ipv4.conf.all.arp_announce=2',
  'net.ipv4.conf.default.arp_announce=2',
  'net.ipv4.ip_forward=0',
  'net.ipv6.conf.all.forwarding=0',
];
const ROUTER_SYSCTLS = ['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1', 'net.ipv4.fib_multipath_hash_policy=1', 'net.ipv6.fib_multipath_hash_policy=1'];

/** The sysctls networkUp sets in a namespace of this kind (for docs and tests). */
export function labSysctls(kind: LabHost['kind']): string[] {
  return [...COMMON_SYSCTLS, ...(kind === 'node' ? NODE_SYSCTLS : kind === 'router' ? ROUTER_SYSCTLS : [])];
}

async function ipBatch(ns: string | undefined, lines: readonly string[]): Promise<void> {
  await run(ns ? ['ip', '-n', ns, '-batch', '-'] : ['ip', '-batch', '-'], { input: lines.join('\n') + '\n', timeoutMs: 15_000 });
}

async function createHost(h: LabHost): Promise<void> {
  await run(['ip', 'netns', 'add', h.ns]);
  await nsExec(h.ns, ['sysctl', '-q', '-w', ...labSysctls(h.kind)]);
  await ipBatch(undefined, [`link add ${h.port} type veth peer name eth0 netns ${h.ns}`]);
  await run(['sysctl', '-q', '-w', `net.ipv6.conf.${h.port}.disable_ipv6=1`]);
  await ipBatch(undefined, [`link set dev ${h.port} master ${BRIDGE}`, `link set dev ${h.port} up`]);
  const lines = [
    'link set dev lo up',
    `link set dev eth0 address ${h.mac}`,
    `addr add ${h.v4}/${LAN_V4.prefix} dev eth0`,
    `addr add ${h.v6}/${LAN_V6.prefix} dev eth0 nodad`,
    'link set dev eth0 up',
  ];
  if (h.kind !== 'router') lines.push(`route add default via ${ROUTER.v4} dev eth0`, `route add ::/0 via ${ROUTER.v6} dev eth0`);
  if (h.kind === 'node') lines.push('link add kube-lb0 type ifb', 'link set dev kube-lb0 addrgenmode none', 'link set dev kube-lb0 up');
  await ipBatch(h.ns, lines);
}

/**
 * Brings the lab's network up from scratch (cleaning leftovers first) and waits until
 * every BIRD, responder and the client helper answer (and BGP is established, unless
 * waitForBgp is false). On failure it tears down what it made and throws with the logs.
 */
export async function networkUp(opts: NetworkUpOptions = {}): Promise<NetworkStatus> {
  const count = opts.nodes ?? DEFAULT_NODE_COUNT;
  const bfd = opts.bfd ?? true;
  const responders = opts.responders ?? true;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const nodes = labNodes(count);
  if (count < 1) throw new Error('networkUp: at least one node');
  if (CLIENT_SOCKET.length > 100 || birdSocket(`${ROUTER.ns}xx`).length > 100) {
    throw new Error(`networkUp: ${NET_DIR} is too long a path for Unix sockets (max ~100 characters)`);
  }
  await networkDown();
  ensureNetDir();
  for (const f of readdirSync(NET_DIR)) if (/^bird-.*\.conf$/.test(f)) rmSync(join(NET_DIR, f), { force: true });
  try {
    // Configs first: a broken config fails before anything is created.
    writeBirdConfig(ROUTER.ns, routerBirdConfig(nodes, { bfd }));
    for (const n of nodes) writeBirdConfig(n.name, nodeBirdConfig(n, { bfd }));
    for (const ns of [ROUTER.ns, ...nodes.map((n) => n.name)]) await checkBirdConfig(ns);

    await ipBatch(undefined, [`link add ${BRIDGE} address ${BRIDGE_MAC} type bridge stp_state 0 forward_delay 0 mcast_snooping 0`]);
    await run(['sysctl', '-q', '-w', `net.ipv6.conf.${BRIDGE}.accept_dad=0`, `net.ipv6.conf.${BRIDGE}.accept_ra=0`]);
    await ipBatch(undefined, [`addr add ${HOST_V4}/${LAN_V4.prefix} dev ${BRIDGE}`, `addr add ${HOST_V6}/${LAN_V6.prefix} dev ${BRIDGE} nodad`, `link set dev ${BRIDGE} up`]);
    for (const h of labHosts(count)) await createHost(h);

    startDaemon(`bird-${ROUTER.ns}`, birdArgv(ROUTER.ns), birdConfig(ROUTER.ns));
    for (const n of nodes) {
      startDaemon(`bird-${n.name}`, birdArgv(n.name), birdConfig(n.name));
      if (responders) startDaemon(`responder-${n.name}`, ['ip', 'netns', 'exec', n.name, NODE_BIN, RESPONDER, n.name, String(RESPONDER_PORT)], `${RESPONDER} ${n.name}`);
    }
    startDaemon('clientd', ['ip', 'netns', 'exec', CLIENT.ns, NODE_BIN, CLIENTD, CLIENT_SOCKET], `${CLIENTD} ${CLIENT_SOCKET}`);

    // Readiness: every recorded process alive, BIRDs answer birdc, clientd answers, each
    // responder answers the client on v4 and v6. A lab process that dies while starting is
    // started once more, said on stderr with how it ended; a second death fails the lab.
    // (Kept since pidMatches learnt that an exec in progress is not a death, the cause of
    // the one such failure seen: no real death while starting has been seen since.)
    const names = expectedDaemons(count, responders);
    const restarted = new Set<string>();
    await waitUntil(
      async () => {
        const dead = readDaemons().filter((d) => names.includes(d.name) && !daemonAlive(d));
        const again = dead.filter((d) => !restarted.has(d.name));
        if (dead.length > 0 && again.length === dead.length) {
          for (const d of again) {
            console.error(`networkUp: ${d.name} died while starting; starting it once more. Its log:\n${logTail(d.log, 10)}`);
            restarted.add(d.name);
            startDaemon(d.name, d.argv, d.marker);
          }
          return false;
        }
        if (dead.length > 0) throw new WaitAbort(`exited: ${dead.map((d) => `${d.name}: ${logTail(d.log, 5)}`).join('; ')}`);
        for (const ns of [ROUTER.ns, ...nodes.map((n) => n.name)]) await birdProtocols(ns);
        await clientRequest({ op: 'ping' }, 2000);
        for (const n of responders ? nodes : []) {
          for (const addr of [n.v4, n.v6]) {
            const r = await clientTry(addr, RESPONDER_PORT, 1000);
            if (!r.ok || r.node !== n.name) throw new Error(`responder ${n.name} at ${addr}: ${r.error ?? r.node}`);
          }
        }
        return true;
      },
      { timeoutMs, intervalMs: 200, what: 'lab processes to answer' },
    );
    if (opts.waitForBgp ?? true) await waitForBgp(timeoutMs, nodes);
    writeFileSync(STATE_FILE, JSON.stringify({ nodes: count, bfd, responders, createdAt: new Date().toISOString() } satisfies NetworkState, null, 2) + '\n');
    const st = await networkStatus();
    if (!st.up) throw new Error(`networkUp: not up: ${st.problems.join('; ')}`);
    return st;
  } catch (e) {
    const logs = readDaemons()
      .map((d) => `--- ${d.name} (${d.log})\n${logTail(d.log)}`)
      .join('\n');
    await networkDown().catch(() => undefined);
    throw new Error(`networkUp failed: ${e instanceof Error ? e.message : String(e)}\n${logs}`, { cause: e });
  }
}

// ---------------------------------------------------------------------------------
// The client.

function clientRequest<T>(req: object, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let settled = false;
    const sock = createConnection({ path: CLIENT_SOCKET });
    const done = (err: Error | undefined, v?: T): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(v as T);
    };
    const timer = setTimeout(() => done(new Error(`client helper did not answer within ${timeoutMs} ms`)), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        try {
          done(undefined, JSON.parse(buf.slice(0, nl)) as T);
        } catch (e) {
          done(e as Error);
        }
      }
    });
    sock.on('error', (e) => done(new Error(`client helper (${CLIENT_SOCKET}): ${e.message}`)));
    sock.on('close', () => done(new Error('client helper closed the connection without an answer')));
  });
}

/** One TCP connection from the client namespace; never throws for network errors. */
export function clientTry(host: string, port = RESPONDER_PORT, timeoutMs = 2000): Promise<ConnectResult> {
  return clientRequest<ConnectResult>({ op: 'connect', host, port, timeoutMs }, timeoutMs + 3000);
}

/** Connects from the client namespace to host:port and returns the node name that answered. */
export async function clientConnect(host: string, port = RESPONDER_PORT, timeoutMs = 2000): Promise<string> {
  const r = await clientTry(host, port, timeoutMs);
  if (!r.ok || r.node === undefined) throw new Error(`client → ${host}:${port}: ${r.error ?? 'no answer'}`);
  return r.node;
}

export interface ProbeOptions {
  port?: number;
  /** Timeout of one connection attempt (default 200 ms). */
  attemptTimeoutMs?: number;
  /** Pause between attempts (default 0). */
  intervalMs?: number;
  /** Total duration bound (default 10 s, at most 300 s). */
  durationMs?: number;
  /** Attempt count bound (default 10,000). */
  maxAttempts?: number;
  /** Stop at the first answer from a node other than this one. */
  stopWhenNot?: string;
}

/**
 * Connects repeatedly from inside the client namespace (no process per attempt) and
 * returns every attempt with its epoch-ms start time: the raw material of failover
 * measurements.
 */
export async function clientProbe(host: string, opts: ProbeOptions = {}): Promise<ConnectResult[]> {
  const req = {
    op: 'probe',
    host,
    port: opts.port ?? RESPONDER_PORT,
    attemptTimeoutMs: opts.attemptTimeoutMs ?? 200,
    intervalMs: opts.intervalMs ?? 0,
    durationMs: Math.min(opts.durationMs ?? 10_000, 300_000),
    maxAttempts: opts.maxAttempts ?? 10_000,
    ...(opts.stopWhenNot === undefined ? {} : { stopWhenNot: opts.stopWhenNot }),
  };
  const r = await clientRequest<{ attempts: ConnectResult[] }>(req, req.durationMs + req.attemptTimeoutMs + 5000);
  return r.attempts;
}

interface NeighEntry {
  dst: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
}

/** The client's neighbour entry for ip: MAC (lower case) if it has a usable one. */
export async function clientNeighbor(ip: string): Promise<string | undefined> {
  const r = await run(['ip', '-n', CLIENT.ns, '-j', 'neigh', 'show', 'to', ip, 'dev', 'eth0']);
  const entries = r.stdout.trim() ? (JSON.parse(r.stdout) as NeighEntry[]) : [];
  const e = entries.find((x) => x.lladdr && !x.state?.some((s) => s === 'FAILED' || s === 'INCOMPLETE'));
  return e?.lladdr?.toLowerCase();
}

/** Forgets the client's neighbour entry for ip (so the next packet resolves afresh). */
export async function clientFlushNeighbor(ip: string): Promise<void> {
  await run(['ip', '-n', CLIENT.ns, 'neigh', 'flush', 'to', ip, 'dev', 'eth0']);
}

export interface ArpingResult {
  /** Every reply: the MAC that answered and the round-trip time. */
  replies: Array<{ mac: string; ms: number }>;
  /** Distinct MACs that answered (more than one = two nodes claim the address). */
  macs: string[];
}

/** iputils arping from the client: `arping -c count -w deadline -I eth0 ip`. IPv4 only. */
export async function clientArping(ip: string, opts: { count?: number; timeoutMs?: number } = {}): Promise<ArpingResult> {
  const count = opts.count ?? 1;
  const deadlineS = Math.max(1, Math.ceil((opts.timeoutMs ?? 2000) / 1000));
  const r = await nsExec(CLIENT.ns, ['arping', '-c', String(count), '-w', String(deadlineS), '-I', 'eth0', ip], {
    check: false,
    timeoutMs: deadlineS * 1000 + 3000,
  });
  if (r.code !== 0 && r.code !== 1) throw new Error(`arping ${ip}: exit ${r.code}: ${r.stderr.trim()}`);
  const replies: ArpingResult['replies'] = [];
  for (const m of r.stdout.matchAll(/reply from \S+ \[([0-9A-Fa-f:]{17})\]\s+([\d.]+)ms/g)) {
    replies.push({ mac: (m[1] ?? '').toLowerCase(), ms: Number(m[2]) });
  }
  return { replies, macs: [...new Set(replies.map((x) => x.mac))] };
}

const NS_CONNECT_JS = `
const [host, port, timeout, send] = process.argv.slice(1);
const s = require('node:net').connect({ host, port: Number(port) });
let d = '';
const t = setTimeout(() => { console.error('timeout'); process.exit(3); }, Number(timeout));
s.on('connect', () => s.write(send));
s.on('data', (b) => { d += b; });
s.on('end', () => { clearTimeout(t); process.stdout.write(d); process.exit(0); });
s.on('error', (e) => { console.error(e.code || e.message); process.exit(2); });
`;

/**
 * One TCP exchange from inside any lab namespace (a short-lived Node process): connects
 * to host:port, sends `send`, returns everything received until the peer closes.
 */
export async function nsConnect(ns: string, host: string, port: number, opts: { timeoutMs?: number; send?: string } = {}): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 3000;
  const r = await nsExec(ns, [NODE_BIN, '-e', NS_CONNECT_JS, host, String(port), String(timeoutMs), opts.send ?? 'WHO\n'], {
    timeoutMs: timeoutMs + 10_000,
    check: false,
  });
  if (r.code !== 0) throw new Error(`${ns} → ${host}:${port}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout;
}

/** Sends `count` gratuitous ARPs for ip from ns's eth0 (iputils `arping -U`). */
export async function sendGarp(ns: string, ip: string, count = 1): Promise<void> {
  const r = await nsExec(ns, ['arping', '-U', '-c', String(count), '-w', String(count + 1), '-I', 'eth0', ip], { timeoutMs: (count + 4) * 1000, check: false });
  if (r.code !== 0 && r.code !== 1) throw new Error(`arping -U ${ip} in ${ns}: exit ${r.code}: ${r.stderr.trim()}`);
}

// ---------------------------------------------------------------------------------
// The router.

export interface NextHop {
  gateway: string;
  dev: string;
  /** The lab node that owns the gateway address, if any. */
  node?: string;
}

export interface RouterRoute {
  /** Canonical CIDR (203.0.113.77/32, 2001:db8::1/128, 0.0.0.0/0). */
  dst: string;
  family: 4 | 6;
  /** 'bird' for routes learnt over BGP, 'kernel' for connected ones … */
  protocol: string;
  nexthops: NextHop[];
}

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  nexthops?: Array<{ gateway?: string; dev?: string }>;
}

/** Canonical CIDR: adds /32 or /128 to a bare address, compresses IPv6. */
export function canonicalPrefix(p: string, family?: 4 | 6): string {
  if (p === 'default') return family === 6 ? '::/0' : '0.0.0.0/0';
  const [addr = '', len] = p.split('/');
  const a = ipaddr.parse(addr);
  const bits = a.kind() === 'ipv6' ? 128 : 32;
  return `${a.toString()}/${len ?? bits}`;
}

/**
 * The router namespace's main-table routes (v4 and v6) with their next hops; only the
 * route for prefix if given (a bare address means the host route).
 */
export async function routerRoutes(prefix?: string): Promise<RouterRoute[]> {
  const out: RouterRoute[] = [];
  for (const family of [4, 6] as const) {
    const r = await run(['ip', '-n', ROUTER.ns, '-j', `-${family}`, 'route', 'show']);
    const routes = r.stdout.trim() ? (JSON.parse(r.stdout) as IpRoute[]) : [];
    for (const rt of routes) {
      const hops = rt.nexthops ?? (rt.gateway ? [{ gateway: rt.gateway, dev: rt.dev }] : []);
      out.push({
        dst: canonicalPrefix(rt.dst, family),
        family,
        protocol: rt.protocol ?? 'boot',
        nexthops: hops.flatMap((h) => {
          if (!h.gateway) return [];
          const node = nodeByAddress(h.gateway);
          return [{ gateway: h.gateway, dev: h.dev ?? '', ...(node ? { node: node.name } : {}) }];
        }),
      });
    }
  }
  if (prefix === undefined) return out;
  const want = canonicalPrefix(prefix);
  return out.filter((r) => r.dst === want);
}

/** Waits until the router has prefix with exactly `nexthops` next hops (0 = no route). */
export async function waitForRoute(prefix: string, nexthops: number, timeoutMs = 10_000): Promise<RouterRoute | undefined> {
  return (
    await waitUntil(
      async () => {
        const r = (await routerRoutes(prefix))[0];
        const n = r?.nexthops.length ?? 0;
        return n === nexthops ? { route: r } : undefined;
      },
      { timeoutMs, intervalMs: 100, what: `router route ${prefix} with ${nexthops} next hop(s)` },
    )
  ).route;
}

export interface BgpSession {
  node: string;
  family: 4 | 6;
  /** BIRD protocol name on the router (node<i>_v4 / node<i>_v6). */
  protocol: string;
  /** BIRD protocol state (up, start, …) and BGP info (Established, Active, …). */
  state: string;
  info: string;
  established: boolean;
}

/** The router's BGP sessions with the nodes of the running lab. */
export async function bgpSessions(nodes?: readonly LabNode[]): Promise<BgpSession[]> {
  const list = nodes ?? labNodes(readState()?.nodes ?? DEFAULT_NODE_COUNT);
  const protos: BirdProtocol[] = await birdProtocols(ROUTER.ns);
  const out: BgpSession[] = [];
  for (const n of list) {
    for (const family of [4, 6] as const) {
      const name = routerProtocol(n, family);
      const p = protos.find((x) => x.name === name);
      out.push({
        node: n.name,
        family,
        protocol: name,
        state: p?.state ?? 'missing',
        info: p?.info ?? '',
        established: p !== undefined && p.state === 'up' && p.info.startsWith('Established'),
      });
    }
  }
  return out;
}

/** True when the router has every node's v4 and v6 session Established. */
export async function birdSessionsUp(nodes?: readonly LabNode[]): Promise<boolean> {
  try {
    return (await bgpSessions(nodes)).every((s) => s.established);
  } catch {
    return false;
  }
}

/** Waits (bounded) until birdSessionsUp(); throws with the session table on timeout. */
export async function waitForBgp(timeoutMs = 30_000, nodes?: readonly LabNode[]): Promise<void> {
  const list = nodes ?? labNodes(readState()?.nodes ?? inferNodeCount());
  try {
    await waitUntil(() => birdSessionsUp(list), { timeoutMs, intervalMs: 200, what: 'BGP sessions Established' });
  } catch (e) {
    const table = await bgpSessions(list).then(
      (s) => s.map((x) => `${x.protocol}: ${x.state} ${x.info}`).join('; '),
      (err: unknown) => String(err),
    );
    throw new Error(`${(e as Error).message}; sessions: ${table}`, { cause: e });
  }
}

function inferNodeCount(): number {
  // During networkUp the state file is not written yet: count the node BIRD configs.
  try {
    return readdirSync(NET_DIR).filter((f) => /^bird-.*-node\d+\.conf$/.test(f)).length || DEFAULT_NODE_COUNT;
  } catch {
    return DEFAULT_NODE_COUNT;
  }
}

/** The lab nodes of the running network. */
export function runningNodes(): LabNode[] {
  return labNodes(readState()?.nodes ?? inferNodeCount());
}

/** Host (namespace, addresses, MAC, port) of a lab namespace. */
export function labHost(ns: string): LabHost {
  return hostOf(ns);
}

export { sleep };
