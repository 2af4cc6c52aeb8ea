// `kubectl purelb migrate`: the command as a process for files and standard input, and
// in-process against a small HTTP server on loopback for --from-cluster and --apply
// (the requests as the API server sees them, its 404s and refusals). The lab's tests
// run the same command against the real API server.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { Api } from '../k8s/api.ts';
import { migrateCommand } from './migrate.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MAIN = path.join(HERE, 'main.ts');
const EXAMPLES = path.resolve(HERE, '..', '..', 'examples', 'migration');
const example = (file: string) => path.join(EXAMPLES, file);

function cli(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, 'migrate', ...args], { encoding: 'utf8', timeout: 30_000, ...(input === undefined ? {} : { input }) });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const kinds = (yaml: string) => parseAllDocuments(yaml).map((d) => {
  const o = d.toJS() as { kind: string; metadata: { name: string; namespace: string } };
  return `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`;
});

let dir: string;
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'purelb-migrate-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

// ---- As a process: files and standard input. ----

test('a file: the objects on standard output, the warnings on standard error, exit 0', () => {
  const r = cli([example('metallb-configmap.yaml')]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(kinds(r.stdout), ['ServiceGroup purelb/ngx-ip-pool', 'ServiceGroup purelb/my-ip-space', 'ServiceGroup purelb/bgp-routed']);
  assert.match(r.stderr, /^warning: ConfigMap metallb-system\/config: peers\[0\]: not converted/m);
  assert.doesNotMatch(r.stderr, /^error/m);
});

test('several files, standard input among them, and -n', () => {
  const r = cli([example('metallb-crds.yaml'), '-', '-n', 'lb'], readFileSync(example('openelb-eip.yaml'), 'utf8'));
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(kinds(r.stdout), [
    'ServiceGroup lb/first-pool',
    'ServiceGroup lb/team-a',
    'ServiceGroup lb/public',
    'ServiceGroup lb/eip-sample-pool',
    'ServiceGroup lb/eip-bgp-pool',
    'ServiceGroup lb/eip-vip-pool',
    'LBNodeAgent lb/default',
  ]);
  // Two default pools, MetalLB's and OpenELB's: purelb-ts has one, the Eip with a priority.
  assert.match(r.stderr, /^warning: IPAddressPool metallb-system\/first-pool: spec\.autoAssign: .*one group, eip-sample-pool, as it comes first by priority/m);
});

test('an error: exit 1, every error named, nothing on standard output', () => {
  const bad = file(
    'bad.yaml',
    readFileSync(example('metallb-configmap.yaml'), 'utf8').replace('protocol: layer2\n      auto-assign: false', 'protocol: ospf\n      auto-assign: false'),
  );
  const r = cli([bad]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^error: ConfigMap metallb-system\/config: address-pools\[1\]\.protocol: unknown protocol "ospf" \(layer2 or bgp\)$/m);
});

test('YAML that does not parse, and a file that cannot be read: exit 1', () => {
  const r = cli([file('broken.yaml', 'kind: [\n')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: .*broken\.yaml#1: not valid YAML/m);
  const missing = cli([path.join(dir, 'missing.yaml')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /missing\.yaml: cannot read/);
});

test('no input, or --apply with --dry-run: the usage, exit 2', () => {
  for (const args of [[], [example('openelb-eip.yaml'), '--apply', '--dry-run']]) {
    const r = cli(args);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /kubectl purelb migrate \[FILE\.\.\.\|-\]/);
  }
});

// ---- In-process, against an API server on loopback. ----

interface Request {
  method: string;
  url: string;
  body: unknown;
}

/** GETs answer from `objects` (404 otherwise); POSTs are echoed unless `refuse` says otherwise. */
function apiServer(objects: Record<string, unknown>, refuse: (req: Request) => { code: number; message: string } | undefined = () => undefined) {
  const requests: Request[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const r = { method: req.method ?? '', url: req.url ?? '', body: text === '' ? undefined : (JSON.parse(text) as unknown) };
      requests.push(r);
      res.setHeader('content-type', 'application/json');
      const status = (code: number, message: string) => {
        res.statusCode = code;
        res.end(JSON.stringify({ kind: 'Status', code, message }));
      };
      const pathOnly = r.url.split('?')[0] ?? '';
      if (r.method === 'GET') {
        if (pathOnly in objects) res.end(JSON.stringify(objects[pathOnly]));
        else status(404, 'the server could not find the requested resource');
      } else if (r.method === 'POST') {
        const refused = refuse(r);
        if (refused) status(refused.code, refused.message);
        else {
          res.statusCode = 201;
          res.end(JSON.stringify(r.body));
        }
      } else {
        res.end('{}');
      }
    });
  });
  return {
    requests,
    async start(): Promise<Api> {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const { port } = server.address() as AddressInfo;
      return new Api({ server: `http://127.0.0.1:${port}`, agent: new Agent({ keepAlive: true }), headers: () => ({}) });
    },
    stop() {
      server.closeAllConnections();
      server.close();
    },
  };
}

async function run(args: string[], server: ReturnType<typeof apiServer>): Promise<{ code: number; stdout: string; stderr: string }> {
  const api = await server.start();
  let stdout = '';
  let stderr = '';
  try {
    const code = await migrateCommand(args, 'purelb', {
      connect: async () => api,
      read: (f) => readFileSync(f, 'utf8'),
      stdout: (t) => (stdout += t),
      stderr: (t) => (stderr += t),
    });
    return { code, stdout, stderr };
  } finally {
    server.stop();
  }
}

const list = (items: unknown[]) => ({ apiVersion: 'v1', kind: 'List', metadata: {}, items });
const metallbCluster = () => {
  const docs = parseAllDocuments(readFileSync(example('metallb-crds.yaml'), 'utf8')).map((d) => d.toJS() as { kind: string });
  const of = (kind: string) => list(docs.filter((d) => d.kind === kind));
  return {
    '/apis/metallb.io/v1beta1/ipaddresspools': of('IPAddressPool'),
    '/apis/metallb.io/v1beta1/l2advertisements': of('L2Advertisement'),
    '/apis/metallb.io/v1beta1/bgpadvertisements': of('BGPAdvertisement'),
    '/apis/metallb.io/v1beta1/bgppeers': of('BGPPeer'),
  };
};
const posts = (requests: Request[]) => requests.filter((r) => r.method === 'POST').map((r) => r.url);
const SG = '/apis/purelb.io/v2/namespaces/purelb/servicegroups';

test('--from-cluster: MetalLB objects of every namespace; kinds not installed (404) are none', async () => {
  const server = apiServer(metallbCluster());
  const r = await run(['--from-cluster'], server);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(kinds(r.stdout), ['ServiceGroup purelb/first-pool', 'ServiceGroup purelb/team-a', 'ServiceGroup purelb/public', 'LBNodeAgent purelb/default']);
  const gets = server.requests.map((q) => q.url);
  assert.ok(gets.includes('/api/v1/namespaces/metallb-system/configmaps/config'));
  assert.ok(gets.includes('/apis/network.kubesphere.io/v1alpha2/eips') && gets.includes('/apis/network.kubesphere.io/v1alpha1/eips'), 'an older version is tried when the newer is not served');
  assert.ok(gets.indexOf('/apis/metallb.io/v1beta2/bgppeers') < gets.indexOf('/apis/metallb.io/v1beta1/bgppeers'));
  assert.match(r.stderr, /^warning: BGPPeer metallb-system\/tor1: not converted/m, 'the peer found under v1beta1 is read');
  assert.deepEqual(posts(server.requests), [], 'a dry run writes nothing');
});

test('--from-cluster: a group of the same name already in purelb-ts\'s namespace is an error before anything is written', async () => {
  const existing = { apiVersion: 'purelb.io/v2', kind: 'ServiceGroup', metadata: { name: 'public', namespace: 'purelb' }, spec: { local: { v4pool: { pool: '10.0.0.0/28', subnet: '10.0.0.0/24' } } } };
  const server = apiServer({ ...metallbCluster(), [SG]: list([existing]) });
  const r = await run(['--from-cluster', '--apply'], server);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: IPAddressPool metallb-system\/public: metadata\.name: a ServiceGroup named "public" exists already in namespace purelb$/m);
  assert.deepEqual(posts(server.requests), []);
});

test('--apply: every object through admission first (dryRun=All), then created', async () => {
  const server = apiServer({});
  const r = await run([example('openelb-eip.yaml'), '--apply', '-n', 'lb'], server);
  assert.equal(r.code, 0, r.stderr);
  const collection = '/apis/purelb.io/v2/namespaces/lb';
  const names = ['servicegroups', 'servicegroups', 'servicegroups', 'lbnodeagents'];
  assert.deepEqual(posts(server.requests), [
    ...names.map((n) => `${collection}/${n}?dryRun=All&fieldManager=kubectl-purelb-migrate`),
    ...names.map((n) => `${collection}/${n}?fieldManager=kubectl-purelb-migrate`),
  ]);
  assert.equal(r.stdout, ['ServiceGroup lb/eip-sample-pool', 'ServiceGroup lb/eip-bgp-pool', 'ServiceGroup lb/eip-vip-pool', 'LBNodeAgent lb/default'].map((o) => `created ${o}\n`).join(''));
  const created = server.requests.filter((q) => q.method === 'POST' && !q.url.includes('dryRun')).map((q) => q.body as { metadata: { name: string } });
  assert.deepEqual(created.map((o) => o.metadata.name), ['eip-sample-pool', 'eip-bgp-pool', 'eip-vip-pool', 'default']);
});

test('--apply: admission refusing an object creates nothing', async () => {
  const server = apiServer({}, (q) => (q.url.includes('lbnodeagents') ? { code: 422, message: 'LBNodeAgent.purelb.io "default" is invalid' } : undefined));
  const r = await run([example('openelb-eip.yaml'), '--apply'], server);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: LBNodeAgent purelb\/default would not be created: .*HTTP 422/m);
  assert.deepEqual(posts(server.requests).filter((u) => !u.includes('dryRun')), []);
});

test('--apply: a create that fails deletes what this run created, and says which failed', async () => {
  const server = apiServer({}, (q) =>
    !q.url.includes('dryRun') && (q.body as { metadata: { name: string } }).metadata.name === 'eip-vip-pool' ? { code: 409, message: 'servicegroups.purelb.io "eip-vip-pool" already exists' } : undefined,
  );
  const r = await run([example('openelb-eip.yaml'), '--apply'], server);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: creating ServiceGroup purelb\/eip-vip-pool: .*HTTP 409: servicegroups\.purelb\.io "eip-vip-pool" already exists$/m);
  const deletes = server.requests.filter((q) => q.method === 'DELETE').map((q) => q.url);
  assert.deepEqual(deletes, [`${SG}/eip-bgp-pool`, `${SG}/eip-sample-pool`]);
  assert.match(r.stderr, /^deleted ServiceGroup purelb\/eip-bgp-pool$/m);
  assert.ok(!server.requests.some((q) => q.method === 'POST' && q.url.includes('lbnodeagents') && !q.url.includes('dryRun')), 'nothing after the failure is created');
});
