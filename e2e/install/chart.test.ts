// The Helm chart rendered offline with the helm CLI built from its Go module: lint,
// the CRDs are exactly crds/ (the zod-generated source of truth), the workloads carry
// the settings the design asks for, the RBAC has no wildcard and no Secret beyond the
// heartbeat key, allocator-only mode renders no agent, and the optional parts (BIRD,
// ServiceMonitor, dashboard) render into something their consumers accept.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, readdirSync, readFileSync, realpathSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT, run } from '../lab/exec.ts';
import { validateText } from '../../src/cli/validate.ts';
import { command } from '../../src/runtime.ts';
import { CHART_DIR, find, helm, one, parseObjects, render, setArgs } from './chart.ts';
import type { K8sObject } from './chart.ts';

interface Container {
  name: string;
  image: string;
  command: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  ports?: Array<{ name: string; containerPort: number }>;
  readinessProbe?: { httpGet: { path: string; port: string | number } };
  livenessProbe?: { httpGet: { path: string; port: string | number } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { drop?: string[]; add?: string[] } };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface PodSpec {
  hostNetwork?: boolean;
  volumes?: Array<{ name: string; hostPath?: { path: string; type?: string } }>;
  serviceAccountName?: string;
  containers: Container[];
  tolerations?: unknown[];
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

const podSpec = (o: K8sObject): PodSpec => (o.spec as { template: { spec: PodSpec } }).template.spec;
const container = (o: K8sObject): Container => podSpec(o).containers[0] as Container;
const env = (c: Container, name: string) => c.env?.find((e) => e.name === name);
const ALL_OPTIONAL = {
  'bird.enabled': true,
  'bird.peers[0].name': 'tor1',
  'bird.peers[0].address': '198.51.100.251',
  'bird.peers[0].asn': 64512,
  'serviceMonitor.enabled': true,
};

test('helm lint passes with the defaults, with every optional part, and in allocator-only mode', async () => {
  const variants: Array<Record<string, string | number | boolean>> = [{}, ALL_OPTIONAL, { 'lbnodeagent.enabled': false }];
  for (const values of variants) {
    const out = await helm(['lint', CHART_DIR, ...setArgs(values)]);
    assert.match(out.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    assert.doesNotMatch(out.stdout, /\[(WARNING|ERROR)\]/, out.stdout);
  }
});

test('the chart installs exactly the CRDs of crds/ (a link to them, not a copy)', async () => {
  const link = path.join(CHART_DIR, 'crds');
  assert.ok(lstatSync(link).isSymbolicLink(), 'helm/purelb/crds must stay a symbolic link to ../../crds');
  assert.equal(realpathSync(link), path.join(REPO_ROOT, 'crds'));
  const shown = parseObjects((await helm(['show', 'crds', CHART_DIR])).stdout);
  const source = readdirSync(path.join(REPO_ROOT, 'crds'))
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => parse(readFileSync(path.join(REPO_ROOT, 'crds', f), 'utf8')) as K8sObject);
  const byName = (list: K8sObject[]) => [...list].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  assert.deepEqual(byName(shown), byName(source));
  assert.deepEqual(shown.map((c) => c.metadata.name).sort(), ['lbnodeagents.purelb.io', 'servicegroups.purelb.io']);
});

test('allocator: two replicas in the release namespace, leader election env, probes on 7472, PDB', async () => {
  const objects = await render({}, { namespace: 'lb-system' });
  const deploy = one(objects, 'Deployment');
  assert.equal(deploy.metadata.namespace, 'lb-system');
  assert.equal((deploy.spec as { replicas: number }).replicas, 2);
  const c = container(deploy);
  assert.deepEqual(c.command, command('allocator'));
  assert.equal(env(c, 'PURELB_NAMESPACE')?.value, 'lb-system');
  assert.equal(env(c, 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name');
  for (const name of ['PURELB_LEASE_NAME', 'PURELB_LEASE_DURATION_MS', 'PURELB_RENEW_DEADLINE_MS', 'PURELB_RETRY_PERIOD_MS']) assert.ok(env(c, name)?.value, name);
  assert.equal(env(c, 'PURELB_METRICS_PORT')?.value, '7472');
  assert.deepEqual(c.ports?.map((p) => [p.name, p.containerPort]), [['metrics', 7472]]);
  assert.deepEqual(c.readinessProbe?.httpGet, { path: '/readyz', port: 'metrics' });
  assert.deepEqual(c.livenessProbe?.httpGet, { path: '/healthz', port: 'metrics' });
  assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
  assert.deepEqual(c.securityContext?.capabilities, { drop: ['ALL'] });
  const pdb = one(objects, 'PodDisruptionBudget');
  assert.deepEqual((pdb.spec as { selector: unknown }).selector, (deploy.spec as { selector: unknown }).selector);
  assert.equal((pdb.spec as { minAvailable: number }).minAvailable, 1);
});

test('lbnodeagent: hostNetwork, NET_ADMIN + NET_RAW only, read-only root, no CPU limit, node name from the Pod', async () => {
  const toleration = { key: 'dedicated', operator: 'Equal', value: 'edge', effect: 'NoSchedule' };
  const objects = await render({ 'lbnodeagent.tolerations[0].key': 'dedicated', 'lbnodeagent.tolerations[0].operator': 'Equal', 'lbnodeagent.tolerations[0].value': 'edge', 'lbnodeagent.tolerations[0].effect': 'NoSchedule' });
  const ds = one(objects, 'DaemonSet');
  const spec = podSpec(ds);
  assert.equal(spec.hostNetwork, true);
  assert.deepEqual(spec.tolerations, [toleration]);
  const c = container(ds);
  assert.deepEqual(c.command, command('lbnodeagent'));
  assert.equal(env(c, 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath, 'spec.nodeName');
  assert.equal(env(c, 'PURELB_NAMESPACE')?.value, 'purelb');
  assert.deepEqual(c.securityContext?.capabilities, { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] });
  assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
  assert.equal(c.resources?.limits?.cpu, undefined, 'a CPU limit throttles failover');
  assert.ok(c.resources?.limits?.memory);
  // The ownership record (kernels before 5.18): a folder of the node's /run, made by the kubelet.
  assert.deepEqual(c.volumeMounts?.find((m) => m.mountPath === '/run/purelb-ts')?.name, 'ownership');
  assert.deepEqual(spec.volumes?.find((v) => v.name === 'ownership')?.hostPath, { path: '/run/purelb-ts', type: 'DirectoryOrCreate' });
  const defaults = one(await render(), 'DaemonSet');
  assert.ok((podSpec(defaults).tolerations ?? []).length > 0, 'control-plane nodes are tolerated by default');
});

test('the default LBNodeAgent is v1 with localint default and extlbint kube-lb0, and passes the schema', async () => {
  const objects = await render();
  const lbna = one(objects, 'LBNodeAgent', 'default');
  assert.equal(lbna.apiVersion, 'purelb.io/v1');
  assert.equal(lbna.metadata.namespace, 'purelb');
  assert.deepEqual((lbna.spec as { local: unknown }).local, { localint: 'default', extlbint: 'kube-lb0', sendgarp: true });
  const [verdict] = validateText(JSON.stringify(lbna));
  assert.deepEqual(verdict?.errors, []);
});

test('the heartbeat Secret holds 32 random bytes under key "key"', async () => {
  const keys: string[] = [];
  for (let i = 0; i < 2; i++) {
    const secret = one(await render(), 'Secret', 'purelb-heartbeat');
    const key = (secret.data as { key: string }).key;
    assert.equal(Buffer.from(key, 'base64').length, 32);
    keys.push(key);
  }
  assert.notEqual(keys[0], keys[1], 'a fresh install gets a fresh key');
});

test('RBAC: no wildcard, no Secret but the heartbeat key, only the agent may delete (its Lease)', async () => {
  const objects = await render();
  const roles = [...find(objects, 'ClusterRole'), ...find(objects, 'Role')];
  assert.deepEqual(roles.map((r) => `${r.kind}/${r.metadata.name}`).sort(), [
    'ClusterRole/purelb-allocator',
    'ClusterRole/purelb-lbnodeagent',
    'Role/purelb-allocator',
    'Role/purelb-lbnodeagent',
  ]);
  for (const role of roles) {
    for (const rule of role.rules as Rule[]) {
      const where = `${role.kind}/${role.metadata.name} ${JSON.stringify(rule)}`;
      assert.ok(![...rule.apiGroups, ...rule.resources, ...rule.verbs].includes('*'), `wildcard in ${where}`);
      if (rule.resources.includes('secrets')) {
        assert.equal(role.kind, 'Role', where);
        assert.deepEqual(rule.resourceNames, ['purelb-heartbeat'], where);
        assert.deepEqual(rule.verbs, ['get'], where);
      }
      if (rule.verbs.includes('delete')) assert.deepEqual([role.metadata.name, rule.resources], ['purelb-lbnodeagent', ['leases']], where);
      if (rule.resources.includes('services/status')) assert.equal(role.metadata.name, 'purelb-allocator', where);
    }
  }
  for (const binding of [...find(objects, 'ClusterRoleBinding'), ...find(objects, 'RoleBinding')]) {
    const subjects = binding.subjects as Array<{ kind: string; name: string; namespace: string }>;
    assert.deepEqual(subjects, [{ kind: 'ServiceAccount', name: binding.metadata.name, namespace: 'purelb' }]);
  }
});

test('allocator-only mode renders no agent, no agent identity and no BIRD', async () => {
  const objects = await render({ 'lbnodeagent.enabled': false });
  assert.deepEqual(find(objects, 'DaemonSet'), []);
  assert.deepEqual(objects.filter((o) => o.metadata.name.includes('lbnodeagent')).map((o) => `${o.kind}/${o.metadata.name}`), []);
  assert.equal(find(objects, 'Deployment').length, 1);
});

test('BIRD: off by default; with peers it renders a config that BIRD itself accepts', async () => {
  assert.deepEqual(find(await render(), 'ConfigMap').map((c) => c.metadata.name), ['purelb-grafana-dashboard']);
  const objects = await render({
    ...ALL_OPTIONAL,
    'bird.peers[0].bfd': true,
    'bird.peers[1].name': 'tor1_v6',
    'bird.peers[1].address': '2001:db8:100::fb',
    'bird.peers[1].asn': 64512,
    'bird.peers[1].password': 'secret',
    'bird.peers[1].multihop': 2,
  });
  const conf = (one(objects, 'ConfigMap', 'purelb-bird').data as { 'bird.conf': string })['bird.conf'];
  assert.match(conf, /protocol bgp tor1 \{[^}]*neighbor 198\.51\.100\.251 as 64512;[^}]*bfd on;\s*ipv4 \{/);
  assert.match(conf, /protocol bgp tor1_v6 \{[^}]*password "secret";[^}]*multihop 2;\s*ipv6 \{/);
  const dir = mkdtempSync(path.join(tmpdir(), 'purelb-bird-'));
  try {
    writeFileSync(path.join(dir, 'bird.conf'), conf);
    await run(['bird', '-p', '-c', path.join(dir, 'bird.conf')], { timeoutMs: 10_000 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const ds = one(objects, 'DaemonSet', 'purelb-bird');
  assert.equal(podSpec(ds).hostNetwork, true);
  const chart = parse(readFileSync(path.join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { appVersion: string };
  assert.equal(container(one(objects, 'Deployment')).image, `purelb-ts:${chart.appVersion}`);
  assert.equal(container(ds).image, `purelb-ts-bird:${chart.appVersion}`, 'BIRD runs from its own image, <image.repository>-bird');
  const moved = await render({ ...ALL_OPTIONAL, 'image.repository': 'registry.example/purelb-ts', 'image.tag': '9.9.9' });
  assert.equal(container(one(moved, 'DaemonSet', 'purelb-bird')).image, 'registry.example/purelb-ts-bird:9.9.9', 'follows image.repository and image.tag');
  const own = await render({ ...ALL_OPTIONAL, 'bird.image.repository': 'registry.example/bird', 'bird.image.tag': '2.17' });
  assert.equal(container(one(own, 'DaemonSet', 'purelb-bird')).image, 'registry.example/bird:2.17', 'bird.image overrides');
  const bad = await helm(['template', 'purelb', CHART_DIR, ...setArgs({ ...ALL_OPTIONAL, 'bird.peers[0].name': 'tor-1' })], { check: false });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /bird\.peers: name "tor-1"/);
});

test('ServiceMonitors select the metrics Services of both components', async () => {
  assert.deepEqual(find(await render(), 'ServiceMonitor'), []);
  const objects = await render(ALL_OPTIONAL);
  const monitors = find(objects, 'ServiceMonitor');
  assert.deepEqual(monitors.map((m) => m.metadata.name).sort(), ['purelb-allocator', 'purelb-lbnodeagent']);
  for (const m of monitors) {
    const selector = (m.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
    const svc = find(objects, 'Service').find((s) => s.metadata.labels?.['app.kubernetes.io/component'] === selector['app.kubernetes.io/component']);
    assert.ok(svc, `no Service for ${m.metadata.name}`);
    assert.equal((svc.spec as { ports: Array<{ port: number }> }).ports[0]?.port, 7472);
  }
});

test('the Grafana dashboard ConfigMap holds valid JSON over the pool, allocation, announcement, failover and GARP metrics', async () => {
  const cm = one(await render(), 'ConfigMap', 'purelb-grafana-dashboard');
  assert.equal(cm.metadata.labels?.grafana_dashboard, '1');
  const dashboard = JSON.parse((cm.data as Record<string, string>)['purelb.json'] ?? '') as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
  const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n');
  for (const metric of [
    'purelb_address_pool_size',
    'purelb_address_pool_addresses_in_use',
    'purelb_allocator_allocations_total',
    'purelb_lbnodeagent_addresses',
    'purelb_election_changes_total',
    'purelb_lbnodeagent_takeover_seconds_bucket',
    'purelb_lbnodeagent_garp_total',
    'purelb_lbnodeagent_na_total',
  ]) {
    assert.ok(exprs.includes(metric), `no panel uses ${metric}`);
  }
});
