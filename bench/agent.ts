// The node agent's speed (DESIGN.md §8), timed by the kernel itself: `ip -ts monitor
// address` in the node namespaces stamps every address change.
// - Service created → VIP on the winner's interface, and deleted → withdrawn: p50/p99
//   over ≥ 50 Services (targets p50 < 100 ms, p99 < 300 ms). A watch in the bench
//   splits create → VIP into the allocator's part (create → address in the Service's
//   status, as a watcher sees it) and the agent's part (that moment → kernel).
// - 1,000 VIPs on one node: from the last address in a Service's status to the last
//   address in the kernel (target < 2 s); the same after a restart of the agent, from
//   process start; then the agent's CPU while idle (once it has stopped writing to the
//   API server) with the lab's timings (2 s reconcile period), its RSS after a release
//   of unused memory and where that goes; then the same agent restarted with the
//   components' own timings (10 s reconcile): its idle CPU there is the target figure.
// - The crowd: the cluster grows to 20,000 Services, of which those 1,000 are
//   LoadBalancers, and 40,000 EndpointSlices (two per Service); the agent's RSS then,
//   and how many slices it caches (only the LoadBalancers').
// - Among 30 members: 27 synthetic ones (bench/peers.ts: real Lease and heartbeat code)
//   beside the three agents; the agent's idle CPU and heartbeat datagrams with 3 and
//   with 30 members, side by side.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CoreV1Api } from '@kubernetes/client-node';
import { winner } from '../src/election/winner.ts';
import { CLIENT, LAN_V4, labNodes } from '../e2e/lab/plan.ts';
import { connection, kubeConfig } from '../e2e/lab/kube.ts';
import { Api, PATHS } from '../src/k8s/api.ts';
import { AGENT_ENV, APP_NS, NODES, SG_NS, setUpFailoverLab } from '../e2e/lbnodeagent/failover-kit.ts';
import { applyServiceGroup, kubectl, waitUntil } from '../e2e/lab/testkit.ts';
import { startPeers } from '../e2e/lab/components.ts';
import { anonymousMappings, brkHeapRss, cpuSeconds, percentile, procStatus, smapsRollup } from '../e2e/lab/measure.ts';
import { summarize } from './heap-summary.ts';
import { AddressWatch, withLab } from './lab.ts';
import { lbService } from '../e2e/allocator/kit.ts';
import type { Report } from './run.ts';

const TRIALS = Number(process.env.PURELB_BENCH_AGENT_TRIALS ?? 50);
const MANY = Number(process.env.PURELB_BENCH_AGENT_VIPS ?? 1000);
const IDLE_MS = 20_000;
const IDLE_SETTLE_LIMIT_MS = 300_000;
/** The crowd: this many Services in all (the MANY LoadBalancers among them), two EndpointSlices each. 0 skips it. */
const CROWD = Number(process.env.PURELB_BENCH_AGENT_CROWD ?? 20_000);
const CROWD_NS = 'plb-bench-crowd';
/** Synthetic members (bench/peers.ts) beside the lab's three agents: 27 makes 30. 0 skips it. */
const PEERS = Number(process.env.PURELB_BENCH_AGENT_PEERS ?? 27);

/** The agent's writes to the API server so far (POST, PUT, PATCH, DELETE) but its Lease renewals, from its /metrics. */
async function apiWrites(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) })).text();
  let sum = 0;
  for (const m of text.matchAll(/^purelb_api_requests_total\{([^}]*)\} (\d+)/gm)) {
    if (/verb="(POST|PUT|PATCH|DELETE)"/.test(m[1] as string) && !/resource="leases"/.test(m[1] as string)) sum += Number(m[2]);
  }
  return sum;
}

/** A counter or gauge of the agent's /metrics, summed over the label sets that match `labels`. */
async function metric(metricsUrl: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) })).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)`, 'gm'))) if ((m[1] ?? '').includes(labels)) sum += Number(m[2]);
  return sum;
}

/**
 * Waits until the agent has stopped writing to the API server (no write but Lease
 * renewals, purelb_api_requests_total, for `quietForMs`), then takes its CPU over
 * IDLE_MS. A restarted agent first rewrites its announcing annotations (seconds of API
 * work for 1,000 Services); idle is what follows.
 */
async function idleCpu(pid: number, metricsUrl: string, quietForMs: number): Promise<{ settledS: number; cpu: number; writes: number }> {
  const settleStart = Date.now();
  let lastWrites = await apiWrites(metricsUrl);
  let quietSince = Date.now();
  await waitUntil('the restarted agent to stop writing', IDLE_SETTLE_LIMIT_MS, async () => {
    const w = await apiWrites(metricsUrl);
    if (w !== lastWrites) {
      lastWrites = w;
      quietSince = Date.now();
    }
    return Date.now() - quietSince >= quietForMs;
  }, 500);
  const c0 = cpuSeconds(pid);
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const cpu = ((cpuSeconds(pid) - c0) / (IDLE_MS / 1000)) * 100;
  return { settledS: (quietSince - settleStart) / 1000, cpu, writes: (await apiWrites(metricsUrl)) - lastWrites };
}

/**
 * The agent's RSS as it stands after a release of unused memory (src/memory.ts) once
 * the pages it goes on using have come back: after the next release (`next`), or after
 * the first one (`first`: with the default timings it comes 30 s after the start, the
 * next 5 minutes later), then 5 s.
 */
async function rssAfterRelease(pid: number, metricsUrl: string, which: 'next' | 'first', limitMs: number): Promise<number> {
  const after = which === 'first' ? 0 : await metric(metricsUrl, 'purelb_memory_releases_total');
  await waitUntil('a release of unused memory', limitMs, async () => (await metric(metricsUrl, 'purelb_memory_releases_total')) > after, 200);
  await new Promise((r) => setTimeout(r, 5000));
  return procStatus(pid, 'VmRSS');
}

/**
 * The measured agent among 30 members: PEERS synthetic ones with real Lease and
 * heartbeat code in the client's namespace, on the nodes' LAN, beside the three agents.
 * Its idle CPU and heartbeat datagrams then, to put beside the three-node figures.
 */
async function amongPeers(report: Report, pid: number, metricsUrl: string): Promise<void> {
  const sentAt = async (): Promise<[number, number]> => [Date.now(), await metric(metricsUrl, 'purelb_lbnodeagent_heartbeats_total', 'result="sent"')];
  const rate = async (ms: number): Promise<{ cpu: number; sent: number }> => {
    const c0 = cpuSeconds(pid);
    const [t0, s0] = await sentAt();
    await new Promise((r) => setTimeout(r, ms));
    const [t1, s1] = await sentAt();
    return { cpu: ((cpuSeconds(pid) - c0) / ((t1 - t0) / 1000)) * 100, sent: (s1 - s0) / ((t1 - t0) / 1000) };
  };
  const alone = await rate(IDLE_MS);
  const peers = startPeers({ count: PEERS, ns: CLIENT.ns, address: CLIENT.v4, subnets: [LAN_V4.subnet], namespace: SG_NS });
  try {
    const members = NODES.length + PEERS;
    await waitUntil(`${members} members in the agent's view`, 60_000, async () => {
      if (!peers.alive()) throw new Error(`the synthetic peers died:\n${peers.log().slice(-2000)}`);
      return (await metric(metricsUrl, 'purelb_lbnodeagent_members')) === members;
    }, 500);
    await new Promise((r) => setTimeout(r, 3000)); // their first renewals and datagrams
    const among = await rate(IDLE_MS);
    report('idle_cpu_3_members', alone.cpu, '%');
    report('idle_cpu_30_members', among.cpu, '%');
    report('idle_cpu_30_over_3_members', among.cpu / alone.cpu, 'ratio');
    report('heartbeats_sent_per_s_3_members', alone.sent, 'count');
    report('heartbeats_sent_per_s_30_members', among.sent, 'count');
  } finally {
    await peers.stop();
  }
}

/** Creates `count` objects with `create`, `parallel` at a time. */
async function createAll(count: number, parallel: number, create: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < count; i += parallel) await Promise.all(Array.from({ length: Math.min(parallel, count - i) }, (_, j) => create(i + j)));
}

/**
 * The cluster grows around the agent: headless Services (no cluster IP to allocate)
 * up to CROWD in all, two EndpointSlices for each of them and for each LoadBalancer.
 */
async function crowd(report: Report, pid: number, lbNames: readonly string[], metricsUrl: string): Promise<void> {
  const api = new Api(connection());
  await kubectl(['create', 'namespace', CROWD_NS], { check: false });
  const others = CROWD - lbNames.length;
  const slice = (ns: string, service: string, k: number) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${service}-${k}`, namespace: ns, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    endpoints: [0, 1].map((e) => ({ addresses: [`192.0.2.${(k * 2 + e) % 250 + 1}`], nodeName: NODES[e % NODES.length], conditions: { ready: true } })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  });
  const t0 = Date.now();
  await createAll(others, 25, (i) =>
    api.create(PATHS.services(CROWD_NS), { apiVersion: 'v1', kind: 'Service', metadata: { name: `crowd-${i}`, namespace: CROWD_NS }, spec: { clusterIP: 'None', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] } }),
  );
  await createAll(others * 2, 25, (i) => api.create(PATHS.endpointSlices(CROWD_NS), slice(CROWD_NS, `crowd-${i >> 1}`, i & 1)));
  await createAll(lbNames.length * 2, 25, (i) => api.create(PATHS.endpointSlices(APP_NS), slice(APP_NS, lbNames[i >> 1] as string, i & 1)));
  const createdMs = Date.now() - t0;
  // Settled when the agent's CPU has stayed low for a while after the last object.
  const settle = Date.now();
  let last = cpuSeconds(pid);
  await waitUntil('the agent to settle after the crowd', IDLE_SETTLE_LIMIT_MS, async () => {
    await new Promise((r) => setTimeout(r, 5000));
    const now = cpuSeconds(pid);
    const busy = now - last > 0.5; // > 10 % of a core over 5 s
    last = now;
    return !busy;
  }, 0);
  report('crowd_services', CROWD, 'count');
  report('crowd_endpointslices', CROWD * 2, 'count');
  report('crowd_objects_created_ms', createdMs, 'ms');
  report('crowd_settled_after', (Date.now() - settle) / 1000, 's');
  report('crowd_rss', procStatus(pid, 'VmRSS') / 2 ** 20, 'MiB');
  report('crowd_rss_peak', procStatus(pid, 'VmHWM') / 2 ** 20, 'MiB');
  report('crowd_cached_services', await metric(metricsUrl, 'purelb_informer_objects', 'informer="services"'), 'count');
  report('crowd_cached_endpointslices', await metric(metricsUrl, 'purelb_informer_objects', 'informer="endpointslices"'), 'count');
}

/** Address events of one node namespace, with the kernel's timestamps (epoch ms). */
class AddressMonitor {
  readonly added = new Map<string, number>();
  readonly removed = new Map<string, number>();
  private readonly child: ChildProcess;

  constructor(ns: string) {
    this.child = spawn('ip', ['-n', ns, '-ts', 'monitor', 'address'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const lines = createInterface({ input: this.child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      const m = /^\[([^\]]+)\]\s+(Deleted\s+)?\d+:\s+\S+\s+inet6?\s+([0-9a-f.:]+)\//.exec(line);
      if (!m) return;
      const at = new Date((m[1] as string).replace(/(\.\d{3})\d*/, '$1')).getTime();
      (m[2] ? this.removed : this.added).set(m[3] as string, at);
    });
  }

  close(): void {
    this.child.kill();
  }
}

export async function run(report: Report): Promise<void> {
  await withLab(async () => {
    // PURELB_BENCH_HEAP_SNAPSHOT=1: the idle agent with many VIPs writes a heap snapshot,
    // summarised by bench/heap-summary.ts, to say where its memory goes.
    // PURELB_BENCH_HEAP_SNAPSHOT=report: a diagnostic report instead, for V8's heap spaces.
    const diagnostics = process.env.PURELB_BENCH_HEAP_SNAPSHOT;
    const snapshotDir = diagnostics === '1' || diagnostics === 'report' ? mkdtempSync('/var/tmp/plb-heap-') : undefined;
    const diagnosticFlags = diagnostics === 'report' ? `--report-on-signal --report-signal=SIGUSR2 --report-directory=${snapshotDir}` : `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshotDir}`;
    // PURELB_BENCH_AGENT_ENV='{"K":"V"}': more environment for the agents (experiments).
    const agentEnv: Record<string, string> = {
      ...(JSON.parse(process.env.PURELB_BENCH_AGENT_ENV ?? '{}') as Record<string, string>),
      ...(snapshotDir === undefined ? {} : { NODE_OPTIONS: diagnosticFlags }),
    };
    const lab = await setUpFailoverLab(0, { agentEnv });
    const core = kubeConfig().makeApiClient(CoreV1Api);
    const monitors = new Map(NODES.map((n) => [n, new AddressMonitor(n)]));
    const ingress = new AddressWatch(connection(), APP_NS, Date.now);
    await ingress.start();
    try {
      const up: number[] = [];
      const allocated: number[] = [];
      const announced: number[] = [];
      const down: number[] = [];
      for (let i = 0; i < TRIALS; i++) {
        const name = `lat-${i}`;
        const t0 = Date.now();
        await core.createNamespacedService({ namespace: APP_NS, body: lbService(APP_NS, name, { group: 'failover-pool', family: 'IPv4', loadBalancerClass: null }) });
        let ip = '';
        await waitUntil(`${name} on a node`, 10_000, async () => {
          ip ||= (await core.readNamespacedService({ name, namespace: APP_NS })).status?.loadBalancer?.ingress?.[0]?.ip ?? '';
          return ip !== '' && monitors.get(winner(NODES, ip) as string)?.added.has(ip) === true;
        }, 5);
        const inKernel = monitors.get(winner(NODES, ip) as string)?.added.get(ip) as number;
        await waitUntil(`the watch to see ${ip}`, 10_000, () => ingress.byIp.has(ip), 5);
        up.push(inKernel - t0);
        allocated.push((ingress.byIp.get(ip) as number) - t0);
        announced.push(inKernel - (ingress.byIp.get(ip) as number));
        const t1 = Date.now();
        await core.deleteNamespacedService({ name, namespace: APP_NS });
        await waitUntil(`${ip} withdrawn`, 10_000, () => monitors.get(winner(NODES, ip) as string)?.removed.has(ip) === true, 5);
        down.push((monitors.get(winner(NODES, ip) as string)?.removed.get(ip) as number) - t1);
        for (const m of monitors.values()) {
          m.added.delete(ip);
          m.removed.delete(ip);
        }
        ingress.byIp.delete(ip);
      }
      if (process.env.PURELB_BENCH_VERBOSE) {
        console.error(`create→vip ${up.join(' ')}\ncreate→status ${allocated.join(' ')}\nstatus→kernel ${announced.join(' ')}\ndelete→withdrawn ${down.join(' ')}`);
      }
      report('create_to_vip_p50', percentile(up, 50), 'ms');
      report('create_to_vip_p99', percentile(up, 99), 'ms');
      report('create_to_vip_max', Math.max(...up), 'ms');
      report('create_to_status_p50', percentile(allocated, 50), 'ms');
      report('create_to_status_p99', percentile(allocated, 99), 'ms');
      report('status_to_vip_p50', percentile(announced, 50), 'ms');
      report('status_to_vip_p99', percentile(announced, 99), 'ms');
      report('delete_to_withdrawn_p50', percentile(down, 50), 'ms');
      report('delete_to_withdrawn_p99', percentile(down, 99), 'ms');

      // Many VIPs: a remote (routed) IPv6 group, so every node holds every address.
      await applyServiceGroup(SG_NS, 'many', { remote: { v6pool: { subnet: '2001:db8:300::/112', pool: '2001:db8:300::/112', aggregation: '/128' } } }, 'purelb.io/v2');
      const node = NODES[0] as string;
      const monitor = monitors.get(node) as AddressMonitor;
      const isMany = (ip: string): boolean => ip.startsWith('2001:db8:300:');
      const manyInKernel = (): number[] => [...monitor.added.entries()].filter(([ip]) => isMany(ip)).map(([, t]) => t);
      const t0 = Date.now();
      const names = Array.from({ length: MANY }, (_, i) => `many-${i}`);
      for (let i = 0; i < names.length; i += 20) {
        await Promise.all(names.slice(i, i + 20).map((n) => core.createNamespacedService({ namespace: APP_NS, body: lbService(APP_NS, n, { group: 'many', loadBalancerClass: null }) })));
      }
      const createdMs = Date.now() - t0;
      await waitUntil(`${MANY} VIPs in ${node}'s kernel`, 180_000, () => manyInKernel().length >= MANY, 50);
      await waitUntil('every allocation observed', 10_000, () => [...ingress.byIp.keys()].filter(isMany).length >= MANY, 50);
      const lastAllocation = Math.max(...[...ingress.byIp.entries()].filter(([ip]) => isMany(ip)).map(([, t]) => t));
      const lastKernel = Math.max(...manyInKernel());
      report('many_vips', MANY, 'count');
      report('many_services_created_ms', createdMs, 'ms');
      report('many_create_to_all_in_kernel', lastKernel - t0, 'ms');
      report('many_last_allocation_to_all_in_kernel', Math.max(0, lastKernel - lastAllocation), 'ms');

      // The same node's agent restarted: SIGTERM withdraws everything, the new process
      // lists, syncs and puts all of them back.
      const old = lab.agents.get(node);
      if (!old) throw new Error(`no agent on ${node}`);
      await old.stop();
      await waitUntil(`${node}'s VIPs withdrawn`, 30_000, () => [...monitor.removed.keys()].filter(isMany).length >= MANY, 50);
      monitor.added.clear();
      const restartedAt = Date.now();
      lab.restartAgent(node);
      await waitUntil(`${MANY} VIPs back in ${node}'s kernel`, 60_000, () => manyInKernel().length >= MANY, 20);
      report('many_agent_start_to_all_in_kernel', Math.max(...manyInKernel()) - restartedAt, 'ms');
      report('many_agent_first_to_last_in_kernel', Math.max(...manyInKernel()) - Math.min(...manyInKernel()), 'ms');

      const agent = lab.agents.get(node);
      if (!agent) throw new Error(`no agent on ${node}`);
      const metricsUrl = `http://${labNodes(1)[0]?.v4 as string}:7472/metrics`;
      const idle = await idleCpu(agent.rec.pid, metricsUrl, 3 * Number(AGENT_ENV.PURELB_RECONCILE_MS));
      report('idle_settled_after_restart', idle.settledS, 's');
      report('idle_cpu_with_many_vips_lab_timings', idle.cpu, '%');
      report('idle_api_writes_while_measured', idle.writes, 'count');
      report('idle_reconcile_period_lab', Number(AGENT_ENV.PURELB_RECONCILE_MS), 'ms');
      // The agent's footprint with 1,000 VIPs (target < 80 MiB, docs/performance.md),
      // after a release of unused memory (every PURELB_MEMORY_RELEASE_EVERY_MS: 5 minutes
      // by default, 10 s in the lab).
      report('idle_rss_with_many_vips', (await rssAfterRelease(agent.rec.pid, metricsUrl, 'next', 60_000)) / 2 ** 20, 'MiB');
      report('idle_memory_releases', await metric(metricsUrl, 'purelb_memory_releases_total'), 'count');
      report('idle_rss_peak_with_many_vips', procStatus(agent.rec.pid, 'VmHWM') / 2 ** 20, 'MiB');
      // Anonymous memory is the heaps (V8's and malloc's); the rest is mapped files (the
      // node binary's pages that were touched).
      report('idle_rss_anonymous_with_many_vips', smapsRollup(agent.rec.pid, 'Anonymous') / 2 ** 20, 'MiB');
      report('idle_rss_malloc_heap_with_many_vips', brkHeapRss(agent.rec.pid) / 2 ** 20, 'MiB');
      report('idle_rss_file_backed_with_many_vips', (smapsRollup(agent.rec.pid, 'Rss') - smapsRollup(agent.rec.pid, 'Anonymous')) / 2 ** 20, 'MiB');
      if (process.env.PURELB_BENCH_MAPPINGS === '1') {
        // Where the anonymous memory lies, mapping by mapping (a diagnosis, not a figure).
        const maps = anonymousMappings(agent.rec.pid);
        const byKind = new Map<string, number>();
        for (const m of maps) byKind.set(m.kind, (byKind.get(m.kind) ?? 0) + m.rssKiB);
        for (const [kind, kib] of byKind) console.log(`  anonymous ${kind}: ${(kib / 1024).toFixed(1)} MiB`);
        for (const m of maps.slice(0, 15)) console.log(`  mapping ${m.start} size ${(m.sizeKiB / 1024).toFixed(1)} MiB, resident ${(m.rssKiB / 1024).toFixed(1)} MiB (${m.kind})`);
      }
      if (process.env.PURELB_BENCH_MALLOC_TRIM === '1') {
        // An experiment: what malloc_trim(0) in the agent gives back (gdb calls it).
        execFileSync('gdb', ['-p', String(agent.rec.pid), '-batch', '-ex', 'call (int)malloc_trim(0)'], { stdio: 'ignore', timeout: 60_000 });
        report('idle_rss_after_malloc_trim', procStatus(agent.rec.pid, 'VmRSS') / 2 ** 20, 'MiB');
        report('idle_rss_anonymous_after_malloc_trim', smapsRollup(agent.rec.pid, 'Anonymous') / 2 ** 20, 'MiB');
      }
      if (snapshotDir !== undefined && diagnostics === 'report') {
        process.kill(agent.rec.pid, 'SIGUSR2');
        type Report = { javascriptHeap: { totalMemory: number; usedMemory: number; heapSpaces: Record<string, { memorySize: number; used: number }> } };
        let parsed: Report | undefined;
        await waitUntil('the diagnostic report', 60_000, () => {
          const name = readdirSync(snapshotDir).find((f) => f.endsWith('.json'));
          try {
            parsed = name === undefined ? undefined : (JSON.parse(readFileSync(join(snapshotDir, name), 'utf8')) as Report);
          } catch {
            parsed = undefined; // still being written
          }
          return parsed !== undefined;
        }, 500);
        const heap = (parsed as Report).javascriptHeap;
        report('idle_v8_heap_total', heap.totalMemory / 2 ** 20, 'MiB');
        report('idle_v8_heap_used', heap.usedMemory / 2 ** 20, 'MiB');
        for (const [space, s] of Object.entries(heap.heapSpaces)) console.log(`agent.v8_space ${space} ${(s.memorySize / 2 ** 20).toFixed(2)} MiB, used ${(s.used / 2 ** 20).toFixed(2)} MiB`);
      } else if (snapshotDir !== undefined) {
        process.kill(agent.rec.pid, 'SIGUSR2');
        await waitUntil('the heap snapshot', 60_000, () => readdirSync(snapshotDir).some((f) => f.endsWith('.heapsnapshot')), 200);
        // Written when the file stops growing.
        await new Promise((r) => setTimeout(r, 3000));
        const file = join(snapshotDir, readdirSync(snapshotDir).find((f) => f.endsWith('.heapsnapshot')) as string);
        const { total, groups } = summarize(JSON.parse(readFileSync(file, 'utf8')));
        report('idle_heap_objects_with_many_vips', total / 2 ** 20, 'MiB');
        for (const g of groups.slice(0, 12)) console.log(`agent.heap ${(g.bytes / 2 ** 20).toFixed(2)} MiB ${g.count} ${g.kind}${g.name === '' ? '' : ` ${g.name}`}`);
        console.log(`agent.heap_snapshot ${file}`);
      }
      // The same agent with the components' own timings (reconcile every 10 s, Lease
      // renewed every 2 s, memory released 30 s after start), as it runs on a cluster:
      // its idle CPU is the figure for the < 2 % target; the lab's periods are 5 times
      // shorter.
      await agent.stop();
      await waitUntil(`${node}'s VIPs withdrawn`, 30_000, () => [...monitor.removed.keys()].filter(isMany).length >= MANY, 50);
      monitor.added.clear();
      const production = lab.restartAgent(node, 'default');
      await waitUntil(`${MANY} VIPs back in ${node}'s kernel`, 60_000, () => manyInKernel().length >= MANY, 20);
      const prodIdle = await idleCpu(production.rec.pid, metricsUrl, 30_000);
      report('idle_cpu_with_many_vips', prodIdle.cpu, '%');
      report('idle_api_writes_while_measured_default_timings', prodIdle.writes, 'count');
      report('idle_rss_with_many_vips_default_timings', (await rssAfterRelease(production.rec.pid, metricsUrl, 'first', 90_000)) / 2 ** 20, 'MiB');
      if (PEERS > 0) await amongPeers(report, production.rec.pid, metricsUrl);
      if (CROWD > MANY) await crowd(report, production.rec.pid, names, metricsUrl);
    } finally {
      await ingress.stop();
      for (const m of monitors.values()) m.close();
      await kubectl(['delete', 'namespace', CROWD_NS, '--ignore-not-found', '--wait=false'], { check: false });
      await kubectl(['delete', 'endpointslices', '--all', '-n', APP_NS, '--wait=false'], { check: false });
      await kubectl(['delete', 'svc', '--all', '-n', APP_NS, '--wait=false'], { check: false });
      await kubectl(['delete', 'servicegroup', 'many', '-n', SG_NS], { check: false });
      await lab.close();
    }
  });
}
