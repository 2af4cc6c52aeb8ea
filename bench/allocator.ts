// The allocator against the lab's real API server (the one that is up, or one brought
// up for the run):
//  - 5,000 Services created with bounded concurrency, timed from the first create to
//    the last address seen by a watch, with the allocator and with a no-op writer
//    (bench/noop-writer.ts: the allocator's three writes per Service, annotations,
//    status and the AddressAssigned Event, with addresses from a counter), run before
//    and after the allocator; the ratio allocator / no-op is the figure of merit
//    (target ≤ 1.2), with p50/p99 of create → address for each. A third no-op run
//    without the Events shows what the Events cost;
//  - cold start with 10,000 allocated Services: process start → /readyz 200 (which a
//    standby answers too) and → /leader 200 (leading, caches synced, allocations
//    registered), split into before sync (process boot, Lease), cache sync and after
//    sync (target < 5 s), the first new Service's wait, and RSS (target < 200 MB),
//    also with V8's heap capped (CAPPED_HEAP).
// Services are IPv6 single-stack without NodePorts (the lab's IPv4 service range has
// ~250 ClusterIPs); everything is made in the bench's own namespaces and deleted again.

import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import { loadConnection } from '../src/k8s/connection.ts';
import { loadKubeConfig } from '../src/k8s/kubeconfig.ts';
import { answers, applyV6Group, bounded, deleteServices, freshNamespaces, lbService, startTestAllocator } from '../e2e/allocator/kit.ts';
import type { AllocatorProcess } from '../e2e/allocator/kit.ts';
import { kubeconfigPath } from '../e2e/lab/controlplane.ts';
import { NODE_BIN, REPO_ROOT, daemonAlive, startDaemon, stopDaemon, waitUntil } from '../e2e/lab/exec.ts';
import type { DaemonRecord } from '../e2e/lab/exec.ts';
import { FAST_LEASE_ENV, freePort, kubectl } from '../e2e/lab/testkit.ts';
import { NODE_FLAGS } from '../src/runtime.ts';
import { cpuSeconds, percentile, procStatus } from '../e2e/lab/measure.ts';
import { AddressWatch, withLab } from './lab.ts';
import type { Report } from './run.ts';

const COUNT = 5000;
const COLD_COUNT = 10_000;
const IN_FLIGHT = 20;
const NS = 'plb-bench';
const NOOP_NS = 'plb-bench-noop';
const SG_NS = 'plb-bench-sg';
const GROUP = 'bench-pool';
const NOOP_GROUP = 'bench-noop-pool';
const POOL = '2001:db8:be00::/112';
/** The old-generation cap for the capped-heap cold start (what NODE_OPTIONS in the Pod could set). */
const CAPPED_HEAP = '--max-old-space-size=128';
// The first release of unused memory (src/memory.ts) 5 s after start instead of 30 s.
const ALLOCATOR_ENV = { ...FAST_LEASE_ENV, PURELB_MEMORY_RELEASE_FIRST_MS: '5000' };

// Made when the lab is up: withLab may bring up a new one, with new credentials.
let kc: KubeConfig;
let core: CoreV1Api;
const progress = (msg: string): void => console.error(`[allocator bench ${new Date().toISOString()}] ${msg}`);

async function createAll(namespace: string, names: readonly string[], group: string, sent: Map<string, number>): Promise<void> {
  await bounded(names, IN_FLIGHT, async (name) => {
    const body = lbService(namespace, name, { group });
    for (let attempt = 1; ; attempt++) {
      sent.set(name, performance.now());
      try {
        await core.createNamespacedService({ namespace, body });
        return;
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (attempt >= 5 || (code !== undefined && code !== 429 && code < 500)) throw err;
        await sleep(200 * attempt);
      }
    }
  });
}

interface RunFigures {
  /** When the first create was sent, on this process's clock. */
  t0: number;
  totalMs: number;
  latencies: number[];
}

/** Creates `count` Services and waits until the watch has seen an address on each. */
async function allocateBatch(namespace: string, group: string, prefix: string, count: number): Promise<RunFigures> {
  const watch = new AddressWatch(loadConnection(kubeconfigPath('admin')), namespace);
  await watch.start();
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  const sent = new Map<string, number>();
  const t0 = performance.now();
  try {
    await createAll(namespace, names, group, sent);
    progress(`${namespace}: ${count} created in ${Math.round(performance.now() - t0)} ms`);
    await waitUntil(() => names.every((n) => watch.byName.has(n)), { timeoutMs: 15 * 60_000, intervalMs: 100, what: `${count} Services in ${namespace} to get addresses` });
  } finally {
    await watch.stop();
  }
  const latencies = names.map((n) => (watch.byName.get(n) as number) - (sent.get(n) as number));
  const last = Math.max(...names.map((n) => watch.byName.get(n) as number));
  return { t0, totalMs: last - t0, latencies };
}

function startNoopWriter(events: boolean): DaemonRecord {
  const marker = `purelb-bench-noop-writer-${process.pid}`;
  const argv = ['env', `KUBECONFIG=${kubeconfigPath('admin')}`, `NOOP_GROUP=${NOOP_GROUP}`, `NOOP_EVENTS=${events ? 1 : 0}`, 'NOOP_PREFIX=2001:db8:be01::', NODE_BIN, ...NODE_FLAGS.allocator, `${REPO_ROOT}/bench/noop-writer.ts`, marker];
  return startDaemon(`bench-noop-writer-${process.pid}`, argv, marker);
}

async function prepare(): Promise<void> {
  await freshNamespaces(core, [NS, NOOP_NS], SG_NS);
  await applyV6Group(SG_NS, GROUP, POOL);
}

/** One run of the no-op writer over COUNT new Services, which are deleted again afterwards. */
async function noopRun(label: string, events = true): Promise<RunFigures & { cpu: number }> {
  const noop = startNoopWriter(events);
  try {
    await waitUntil(() => readFileSync(noop.log, 'utf8').includes('ready'), { timeoutMs: 60_000, intervalMs: 50, what: 'the no-op writer to sync' });
    const cpu0 = cpuSeconds(noop.pid);
    progress(`no-op writer (${label}): creating`);
    const figures = await allocateBatch(NOOP_NS, NOOP_GROUP, label, COUNT);
    return { ...figures, cpu: cpuSeconds(noop.pid) - cpu0 };
  } finally {
    await stopDaemon(noop, 5000);
    await deleteServices(core, NOOP_NS);
  }
}

function startAllocator(id: string, port: number): AllocatorProcess {
  return startTestAllocator({ id: `${id}-${process.pid}`, namespace: SG_NS, metricsPort: port, env: ALLOCATOR_ENV });
}

/** purelb_memory_releases_total of the allocator on `port`. */
async function releases(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  return Number(/^purelb_memory_releases_total (\S+)/m.exec(text)?.[1] ?? 0);
}

/** The allocator's identity in Events (POD_NAME). */
const identityOf = (id: string): string => `allocator-${id}-${process.pid}`;

export function run(report: Report): Promise<void> {
  return withLab(() => measure(report));
}

async function measure(report: Report): Promise<void> {
  kc = loadKubeConfig(kubeconfigPath('admin'));
  core = kc.makeApiClient(CoreV1Api);
  await prepare();
  let allocator: AllocatorProcess | undefined;
  try {
    // The Services are created as fast as the API server takes them and both
    // controllers keep up, so what is compared is how much each one's own load slows
    // the whole. The no-op writer runs before and after the allocator (A-B-A), each
    // time with no other bench Services in the cluster (creates get slower as Services
    // accumulate), so that drift in the lab is charged to neither.
    const before = await noopRun('noop-a');

    const port = freePort();
    allocator = startAllocator('bench', port);
    await waitUntil(() => answers(port), { timeoutMs: 60_000, intervalMs: 50, what: 'the allocator to lead' });
    const cpu0 = cpuSeconds(allocator.rec.pid);
    progress('allocator: creating');
    const alloc = await allocateBatch(NS, GROUP, 'svc', COUNT);
    const allocCpu = cpuSeconds(allocator.rec.pid) - cpu0;
    // Events are written in the background, behind the allocations.
    let events = 0;
    await waitUntil(
      async () => {
        const list = await core.listNamespacedEvent({ namespace: NS, fieldSelector: 'reason=AddressAssigned' });
        events = list.items.filter((e) => e.reportingInstance === identityOf('bench')).length;
        return events >= COUNT;
      },
      { timeoutMs: 120_000, intervalMs: 500, what: 'the AddressAssigned Events' },
    ).catch(() => undefined);
    const eventsDoneMs = performance.now() - alloc.t0;

    // (c) Cold start with 10,000 allocated Services: as many again, then a new process.
    progress(`allocator: ${COLD_COUNT - COUNT} more for the cold start`);
    await allocateBatch(NS, GROUP, 'more', COLD_COUNT - COUNT);
    await allocator.stop(10_000);
    const coldPort = freePort();
    const t0 = performance.now();
    allocator = startAllocator('bench-cold', coldPort);
    const cold = allocator;
    await waitUntil(() => answers(coldPort, '/readyz'), { timeoutMs: 120_000, intervalMs: 10, what: 'the cold-started allocator to answer /readyz' });
    const upMs = performance.now() - t0;
    await waitUntil(() => answers(coldPort, '/leader'), { timeoutMs: 120_000, intervalMs: 10, what: 'the cold-started allocator to lead with synced caches' });
    const readyMs = performance.now() - t0;
    const rssAtReady = procStatus(cold.rec.pid, 'VmRSS');
    let logged: { syncMs?: number; readyMs?: number; services?: number } = {};
    await waitUntil(
      () => {
        const line = cold.log().split('\n').find((l) => l.includes('"allocator ready"'));
        logged = JSON.parse(line ?? '{}') as typeof logged;
        return line !== undefined;
      },
      { timeoutMs: 5000, intervalMs: 20, what: 'the allocator ready log line' },
    );
    if (logged.syncMs === undefined || logged.readyMs === undefined || (logged.services ?? 0) < COLD_COUNT) throw new Error(`unexpected ready line: ${JSON.stringify(logged)}`);
    // A Service created now waits behind the first pass over all 10,000.
    const probe = await allocateBatch(NS, GROUP, 'probe', 1);
    const settledMs = performance.now() - t0;
    if (!daemonAlive(cold.rec)) throw new Error('the allocator died during the cold start');
    const rss = procStatus(cold.rec.pid, 'VmRSS');
    const rssPeak = procStatus(cold.rec.pid, 'VmHWM');
    // Idle with the 10,001 once it has given back what it does not use (src/memory.ts).
    await waitUntil(async () => (await releases(coldPort)) >= 1, { timeoutMs: 60_000, intervalMs: 200, what: "the allocator's first memory release" });
    const rssReleased = procStatus(cold.rec.pid, 'VmRSS');
    await cold.stop(10_000);
    // The same with V8's old generation capped as well, as an operator with a tight
    // memory limit could set through NODE_OPTIONS (the shipped flags stay in force).
    const cappedPort = freePort();
    allocator = startTestAllocator({ id: `bench-capped-${process.pid}`, namespace: SG_NS, metricsPort: cappedPort, env: { ...ALLOCATOR_ENV, NODE_OPTIONS: CAPPED_HEAP } });
    await waitUntil(() => answers(cappedPort, '/leader'), { timeoutMs: 120_000, intervalMs: 10, what: 'the capped allocator to lead' });
    await allocateBatch(NS, GROUP, 'probe-capped', 1);
    const cappedRss = procStatus(allocator.rec.pid, 'VmRSS');
    const cappedPeak = procStatus(allocator.rec.pid, 'VmHWM');
    await allocator.stop(10_000);
    await deleteServices(core, NS);

    const after = await noopRun('noop-b');
    const writesOnly = await noopRun('noop-c', false);
    const noopMs = (before.totalMs + after.totalMs) / 2;
    report('noop_5000_ms', noopMs, 'ms');
    report('noop_5000_before_ms', before.totalMs, 'ms');
    report('noop_5000_after_ms', after.totalMs, 'ms');
    report('allocator_5000_ms', alloc.totalMs, 'ms');
    report('allocator_vs_noop', alloc.totalMs / noopMs, 'ratio');
    report('noop_without_events_5000_ms', writesOnly.totalMs, 'ms');
    report('allocator_vs_noop_without_events', alloc.totalMs / writesOnly.totalMs, 'ratio');
    report('noop_latency_p50', percentile([...before.latencies, ...after.latencies], 50), 'ms');
    report('noop_latency_p99', percentile([...before.latencies, ...after.latencies], 99), 'ms');
    report('allocator_latency_p50', percentile(alloc.latencies, 50), 'ms');
    report('allocator_latency_p99', percentile(alloc.latencies, 99), 'ms');
    report('noop_cpu', (before.cpu + after.cpu) / 2, 's');
    report('allocator_cpu', allocCpu, 's');
    report('allocator_events_assigned', events, 'events');
    report('allocator_events_done_ms', eventsDoneMs, 'ms');
    report('coldstart_services', logged.services ?? 0, 'services');
    report('coldstart_to_readyz_ms', upMs, 'ms');
    report('coldstart_to_ready_ms', readyMs, 'ms');
    report('coldstart_before_sync_ms', readyMs - logged.readyMs, 'ms');
    report('coldstart_sync_ms', logged.syncMs, 'ms');
    report('coldstart_after_sync_ms', logged.readyMs - logged.syncMs, 'ms');
    report('coldstart_first_new_service_ms', probe.totalMs, 'ms');
    report('coldstart_to_first_new_service_ms', settledMs, 'ms');
    report('coldstart_rss_ready', rssAtReady / 2 ** 20, 'MiB');
    report('coldstart_rss', rss / 2 ** 20, 'MiB');
    report('coldstart_rss_peak', rssPeak / 2 ** 20, 'MiB');
    report('coldstart_rss_after_release', rssReleased / 2 ** 20, 'MiB');
    report('coldstart_rss_capped_heap', cappedRss / 2 ** 20, 'MiB');
    report('coldstart_rss_capped_heap_peak', cappedPeak / 2 ** 20, 'MiB');
  } finally {
    progress('cleaning up');
    await allocator?.stop(10_000).catch(() => undefined);
    await deleteServices(core, NS).catch((err: unknown) => progress(`cleanup of ${NS}: ${String(err)}`));
    await deleteServices(core, NOOP_NS).catch((err: unknown) => progress(`cleanup of ${NOOP_NS}: ${String(err)}`));
    await kubectl(['delete', 'servicegroups', '--all', '-n', SG_NS], { check: false });
  }
}
