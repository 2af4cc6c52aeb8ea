// Which interface local addresses go on, and the subnets that make an address local:
// the interface of the lowest-metric default route (IPv4, else IPv6) or the
// lowest-index one whose whole name matches `localInterface`, plus `interfaces`.

import { formatCidr, parseCidr } from '../ipam/address.ts';
import type { LBNodeAgentConfig } from '../api/normalize.ts';
import type { HostNetwork, InterfaceAddress, Link } from '../netlink/host-network.ts';

export interface LocalInterface {
  link: Link | undefined;
  /** The networks of the node's own global addresses on those interfaces, sorted. */
  subnets: string[];
}

/** The kernel as one pass of the agent sees it: one link dump and one address dump, read once and shared. */
export interface KernelView {
  links: Link[];
  addresses: InterfaceAddress[];
}

export async function readKernelView(net: HostNetwork): Promise<KernelView> {
  const links = await net.listLinks();
  return { links, addresses: await net.listAddresses() };
}

export async function resolveLocalInterface(
  net: HostNetwork,
  config: Pick<LBNodeAgentConfig, 'localInterface' | 'interfaces'>,
  view?: KernelView,
): Promise<LocalInterface> {
  const { links: all, addresses } = view ?? (await readKernelView(net));
  const pattern = config.localInterface;
  const link =
    pattern === 'default'
      ? ((await net.defaultRouteLink('IPv4')) ?? (await net.defaultRouteLink('IPv6')))
      : all.filter((l) => pattern.test(l.name)).sort((a, b) => a.index - b.index)[0];
  const names = new Set([link?.name, ...config.interfaces]);
  const subnets = new Set<string>();
  for (const l of all.filter((l) => names.has(l.name))) {
    for (const a of addresses.filter((a) => a.ifindex === l.index)) {
      const cidr = parseCidr(`${a.ip}/${a.prefix}`);
      // Host routes (/32, /128) make no subnet; our own VIPs never count.
      if (a.ours || a.scope !== 0 || typeof cidr === 'string' || cidr.prefix === (cidr.family === 'IPv4' ? 32 : 128)) continue;
      subnets.add(formatCidr(cidr));
    }
  }
  return { link, subnets: [...subnets].sort() };
}
