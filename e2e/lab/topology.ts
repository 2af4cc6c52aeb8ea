// Names and link-layer addresses of the lab's network, derived from plan.ts.

import { CLIENT, LAB_PREFIX, ROUTER, labNode } from './plan.ts';
import type { LabNode } from './plan.ts';

/** A namespace the lab attaches to the bridge. */
export interface LabHost {
  ns: string;
  kind: 'node' | 'client' | 'router';
  v4: string;
  v6: string;
  /** Fixed MAC of the namespace's eth0. */
  mac: string;
  /** The root-namespace end of its veth (a port of the bridge). */
  port: string;
  node?: LabNode;
}

/** Root-namespace end of the veth of ns: `<ns>-br` (at most 15 characters). */
export function bridgePort(ns: string): string {
  const port = `${ns}-br`;
  if (port.length > 15) throw new Error(`interface name ${port} longer than 15 characters`);
  return port;
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/** Locally administered, fixed MACs: 02:50:4c:KK:00:II (K 01 node, 02 client, 03 router). */
export function labMac(kind: LabHost['kind'], index = 1): string {
  const k = kind === 'node' ? 1 : kind === 'client' ? 2 : 3;
  return `02:50:4c:${hex2(k)}:00:${hex2(index)}`;
}

/** MAC of the bridge (fixed, so it does not change when ports come and go). */
export const BRIDGE_MAC = '02:50:4c:00:00:fe';

export function nodeHost(i: number): LabHost {
  const node = labNode(i);
  return { ns: node.name, kind: 'node', v4: node.v4, v6: node.v6, mac: labMac('node', i), port: bridgePort(node.name), node };
}

export const CLIENT_HOST: LabHost = { ns: CLIENT.ns, kind: 'client', v4: CLIENT.v4, v6: CLIENT.v6, mac: labMac('client'), port: bridgePort(CLIENT.ns) };
export const ROUTER_HOST: LabHost = { ns: ROUTER.ns, kind: 'router', v4: ROUTER.v4, v6: ROUTER.v6, mac: labMac('router'), port: bridgePort(ROUTER.ns) };

/** Every host of a lab with `nodes` nodes: router, client, then the nodes. */
export function labHosts(nodes: number): LabHost[] {
  return [ROUTER_HOST, CLIENT_HOST, ...Array.from({ length: nodes }, (_, k) => nodeHost(k + 1))];
}

const NODE_NS = new RegExp(`^${LAB_PREFIX}-node(\\d+)$`);

/** A lab namespace name → its host (node by name `plb-nodeN`, client, router). */
export function hostOf(ns: string): LabHost {
  if (ns === CLIENT.ns) return CLIENT_HOST;
  if (ns === ROUTER.ns) return ROUTER_HOST;
  const m = NODE_NS.exec(ns);
  if (m?.[1]) return nodeHost(Number(m[1]));
  throw new Error(`${ns} is not a lab namespace`);
}

/** True for names the lab creates: plb-nodeN, plb-client, plb-router. */
export function isLabNamespace(ns: string): boolean {
  return ns === CLIENT.ns || ns === ROUTER.ns || NODE_NS.test(ns);
}

/** True for root-namespace interfaces the lab creates (the bridge and veth ends). */
export function isLabLink(name: string): boolean {
  return name === `${LAB_PREFIX}-lan0` || (/-br$/.test(name) && isLabNamespace(name.slice(0, -3)));
}

/** The node (if any) that owns a next-hop address on the LAN. */
export function nodeByAddress(addr: string, maxNodes = 40): LabNode | undefined {
  for (let i = 1; i <= maxNodes; i++) {
    const n = labNode(i);
    if (n.v4 === addr || n.v6 === addr) return n;
  }
  return undefined;
}
