// One agent on Linux 5.10 against the lab: the lab's API server and an allocator on the
// host, the agent inside the guest that scripts/old-kernel.sh boots with QEMU's
// user-mode network (its TCP connections leave as the host's own, so it reaches the
// API server at the host's lab address). The same driver (vip-trials.ts) also runs in
// a lab node namespace on the host kernel, for the figures side by side
// (bench/old-kernel.ts) and for the safety checks on both kernels
// (old-kernel.test.ts).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_ENV, APP_NS, NODES, SG_NS, freshAgentLab } from './failover-kit.ts';
import { applyServiceGroup, freePort, httpStatus, kubectl, waitUntil } from '../lab/testkit.ts';
import { startAllocator } from '../lab/components.ts';
import { kubeconfigPath } from '../lab/controlplane.ts';
import { ensureNodes } from '../lab/kube.ts';
import { NODE_BIN, REPO_ROOT } from '../lab/exec.ts';
import { leaseName } from '../../src/lbnodeagent/membership.ts';
import type { VipTrialsConfig, VipTrialsResult } from './vip-trials.ts';
import type { GuestElectionConfig, GuestElectionResult } from './guest-election.ts';

export const GUEST_NODE = 'plb-k510';
const GROUP = 'k510';
const POOL = '2001:db8:510::';
const DRIVER = join(REPO_ROOT, 'e2e', 'lbnodeagent', 'vip-trials.ts');

export interface OldKernelLab {
  /** The driver in the first lab node's namespace, on the host kernel. */
  onHost(opts: { trials: number; safety?: boolean }): VipTrialsResult;
  /** The driver inside Linux 5.10 under QEMU; `seconds` is the guest run with its boot. */
  inGuest(opts: { trials: number; safety?: boolean }): VipTrialsResult & { seconds: number };
  /** Two agents inside Linux 5.10 on one subnet: a layer-2 VIP moved by election (guest-election.ts). */
  electionInGuest(services: number): GuestElectionResult;
}

export const GUEST_PAIR = [
  { name: 'plb-ga', ip: '10.0.2.21' },
  { name: 'plb-gb', ip: '10.0.2.22' },
];
const LOCAL_GROUP = 'k510-local';
/** In the guest's user-mode network (10.0.2.0/24 inside QEMU): nothing of it reaches a real network. */
const LOCAL_POOL = { subnet: '10.0.2.0/24', pool: '10.0.2.100-10.0.2.115', aggregation: 'default' };
const ELECTION_DRIVER = join(REPO_ROOT, 'e2e', 'lbnodeagent', 'guest-election.ts');

/** A driver's result: the last line of its output that is its JSON. */
function parse<T>(output: string, driver: string): T {
  const line = output.trim().split('\n').reverse().find((l) => l.startsWith('{"kernel"'));
  if (line === undefined) throw new Error(`the ${driver} printed no result:\n${output.slice(-3000)}`);
  return JSON.parse(line) as T;
}

/**
 * With the process lab up: no other component running, a routed IPv6 group, the guest's
 * Node object and an allocator; all of it removed again afterwards.
 */
export async function withOldKernelLab<T>(fn: (lab: OldKernelLab) => Promise<T>): Promise<T> {
  await freshAgentLab(SG_NS, APP_NS, { appKinds: 'svc', clearGroups: false });
  await applyServiceGroup(SG_NS, GROUP, { remote: { v6pool: { subnet: `${POOL}/112`, pool: `${POOL}/112`, aggregation: '/128' } } }, 'purelb.io/v2');
  // The guest's Node object, with its user-mode network address.
  await applyServiceGroup(SG_NS, LOCAL_GROUP, { local: { v4pool: LOCAL_POOL } });
  await ensureNodes([{ name: GUEST_NODE, index: 0, v4: '10.0.2.15', v6: 'fec0::15' }, ...GUEST_PAIR.map((n, i) => ({ name: n.name, index: i, v4: n.ip, v6: `fec0::${21 + i}` }))]);
  const metricsPort = freePort();
  const allocator = startAllocator({ id: 'k510', namespace: SG_NS, metricsPort });
  const dir = mkdtempSync('/var/tmp/plb-k510-');
  try {
    await waitUntil('the allocator to lead', 30_000, async () => (await httpStatus(`http://127.0.0.1:${metricsPort}/leader`)) === 200);
    const config = (node: string, timeoutMs: number, opts: { trials: number; safety?: boolean }): string => {
      const cfg: VipTrialsConfig = {
        adminKubeconfig: kubeconfigPath('admin'),
        agentKubeconfig: kubeconfigPath('admin'), // as the lab's agents (e2e/lab/components.ts)
        node,
        namespace: SG_NS,
        appNamespace: APP_NS,
        serviceGroup: GROUP,
        poolPrefix: POOL,
        trials: opts.trials,
        safety: opts.safety ?? false,
        agentEnv: AGENT_ENV,
        timeoutMs,
      };
      const file = join(dir, `${node}.json`);
      writeFileSync(file, JSON.stringify(cfg));
      return file;
    };
    const hostNode = NODES[0] as string;
    return await fn({
      onHost: (opts) => parse<VipTrialsResult>(execFileSync('ip', ['netns', 'exec', hostNode, NODE_BIN, DRIVER, config(hostNode, 30_000, opts)], { encoding: 'utf8', timeout: 600_000 }), 'trial driver'),
      inGuest: (opts) => {
        const started = Date.now();
        const out = execFileSync('bash', [join(REPO_ROOT, 'scripts', 'old-kernel.sh'), NODE_BIN, DRIVER, config(GUEST_NODE, 120_000, opts)], {
          encoding: 'utf8',
          timeout: 1_200_000,
          env: { ...process.env, PURELB_OLD_KERNEL_NET: 'user' },
        });
        return { ...parse<VipTrialsResult>(out, 'trial driver'), seconds: (Date.now() - started) / 1000 };
      },
      electionInGuest: (services) => {
        const cfg: GuestElectionConfig = {
          adminKubeconfig: kubeconfigPath('admin'),
          namespace: SG_NS,
          appNamespace: APP_NS,
          serviceGroup: LOCAL_GROUP,
          nodes: GUEST_PAIR,
          poolPrefix: '10.0.2.1', // 10.0.2.100-115; the nodes' own .15, .21, .22 do not match
          services,
          agentEnv: AGENT_ENV,
          timeoutMs: 180_000,
        };
        const file = join(dir, 'election.json');
        writeFileSync(file, JSON.stringify(cfg));
        const out = execFileSync('bash', [join(REPO_ROOT, 'scripts', 'old-kernel.sh'), NODE_BIN, ELECTION_DRIVER, file], {
          encoding: 'utf8',
          timeout: 1_200_000,
          env: { ...process.env, PURELB_OLD_KERNEL_NET: 'user' },
        });
        return parse<GuestElectionResult>(out, 'election driver');
      },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await allocator.stop();
    await kubectl(['delete', 'servicegroup', GROUP, '-n', SG_NS, '--ignore-not-found'], { check: false });
    await kubectl(['delete', 'servicegroup', LOCAL_GROUP, '-n', SG_NS, '--ignore-not-found'], { check: false });
    await kubectl(['delete', 'node', GUEST_NODE, ...GUEST_PAIR.map((n) => n.name), '--ignore-not-found'], { check: false });
    await kubectl(['delete', 'lease', '-n', SG_NS, '--ignore-not-found', ...[GUEST_NODE, ...GUEST_PAIR.map((n) => n.name)].map(leaseName)], { check: false });
  }
}
