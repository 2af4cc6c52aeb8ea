// Runs purelb-ts's own components as real processes against the lab: the allocator in
// the root namespace, agents inside node namespaces. Each is recorded like every lab
// daemon (PID + marker), so `lab down` stops whatever a crashed test left running.

import { readFileSync } from 'node:fs';
import { NODE_BIN, REPO_ROOT, daemonAlive, readDaemons, startDaemon, stopDaemon } from './exec.ts';
import type { DaemonRecord } from './exec.ts';
import { ENTRY, NODE_FLAGS } from '../../src/runtime.ts';
import { bundle } from '../../scripts/bundle.ts';
import { kubeconfigPath } from './controlplane.ts';
import type { Identity } from './controlplane.ts';

export interface Component {
  readonly name: string;
  readonly rec: DaemonRecord;
  alive(): boolean;
  /** SIGTERM and wait (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL: a crash. Resolves once the process is gone (its sockets closed). */
  kill(): Promise<void>;
  log(): string;
}

function component(rec: DaemonRecord): Component {
  return {
    name: rec.name,
    rec,
    alive: () => daemonAlive(rec),
    stop: async (graceMs = 5000) => {
      await stopDaemon(rec, graceMs);
    },
    kill: async () => {
      if (daemonAlive(rec)) process.kill(rec.pid, 'SIGKILL');
      for (let i = 0; i < 250 && daemonAlive(rec); i++) await new Promise((r) => setTimeout(r, 20));
    },
    log: () => {
      try {
        return readFileSync(rec.log, 'utf8');
      } catch {
        return '';
      }
    },
  };
}

/** Stops every allocator and agent the lab runs (a demo's, a crashed test's), so a test starts clean. */
export async function stopAllComponents(): Promise<void> {
  const ours = readDaemons().filter((r) => r.name.startsWith('allocator-') || r.name.startsWith('agent-') || r.name === 'peers');
  await Promise.all(ours.map((r) => stopDaemon(r, 5000)));
}

export interface AllocatorProcessOptions {
  /** Unique within the lab: part of the process marker and log name. */
  id: string;
  /** Namespace of the ServiceGroups and the Lease. */
  namespace: string;
  identity?: Identity;
  /** Or a kubeconfig file (e.g. for a ServiceAccount token). */
  kubeconfig?: string;
  metricsPort: number;
  env?: Record<string, string>;
  /** Recorded under a name that stopAllComponents does not match (see e2e/allocator/kit.ts). */
  unmanaged?: boolean;
}

/** Starts the allocator's bundle (rebuilt first if a source changed) with `env` passed through the environment. */
export function startAllocator(opts: AllocatorProcessOptions): Component {
  const kind = opts.unmanaged ? 'test-allocator' : 'allocator';
  const marker = `purelb-lab-${kind}-${opts.id}`;
  const env = {
    KUBECONFIG: opts.kubeconfig ?? kubeconfigPath(opts.identity ?? 'admin'),
    PURELB_NAMESPACE: opts.namespace,
    PURELB_METRICS_PORT: String(opts.metricsPort),
    PURELB_METRICS_HOST: '127.0.0.1',
    POD_NAME: `allocator-${opts.id}`,
    ...opts.env,
  };
  const argv = ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), NODE_BIN, ...NODE_FLAGS.allocator, bundled('allocator'), marker];
  return component(startDaemon(`${kind}-${opts.id}`, argv, marker));
}

/** The component's bundle, as the image runs it; rebuilt when a source is newer. */
function bundled(component: keyof typeof ENTRY): string {
  bundle();
  return `${REPO_ROOT}/${ENTRY[component]}`;
}

export interface AgentProcessOptions {
  /** The node namespace (and Node name) it runs in. */
  node: string;
  /** Namespace of LBNodeAgents, ServiceGroups and member Leases. */
  namespace: string;
  identity?: Identity;
  kubeconfig?: string;
  env?: Record<string, string>;
}

export interface PeersProcessOptions {
  /** How many synthetic members (bench/peers.ts). */
  count: number;
  /** The network namespace they run in, and its address on the nodes' LAN. */
  ns: string;
  address: string;
  subnets: readonly string[];
  namespace: string;
  env?: Record<string, string>;
}

/** Synthetic members with real Lease and heartbeat code (bench/peers.ts), for measuring an agent among many peers. */
export function startPeers(opts: PeersProcessOptions): Component {
  const marker = `purelb-lab-peers-${opts.count}`;
  const env = {
    KUBECONFIG: kubeconfigPath('admin'),
    PURELB_NAMESPACE: opts.namespace,
    PEER_ADDRESS: opts.address,
    PEER_SUBNETS: opts.subnets.join(','),
    ...opts.env,
  };
  const argv = ['ip', 'netns', 'exec', opts.ns, 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), NODE_BIN, `${REPO_ROOT}/bench/peers.ts`, String(opts.count), marker];
  return component(startDaemon('peers', argv, marker));
}

/** Starts the agent inside the node's network namespace, as a DaemonSet Pod with hostNetwork would run. */
export function startAgent(opts: AgentProcessOptions): Component {
  const marker = `purelb-lab-agent-${opts.node}`;
  const env = {
    KUBECONFIG: opts.kubeconfig ?? kubeconfigPath(opts.identity ?? 'admin'),
    PURELB_NAMESPACE: opts.namespace,
    NODE_NAME: opts.node,
    ...opts.env,
  };
  const argv = ['ip', 'netns', 'exec', opts.node, 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), NODE_BIN, ...NODE_FLAGS.lbnodeagent, bundled('lbnodeagent'), marker];
  return component(startDaemon(`agent-${opts.node}`, argv, marker));
}
