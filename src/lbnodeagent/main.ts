// The node agent's entry point. It runs with hostNetwork on every node (in the lab:
// inside the node's network namespace), announces what the election gives it, and on
// SIGTERM says goodbye to its peers, hands its layer-2 VIPs over and leaves. Its routed
// VIPs go too, unless the agent is only being restarted (see restarting()).

import type { Connection } from '../k8s/connection.ts';
import { hostname } from 'node:os';
import type { V1DaemonSet, V1Node, V1Secret } from '@kubernetes/client-node';
import { Api, PATHS } from '../k8s/api.ts';
import { loadConnection } from '../k8s/connection.ts';
import { envNumber as num } from '../env.ts';
import { createLogger } from '../log.ts';
import type { Logger } from '../log.ts';
import { openHostNetwork } from '../netlink/rtnetlink.ts';
import type { HostNetwork } from '../netlink/host-network.ts';
import { scheduleMemoryRelease } from '../memory.ts';
import { serveMetrics } from '../server.ts';
import { Agent } from './agent.ts';
import { Announcer } from './announce/announcer.ts';
import { HeartbeatDetector } from './heartbeat/detector.ts';
import { FastMembership, LeaseMembership } from './membership.ts';
import { registerAnnouncementMetrics, registerCacheMetrics, registerMembershipMetrics } from './metrics.ts';

const env = process.env;

/**
 * True when this SIGTERM is a restart: the agent's DaemonSet (PURELB_DAEMONSET, set by the
 * chart) still exists and is not being deleted, and this node is schedulable and not
 * being deleted, so a new agent pod will come back here and adopt what it finds. An
 * uninstall, a drained (cordoned) node or any doubt (no answer within a second) is a
 * departure: everything is withdrawn.
 */
async function restarting(conn: Connection, namespace: string, node: string): Promise<boolean> {
  const daemonSet = env.PURELB_DAEMONSET;
  if (!daemonSet) return false;
  const timeout = new Promise<false>((resolve) => setTimeout(() => resolve(false), 1000).unref());
  const check = (async () => {
    const api = new Api(conn);
    const [ds, self] = await Promise.all([api.get<V1DaemonSet>(PATHS.daemonSet(namespace, daemonSet)), api.get<V1Node>(PATHS.node(node))]);
    return ds.metadata?.deletionTimestamp === undefined && self.metadata?.deletionTimestamp === undefined && self.spec?.unschedulable !== true;
  })().catch(() => false);
  return Promise.race([check, timeout]);
}

/** The shared heartbeat key from the Secret; undefined (and a warning) when it is missing. */
async function heartbeatKey(conn: Connection, namespace: string, log: Logger): Promise<Buffer | undefined> {
  const name = env.PURELB_HEARTBEAT_SECRET ?? 'purelb-heartbeat';
  try {
    const secret = await new Api(conn).get<V1Secret>(PATHS.secret(namespace, name));
    const data = secret.data?.key;
    if (!data) throw new Error(`Secret ${namespace}/${name} has no data key "key"`);
    const key = Buffer.from(data, 'base64');
    if (key.length < 16) throw new Error(`the heartbeat key in Secret ${namespace}/${name} is shorter than 16 bytes`);
    return key;
  } catch (err) {
    log.warn('no heartbeat key: failure detection falls back to Lease expiry (seconds, not sub-second)', { op: 'heartbeat', secret: name, err });
    return undefined;
  }
}

/** The node's own address to send heartbeats from: the first global IPv4 of the default-route interface. */
async function heartbeatAddress(net: HostNetwork): Promise<string | undefined> {
  if (env.PURELB_HEARTBEAT_ADDRESS) return env.PURELB_HEARTBEAT_ADDRESS;
  const link = await net.defaultRouteLink('IPv4');
  if (!link) return undefined;
  const addrs = await net.listAddresses({ ifindex: link.index, family: 'IPv4' });
  return addrs.find((a) => !a.ours && a.scope === 0)?.ip;
}

async function main(): Promise<void> {
  const node = env.NODE_NAME ?? hostname();
  const log = createLogger('lbnodeagent').child({ node });
  const conn = loadConnection();
  const namespace = env.PURELB_NAMESPACE ?? 'purelb';
  const net = openHostNetwork();
  // Before Linux 5.18 the kernel drops IFA_PROTO: the ownership record under /run tells our addresses.
  const ownership = await net.ownership();
  log.info('address ownership', { op: 'start', mode: ownership.mode, reason: ownership.reason, record: ownership.recordPath });
  if (ownership.recordProblem) log.warn('ownership record unusable: addresses it listed are left alone', { op: 'start', problem: ownership.recordProblem });
  const announcer = new Announcer({ findLink: (name) => net.findLink(name) });
  const leases = new LeaseMembership({
    conn,
    namespace,
    node,
    leaseDurationMs: num('PURELB_MEMBER_LEASE_MS', 10_000),
    renewIntervalMs: num('PURELB_MEMBER_RENEW_MS', 2_000),
    log,
  });
  const key = await heartbeatKey(conn, namespace, log);
  const address = key ? await heartbeatAddress(net) : undefined;
  const detector =
    key && address
      ? new HeartbeatDetector({
          node,
          key,
          bindAddress: address,
          port: num('PURELB_HEARTBEAT_PORT', 7934),
          intervalMs: num('PURELB_HEARTBEAT_INTERVAL_MS', 100),
          missCount: num('PURELB_HEARTBEAT_MISS', 3),
          log,
        })
      : undefined;
  const membership = detector ? new FastMembership(leases, detector, node) : leases;
  registerMembershipMetrics(
    () => membership.members().length,
    () => detector?.counters,
    () => detector?.quorate(),
  );
  registerAnnouncementMetrics(() => announcer.counters());
  const agent = new Agent({
    conn,
    namespace,
    node,
    net,
    announcer,
    membership,
    log,
    reconcileIntervalMs: num('PURELB_RECONCILE_MS', 10_000),
  });
  registerCacheMetrics(() => agent.cachedObjects());
  let ready = false;
  const server = serveMetrics(num('PURELB_METRICS_PORT', 7472), env.PURELB_METRICS_HOST ?? '0.0.0.0', () => ready);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    agent.beginStop();
    const t0 = Date.now();
    try {
      const keepRouted = await restarting(conn, namespace, node);
      log.info('stopping', { op: 'stop', signal, keepRouted });
      await agent.stop({ keepRouted });
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
  scheduleMemoryRelease(log);
  log.info('agent ready', { op: 'start', heartbeat: membership instanceof FastMembership ? address : 'off' });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
