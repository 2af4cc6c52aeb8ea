// A layer-2 VIP moved by election on Linux 5.10, where both agents keep the ownership
// record: two agents in two network namespaces of the guest (scripts/old-kernel.sh with
// its user-mode network), on one bridge with the guest's eth0, so that they share the
// 10.0.2.0/24 subnet and reach the lab's API server through QEMU. Agent A starts alone
// and takes every VIP; agent B joins, and each VIP that B wins by the election must
// leave A. Then the Services go, and no address of the pool may be left on either.
//
//   node e2e/lbnodeagent/guest-election.ts CONFIG.json   (prints one JSON line)

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { winner } from '../../src/election/winner.ts';
import { Api, ApiError, PATHS } from '../../src/k8s/api.ts';
import { loadConnection } from '../../src/k8s/connection.ts';
import { ENTRY, NODE_FLAGS } from '../../src/runtime.ts';
import { addressesOn, ready, run, waitFor } from './vip-trials.ts';

export interface GuestElectionConfig {
  adminKubeconfig: string;
  namespace: string;
  appNamespace: string;
  serviceGroup: string;
  /** The two agents' node names (Node objects of those names exist) and addresses in 10.0.2.0/24. */
  nodes: Array<{ name: string; ip: string }>;
  /** The pool's addresses start with this. */
  poolPrefix: string;
  services: number;
  agentEnv: Record<string, string>;
  timeoutMs: number;
}

export interface GuestElectionResult {
  kernel: string;
  /** Each agent's ownership mode, by node. */
  ownership: Record<string, string>;
  vips: string[];
  /** The VIPs the second node wins, which must move to it. */
  expectedMoves: string[];
  /** What each node held once the election settled, and after the Services were deleted. */
  settled: Record<string, string[]>;
  afterDelete: Record<string, string[]>;
  /** The agents' last log lines, when the election did not settle or a VIP was left. */
  log?: string[];
}

/**
 * The agents' timing stretched by the guest's time scale (old-kernel.sh sets
 * PURELB_TIME_SCALE, 20 under software emulation): a 1 s Lease renewal or a 100 ms
 * heartbeat is too tight for a CPU twenty times slower. With the lab's 4 s Lease and
 * 1 s renewal, a slow renewal made an agent think the API server was away and freeze
 * its member set at itself alone, so it never gave up what the joining node won (a CI
 * failure: every VIP stayed on the first node).
 */
export function timeScaled(env: Record<string, string>, scale = Number(process.env['PURELB_TIME_SCALE'] ?? '1')): Record<string, string> {
  const timed = { PURELB_HEARTBEAT_INTERVAL_MS: '100', ...env };
  if (!(scale > 1)) return env;
  return Object.fromEntries(Object.entries(timed).map(([k, v]) => [k, k.endsWith('_MS') && /^\d+$/.test(v) ? String(Number(v) * scale) : v]));
}

const REPO_ROOT = new URL('../..', import.meta.url).pathname;

const held = (ns: string, prefix: string): string[] => addressesOn('eth0', prefix, ns);

function setUpNetwork(nodes: GuestElectionConfig['nodes']): void {
  // The guest's eth0 (10.0.2.15, from old-kernel.sh) moves onto a bridge that the nodes join.
  for (const args of [
    ['link', 'add', 'br0', 'type', 'bridge'],
    ['addr', 'flush', 'dev', 'eth0'],
    ['link', 'set', 'eth0', 'master', 'br0'],
    ['link', 'set', 'br0', 'up'],
    ['addr', 'add', '10.0.2.15/24', 'dev', 'br0'],
    ['route', 'replace', 'default', 'via', '10.0.2.2'],
  ]) run('ip', args);
  for (const [i, n] of nodes.entries()) {
    run('ip', ['netns', 'add', n.name]);
    run('ip', ['link', 'add', `vg${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.name]);
    run('ip', ['link', 'set', `vg${i}`, 'master', 'br0', 'up']);
    for (const args of [
      ['link', 'set', 'lo', 'up'],
      ['link', 'set', 'eth0', 'up'],
      ['addr', 'add', `${n.ip}/24`, 'dev', 'eth0'],
      ['route', 'add', 'default', 'via', '10.0.2.2'],
    ]) run('ip', ['-n', n.name, ...args]);
  }
}

export async function runElection(cfg: GuestElectionConfig): Promise<GuestElectionResult> {
  const [a, b] = cfg.nodes as [{ name: string; ip: string }, { name: string; ip: string }];
  const api = new Api(loadConnection(cfg.adminKubeconfig));
  const result: GuestElectionResult = { kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), ownership: {}, vips: [], expectedMoves: [], settled: {}, afterDelete: {} };
  const agents: ChildProcess[] = [];
  const log: string[] = [];
  const startAgent = (node: string): void => {
    const child = spawn('ip', ['netns', 'exec', node, process.execPath, ...NODE_FLAGS.lbnodeagent, `${REPO_ROOT}${ENTRY.lbnodeagent}`], {
      env: { ...process.env, KUBECONFIG: cfg.adminKubeconfig, PURELB_NAMESPACE: cfg.namespace, NODE_NAME: node, PURELB_OWNERSHIP_DIR: `/run/purelb-ts-${node}`, ...timeScaled(cfg.agentEnv) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    agents.push(child);
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      log.push(`${node}: ${line}`);
      if (log.length > 60) log.shift();
      try {
        const e = JSON.parse(line) as { message?: string; mode?: string };
        if (e.message === 'address ownership' && e.mode !== undefined) result.ownership[node] = e.mode;
      } catch {
        // not a log line
      }
    });
  };
  const names = Array.from({ length: cfg.services }, (_, i) => `k510-l2-${i}`);
  try {
    setUpNetwork(cfg.nodes);
    startAgent(a.name);
    await ready(`http://${a.ip}:7472/readyz`, cfg.timeoutMs);
    for (const name of names) {
      await api.create(PATHS.services(cfg.appNamespace), {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, annotations: { 'purelb.io/service-group': cfg.serviceGroup } },
        spec: { type: 'LoadBalancer', ports: [{ port: 80, protocol: 'TCP' }] },
      });
    }
    result.vips = await waitFor('an address for every Service', cfg.timeoutMs, async () => {
      const ips = await Promise.all(names.map(async (n) => (await api.get<{ status?: { loadBalancer?: { ingress?: Array<{ ip?: string }> } } }>(PATHS.service(cfg.appNamespace, n))).status?.loadBalancer?.ingress?.[0]?.ip));
      return ips.every((ip) => ip !== undefined) ? (ips as string[]).sort() : undefined;
    });
    await waitFor(`every VIP on ${a.name}, the only member`, cfg.timeoutMs, () => (held(a.name, cfg.poolPrefix).length === result.vips.length ? true : undefined));
    // B joins: the VIPs it wins move to it, and must leave A.
    result.expectedMoves = result.vips.filter((ip) => winner([a.name, b.name], ip) === b.name);
    const stays = result.vips.filter((ip) => !result.expectedMoves.includes(ip));
    startAgent(b.name);
    await ready(`http://${b.ip}:7472/readyz`, cfg.timeoutMs);
    const same = (x: string[], y: string[]) => x.join() === y.join();
    await waitFor('the election to settle: each VIP on its winner only', cfg.timeoutMs, () =>
      same(held(a.name, cfg.poolPrefix), stays) && same(held(b.name, cfg.poolPrefix), result.expectedMoves) ? true : undefined,
    ).catch(() => undefined);
    result.settled = { [a.name]: held(a.name, cfg.poolPrefix), [b.name]: held(b.name, cfg.poolPrefix) };
    for (const name of names) await api.delete(PATHS.service(cfg.appNamespace, name));
    await waitFor('every VIP withdrawn', cfg.timeoutMs, () => (held(a.name, cfg.poolPrefix).length + held(b.name, cfg.poolPrefix).length === 0 ? true : undefined)).catch(() => undefined);
    result.afterDelete = { [a.name]: held(a.name, cfg.poolPrefix), [b.name]: held(b.name, cfg.poolPrefix) };
    const settled = same(result.settled[a.name] ?? [], stays) && same(result.settled[b.name] ?? [], result.expectedMoves);
    if (!settled || result.afterDelete[a.name]?.length || result.afterDelete[b.name]?.length) result.log = [...log];
  } catch (err) {
    throw new Error(`${String(err)}\nthe agents' last log lines:\n${log.join('\n')}`, { cause: err });
  } finally {
    for (const child of agents) child.kill('SIGTERM');
    await Promise.race([Promise.all(agents.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(undefined) : c.once('exit', r))))), new Promise((r) => setTimeout(r, cfg.timeoutMs))]);
    for (const child of agents) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const name of names) {
      await api.delete(PATHS.service(cfg.appNamespace, name)).catch((err: unknown) => {
        if (!(err instanceof ApiError && err.code === 404)) throw err;
      });
    }
  }
  return result;
}

if (import.meta.main) {
  const cfg = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as GuestElectionConfig;
  console.log(JSON.stringify(await runElection(cfg)));
}
