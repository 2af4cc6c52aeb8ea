// The lab's address plan: one place that says which namespace has which address.
// Everything lives in documentation ranges (RFC 5737 / RFC 3849) inside namespaces
// the lab creates, so no lab packet can reach a real network.

export const LAB_PREFIX = 'plb';

/** The LAN bridge in the root namespace; the API server listens on its address. */
export const BRIDGE = `${LAB_PREFIX}-lan0`;

export const LAN_V4 = { subnet: '198.51.100.0/24', prefix: 24 } as const;
export const LAN_V6 = { subnet: '2001:db8:100::/64', prefix: 64 } as const;

/** Address of the root namespace on the bridge: API server, etcd stay on loopback. */
export const HOST_V4 = '198.51.100.254';
export const HOST_V6 = '2001:db8:100::fe';

export const API_PORT = 6443;
export const ETCD_CLIENT_PORT = 23790;
export const ETCD_PEER_PORT = 23800;

export const ROUTER = { ns: `${LAB_PREFIX}-router`, v4: '198.51.100.251', v6: '2001:db8:100::fb', asn: 64512 } as const;
export const CLIENT = { ns: `${LAB_PREFIX}-client`, v4: '198.51.100.200', v6: '2001:db8:100::c8' } as const;
export const NODE_ASN = 64515;

/** Service ClusterIP ranges (only strings to the API server: no route, no traffic). */
export const SERVICE_CIDRS = ['192.0.2.0/24', '2001:db8:96::/108'] as const;

export interface LabNode {
  /** Network namespace and Kubernetes Node name. */
  name: string;
  index: number;
  v4: string;
  v6: string;
}

/** Node i (1-based) gets .1, .11, .12, … as in the reference scenario (10.31.188.1, .11, .12). */
export function labNode(i: number): LabNode {
  if (!Number.isInteger(i) || i < 1 || i > 40) throw new Error(`lab node index ${i} outside 1..40`);
  const host = i === 1 ? 1 : 9 + i;
  return { name: `${LAB_PREFIX}-node${i}`, index: i, v4: `198.51.100.${host}`, v6: `2001:db8:100::${host.toString(16)}` };
}

export const DEFAULT_NODE_COUNT = 3;

export function labNodes(count = DEFAULT_NODE_COUNT): LabNode[] {
  return Array.from({ length: count }, (_, k) => labNode(k + 1));
}

/**
 * The reference scenario of examples/purelb-guide moved into documentation ranges, keeping
 * its shape: a layer-2 pool in the LAN's /26 and a routed pool in a foreign subnet whose
 * first address is the subnet's network address.
 */
export const SCENARIO_ADDRESS_MAP: ReadonlyArray<readonly [string, string]> = [
  ['10.31.188.64/26', '198.51.100.64/26'],
  ['10.31.188.64-10.31.188.126', '198.51.100.64-198.51.100.126'],
  ['10.31.188.100', '198.51.100.100'],
  ['10.189.0.0/16', '203.0.113.0/24'],
  ['10.189.0.0-10.189.255.254', '203.0.113.0-203.0.113.254'],
  ['10.189.100.100', '203.0.113.100'],
];

/** The reference scenario's README table in the lab's ranges: Service, group, address. */
export const SCENARIO_EXPECTED: ReadonlyArray<readonly [string, string, string]> = [
  ['nginx-lb-service', 'layer2-ippool', '198.51.100.64'],
  ['nginx-lb2-service', 'layer2-ippool', '198.51.100.65'],
  ['nginx-lb3-service', 'layer2-ippool', '198.51.100.66'],
  ['nginx-lb4-service', 'layer2-ippool', '198.51.100.100'],
  ['nginx-lb5-service', 'bgp-ippool', '203.0.113.0'],
  ['nginx-lb6-service', 'bgp-ippool', '203.0.113.100'],
];

/** Rewrites a reference manifest's addresses into the lab's ranges. */
export function toLabAddresses(manifest: string): string {
  let out = manifest;
  for (const [from, to] of SCENARIO_ADDRESS_MAP) out = out.split(from).join(to);
  return out;
}

/** Where the lab keeps its state: in the checkout, git-ignored. */
export const LAB_DIR_NAME = '.lab';
