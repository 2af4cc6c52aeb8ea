// The allocator's entry point: campaign for the Lease, run the controller while
// leading, exit when leadership is lost (a restart is the safe way back to a clean
// cache), and hand the Lease back on SIGTERM so the standby takes over at once.

import { hostname } from 'node:os';
import { LeaderElector } from '../k8s/leader.ts';
import { loadConnection } from '../k8s/connection.ts';
import { envNumber as num } from '../env.ts';
import { createLogger } from '../log.ts';
import { scheduleMemoryRelease } from '../memory.ts';
import { serveMetrics } from '../server.ts';
import { Allocator } from './controller.ts';
import { registerPoolMetrics } from './metrics.ts';

const env = process.env;

async function main(): Promise<void> {
  const log = createLogger('allocator');
  const conn = loadConnection();
  const namespace = env.PURELB_NAMESPACE ?? 'purelb';
  const identity = env.POD_NAME ?? `${hostname()}-${process.pid}`;
  const allocator = new Allocator({
    conn,
    namespace,
    identity,
    log,
    workers: num('PURELB_WORKERS', 8),
    policy: { classless: env.PURELB_CLASSLESS !== 'false', defaultGroup: env.PURELB_DEFAULT_GROUP ?? 'default', aliases: env.PURELB_ANNOTATION_ALIASES !== 'false' },
  });
  registerPoolMetrics(() => allocator.poolStats());
  const elector = new LeaderElector(conn, {
    namespace,
    name: env.PURELB_LEASE_NAME ?? 'purelb-allocator',
    identity,
    leaseDurationMs: num('PURELB_LEASE_DURATION_MS', 15_000),
    renewDeadlineMs: num('PURELB_RENEW_DEADLINE_MS', 10_000),
    retryPeriodMs: num('PURELB_RETRY_PERIOD_MS', 2_000),
    log,
  });

  // A campaigning standby is ready (so a PodDisruptionBudget can let the leader's node
  // drain); the leader once its caches are synced and allocations registered.
  const server = serveMetrics(
    num('PURELB_METRICS_PORT', 7472),
    env.PURELB_METRICS_HOST ?? '0.0.0.0',
    () => !elector.isLeader() || allocator.isReady(),
    () => elector.isLeader() && allocator.isReady(),
  );

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { op: 'stop', signal });
    await allocator.stop();
    await elector.stop();
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  scheduleMemoryRelease(log);

  const outcome = await elector.run(() => {
    allocator.start().catch((err: unknown) => {
      log.error('allocator failed to start', { op: 'start', err });
      process.exit(1);
    });
  });
  if (outcome.lost) {
    log.error('leadership lost: exiting so that a fresh start rebuilds state', { op: 'leader' });
    process.exit(1);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
