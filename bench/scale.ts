// Heartbeats at scale without the machines (issue #14): N agents' real detectors and
// memberships in this one process, on a simulated clock and network
// (src/lbnodeagent/heartbeat/simulated.ts), with 40 nodes to a subnet and with all in
// one. Per N and layout: datagrams per node, this process's CPU per agent for the
// heartbeat path (encode, HMAC, decode, replay filter, evaluation, and the simulator's
// dispatch; no kernel UDP cost), and after a simulated hard loss of a VIP's holder the
// detection time at each peer and the number of surviving nodes that then hold the VIP
// by the real election on their own view (must be 1).
//
// All in one subnet at N = 1,000 is 10 M datagrams per simulated second, each HMAC'd
// twice: that configuration runs one trial and the shortest windows, and takes minutes.
// PURELB_BENCH_SCALE_SIZES (e.g. `10,100`) and PURELB_BENCH_SCALE_LAYOUTS (`subnet40`,
// `one_subnet`) choose a part.

import { loadavg } from 'node:os';
import { percentile } from '../e2e/lab/measure.ts';
import { SimulatedCluster, seededRandom, simulatedNodes } from '../src/lbnodeagent/heartbeat/simulated.ts';
import type { SimulatedAgent } from '../src/lbnodeagent/heartbeat/simulated.ts';
import type { Report } from './run.ts';

const SIZES = (process.env.PURELB_BENCH_SCALE_SIZES ?? '10,100,300,1000').split(',').map(Number);
const LAYOUTS = [
  { name: 'subnet40', perSubnet: 40 },
  { name: 'one_subnet', perSubnet: Infinity },
].filter((l) => (process.env.PURELB_BENCH_SCALE_LAYOUTS ?? 'subnet40,one_subnet').split(',').includes(l.name));
const INTERVAL_MS = 100;
/** Simulated time to wait for every peer to notice a loss: well past 3 × 100 ms. */
const DETECTION_LIMIT_MS = 1000;
/** After a heal: the healed node hears its peers again and they hear it. */
const REJOIN_MS = 300;

/** Heavier configurations get fewer trials and a shorter measuring window. */
function budget(peersPerNode: number, n: number): { trials: number; windowMs: number } {
  const datagramsPerRound = peersPerNode * n;
  if (datagramsPerRound > 50_000) return { trials: 1, windowMs: INTERVAL_MS };
  if (datagramsPerRound > 20_000) return { trials: 3, windowMs: 200 };
  return { trials: 5, windowMs: 2000 };
}

interface Trial {
  detectionMs: number[];
  holders: number;
}

/** The loss being followed: each agent records when its detector stops counting the lost node. */
interface Watch {
  lost: string;
  lossAt: number;
  detected: Map<SimulatedAgent, number>;
}

function follow(cluster: SimulatedCluster): Watch {
  const watch: Watch = { lost: '', lossAt: 0, detected: new Map() };
  for (const a of cluster.agents) {
    a.detector.onChange(() => {
      if (watch.lost !== '' && !watch.detected.has(a) && !a.detector.usable(watch.lost)) watch.detected.set(a, cluster.clock.now() - watch.lossAt);
    });
  }
  return watch;
}

/**
 * Loses the holder of a VIP of a random subnet, follows each of its peers until it
 * drops it, counts the holders among the survivors, and heals the lost node (losses
 * do not accumulate: half a subnet lost would rightly cost the rest their quorum).
 */
function trial(cluster: SimulatedCluster, watch: Watch, random: () => number, subnets: number, last: boolean): Trial | undefined {
  const subnet = Math.floor(random() * subnets);
  const ip = `10.${subnet}.3.${1 + Math.floor(random() * 250)}`;
  const inSubnet = cluster.agents.filter((a) => a.node.subnets[0] === `10.${subnet}.0.0/22`);
  const [holder] = cluster.holders(ip, inSubnet);
  if (!holder) return undefined;
  const peers = inSubnet.filter((a) => a.node.name !== holder);
  watch.lost = holder;
  watch.lossAt = cluster.clock.now();
  watch.detected.clear();
  cluster.lose(holder);
  for (let waited = 0; waited < DETECTION_LIMIT_MS && watch.detected.size < peers.length; waited += 10) cluster.clock.advance(10);
  watch.lost = '';
  const result = {
    detectionMs: peers.map((a) => watch.detected.get(a) ?? Infinity),
    holders: cluster.holders(
      ip,
      cluster.agents.filter((a) => a.node.name !== holder),
    ).length,
  };
  if (!last) {
    cluster.heal(holder);
    cluster.clock.advance(REJOIN_MS);
  }
  return result;
}

async function measure(report: Report, n: number, layout: { name: string; perSubnet: number }): Promise<void> {
  const perSubnet = Math.min(n, layout.perSubnet);
  const name = `n${n}_${layout.name}`;
  const wall0 = performance.now();
  const cluster = new SimulatedCluster(simulatedNodes(n, perSubnet), { intervalMs: INTERVAL_MS });
  await cluster.start(INTERVAL_MS);
  const peersPerNode = cluster.agents.reduce((sum, a) => sum + a.detector.peerNodes().length, 0) / n;
  const { trials, windowMs } = budget(peersPerNode, n);
  // Every agent has started and knows its peers: each round from now on is a full one.
  cluster.network.resetCounts();
  const cpu0 = process.cpuUsage();
  cluster.clock.advance(windowMs);
  const cpu = process.cpuUsage(cpu0);
  const sent = [...cluster.network.sent.values()].reduce((a, b) => a + b, 0);
  const seconds = windowMs / 1000;
  report(`${name}_peers_per_node`, peersPerNode, 'nodes');
  report(`${name}_sent_per_node`, sent / n / seconds, 'packets/s');
  report(`${name}_received_per_node`, cluster.network.delivered / n / seconds, 'packets/s');
  report(`${name}_lan_total`, sent / seconds, 'packets/s');
  report(`${name}_cpu_per_agent`, ((cpu.user + cpu.system) / 1e6 / seconds / n) * 100, '% of a core');

  const random = seededRandom(n);
  const watch = follow(cluster);
  const results: Trial[] = [];
  const subnets = Math.ceil(n / perSubnet);
  for (let i = 0; i < trials * 3 && results.length < trials; i++) {
    const r = trial(cluster, watch, random, subnets, results.length === trials - 1);
    if (r) results.push(r);
  }
  const detection = results.flatMap((r) => r.detectionMs);
  report(`${name}_trials`, results.length, 'count');
  report(`${name}_detection_p50`, percentile(detection, 50), 'ms');
  report(`${name}_detection_p99`, percentile(detection, 99), 'ms');
  report(`${name}_detection_max`, Math.max(...detection), 'ms');
  report(`${name}_holders_after_loss_max`, Math.max(...results.map((r) => r.holders)), 'nodes');
  report(`${name}_trials_without_one_holder`, results.filter((r) => r.holders !== 1).length, 'count');
  report(`${name}_bench_wall`, (performance.now() - wall0) / 1000, 's');
}

/** Compiles the hot paths before the first figure, which would otherwise pay for it. */
async function warmUp(): Promise<void> {
  const cluster = new SimulatedCluster(simulatedNodes(20, 20), { intervalMs: INTERVAL_MS });
  await cluster.start(INTERVAL_MS);
  cluster.clock.advance(2000);
}

export async function run(report: Report): Promise<void> {
  report('load_average_1m', loadavg()[0] ?? NaN, 'load');
  await warmUp();
  for (const n of SIZES) for (const layout of LAYOUTS) await measure(report, n, layout);
  report('load_average_1m_after', loadavg()[0] ?? NaN, 'load');
}
