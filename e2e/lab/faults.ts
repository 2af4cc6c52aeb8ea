// Fault injection on the lab's LAN. Everything happens in the root namespace, on the
// bridge-side end of a host's veth (the "switch port"), so the processes inside the
// namespace (agent, BIRD, responder) keep running and cannot undo it:
//
// failNode(ns) — hard failure, as a pulled cable or dead switch port:
//   mode 'link-down' (default): the bridge-side veth is set down. The node's eth0 loses
//     carrier (NO-CARRIER); nothing it sends reaches anyone and nothing reaches it. Its
//     processes go on running and may notice the carrier loss (as a real node would
//     notice a dead link, but unlike a node that lost power).
//   mode 'blackhole': the port stays up and attached, but nftables (netdev family,
//     ingress + egress hooks of the port) drops every frame in both directions. The node
//     sees carrier and notices nothing — like a node that froze or a switch that stopped
//     forwarding for it. This is the split-brain-prone case when it comes back.
// restoreNode(ns) undoes either (port up, attached to the bridge, blackhole removed).
//
// cutLink(ns, direction, {peer}) — one-way loss, frames dropped by nftables on the port:
//   'from-node': frames the node sends are dropped (the node hears the LAN, nobody hears
//     the node);
//   'to-node': frames towards the node are dropped (the node is heard, but hears nothing);
//   with peer (another lab namespace) only frames between the two are dropped, in that
//     direction (matched by the fixed source MAC at the egress of the receiving port),
//     everything else flows.
// healLink(ns) removes the cuts of ns (and cuts where ns is the peer); healAll() all.

import { run } from './exec.ts';
import { BRIDGE } from './plan.ts';
import { hostOf } from './topology.ts';

export type FailMode = 'link-down' | 'blackhole';
export type CutDirection = 'from-node' | 'to-node';

const TABLE_PREFIX = 'plb_fault__';
const short = (ns: string): string => ns.replace(/^plb-/, '').replace(/[^a-zA-Z0-9]/g, '_');

async function nft(script: string): Promise<void> {
  await run(['nft', '-f', '-'], { input: script, timeoutMs: 10_000 });
}

/** Names of the lab's fault tables (netdev family) currently in the kernel. */
export async function faultTables(): Promise<string[]> {
  const r = await run(['nft', '-j', 'list', 'tables', 'netdev'], { timeoutMs: 10_000 });
  const parsed = JSON.parse(r.stdout || '{"nftables":[]}') as { nftables: Array<{ table?: { name: string } }> };
  return parsed.nftables.flatMap((e) => (e.table && e.table.name.startsWith(TABLE_PREFIX) ? [e.table.name] : []));
}

async function deleteTables(names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  await nft(names.map((n) => `delete table netdev ${n}`).join('\n') + '\n');
}

function dropTable(name: string, chains: ReadonlyArray<{ hook: 'ingress' | 'egress'; device: string; match: string }>): string {
  const body = chains
    .map(
      (c, i) => `  chain c${i} {
    type filter hook ${c.hook} device "${c.device}" priority -500; policy accept;
    ${c.match ? `${c.match} ` : ''}counter drop
  }`,
    )
    .join('\n');
  return `table netdev ${name} {\n${body}\n}\n`;
}

/** Fails node (or any lab host) ns hard; see the header for the modes. */
export async function failNode(ns: string, mode: FailMode = 'link-down'): Promise<void> {
  const host = hostOf(ns);
  if (mode === 'link-down') {
    await run(['ip', 'link', 'set', host.port, 'down']);
  } else {
    const name = `${TABLE_PREFIX}${short(ns)}__blackhole`;
    await deleteTables((await faultTables()).filter((t) => t === name));
    await nft(
      dropTable(name, [
        { hook: 'ingress', device: host.port, match: '' },
        { hook: 'egress', device: host.port, match: '' },
      ]),
    );
  }
}

/** Undoes failNode (either mode): port attached to the bridge and up, no blackhole. */
export async function restoreNode(ns: string): Promise<void> {
  const host = hostOf(ns);
  await deleteTables((await faultTables()).filter((t) => t === `${TABLE_PREFIX}${short(ns)}__blackhole`));
  await run(['ip', 'link', 'set', host.port, 'master', BRIDGE]);
  await run(['ip', 'link', 'set', host.port, 'up']);
}

/** Drops frames in one direction between ns and the LAN (or only peer); see the header. */
export async function cutLink(ns: string, direction: CutDirection, opts: { peer?: string } = {}): Promise<void> {
  const host = hostOf(ns);
  const name = `${TABLE_PREFIX}${short(ns)}__${direction === 'from-node' ? 'from' : 'to'}${opts.peer ? `__${short(opts.peer)}` : ''}`;
  let chain: { hook: 'ingress' | 'egress'; device: string; match: string };
  if (opts.peer === undefined) {
    chain = direction === 'from-node' ? { hook: 'ingress', device: host.port, match: '' } : { hook: 'egress', device: host.port, match: '' };
  } else {
    const peer = hostOf(opts.peer);
    if (peer.ns === host.ns) throw new Error(`cutLink: ${ns} cannot be its own peer`);
    chain =
      direction === 'from-node'
        ? { hook: 'egress', device: peer.port, match: `ether saddr ${host.mac}` }
        : { hook: 'egress', device: host.port, match: `ether saddr ${peer.mac}` };
  }
  await deleteTables((await faultTables()).filter((t) => t === name));
  await nft(dropTable(name, [chain]));
}

/** Removes the cuts of ns (both directions, also those naming ns as peer). Not failNode's blackhole. */
export async function healLink(ns: string): Promise<void> {
  const s = short(ns);
  const mine = (await faultTables()).filter((t) => {
    const parts = t.slice(TABLE_PREFIX.length).split('__');
    return parts[1] !== 'blackhole' && (parts[0] === s || parts[2] === s);
  });
  await deleteTables(mine);
}

/** Removes every fault: all nftables fault tables; ports of the given hosts back up and attached. */
export async function healAll(namespaces: readonly string[] = []): Promise<void> {
  await deleteTables(await faultTables());
  for (const ns of namespaces) await restoreNode(ns);
}

export interface FaultState {
  /** nftables fault tables (blackholes and cuts) by name. */
  tables: string[];
  /** Bridge ports that are down or not attached to the bridge. */
  portsDown: string[];
}

export async function faultState(namespaces: readonly string[]): Promise<FaultState> {
  const tables = await faultTables();
  const portsDown: string[] = [];
  for (const ns of namespaces) {
    const port = hostOf(ns).port;
    const r = await run(['ip', '-j', 'link', 'show', 'dev', port], { check: false });
    const link = (JSON.parse(r.stdout || '[]') as Array<{ flags?: string[]; master?: string }>)[0];
    if (!link || !link.flags?.includes('UP') || link.master !== BRIDGE) portsDown.push(ns);
  }
  return { tables, portsDown };
}
