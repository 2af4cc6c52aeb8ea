// The node agent's speed (DESIGN.md §8), timed by the kernel itself: `ip -ts monitor
// address` in the node namespaces stamps every address change.
// - Service created → VIP on the winner's interface, and deleted → withdrawn: p50/p99
//   over ≥ 50 Services (targets p50 < 100 ms, p99 < 300 ms). A watch in the bench
//   splits create → VIP into the allocator's part (create → address in the Service's
//   status, as a watcher sees it) and the agent's part (that moment → kernel).
// - 1,000 VIPs on one node: from the last address in a Service's status to the last
//   address in the kernel (target < 2 s); the same after a restart of the agent, from
//   process start; then the agent's CPU while idle (after a settling time, with the
//   lab's 2 s reconcile period).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { CoreV1Api } from '@kubernetes/client-node';
import { winner } from '../src/election/winner.ts';
import { kubeConfig } from '../e2e/lab/kube.ts';
import { AGENT_ENV, APP_NS, NODES, SG_NS, setUpFailoverLab } from '../e2e/lbnodeagent/failover-kit.ts';
import { applyServiceGroup, kubectl, waitUntil } from '../e2e/lab/testkit.ts';
import { cpuSeconds, percentile } from '../e2e/lab/measure.ts';
import { AddressWatch, withLab } from './lab.ts';
import { lbService } from '../e2e/allocator/kit.ts';
import type { Report } from './run.ts';

const TRIALS = Number(process.env.PURELB_BENCH_AGENT_TRIALS ?? 50);
const MANY = Number(process.env.PURELB_BENCH_AGENT_VIPS ?? 1000);
const IDLE_MS = 20_000;
const IDLE_SETTLE_MS = 15_000;

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
    const lab = await setUpFailoverLab(0);
    const core = kubeConfig().makeApiClient(CoreV1Api);
    const monitors = new Map(NODES.map((n) => [n, new AddressMonitor(n)]));
    const ingress = new AddressWatch(kubeConfig(), APP_NS, Date.now);
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
      // The restarted agent first rewrites its announcing annotations (about 10 s of
      // API work for 1,000 Services); idle is what follows.
      await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
      const c0 = cpuSeconds(agent.rec.pid);
      await new Promise((r) => setTimeout(r, IDLE_MS));
      report('idle_cpu_with_many_vips', ((cpuSeconds(agent.rec.pid) - c0) / (IDLE_MS / 1000)) * 100, '%');
      report('idle_reconcile_period', Number(AGENT_ENV.PURELB_RECONCILE_MS), 'ms');
    } finally {
      await ingress.stop();
      for (const m of monitors.values()) m.close();
      await kubectl(['delete', 'svc', '--all', '-n', APP_NS, '--wait=false'], { check: false });
      await kubectl(['delete', 'servicegroup', 'many', '-n', SG_NS], { check: false });
      await lab.close();
    }
  });
}
