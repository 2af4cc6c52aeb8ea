// The cluster tier's figures (`npm run bench -- cluster`), as a client in the client
// namespace sees them through kube-proxy, with purelb-ts installed by its chart:
//   - helm install → the first VIP answering HTTP (a Service and its backends already there);
//   - Service created → first HTTP answer, p50/p99 (PureLB reports 0.6–1.6 s);
//   - failover, hard (the holder's switch port down) and graceful (`kubectl drain`), ≥ 20
//     trials each, p50/p99, beside the process lab's hard-loss figure measured first in
//     the same run;
//   - RSS and CPU of every purelb-ts pod, as the kubelet's cgroups account them.
// It brings up its own labs (the process lab, then the cluster lab) and takes them down.

import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { clusterUp } from '../e2e/cluster/cluster.ts';
import { APP_NS, NODE_NAMES, PURELB_NS, RELEASE, clientGet, clusterHelm, holdersOf, labValues, longestGap, pods } from '../e2e/cluster/kit.ts';
import { cgroupHierarchies } from '../e2e/cluster/node.ts';
import { readClusterState } from '../e2e/cluster/state.ts';
import { CHART_DIR, setArgs } from '../e2e/install/chart.ts';
import { labDown } from '../e2e/lab/lab.ts';
import { percentile } from '../e2e/lab/measure.ts';
import { clientProbe, failNode, restoreNode } from '../e2e/lab/network.ts';
import { ensureNamespace, kubectl, waitUntil } from '../e2e/lab/testkit.ts';
import { failoverTrial, setUpFailoverLab } from '../e2e/lbnodeagent/failover-kit.ts';
import { winner } from '../src/election/winner.ts';
import { withLab } from './lab.ts';
import type { Report } from './run.ts';

const TRIALS = Number(process.env.PURELB_BENCH_CLUSTER_TRIALS ?? 20);
const GROUP = 'bench-l2';
const POOL = { subnet: '198.51.100.0/24', pool: '198.51.100.160-198.51.100.199' };

function summary(report: Report, name: string, values: readonly number[], unit = 'ms'): void {
  report(`${name}_count`, values.length, 'count');
  report(`${name}_p50`, percentile(values, 50), unit);
  report(`${name}_p99`, percentile(values, 99), unit);
  report(`${name}_max`, Math.max(...values), unit);
}

async function applyGroup(): Promise<void> {
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'purelb.io/v2', kind: 'ServiceGroup', metadata: { name: GROUP, namespace: PURELB_NS }, spec: { local: { v4pool: { ...POOL, aggregation: 'default' } } } }) });
}

async function createService(name: string): Promise<void> {
  await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: APP_NS, annotations: { 'purelb.io/service-group': GROUP } },
      spec: { type: 'LoadBalancer', allocateLoadBalancerNodePorts: false, selector: { app: 'nginx-lb' }, ports: [{ port: 80, targetPort: 80 }] },
    }),
  });
}

async function ingressOf(name: string): Promise<string> {
  return (await kubectl(['get', 'svc', '-n', APP_NS, name, '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}'], { check: false })).stdout.trim();
}

/**
 * Polls the Service's address and then the client's HTTP GET through it (about every
 * 20 ms) until it answers; ms since t0 to the address in the status and to the answer.
 */
async function firstAnswer(ip: () => Promise<string> | string, t0: number, timeoutMs = 60_000): Promise<{ address: number; answer: number }> {
  let address = NaN;
  let answer = NaN;
  await waitUntil('an answer', timeoutMs, async () => {
    const addr = await ip();
    if (addr === '') return false;
    if (Number.isNaN(address)) address = performance.now() - t0;
    if ((await clientGet(addr, 500)) === undefined) return false;
    answer = performance.now() - t0;
    return true;
  }, 20);
  return { address, answer };
}

/** A pod's cgroup in the memory and cpuacct hierarchies, found by its UID under its node's cgroup root. */
function podCgroup(node: string, uid: string): { memory: string; cpuacct: string } {
  const root = readClusterState()?.cgroupRoots[node];
  if (!root) throw new Error(`no cgroup root recorded for ${node}`);
  const find = (hierarchy: string): string => {
    const base = path.join(hierarchy, root, 'kubepods');
    for (const qos of ['', 'burstable', 'besteffort']) {
      const dir = path.join(base, qos, `pod${uid}`);
      if (existsSync(dir)) return dir;
    }
    throw new Error(`pod ${uid}: no cgroup under ${base} (${readdirSync(base).join(', ')})`);
  };
  const h = cgroupHierarchies();
  const memory = h.find((x) => x.endsWith('/memory'));
  const cpuacct = h.find((x) => x.endsWith('/cpuacct') || x.includes('cpuacct'));
  if (!memory || !cpuacct) throw new Error('no memory or cpuacct cgroup hierarchy');
  return { memory: find(memory), cpuacct: find(cpuacct) };
}

function memoryStat(dir: string, key: string): number {
  const line = readFileSync(path.join(dir, 'memory.stat'), 'utf8').split('\n').find((l) => l.startsWith(`${key} `));
  return Number(line?.split(' ')[1] ?? NaN);
}

async function podFootprint(report: Report): Promise<void> {
  const all = [...(await pods(PURELB_NS, 'app.kubernetes.io/component=allocator')), ...(await pods(PURELB_NS, 'app.kubernetes.io/component=lbnodeagent'))];
  const cg = all.map((p) => ({ p, dir: podCgroup(p.node, p.uid) }));
  const usage = () => cg.map(({ dir }) => Number(readFileSync(path.join(dir.cpuacct, 'cpuacct.usage'), 'utf8')));
  const windowMs = 30_000;
  const before = usage();
  await new Promise((r) => setTimeout(r, windowMs));
  const after = usage();
  const allocators = cg.filter(({ p }) => p.name.includes('allocator'));
  cg.forEach(({ p, dir }, i) => {
    const kind = allocators.some((a) => a.p.name === p.name) ? `allocator_${allocators.findIndex((a) => a.p.name === p.name)}` : `agent_${p.node}`;
    report(`pod_rss_${kind}`, memoryStat(dir.memory, 'total_rss') / 2 ** 20, 'MiB');
    report(`pod_idle_cpu_${kind}`, (((after[i] as number) - (before[i] as number)) / 1e6 / windowMs) * 100, '%');
  });
}

/**
 * One failover through kube-proxy, as the client sees it. Hard: the holder's switch port
 * goes down, and the gap runs from the fault to the first answer that started after the
 * port was down for sure. Drain: `kubectl drain` of the holder (cordon, then its pods
 * evicted), and the gap is the longest time without an answer during it.
 */
async function clusterTrial(vip: string, mode: 'hard' | 'drain'): Promise<number | undefined> {
  const from = winner(NODE_NAMES, vip) as string;
  await waitUntil(`${vip} on ${from}`, 60_000, async () => (await holdersOf(vip)).join() === `${from},eth0` && (await clientGet(vip, 500)) !== undefined, 100);
  const probe = clientProbe(vip, { attemptTimeoutMs: 50, intervalMs: 2, durationMs: mode === 'hard' ? 4000 : 8000 });
  await new Promise((r) => setTimeout(r, 300));
  const faultAt = Date.now();
  try {
    if (mode === 'hard') {
      await failNode(from, 'link-down');
      const down = Date.now();
      const first = (await probe).find((a) => a.ok && a.at >= down);
      return first ? first.at + first.ms - faultAt : undefined;
    }
    await kubectl(['drain', from, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=60s'], { timeoutMs: 70_000 });
    const attempts = await probe;
    return attempts.some((a) => a.ok && a.at > faultAt) ? longestGap(attempts) : undefined;
  } finally {
    if (mode === 'hard') await restoreNode(from);
    else await kubectl(['uncordon', from]);
  }
}

export async function run(report: Report): Promise<void> {
  // The process lab's figure first, in this same run, to put the cluster's beside it;
  // a lab left up (a demo's cluster lab, say) goes first.
  await labDown();
  await withLab(async () => {
    const lab = await setUpFailoverLab(6);
    try {
      const gaps: number[] = [];
      for (let i = 0; i < TRIALS; i++) {
        const t = await failoverTrial(lab, lab.vips[i % lab.vips.length] as string, 'hard');
        if (t.gapMs !== undefined) gaps.push(t.gapMs);
      }
      summary(report, 'process_lab_hard_gap', gaps);
    } finally {
      await lab.close();
    }
  });

  await clusterUp();
  try {
    // helm install → first VIP answering: the backends and a Service wait for purelb-ts.
    await ensureNamespace(APP_NS);
    await kubectl(['apply', '-f', 'examples/backends.yaml']);
    await kubectl(['rollout', 'status', '-n', APP_NS, 'deployment/nginx-lb', '--timeout=180s'], { timeoutMs: 190_000 });
    const t0 = performance.now();
    const install = clusterHelm(['install', RELEASE, CHART_DIR, '-n', PURELB_NS, '--create-namespace', ...setArgs(labValues())]);
    await waitUntil('the ServiceGroup CRD', 60_000, async () => (await kubectl(['get', 'crd', 'servicegroups.purelb.io'], { check: false })).code === 0, 100);
    await waitUntil('the ServiceGroup applied', 60_000, async () => {
      try {
        await applyGroup();
        return true;
      } catch {
        return false;
      }
    }, 100);
    await createService('bench-first');
    report('helm_install_to_first_vip_answer', (await firstAnswer(() => ingressOf('bench-first'), t0, 120_000)).answer, 'ms');
    await install;
    await kubectl(['wait', '-n', PURELB_NS, '--for=condition=Ready', 'pod', '--all', '--timeout=120s'], { timeoutMs: 130_000 });

    // Service created → first HTTP answer at the client.
    // Service created → first HTTP answer at the client; and, of that, → the address in its status.
    const createToAnswer: number[] = [];
    const createToAddress: number[] = [];
    for (let i = 0; i < TRIALS; i++) {
      const name = `bench-${i}`;
      const t = performance.now();
      await createService(name);
      const r = await firstAnswer(() => ingressOf(name), t);
      createToAnswer.push(r.answer);
      createToAddress.push(r.address);
    }
    summary(report, 'service_create_to_http_answer', createToAnswer);
    summary(report, 'service_create_to_address_seen', createToAddress);

    // Failover through kube-proxy, over VIPs held by different nodes.
    const vips = await Promise.all(Array.from({ length: 6 }, (_, i) => ingressOf(`bench-${i}`)));
    for (const mode of ['hard', 'drain'] as const) {
      const gaps: number[] = [];
      let lost = 0;
      for (let i = 0; i < TRIALS; i++) {
        const gap = await clusterTrial(vips[i % vips.length] as string, mode);
        if (gap === undefined) lost++;
        else gaps.push(gap);
      }
      report(`${mode}_trials_without_answer`, lost, 'count');
      summary(report, `${mode}_gap_through_kube_proxy`, gaps);
    }

    for (let i = 0; i < TRIALS; i++) await kubectl(['delete', 'svc', '-n', APP_NS, `bench-${i}`, '--wait=false']);
    await podFootprint(report);
  } finally {
    await labDown();
  }
}
