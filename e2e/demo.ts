// `npm run demo`: the main job on one machine. Brings the lab up, runs the allocator
// and one agent per node, applies the reference scenario of examples/purelb-guide (moved into
// documentation ranges), and shows the result: Services with their addresses, the
// ServiceGroups' usage, the VIPs on the nodes' interfaces and the router's ECMP routes.
// The lab keeps running for inspection until `npm run lab -- down`.

import { parseAllDocuments } from 'yaml';
import { startAgent, startAllocator } from './lab/components.ts';
import { labUp } from './lab/lab.ts';
import { kubeconfigPath } from './lab/controlplane.ts';
import { nsExec, run, waitForBgp } from './lab/network.ts';
import { labNodes, ROUTER } from './lab/plan.ts';
import { applyCRDs, ensureNamespace, kubectl, referenceManifest, waitUntil } from './lab/testkit.ts';

const SG_NS = 'purelb';
const APP_NS = 'nginx-quic';

function banner(text: string): void {
  console.log(`\n=== ${text}`);
}

async function main(): Promise<void> {
  const t0 = Date.now();
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
  console.log(`demo ready in ${((Date.now() - t0) / 1000).toFixed(1)} s. Inspect with:`);
  console.log(`  ip netns exec plb-node1 ip addr`);
  console.log(`  e2e/controlplane/bin/kubectl --kubeconfig ${kubeconfigPath()} get svc -A`);
  console.log('Tear down with: npm run lab -- down');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
