// Synthetic members for the agent bench (issue #14: the real agent's heartbeat CPU with
// 30 agents' worth of peers). COUNT real LeaseMemberships, each with a real
// HeartbeatDetector in FastMembership as the agent wires them, in this one process: each
// renews its own Lease with the nodes' subnet and its own UDP endpoint on PEER_ADDRESS,
// so the lab's agents take them as heartbeat peers, send to them and hear them. They
// hold no address: the bench gives them no layer-2 VIP to win.
//
// Each synthetic member sees only the real agents, not the other synthetic ones (OnlyReal
// below): an agent's cost is what it sends to and hears from its 29 peers, and that is
// unchanged; but 27 members that heartbeat each other would cost this one process 27
// agents' worth of CPU at 30 members (7,830 datagrams/s each way), which starved their
// Lease renewals on this two-core machine.
//
//   ip netns exec plb-client node bench/peers.ts COUNT MARKER
//   env: KUBECONFIG, PURELB_NAMESPACE, PEER_ADDRESS, PEER_SUBNETS (comma-separated),
//        PEER_FIRST_PORT, and the agents' PURELB_MEMBER_* / PURELB_HEARTBEAT_* timing.
// Prints "peers ready N" once all have started; SIGTERM says goodbye and deletes the Leases.

import type { V1Secret } from '@kubernetes/client-node';
import { Api, PATHS } from '../src/k8s/api.ts';
import { loadConnection } from '../src/k8s/connection.ts';
import { createLogger } from '../src/log.ts';
import { HeartbeatDetector } from '../src/lbnodeagent/heartbeat/detector.ts';
import { FastMembership, LeaseMembership } from '../src/lbnodeagent/membership.ts';
import type { LeaseSource } from '../src/lbnodeagent/membership.ts';
import type { Member } from '../src/lbnodeagent/desired.ts';

const PREFIX = 'plb-peer-';

/** A synthetic member's Lease membership, seeing itself and the real agents only. */
class OnlyReal implements LeaseSource {
  private readonly inner: LeaseMembership;
  private readonly node: string;

  constructor(inner: LeaseMembership, node: string) {
    this.inner = inner;
    this.node = node;
  }

  get heartbeatEndpoint(): string {
    return this.inner.heartbeatEndpoint;
  }

  set heartbeatEndpoint(endpoint: string) {
    this.inner.heartbeatEndpoint = endpoint;
  }

  members(): Member[] {
    return this.inner.members().filter((m) => m.node === this.node || !m.node.startsWith(PREFIX));
  }

  lapsed(): Member[] {
    return this.inner.lapsed().filter((m) => !m.node.startsWith(PREFIX));
  }

  onChange(listener: () => void): void {
    this.inner.onChange(listener);
  }

  start(subnets: readonly string[], eligible: boolean): Promise<void> {
    return this.inner.start(subnets, eligible);
  }

  publish(subnets: readonly string[], eligible: boolean): Promise<void> {
    return this.inner.publish(subnets, eligible);
  }

  stop(): Promise<void> {
    return this.inner.stop();
  }
}

const env = process.env;
const num = (name: string, fallback: number): number => Number(env[name] ?? fallback);

async function main(): Promise<void> {
  const count = Number(process.argv[2]);
  if (!(count > 0)) throw new Error('usage: peers.ts COUNT MARKER');
  const namespace = env.PURELB_NAMESPACE ?? 'purelb';
  const address = env.PEER_ADDRESS;
  if (!address) throw new Error('PEER_ADDRESS is not set');
  const subnets = (env.PEER_SUBNETS ?? '').split(',').filter((s) => s !== '');
  const conn = loadConnection();
  const log = createLogger('peers', 'warn');
  const secret = await new Api(conn).get<V1Secret>(PATHS.secret(namespace, env.PURELB_HEARTBEAT_SECRET ?? 'purelb-heartbeat'));
  const key = Buffer.from(secret.data?.key ?? '', 'base64');
  if (key.length < 16) throw new Error('no heartbeat key');
  const members: FastMembership[] = [];
  for (let i = 0; i < count; i++) {
    const node = `${PREFIX}${i + 1}`;
    const leases = new LeaseMembership({ conn, namespace, node, leaseDurationMs: num('PURELB_MEMBER_LEASE_MS', 10_000), renewIntervalMs: num('PURELB_MEMBER_RENEW_MS', 2_000), log });
    const detector = new HeartbeatDetector({
      node,
      key,
      bindAddress: address,
      port: num('PEER_FIRST_PORT', 7935) + i,
      intervalMs: num('PURELB_HEARTBEAT_INTERVAL_MS', 100),
      missCount: num('PURELB_HEARTBEAT_MISS', 3),
      log,
    });
    const m = new FastMembership(new OnlyReal(leases, node), detector, node);
    await m.start(subnets, true);
    members.push(m);
  }
  console.log(`peers ready ${members.length}`);
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await Promise.allSettled(members.map((m) => m.stop()));
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

await main();
