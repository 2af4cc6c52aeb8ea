// The node agent's entry point. It runs with hostNetwork on every node (in the lab:
// inside the node's network namespace), announces what the election gives it, and on
// SIGTERM withdraws everything and leaves the membership before exiting.

import { hostname } from 'node:os';
import { loadKubeConfig } from '../k8s/kubeconfig.ts';
import { createLogger } from '../log.ts';
import { openHostNetwork } from '../netlink/rtnetlink.ts';
import { serveMetrics } from '../server.ts';
import { Agent } from './agent.ts';
import { Announcer } from './announce/announcer.ts';
import { LeaseMembership } from './membership.ts';

const env = process.env;
const num = (name: string, fallback: number): number => {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${v}"`);
  return n;
};

async function main(): Promise<void> {
  const node = env.NODE_NAME ?? hostname();
  const log = createLogger('lbnodeagent').child({ node });
  const kc = loadKubeConfig();
  const namespace = env.PURELB_NAMESPACE ?? 'purelb';
  const net = openHostNetwork();
  const announcer = new Announcer({ findLink: (name) => net.findLink(name) });
  const membership = new LeaseMembership({
    kc,
    namespace,
    node,
    leaseDurationMs: num('PURELB_MEMBER_LEASE_MS', 10_000),
    renewIntervalMs: num('PURELB_MEMBER_RENEW_MS', 2_000),
    log,
  });
  const agent = new Agent({ kc, namespace, node, net, announcer, membership, log, reconcileIntervalMs: num('PURELB_RECONCILE_MS', 10_000) });
  let ready = false;
  const server = serveMetrics(num('PURELB_METRICS_PORT', 7472), env.PURELB_METRICS_HOST ?? '0.0.0.0', () => ready);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const t0 = Date.now();
    try {
      await agent.stop();
    } catch (err) {
      log.error('withdrawal on stop failed', { op: 'stop', err });
    }
    log.info('stopped', { op: 'stop', signal, ms: Date.now() - t0 });
    server.close();
    net.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  await agent.start();
  ready = true;
  log.info('agent ready', { op: 'start' });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
