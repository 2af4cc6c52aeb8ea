// The lab's control plane is the real thing: the version clients see, RBAC that denies
// an identity without bindings, TokenRequest for ServiceAccounts, dual-stack Services,
// and an API server reachable from inside a node namespace as from a real node.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { apiServerURL, kubeconfigPath } from './controlplane.ts';
import { CONTROL_PLANE_DIR, NODE_BIN, nsExec } from './exec.ts';
import { ensureNamespace, kubectl } from './testkit.ts';

test('kubectl sees the stamped Kubernetes version of the API server it was built with', async () => {
  const out = JSON.parse((await kubectl(['version', '-o', 'json'])).stdout) as { clientVersion: { gitVersion: string }; serverVersion: { gitVersion: string } };
  const pinned = /require k8s\.io\/kubernetes (v[\d.]+)/.exec(readFileSync(path.join(import.meta.dirname, '..', 'controlplane', 'go.mod'), 'utf8'))?.[1];
  assert.equal(out.serverVersion.gitVersion, pinned);
  assert.equal(out.clientVersion.gitVersion, pinned);
});

test('RBAC: an identity without bindings is denied, the admin is not', async () => {
  const denied = await kubectl(['get', 'services', '-A'], { identity: 'nobody', check: false });
  assert.notEqual(denied.code, 0);
  assert.match(denied.stderr, /forbidden/i);
  const allowed = await kubectl(['get', 'services', '-A']);
  assert.equal(allowed.code, 0);
});

test('TokenRequest works and dual-stack Services can be created', async () => {
  const ns = 'plb-test-controlplane';
  await ensureNamespace(ns);
  await kubectl(['create', 'serviceaccount', 'probe', '-n', ns], { check: false });
  const token = (await kubectl(['create', 'token', 'probe', '-n', ns, '--duration=10m'])).stdout.trim();
  assert.equal(token.split('.').length, 3, 'a JWT');
  await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'dual', namespace: ns },
      spec: { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'], ports: [{ port: 80 }] },
    }),
  });
  const ips = (await kubectl(['get', 'svc', 'dual', '-n', ns, '-o', 'jsonpath={.spec.clusterIPs}'])).stdout;
  assert.match(ips, /192\.0\.2\.\d+.*2001:db8:96:/);
});

test('a node namespace reaches the API server over the LAN', async () => {
  const ca = path.join(CONTROL_PLANE_DIR, 'pki', 'ca.crt');
  const token = /token: (\S+)/.exec(readFileSync(kubeconfigPath('admin'), 'utf8'))?.[1] ?? '';
  const js = `fetch(process.argv[1] + '/version', { headers: { authorization: 'Bearer ' + process.argv[2] } }).then(async (r) => { console.log(r.status, (await r.json()).gitVersion); }, (e) => { console.error(e.cause?.code ?? e.message); process.exit(1); })`;
  const r = await nsExec('plb-node1', [NODE_BIN, '-e', js, apiServerURL(), token], { timeoutMs: 15_000, env: { ...process.env, NODE_EXTRA_CA_CERTS: ca } });
  assert.match(r.stdout, /^200 v1\.\d+\.\d+/);
});
