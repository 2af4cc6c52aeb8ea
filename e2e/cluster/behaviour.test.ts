// What real controllers and kubelets do to purelb-ts, which the process lab can only
// imitate: EndpointSlices written by the EndpointSlice controller as pods come and go
// (ETP Local), pods deleted and brought back by their Deployment and DaemonSet, and a
// namespace deleted by the namespace controller with its Services in it.

import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { clientProbe, routerRoutes } from '../lab/network.ts';
import { kubectl, waitUntil } from '../lab/testkit.ts';
import { winner } from '../../src/election/winner.ts';
import { NODE_NAMES, PURELB_NS, holdersOf, ingressByService, installPurelb, longestGap, pods, releaseInstalled, requireCluster, waitForAnswer } from './kit.ts';

const NS = 'plb-cluster-etp';
const L2_GROUP = 'etp-l2';
// The one address the reference scenario's routed pool (…0-…254) leaves out of 203.0.113.0/24.
const ROUTED_GROUP = 'etp-routed';

/**
 * A web Deployment (the backends' server, see examples/backends.yaml) pinned to `node`, or
 * with `node` undefined spread one per node. Applied, so it can be re-pinned or unpinned.
 */
async function web(name: string, node: string | undefined, replicas = 1): Promise<void> {
  const backends = (await kubectl(['create', '--dry-run=client', '-o', 'json', '-f', 'examples/backends.yaml'])).stdout;
  const d = JSON.parse(backends) as { metadata: Record<string, unknown>; spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: Record<string, unknown> } } };
  d.metadata = { name, namespace: NS };
  d.spec.replicas = replicas;
  d.spec.selector.matchLabels = { app: name };
  d.spec.template.metadata.labels = { app: name };
  if (node === undefined) {
    d.spec.template.spec.topologySpreadConstraints = [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { app: name } } }];
  } else {
    d.spec.template.spec.nodeSelector = { 'kubernetes.io/hostname': node };
    delete d.spec.template.spec.topologySpreadConstraints;
  }
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify(d) });
}

async function service(name: string, group: string, app: string, etp: 'Local' | 'Cluster'): Promise<string> {
  await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: NS, annotations: { 'purelb.io/service-group': group } },
      spec: { type: 'LoadBalancer', externalTrafficPolicy: etp, allocateLoadBalancerNodePorts: false, selector: { app }, ports: [{ port: 80, targetPort: 80, protocol: 'TCP' }] },
    }),
  });
  let ip = '';
  await waitUntil(`${name} gets an address`, 30_000, async () => (ip = (await ingressByService(NS)).get(name)?.[0] ?? '') !== '');
  return ip;
}

async function readyOn(app: string): Promise<string[]> {
  return (await pods(NS, `app=${app}`)).filter((p) => p.ready).map((p) => p.node).sort();
}

before(async () => {
  await requireCluster();
  if (!(await releaseInstalled())) await installPurelb();
  await kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--wait=true', '--timeout=120s'], { timeoutMs: 130_000 });
  await kubectl(['create', 'namespace', NS]);
  await kubectl(['apply', '-f', '-'], {
    input: [
      { apiVersion: 'purelb.io/v2', kind: 'ServiceGroup', metadata: { name: L2_GROUP, namespace: PURELB_NS }, spec: { local: { v4pool: { subnet: '198.51.100.0/24', pool: '198.51.100.150-198.51.100.159', aggregation: 'default' } } } },
      { apiVersion: 'purelb.io/v2', kind: 'ServiceGroup', metadata: { name: ROUTED_GROUP, namespace: PURELB_NS }, spec: { remote: { v4pool: { subnet: '203.0.113.255/32', pool: '203.0.113.255/32', aggregation: '/32' } } } },
    ]
      .map((o) => JSON.stringify(o))
      .join('\n'),
  });
});

test('ETP Local, layer 2: only the node with a ready pod announces, and the announcement follows the pod', async () => {
  const [first, second] = NODE_NAMES as [string, string];
  await web('etp-web', first);
  await waitUntil('etp-web ready', 90_000, async () => (await readyOn('etp-web')).join() === first);
  const ip = await service('etp-l2', L2_GROUP, 'etp-web', 'Local');
  await waitUntil(`${ip} on eth0 of ${first} only`, 30_000, async () => (await holdersOf(ip)).join(' ') === `${first},eth0`);
  assert.match(await waitForAnswer(ip), new RegExp(` ${first}$`), 'the local pod answers');

  // Move the pod: the EndpointSlice controller drops the old endpoint, adds the new one.
  await web('etp-web', second);
  await waitUntil('etp-web moved', 90_000, async () => (await readyOn('etp-web')).join() === second);
  await waitUntil(`${ip} moves to eth0 of ${second}`, 30_000, async () => (await holdersOf(ip)).join(' ') === `${second},eth0`);
  assert.match(await waitForAnswer(ip), new RegExp(` ${second}$`));

  // No ready pod: nobody announces (an honest ETP Local drops the VIP rather than black-holing it on a node).
  await kubectl(['scale', '-n', NS, 'deployment/etp-web', '--replicas=0']);
  await waitUntil(`${ip} withdrawn everywhere`, 60_000, async () => (await holdersOf(ip)).length === 0);
});

test('ETP Local, routed: kube-lb0 and the router next hops follow the pods as the Deployment scales', async () => {
  const [first] = NODE_NAMES as [string];
  await web('etp-routed-web', first);
  await waitUntil('etp-routed-web ready', 90_000, async () => (await readyOn('etp-routed-web')).join() === first);
  const ip = await service('etp-routed', ROUTED_GROUP, 'etp-routed-web', 'Local');
  await waitUntil(`${ip} on kube-lb0 of ${first} only`, 30_000, async () => (await holdersOf(ip)).join(' ') === `${first},kube-lb0`);
  await waitUntil(`the router's route for ${ip} via ${first} only`, 30_000, async () => (await routerRoutes(ip))[0]?.nexthops.map((h) => h.node).join() === first);
  assert.match(await waitForAnswer(ip), new RegExp(` ${first}$`));

  // Unpinned and scaled to one per node: every node announces.
  await web('etp-routed-web', undefined, NODE_NAMES.length);
  await waitUntil('one ready pod per node', 120_000, async () => (await readyOn('etp-routed-web')).join() === [...NODE_NAMES].sort().join());
  await waitUntil(`${ip} on kube-lb0 of every node`, 30_000, async () => (await holdersOf(ip)).join(' ') === NODE_NAMES.map((n) => `${n},kube-lb0`).sort().join(' '));
  await waitUntil(`ECMP over ${NODE_NAMES.length} next hops`, 30_000, async () => (await routerRoutes(ip))[0]?.nexthops.length === NODE_NAMES.length);
});

test('deleting the leading allocator pod: the standby leads and no address changes', async () => {
  const before = await ingressByService(NS);
  const lease = async () => JSON.parse((await kubectl(['get', 'lease', '-n', PURELB_NS, 'purelb-allocator', '-o', 'json'])).stdout) as { spec: { holderIdentity?: string } };
  const leader = (await lease()).spec.holderIdentity ?? '';
  const allocators = await pods(PURELB_NS, 'app.kubernetes.io/component=allocator');
  assert.ok(allocators.some((p) => p.name === leader), `the Lease names a running allocator pod (${leader})`);
  await kubectl(['delete', 'pod', '-n', PURELB_NS, leader, '--wait=false']);
  await waitUntil('another allocator pod leads', 60_000, async () => {
    const holder = (await lease()).spec.holderIdentity ?? '';
    return holder !== '' && holder !== leader && allocators.some((p) => p.name === holder);
  }, 200);
  // The new leader is serving: a new Service gets an address, the old ones keep theirs.
  const ip = await service('after-handover', L2_GROUP, 'nothing', 'Cluster');
  assert.ok(ip.startsWith('198.51.100.15'), ip);
  const after = await ingressByService(NS);
  for (const [name, ips] of before) assert.deepEqual(after.get(name), ips, `${name} kept its address`);
  await waitUntil('the Deployment is back to two Ready allocators', 120_000, async () => (await pods(PURELB_NS, 'app.kubernetes.io/component=allocator')).filter((p) => p.ready).length === 2);
});

test('deleting an agent pod: the DaemonSet brings it back and it adopts its addresses without a gap', async () => {
  const ip = (await ingressByService(NS)).get('after-handover')?.[0] as string;
  const holder = winner(NODE_NAMES, ip) as string;
  await waitUntil(`${ip} on ${holder}`, 30_000, async () => (await holdersOf(ip)).join(' ') === `${holder},eth0`);
  const agent = (await pods(PURELB_NS, 'app.kubernetes.io/component=lbnodeagent')).find((p) => p.node === holder);
  assert.ok(agent, `an agent pod on ${holder}`);
  const routedIp = (await ingressByService(NS)).get('etp-routed')?.[0] as string;

  // Watch the addresses on the holder from the moment of the delete until the new pod is Ready.
  const gaps: string[] = [];
  await kubectl(['delete', 'pod', '-n', PURELB_NS, agent.name, '--wait=false']);
  const deadline = performance.now() + 120_000;
  let replaced = false;
  for (let i = 0; i < 2000 && performance.now() < deadline && !replaced; i++) {
    const held = await holdersOf(ip);
    const routed = await holdersOf(routedIp);
    // A graceful stop withdraws and hands over: the address may sit on the next winner meanwhile, never on nobody for long.
    if (held.length === 0) gaps.push(`${Math.round(performance.now())} ${ip} held by nobody`);
    if (!routed.includes(`${holder},kube-lb0`)) gaps.push(`${Math.round(performance.now())} ${routedIp} not on ${holder}`);
    const now = (await pods(PURELB_NS, 'app.kubernetes.io/component=lbnodeagent')).find((p) => p.node === holder);
    replaced = now !== undefined && now.name !== agent.name && now.ready;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(replaced, 'the DaemonSet replaced the agent pod and it became Ready');
  await waitUntil(`${ip} back on ${holder} only`, 30_000, async () => (await holdersOf(ip)).join(' ') === `${holder},eth0`);
  assert.ok(gaps.length <= 3, `addresses stayed held through the restart (samples every ~100 ms): ${gaps.join('; ')}`);
});

test('kubectl drain of the announcing node: a graceful hand-over, and back after uncordon', async () => {
  await web('drain-web', undefined, NODE_NAMES.length);
  await waitUntil('drain-web ready on every node', 120_000, async () => (await readyOn('drain-web')).length === NODE_NAMES.length);
  const ip = await service('drain', L2_GROUP, 'drain-web', 'Cluster');
  const holder = winner(NODE_NAMES, ip) as string;
  await waitUntil(`${ip} on ${holder}`, 30_000, async () => (await holdersOf(ip)).join(' ') === `${holder},eth0`);
  await waitForAnswer(ip);

  const probe = clientProbe(ip, { durationMs: 8000, attemptTimeoutMs: 300, intervalMs: 10 });
  await new Promise((r) => setTimeout(r, 500));
  try {
    await kubectl(['drain', holder, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=60s'], { timeoutMs: 70_000 });
    const next = winner(NODE_NAMES.filter((n) => n !== holder), ip) as string;
    await waitUntil(`${ip} handed over to ${next}`, 10_000, async () => (await holdersOf(ip)).join(' ') === `${next},eth0`);
    const attempts = await probe;
    const gap = longestGap(attempts);
    console.log(`cluster.drain_longest_outage ${Math.round(gap)} ms (${attempts.length} attempts, ${attempts.filter((a) => !a.ok).length} failed)`);
    assert.ok(gap < 1000, `the client's longest gap during the drain: ${Math.round(gap)} ms`);
  } finally {
    await kubectl(['uncordon', holder]);
  }
  await waitUntil(`${ip} back on ${holder} after uncordon`, 30_000, async () => (await holdersOf(ip)).join(' ') === `${holder},eth0`);
});

test('deleting a namespace with LoadBalancer Services: their addresses are released and their VIPs withdrawn', async () => {
  const held = [...(await ingressByService(NS)).values()].flat();
  assert.ok(held.length >= 3, `the namespace's Services hold addresses: ${held.join(', ')}`);
  await kubectl(['delete', 'namespace', NS, '--wait=true', '--timeout=120s'], { timeoutMs: 130_000 });
  for (const ip of held) await waitUntil(`${ip} withdrawn from every node`, 30_000, async () => (await holdersOf(ip)).length === 0);
  // Released: a new Service in the same group gets the pool's first address again.
  await kubectl(['create', 'namespace', NS]);
  const again = await service('reuse', L2_GROUP, 'nothing', 'Cluster');
  assert.equal(again, '198.51.100.150', 'the pool is free again');
  await kubectl(['delete', 'namespace', NS, '--wait=false']);
});
