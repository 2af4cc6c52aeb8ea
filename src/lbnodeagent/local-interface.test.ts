import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LBNODEAGENT_CONFIG } from '../api/normalize.ts';
import { MemoryNetwork } from '../netlink/memory-network.ts';
import { resolveLocalInterface } from './local-interface.ts';

function host(): MemoryNetwork {
  const net = new MemoryNetwork();
  for (const l of ['eth0', 'eth1', 'ens3']) net.addLink(l);
  net.addNodeAddress('eth0', '198.51.100.2/24', true);
  net.addNodeAddress('eth0', '2001:db8:100::2/64');
  net.addNodeAddress('eth1', '192.0.2.2/25');
  net.addNodeAddress('eth1', '192.0.2.200/32');
  net.addNodeAddress('ens3', '203.0.113.2/24');
  return net;
}

const cases: Array<[string, { localInterface: 'default' | RegExp; interfaces: string[] }, string | undefined, string[]]> = [
  ['default: the default-route interface, IPv6 networks compressed', { localInterface: 'default', interfaces: [] }, 'eth0', ['198.51.100.0/24', '2001:db8:100::/64']],
  ['interfaces add their subnets, host routes make none', { localInterface: 'default', interfaces: ['eth1'] }, 'eth0', ['192.0.2.0/25', '198.51.100.0/24', '2001:db8:100::/64']],
  ['an expression: the lowest-index whole-name match', { localInterface: /^(?:e.*1|ens[0-9])$/, interfaces: [] }, 'eth1', ['192.0.2.0/25']],
  ['an expression matching nothing: no local interface', { localInterface: /^(?:bond0)$/, interfaces: [] }, undefined, []],
];

for (const [name, config, link, subnets] of cases) {
  test(`local interface: ${name}`, async () => {
    const got = await resolveLocalInterface(host(), config);
    assert.deepEqual([got.link?.name, got.subnets], [link, subnets]);
  });
}

test('our own VIPs never count as subnets', async () => {
  const net = host();
  const eth0 = (await net.findLink('eth0'))!;
  await net.addAddresses([{ ifindex: eth0.index, ip: '10.9.0.1', prefix: 16 }]);
  assert.deepEqual((await resolveLocalInterface(net, DEFAULT_LBNODEAGENT_CONFIG)).subnets, ['198.51.100.0/24', '2001:db8:100::/64']);
});
