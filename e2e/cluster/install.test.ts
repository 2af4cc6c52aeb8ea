// purelb-ts as an operator runs it: `helm install` of helm/purelb with the image the lab
// built, onto real kubelets. Every pod becomes Ready; the chart's ServiceAccounts, RBAC,
// securityContext, read-only root and capabilities are checked on the running processes,
// not on the manifests; then the reference scenario, with real web pods behind each
// Service, answers a client in the client namespace through every VIP: layer 2 (ARP)
// and routed (the router's ECMP, learnt over BGP from the nodes' BIRD).

import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { kubeconfigYAML } from '../lab/controlplane.ts';
import { LAB_DIR, run } from '../lab/exec.ts';
import { SCENARIO_EXPECTED } from '../lab/plan.ts';
import { binDir } from '../lab/controlplane.ts';
import { routerRoutes } from '../lab/network.ts';
import { kubectl, waitUntil } from '../lab/testkit.ts';
import { winner } from '../../src/election/winner.ts';
import { APP_NS, NODE_NAMES, PURELB_NS, RELEASE, applyScenario, clientGet, clusterHelm, containerPid, holdersOf, ingressByService, installPurelb, pods, requireCluster, waitForAnswer } from './kit.ts';

const isRouted = (group: string) => group === 'bgp-ippool';
const CAP_NET_ADMIN = 12n;
const CAP_NET_RAW = 13n;

before(async () => {
  await requireCluster();
  // A clean start: an earlier run's release and scenario go first. The release stays
  // afterwards for the cluster tests that follow; `lab down` removes everything.
  await kubectl(['delete', 'namespace', APP_NS, '--ignore-not-found', '--wait=true', '--timeout=120s'], { timeoutMs: 130_000 });
  await clusterHelm(['uninstall', RELEASE, '-n', PURELB_NS, '--wait', '--ignore-not-found'], { timeoutMs: 180_000 });
});

function procStatus(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const cut = line.indexOf(':');
    if (cut > 0) out[line.slice(0, cut)] = line.slice(cut + 1).trim();
  }
  return out;
}

/** The mount options of the container's root file system, as its own mount table shows them. */
function rootMountOptions(pid: number): string[] {
  const line = readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === '/');
  assert.ok(line, `no root mount in /proc/${pid}/mountinfo`);
  return (line.split(' ')[5] ?? '').split(',');
}

test('helm install: every pod of the chart Ready on real kubelets, from the image the lab built', async () => {
  const ms = await installPurelb();
  const allocators = await pods(PURELB_NS, 'app.kubernetes.io/component=allocator');
  const agents = await pods(PURELB_NS, 'app.kubernetes.io/component=lbnodeagent');
  assert.equal(allocators.length, 2, 'two allocator replicas');
  assert.deepEqual(agents.map((p) => p.node).sort(), [...NODE_NAMES].sort(), 'one agent per node');
  for (const p of [...allocators, ...agents]) assert.ok(p.ready, `${p.name} Ready`);
  console.log(`cluster.helm_install_wait ${Math.round(ms)} ms`);
});

test("the pods run under the chart's ServiceAccounts, users, capabilities and a read-only root", async () => {
  const spec = JSON.parse((await kubectl(['get', 'pods', '-n', PURELB_NS, '-o', 'json'])).stdout) as {
    items: Array<{ metadata: { name: string; labels: Record<string, string> }; spec: { serviceAccountName: string; nodeName: string }; status: { containerStatuses: Array<{ containerID: string; restartCount: number }> } }>;
  };
  const seen = new Set<string>();
  for (const pod of spec.items) {
    const component = pod.metadata.labels['app.kubernetes.io/component'] ?? '';
    seen.add(component);
    assert.equal(pod.spec.serviceAccountName, `${RELEASE}-${component}`, `${pod.metadata.name}'s ServiceAccount`);
    const cs = pod.status.containerStatuses[0];
    assert.ok(cs, `${pod.metadata.name} has a container`);
    assert.equal(cs.restartCount, 0, `${pod.metadata.name} never restarted (its probes pass)`);
    const pid = containerPid(pod.spec.nodeName, cs.containerID.replace(/^containerd:\/\//, ''));
    const status = procStatus(pid);
    const capEff = BigInt(`0x${status.CapEff}`);
    assert.ok(rootMountOptions(pid).includes('ro'), `${pod.metadata.name}: root file system read-only`);
    assert.equal(status.NoNewPrivs, '1', `${pod.metadata.name}: no privilege escalation`);
    if (component === 'lbnodeagent') {
      assert.equal(status.Uid?.split(/\s+/)[1], '0', 'the agent runs as root inside its container');
      assert.equal(capEff, (1n << CAP_NET_ADMIN) | (1n << CAP_NET_RAW), `agent capabilities are NET_ADMIN and NET_RAW only (CapEff ${status.CapEff})`);
      // hostNetwork: the process sees the node's own eth0 and kube-lb0.
      const netns = readFileSync(`/proc/${pid}/net/dev`, 'utf8');
      assert.match(netns, /kube-lb0/, 'the agent is in the node network namespace');
    } else {
      assert.equal(status.Uid?.split(/\s+/)[1], '65534', 'the allocator runs as nobody');
      assert.equal(capEff, 0n, `the allocator has no capability (CapEff ${status.CapEff})`);
    }
  }
  assert.deepEqual([...seen].sort(), ['allocator', 'lbnodeagent']);
});

test("the chart's RBAC, with the pods' own ServiceAccount tokens: enough and no more", async () => {
  const dir = path.join(LAB_DIR, 'cluster');
  const cases: Array<[component: string, verb: string, resource: string, allowed: boolean]> = [
    ['allocator', 'update', 'services --subresource=status', true],
    ['allocator', 'create', 'events', true],
    ['allocator', 'delete', 'services', false],
    ['allocator', 'get', 'secrets', false],
    ['lbnodeagent', 'patch', 'services', true],
    ['lbnodeagent', 'update', 'services --subresource=status', false],
    ['lbnodeagent', 'create', 'pods', false],
    ['lbnodeagent', 'list', 'endpointslices.discovery.k8s.io', true],
  ];
  const tokenFile: Record<string, string> = {};
  for (const component of ['allocator', 'lbnodeagent']) {
    const pod = (await pods(PURELB_NS, `app.kubernetes.io/component=${component}`))[0];
    assert.ok(pod?.containerIds[0], `a running ${component} pod`);
    // The token kubelet projected into the container, read through its root, where the components read it.
    const pid = containerPid(pod.node, pod.containerIds[0]);
    const token = readFileSync(`/proc/${pid}/root/var/run/secrets/kubernetes.io/serviceaccount/token`, 'utf8').trim();
    const file = path.join(dir, `${component}-pod.kubeconfig`);
    writeFileSync(file, kubeconfigYAML(`${component}-pod`, token), { mode: 0o600 });
    tokenFile[component] = file;
  }
  for (const [component, verb, resource, allowed] of cases) {
    const r = await run([path.join(binDir(), 'kubectl'), '--kubeconfig', tokenFile[component] as string, 'auth', 'can-i', verb, ...resource.split(' '), '-n', APP_NS], { check: false, timeoutMs: 20_000 });
    assert.equal(r.stdout.trim(), allowed ? 'yes' : 'no', `${component} ${verb} ${resource}: ${r.stdout.trim()} ${r.stderr.trim()}`);
  }
});

test('the reference scenario through real pods: every VIP answers HTTP from a backend pod', async () => {
  await applyScenario();
  await waitUntil('every scenario Service has its address', 60_000, async () => {
    const ingress = await ingressByService();
    return SCENARIO_EXPECTED.every(([name, , ip]) => ingress.get(name)?.[0] === ip);
  }, 250);
  for (const [name, group, ip] of SCENARIO_EXPECTED) {
    if (isRouted(group)) {
      await waitUntil(`${ip} on kube-lb0 of every node`, 30_000, async () => (await holdersOf(ip)).join(' ') === NODE_NAMES.map((n) => `${n},kube-lb0`).sort().join(' '));
      await waitUntil(`the router's ECMP route for ${ip}`, 30_000, async () => ((await routerRoutes(ip))[0]?.nexthops.length ?? 0) === NODE_NAMES.length);
    } else {
      await waitUntil(`${ip} on eth0 of ${winner(NODE_NAMES, ip)}`, 30_000, async () => (await holdersOf(ip)).join(' ') === `${winner(NODE_NAMES, ip)},eth0`);
    }
    const answer = await waitForAnswer(ip);
    assert.match(answer, /^nginx-lb-[a-z0-9-]+ plb-node\d+$/, `${name} (${ip}) answered by a backend pod: ${answer}`);
  }
  // Routed VIPs spread over the nodes and kube-proxy over the backends: several answer
  // (once every kube-proxy has seen every ready endpoint).
  const routed = SCENARIO_EXPECTED.find(([, g]) => isRouted(g))?.[2] as string;
  const answers = new Set<string>();
  await waitUntil(`more than one backend answers through ${routed}`, 20_000, async () => {
    answers.add((await clientGet(routed)) ?? '');
    answers.delete('');
    return answers.size >= 2;
  }, 50);
});
