// `npm run demo`: the main job on one machine, as an operator runs it. Brings up the
// cluster lab (control plane with controllers, three nodes with containerd, kubelet and
// kube-proxy, the router and the client), builds the image, installs purelb-ts with
// `helm install`, applies the examples (the reference scenario of examples/purelb-guide
// in documentation ranges, with examples/backends.yaml behind it), and shows the result:
// Services with their addresses, the VIPs on the nodes' interfaces, the router's ECMP
// routes and one HTTP answer through each VIP, from the client namespace.
//
// `npm run demo -- --process` is the fast variant on the process lab: the allocator
// and one agent per node as plain processes, no kubelet, no pods.
// Either lab keeps running for inspection until `npm run lab -- down`.

import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { clusterUp } from './cluster/cluster.ts';
import { APP_NS as CLUSTER_APP_NS, clientGet, installPurelb } from './cluster/kit.ts';
import { startAgent, startAllocator } from './lab/components.ts';
import { labUp } from './lab/lab.ts';
import { kubeconfigPath } from './lab/controlplane.ts';
import { nsExec, run, waitForBgp } from './lab/network.ts';
import { labNodes, ROUTER, SCENARIO_EXPECTED } from './lab/plan.ts';
import { REPO_ROOT } from './lab/exec.ts';
import { applyCRDs, ensureNamespace, kubectl, referenceManifest, waitUntil } from './lab/testkit.ts';

const SG_NS = 'purelb';
const APP_NS = 'nginx-quic';

function banner(text: string): void {
  console.log(`\n=== ${text}`);
}

/** The cluster lab, the image, `helm install`, the backends. */
async function clusterPurelb(): Promise<void> {
  banner('cluster lab: control plane + controllers, 3 nodes with containerd, kubelet, kube-proxy (builds the binaries and the image if needed)');
  await clusterUp();
  console.log((await kubectl(['get', 'nodes', '-o', 'wide'])).stdout);
  banner('helm install purelb helm/purelb -n purelb --create-namespace (the image imported on every node)');
  const ms = await installPurelb();
  console.log(`installed, every pod Ready, in ${(ms / 1000).toFixed(1)} s`);
  console.log((await kubectl(['get', 'pods', '-n', SG_NS, '-o', 'wide'])).stdout);
  banner('reference scenario (examples/purelb-guide in documentation ranges) with examples/backends.yaml');
  const groups = parseAllDocuments(referenceManifest('servicegroups.yaml')).filter((d) => (d.toJSON() as { kind?: string }).kind === 'ServiceGroup');
  await kubectl(['apply', '-f', '-'], { input: groups.map((g) => JSON.stringify(g.toJSON())).join('\n') });
  await ensureNamespace(CLUSTER_APP_NS);
  await kubectl(['apply', '-f', path.join(REPO_ROOT, 'examples', 'backends.yaml')]);
}

/** The process lab with the allocator and agents as processes. */
async function processPurelb(): Promise<void> {
  banner('lab: control plane + node namespaces');
  await labUp();
  await waitForBgp(30_000);
  await applyCRDs();
  await ensureNamespace(SG_NS);
  await ensureNamespace(APP_NS);
  banner('purelb-ts: allocator + one lbnodeagent per node');
  startAllocator({ id: 'demo', namespace: SG_NS, metricsPort: 7472 });
  for (const n of labNodes()) startAgent({ node: n.name, namespace: SG_NS });
  banner('reference scenario (examples/purelb-guide, in documentation ranges)');
  await kubectl(['apply', '-f', '-'], { input: referenceManifest('servicegroups.yaml') });
}

async function main(argv: string[]): Promise<void> {
  const t0 = Date.now();
  const cluster = !argv.includes('--process');
  await (cluster ? clusterPurelb() : processPurelb());
  const services = parseAllDocuments(referenceManifest('services.yaml')).map((d) => d.toJSON() as { kind?: string; metadata?: { name?: string } });
  for (const doc of services) {
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(doc) });
    if (doc.kind !== 'Service') continue;
    // One at a time, as an operator would: the README's addresses follow creation order.
    await waitUntil(`${doc.metadata?.name} gets an address`, 30_000, async () => {
      const out = await kubectl(['get', 'svc', doc.metadata?.name ?? '', '-n', APP_NS, '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}']);
      return out.stdout.trim() !== '';
    });
  }
  await waitUntil('every VIP is on a node interface', 30_000, async () => {
    let count = 0;
    for (const n of labNodes()) {
      const out = await nsExec(n.name, ['ip', '-4', '-o', 'addr', 'show']);
      count += (out.stdout.match(/198\.51\.100\.(64|65|66|100)\/|203\.0\.113\.(0|100)\//g) ?? []).length;
    }
    return count >= 4 + 2 * labNodes().length;
  });

  banner('kubectl get svc -A');
  console.log((await kubectl(['get', 'svc', '-A', '-o', 'wide'])).stdout);
  banner(`kubectl get sg -n ${SG_NS}`);
  console.log((await kubectl(['get', 'sg', '-n', SG_NS])).stdout);
  banner('announcing annotations');
  console.log((await kubectl(['get', 'svc', '-n', APP_NS, '-o', 'custom-columns=NAME:.metadata.name,IP:.status.loadBalancer.ingress[*].ip,ANNOUNCING:.metadata.annotations.purelb\\.io/announcing-IPv4'])).stdout);
  for (const n of labNodes()) {
    banner(`ip addr show (${n.name}): eth0 and kube-lb0`);
    console.log((await nsExec(n.name, ['ip', '-br', 'addr', 'show', 'dev', 'eth0'])).stdout.trim());
    console.log((await nsExec(n.name, ['ip', '-br', 'addr', 'show', 'dev', 'kube-lb0'])).stdout.trim());
  }
  banner(`router (${ROUTER.ns}): routes learned over BGP`);
  console.log((await run(['ip', '-n', ROUTER.ns, 'route', 'show', 'proto', 'bird'])).stdout);
  if (cluster) {
    banner('one HTTP answer through each VIP, from the client namespace (curl http://VIP/)');
    await kubectl(['rollout', 'status', '-n', CLUSTER_APP_NS, 'deployment/nginx-lb', '--timeout=120s'], { timeoutMs: 130_000 });
    for (const [name, , ip] of SCENARIO_EXPECTED) {
      let answer: string | undefined;
      await waitUntil(`an HTTP answer through ${ip}`, 30_000, async () => (answer = await clientGet(ip, 1000)) !== undefined);
      console.log(`${name.padEnd(18)} ${ip.padEnd(15)} -> ${answer}`);
    }
  }
  console.log(`demo ready in ${((Date.now() - t0) / 1000).toFixed(1)} s. Inspect with:`);
  console.log(`  ip netns exec plb-node1 ip addr`);
  console.log(`  e2e/controlplane/bin/kubectl --kubeconfig ${kubeconfigPath()} get svc -A`);
  console.log('Tear down with: npm run lab -- down');
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
