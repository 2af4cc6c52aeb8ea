// The chart against the lab's real API server (RBAC on): `helm install` creates the
// CRDs and every object; the allocator (two replicas, as the Deployment runs them) and
// the three node agents then run as processes under the chart's ServiceAccounts, with
// tokens from the TokenRequest API, and the reference scenario works under exactly those
// rights. Each identity is shown to be denied what it must not do. `kubectl purelb
// status` reads the result; /readyz and /metrics are scraped; an upgrade keeps the
// heartbeat key; allocator-only mode assigns addresses and touches no node.
// (The lab has no kubelet: the Deployment and DaemonSet exist but run no Pods.)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import type { V1Service } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { winner } from '../../src/election/winner.ts';
import { startAgent, startAllocator, stopAllComponents } from '../lab/components.ts';
import type { Component } from '../lab/components.ts';
import { binDir, kubeconfigPath, kubeconfigYAML } from '../lab/controlplane.ts';
import { LAB_DIR, REPO_ROOT, nsExec, run } from '../lab/exec.ts';
import { kubeConfig } from '../lab/kube.ts';
import { labNodes, SCENARIO_EXPECTED } from '../lab/plan.ts';
import { FAST_LEASE_ENV, ensureNamespace, freePort, httpStatus, kubectl, referenceManifest, waitUntil } from '../lab/testkit.ts';
import { CHART_DIR, helm, parseObjects, setArgs } from './chart.ts';

const NS = 'purelb';
const APP_NS = 'nginx-quic';
const RELEASE = 'purelb';
const ALLOCATOR_SA = 'purelb-allocator';
const AGENT_SA = 'purelb-lbnodeagent';
const as = (sa: string) => `system:serviceaccount:${NS}:${sa}`;
const names = labNodes(3).map((n) => n.name);
const core = kubeConfig().makeApiClient(CoreV1Api);
const workDir = path.join(LAB_DIR, 'install');
const fastAllocator = FAST_LEASE_ENV;
const fastAgent = { PURELB_RECONCILE_MS: '2000', PURELB_MEMBER_LEASE_MS: '4000', PURELB_MEMBER_RENEW_MS: '1000' };
const running: Component[] = [];
const allocators: Array<{ c: Component; port: number }> = [];

const EXPECTED = SCENARIO_EXPECTED;
const isRouted = (group: string) => group === 'bgp-ippool';

function labHelm(args: string[], opts: { check?: boolean } = {}) {
  return helm(['--kubeconfig', kubeconfigPath('admin'), ...args], { timeoutMs: 180_000, ...opts });
}

/** A kubeconfig holding a fresh TokenRequest token of one of the chart's ServiceAccounts. */
async function serviceAccountKubeconfig(sa: string): Promise<string> {
  const token = (await kubectl(['create', 'token', sa, '-n', NS, '--duration=2h'])).stdout.trim();
  assert.match(token, /^ey/, `no token for ${sa}`);
  const file = path.join(workDir, `${sa}.kubeconfig`);
  writeFileSync(file, kubeconfigYAML(as(sa), token), { mode: 0o600 });
  return file;
}

/** kubectl with a kubeconfig file (a ServiceAccount's), never throwing. */
function kubectlAs(kubeconfig: string, args: string[], input?: string) {
  return run([path.join(binDir(), 'kubectl'), '--kubeconfig', kubeconfig, ...args], { timeoutMs: 30_000, check: false, ...(input === undefined ? {} : { input }) });
}

async function ingressOf(name: string): Promise<string[]> {
  const svc = await core.readNamespacedService({ name, namespace: APP_NS });
  return (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '');
}

/** Which node namespaces hold `ip`, on which interface. */
async function holders(ip: string): Promise<string[]> {
  const found: string[] = [];
  for (const node of names) {
    const links = JSON.parse((await nsExec(node, ['ip', '-j', 'addr', 'show'])).stdout) as Array<{ ifname: string; addr_info: Array<{ local: string }> }>;
    for (const l of links) if (l.addr_info.some((a) => a.local === ip)) found.push(`${node},${l.ifname}`);
  }
  return found.sort();
}

function referenceServices(): V1Service[] {
  return parseAllDocuments(referenceManifest('services.yaml'))
    .map((d) => d.toJSON() as V1Service)
    .filter((d) => d.kind === 'Service');
}

/** Only the ServiceGroups: the chart brings the LBNodeAgent `default`. */
async function applyServiceGroups(): Promise<void> {
  const groups = parseObjects(referenceManifest('servicegroups.yaml')).filter((o) => o.kind === 'ServiceGroup');
  assert.equal(groups.length, 2);
  await kubectl(['apply', '-f', '-'], { input: groups.map((g) => JSON.stringify(g)).join('\n') });
}

const leaderz = (port: number): Promise<number> => httpStatus(`http://127.0.0.1:${port}/leader`);
const readyz = (port: number): Promise<number> => httpStatus(`http://127.0.0.1:${port}/readyz`);

/** Parses a Prometheus text exposition; throws naming the first line that is not one. */
function parseExposition(text: string): Map<string, { type: string; samples: number }> {
  const families = new Map<string, { type: string; samples: number }>();
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)( -?[0-9]+)?$/;
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        assert.match(meta[3] ?? '', /^(counter|gauge|histogram|summary|untyped)$/, `line ${i + 1}: ${line}`);
        families.set(meta[2] as string, { type: meta[3] as string, samples: 0 });
      }
      continue;
    }
    const m = sample.exec(line);
    assert.ok(m, `line ${i + 1} is not exposition format: ${line}`);
    const name = m[1] as string;
    const family = [...families.keys()].find((f) => name === f || /^(_bucket|_sum|_count|_total|_created)$/.test(name.slice(f.length)) && name.startsWith(f));
    assert.ok(family, `line ${i + 1}: sample ${name} has no # TYPE before it`);
    (families.get(family) as { samples: number }).samples++;
  }
  return families;
}

async function startAllocatorAs(kubeconfig: string, id: string): Promise<{ c: Component; port: number }> {
  const port = freePort();
  const c = startAllocator({ id, namespace: NS, kubeconfig, metricsPort: port, env: fastAllocator });
  running.push(c);
  return { c, port };
}

function forbiddenInLogs(): string[] {
  return running.flatMap((c) =>
    c
      .log()
      .split('\n')
      .filter((l) => /forbidden|HTTP-Code: 403/i.test(l))
      .map((l) => `${c.name}: ${l.slice(0, 300)}`),
  );
}

before(async () => {
  mkdirSync(workDir, { recursive: true });
  await stopAllComponents();
  await labHelm(['uninstall', RELEASE, '-n', NS, '--wait'], { check: false });
  await ensureNamespace(APP_NS);
  await kubectl(['delete', 'svc', '--all', '-n', APP_NS, '--wait=true']);
  // What other lab tests leave in the namespace would not belong to the release.
  await kubectl(['delete', 'servicegroups,lbnodeagents', '--all', '-n', NS], { check: false });
  await kubectl(['delete', 'secret', 'purelb-heartbeat', '-n', NS, '--ignore-not-found'], { check: false });
  // So that `helm install` itself has to create the CRDs, as on a new cluster.
  await kubectl(['delete', 'crd', 'servicegroups.purelb.io', 'lbnodeagents.purelb.io', '--ignore-not-found', '--wait=true'], { timeoutMs: 60_000 });
});

after(async () => {
  await Promise.allSettled(running.map((c) => c.stop()));
  await labHelm(['uninstall', RELEASE, '-n', NS, '--wait'], { check: false });
  await kubectl(['delete', 'svc', '--all', '-n', APP_NS, '--wait=false'], { check: false });
  await kubectl(['delete', 'servicegroups', '--all', '-n', NS], { check: false });
});

test('helm install creates the CRDs and the release in the purelb namespace', async () => {
  const out = await labHelm(['install', RELEASE, CHART_DIR, '-n', NS, '--create-namespace']);
  assert.match(out.stdout, /STATUS: deployed/);
  await kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd/servicegroups.purelb.io', 'crd/lbnodeagents.purelb.io']);
  const objects = await kubectl(['get', 'deploy,ds,pdb,sa,role,rolebinding,lbnodeagent,secret', '-n', NS, '-o', 'name']);
  for (const o of [
    'deployment.apps/purelb-allocator',
    'daemonset.apps/purelb-lbnodeagent',
    'poddisruptionbudget.policy/purelb-allocator',
    `serviceaccount/${ALLOCATOR_SA}`,
    `serviceaccount/${AGENT_SA}`,
    'lbnodeagent.purelb.io/default',
    'secret/purelb-heartbeat',
  ]) {
    assert.ok(objects.stdout.split('\n').includes(o), `${o} missing:\n${objects.stdout}`);
  }
  const key = (await kubectl(['get', 'secret', 'purelb-heartbeat', '-n', NS, '-o', 'jsonpath={.data.key}'])).stdout;
  assert.equal(Buffer.from(key, 'base64').length, 32);
});

test('RBAC: each ServiceAccount may do what its component needs and is denied the rest', async () => {
  type Check = [sa: string, args: string[], allowed: boolean];
  const A = ALLOCATOR_SA;
  const G = AGENT_SA;
  const checks: Check[] = [
    [A, ['list', 'services', '-A'], true],
    [A, ['watch', 'services', '-A'], true],
    [A, ['patch', 'services', '-n', APP_NS], true],
    [A, ['patch', 'services', '--subresource=status', '-n', APP_NS], true],
    [A, ['create', 'events', '-n', APP_NS], true],
    [A, ['create', 'leases.coordination.k8s.io', '-n', NS], true],
    [A, ['update', 'leases.coordination.k8s.io/purelb-allocator', '-n', NS], true],
    [A, ['list', 'servicegroups.purelb.io', '-n', NS], true],
    [A, ['patch', 'servicegroups.purelb.io', '--subresource=status', '-n', NS], true],
    [A, ['get', 'secrets', '-n', 'kube-system'], false],
    [A, ['get', 'secrets/purelb-heartbeat', '-n', NS], false],
    [A, ['delete', 'services', '-n', APP_NS], false],
    [A, ['create', 'services', '-n', APP_NS], false],
    [A, ['update', 'leases.coordination.k8s.io/lbnodeagent-plb-node1', '-n', NS], false],
    [A, ['list', 'servicegroups.purelb.io', '-n', 'default'], false],
    [A, ['update', 'servicegroups.purelb.io', '-n', NS], false],
    [A, ['get', 'nodes'], false],
    [G, ['get', 'nodes/plb-node1'], true],
    [G, ['list', 'services', '-A'], true],
    [G, ['patch', 'services', '-n', APP_NS], true],
    [G, ['list', 'endpointslices.discovery.k8s.io', '-A'], true],
    [G, ['create', 'events', '-n', APP_NS], true],
    [G, ['list', 'lbnodeagents.purelb.io', '-n', NS], true],
    [G, ['delete', 'leases.coordination.k8s.io/lbnodeagent-plb-node1', '-n', NS], true],
    [G, ['get', 'secrets/purelb-heartbeat', '-n', NS], true],
    [G, ['update', 'services', '--subresource=status', '-n', APP_NS], false],
    [G, ['patch', 'services', '--subresource=status', '-n', APP_NS], false],
    [G, ['delete', 'services', '-n', APP_NS], false],
    [G, ['get', 'secrets/other', '-n', NS], false],
    [G, ['list', 'secrets', '-n', NS], false],
    [G, ['create', 'leases.coordination.k8s.io', '-n', 'default'], false],
    [G, ['patch', 'servicegroups.purelb.io', '--subresource=status', '-n', NS], false],
    [G, ['update', 'nodes/plb-node1'], false],
  ];
  const wrong: string[] = [];
  for (const [sa, args, allowed] of checks) {
    const r = await kubectl(['auth', 'can-i', ...args, `--as=${as(sa)}`], { check: false });
    const answer = r.stdout.trim();
    if (answer !== (allowed ? 'yes' : 'no')) wrong.push(`${sa} ${args.join(' ')}: ${answer || r.stderr.trim()} (want ${allowed ? 'yes' : 'no'})`);
  }
  assert.deepEqual(wrong, []);
});

test('the reference scenario works with the allocator and three agents running as the chart ServiceAccounts', async () => {
  await applyServiceGroups();
  const allocatorConfig = await serviceAccountKubeconfig(ALLOCATOR_SA);
  const agentConfig = await serviceAccountKubeconfig(AGENT_SA);
  allocators.push(await startAllocatorAs(allocatorConfig, 'install-a'), await startAllocatorAs(allocatorConfig, 'install-b'));
  for (const node of names) running.push(startAgent({ node, namespace: NS, kubeconfig: agentConfig, env: fastAgent }));
  await waitUntil('three member Leases', 20_000, async () => {
    const out = await kubectl(['get', 'leases', '-n', NS, '-l', 'purelb.io/component=lbnodeagent', '-o', 'name']);
    return out.stdout.split('\n').filter((l) => l !== '').length === 3;
  }, 200);

  for (const svc of referenceServices()) {
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(svc) });
    const name = svc.metadata?.name ?? '';
    await waitUntil(`${name} has an address`, 20_000, async () => (await ingressOf(name)).length > 0, 100);
  }
  for (const [name, group, ip] of EXPECTED) {
    assert.deepEqual(await ingressOf(name), [ip], name);
    const want = isRouted(group) ? names.map((n) => `${n},kube-lb0`) : [`${winner(names, ip)},eth0`];
    await waitUntil(`${ip} on ${want.join(' ')}`, 15_000, async () => (await holders(ip)).join(' ') === want.join(' '), 200);
    await waitUntil(`${name} announcing annotation`, 10_000, async () => {
      const svc = await core.readNamespacedService({ name, namespace: APP_NS });
      return svc.metadata?.annotations?.['purelb.io/announcing-IPv4'] === [...want].sort().join(' ');
    }, 200);
  }
  await waitUntil('AnnouncingLocal Event written by an agent', 10_000, async () => {
    const events = await core.listNamespacedEvent({ namespace: APP_NS, fieldSelector: 'involvedObject.name=nginx-lb-service' });
    return events.items.some((e) => e.reason === 'AnnouncingLocal') && events.items.some((e) => e.reason === 'AddressAssigned');
  }, 200);
  await waitUntil('ServiceGroup status written by the allocator', 10_000, async () => {
    const out = await kubectl(['get', 'sg', 'layer2-ippool', '-n', NS, '-o', 'jsonpath={.status.allocatedIPv4}']);
    return out.stdout === '4';
  }, 200);
  assert.deepEqual(forbiddenInLogs(), []);
});

test('kubectl purelb status shows pool usage and who announces each address', async () => {
  const out = await run([path.join(REPO_ROOT, 'bin', 'kubectl-purelb'), 'status', '--kubeconfig', kubeconfigPath('admin'), '-n', NS], { timeoutMs: 30_000 });
  const lines = out.stdout.split('\n');
  const row = (...cells: string[]) => lines.find((l) => l.split(/\s{2,}/).join('|') === cells.join('|'));
  assert.ok(row('layer2-ippool', 'True', '4/63 (6.3%)', '-'), out.stdout);
  assert.ok(row('bgp-ippool', 'True', '2/255 (0.8%)', '-'), out.stdout);
  for (const [name, group, ip] of EXPECTED) {
    const by = isRouted(group) ? names.map((n) => `${n} (kube-lb0)`).join(', ') : `${winner(names, ip)} (eth0)`;
    assert.ok(row(`${APP_NS}/${name}`, group, ip, by), `no row for ${name} ${ip} ${by}:\n${out.stdout}`);
  }
});

test('/readyz: both replicas ready (the standby campaigns), /leader tells the active one until it hands over; /metrics is Prometheus text', async () => {
  await waitUntil('one allocator leads', 10_000, async () => (await Promise.all(allocators.map((a) => leaderz(a.port)))).includes(200), 100);
  const codes = await Promise.all(allocators.map((a) => leaderz(a.port)));
  assert.deepEqual([...codes].sort(), [200, 503]);
  assert.deepEqual(await Promise.all(allocators.map((a) => readyz(a.port))), [200, 200], 'a campaigning standby is ready, so a PDB lets the leader drain');
  const leader = allocators[codes.indexOf(200)] as { c: Component; port: number };
  const standby = allocators[codes.indexOf(503)] as { c: Component; port: number };

  for (const a of [leader, standby]) {
    const res = await fetch(`http://127.0.0.1:${a.port}/metrics`, { signal: AbortSignal.timeout(2000) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    parseExposition(await res.text());
    assert.equal((await fetch(`http://127.0.0.1:${a.port}/healthz`)).status, 200);
  }

  await leader.c.stop();
  await waitUntil('the standby leads', 10_000, async () => (await leaderz(standby.port)) === 200, 100);
  const first = referenceServices()[0] as V1Service;
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ ...first, metadata: { ...first.metadata, name: 'after-handover' } }) });
  await waitUntil('after-handover has an address', 15_000, async () => (await ingressOf('after-handover')).length > 0, 100);
  assert.deepEqual(await ingressOf('after-handover'), ['198.51.100.67']);
  assert.deepEqual(forbiddenInLogs(), []);
});

test('real requests outside the rights are refused by the API server', async () => {
  const agent = await serviceAccountKubeconfig(AGENT_SA);
  const allocator = await serviceAccountKubeconfig(ALLOCATOR_SA);
  const refused = async (what: string, r: Promise<{ code: number | null; stderr: string }>) => {
    const res = await r;
    assert.notEqual(res.code, 0, `${what} was allowed`);
    assert.match(res.stderr, /forbidden/i, `${what}: ${res.stderr}`);
  };
  const status = JSON.stringify({ status: { loadBalancer: { ingress: [{ ip: '198.51.100.99' }] } } });
  await refused('agent writes services/status', kubectlAs(agent, ['patch', 'svc', 'nginx-lb-service', '-n', APP_NS, '--subresource=status', '--type=merge', '-p', status]));
  await refused('agent reads another Secret', kubectlAs(agent, ['get', 'secrets', '-n', NS]));
  await refused('allocator reads Secrets in another namespace', kubectlAs(allocator, ['get', 'secrets', '-n', 'kube-system']));
  await refused('allocator reads the heartbeat key', kubectlAs(allocator, ['get', 'secret', 'purelb-heartbeat', '-n', NS]));
  for (const [who, config] of [['agent', agent], ['allocator', allocator]] as const) {
    await refused(`${who} deletes a Service`, kubectlAs(config, ['delete', 'svc', 'nginx-lb-service', '-n', APP_NS, '--dry-run=server']));
  }
  assert.deepEqual(await ingressOf('nginx-lb-service'), ['198.51.100.64']);
  // The one Secret the agent may read, for contrast.
  const key = await kubectlAs(agent, ['get', 'secret', 'purelb-heartbeat', '-n', NS, '-o', 'jsonpath={.data.key}']);
  assert.equal(key.code, 0, key.stderr);
  assert.equal(Buffer.from(key.stdout, 'base64').length, 32);
});

test('helm upgrade keeps the heartbeat key', async () => {
  const keyOf = async () => (await kubectl(['get', 'secret', 'purelb-heartbeat', '-n', NS, '-o', 'jsonpath={.data.key}'])).stdout;
  const before = await keyOf();
  const out = await labHelm(['upgrade', RELEASE, CHART_DIR, '-n', NS, ...setArgs({ 'allocator.workers': 4 })]);
  assert.match(out.stdout, /REVISION: 2/);
  assert.equal(await keyOf(), before);
});

test('allocator-only mode: addresses are assigned, no agent is rendered and no node gets a VIP', async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
  for (const node of names) {
    const left = (await Promise.all(EXPECTED.map(([, , ip]) => holders(ip)))).flat().filter((h) => h.startsWith(`${node},`));
    assert.deepEqual(left, [], `agents withdrew everything on stop (${node})`);
  }
  await labHelm(['uninstall', RELEASE, '-n', NS, '--wait']);
  assert.equal((await kubectl(['get', 'clusterrole', 'purelb-lbnodeagent', '--ignore-not-found', '-o', 'name'])).stdout.trim(), '');
  await kubectl(['delete', 'svc', '--all', '-n', APP_NS, '--wait=true']);

  // The CRDs stay from the first install (helm never deletes them).
  await labHelm(['install', RELEASE, CHART_DIR, '-n', NS, '--skip-crds', ...setArgs({ 'lbnodeagent.enabled': false })]);
  const manifest = parseObjects((await labHelm(['get', 'manifest', RELEASE, '-n', NS])).stdout);
  assert.deepEqual(manifest.filter((o) => o.kind === 'DaemonSet' || o.metadata.name.includes('lbnodeagent')).map((o) => `${o.kind}/${o.metadata.name}`), []);
  assert.equal((await kubectl(['get', 'sa', AGENT_SA, '-n', NS, '--ignore-not-found', '-o', 'name'])).stdout.trim(), '');

  const allocator = await startAllocatorAs(await serviceAccountKubeconfig(ALLOCATOR_SA), 'install-only');
  const services = referenceServices();
  for (const svc of services) await kubectl(['apply', '-f', '-'], { input: JSON.stringify(svc) });
  for (const [name, , ip] of EXPECTED) {
    await waitUntil(`${name} has an address`, 20_000, async () => (await ingressOf(name)).length > 0, 100);
    assert.deepEqual(await ingressOf(name), [ip], name);
  }
  // Give a (wrongly) running agent time to act before looking at the nodes.
  await new Promise((r) => setTimeout(r, 3000));
  for (const [name, , ip] of EXPECTED) {
    assert.deepEqual(await holders(ip), [], `${ip} appeared on a node`);
    const annotations = (await core.readNamespacedService({ name, namespace: APP_NS })).metadata?.annotations ?? {};
    assert.equal(annotations['purelb.io/announcing-IPv4'], undefined, name);
  }
  assert.ok(allocator.c.alive());
  assert.deepEqual(forbiddenInLogs(), []);
});
