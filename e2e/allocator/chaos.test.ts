// Restart safety under churn: two allocator processes (leader + standby, short Lease)
// while thousands of Services are created and deleted, and the active leader is
// killed with SIGKILL again and again (a fresh standby is started after each kill). A
// watch records every Service version in the API server's order; the allocator must
// never let two live Services hold one address without a shared sharing key, never
// change an address once assigned, and in the end allocate every live Service.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { V1Service } from '@kubernetes/client-node';
import { Informer } from '../../src/k8s/informer.ts';
import { kubeconfigPath } from '../lab/controlplane.ts';
import { PATHS } from '../../src/k8s/api.ts';
import { loadConnection } from '../../src/k8s/connection.ts';
import { loadKubeConfig } from '../../src/k8s/kubeconfig.ts';
import { freePort, kubectl, waitUntil } from '../lab/testkit.ts';
import { AddressLedger, answers, applyV6Group, bounded, deleteServices, freshNamespaces, ingressOf, lbService, startTestAllocator } from './kit.ts';
import { percentile } from '../lab/measure.ts';
import type { AllocatorProcess } from './kit.ts';

const NS = 'plb-chaos';
const SG_NS = 'plb-chaos-sg';
const GROUP = 'chaos-pool';
const POOL = '2001:db8:200::/112';
const LEASE = 'purelb-allocator';

const IN_FLIGHT = 20;
/** Paced so that the churn spans many leader changes (a failover takes ~2.5 s). */
const OPS_PER_SECOND = 30;
const MIN_OPS = 2200;
const MIN_KILLS = 6;
const CHURN_LIMIT_MS = 150_000;
const LIVE_LOW = 100;
const LIVE_HIGH = 250;

// Connections are reused (see src/k8s/kubeconfig.ts): thousands of requests, not thousands of handshakes.
const kc = loadKubeConfig(kubeconfigPath('admin'));
const core = kc.makeApiClient(CoreV1Api);
const coordination = kc.makeApiClient(CoordinationV1Api);

interface Candidate {
  id: string;
  port: number;
  proc: AllocatorProcess;
  killed: boolean;
}
const candidates = new Map<string, Candidate>();
let started = 0;
/** Candidates that died without being killed by this test (none expected). */
let lost = 0;

function startCandidate(): Candidate {
  const id = `chaos-${process.pid}-${++started}`;
  const port = freePort();
  const proc = startTestAllocator({
    id,
    namespace: SG_NS,
    metricsPort: port,
    env: { PURELB_LEASE_DURATION_MS: '2000', PURELB_RENEW_DEADLINE_MS: '1500', PURELB_RETRY_PERIOD_MS: '250' },
  });
  const c = { id, port, proc, killed: false };
  candidates.set(`allocator-${id}`, c);
  return c;
}

/** Leader + standby: replaces candidates that are gone, so two are always running. */
function keepTwoCandidates(): void {
  let alive = 0;
  for (const c of candidates.values()) {
    if (c.proc.alive()) alive++;
    else if (!c.killed) {
      c.killed = true;
      lost++;
    }
  }
  for (; alive < 2; alive++) startCandidate();
}

/** The live candidate holding the Lease (and, with `needReady`, serving /readyz 200). */
async function currentLeader(needReady: boolean): Promise<Candidate> {
  let found: Candidate | undefined;
  await waitUntil('a live allocator holds the Lease', 30_000, async () => {
    const lease = await coordination.readNamespacedLease({ name: LEASE, namespace: SG_NS }).catch(() => undefined);
    const c = candidates.get(lease?.spec?.holderIdentity ?? '');
    if (!c || !c.proc.alive() || (needReady && !(await answers(c.port)))) return false;
    found = c;
    return true;
  }, 50);
  return found as Candidate;
}

const transient = (err: unknown): boolean => {
  const code = (err as { code?: number }).code;
  return code === 429 || code === undefined || code >= 500;
};

async function withRetry(what: string, fn: () => Promise<unknown>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await fn();
      return;
    } catch (err) {
      if (attempt >= 5 || !transient(err)) throw new Error(`${what}: ${(err as Error).message}`, { cause: err });
      await sleep(100 * attempt);
    }
  }
}

before(async () => {
  await freshNamespaces(core, [NS], SG_NS);
  await coordination.deleteNamespacedLease({ name: LEASE, namespace: SG_NS }).catch(() => undefined);
  await applyV6Group(SG_NS, GROUP, POOL);
});

after(async () => {
  await Promise.all([...candidates.values()].map((c) => c.proc.stop(3000)));
  await deleteServices(core, NS, 60_000).catch(() => undefined);
  await kubectl(['delete', 'servicegroups', '--all', '-n', SG_NS], { check: false });
});

test('kill -9 of the active allocator during churn: no duplicate, no moved address, everything allocated', { timeout: 240_000 }, async (t) => {
  const ledger = new AddressLedger();
  const watcher = new Informer<V1Service>(loadConnection(kubeconfigPath('admin')), { name: 'chaos-services', path: PATHS.services(NS) });
  watcher.on((e) => ledger.observe(e.type, e.obj));
  await watcher.start();

  keepTwoCandidates();
  await currentLeader(true);

  // Churn: paced, at most IN_FLIGHT requests, the live set kept between LOW and HIGH.
  const live: string[] = [];
  let seq = 0;
  let creates = 0;
  let deletes = 0;
  let kills = 0;
  let stopChurn = false;
  const opMs: number[] = [];
  const t0 = Date.now();
  let nextSlot = t0;
  const churnOver = () => stopChurn || (creates + deletes >= MIN_OPS && kills >= MIN_KILLS) || Date.now() - t0 > CHURN_LIMIT_MS;
  const lane = async (): Promise<void> => {
    while (!churnOver()) {
      // A stall (API server busy) is not made up for with a burst.
      nextSlot = Math.max(nextSlot + 1000 / OPS_PER_SECOND, Date.now() - 500);
      await sleep(Math.max(0, nextSlot - Date.now()));
      const create = live.length < LIVE_LOW || (live.length < LIVE_HIGH && Math.random() < 0.55);
      if (create) {
        const n = seq++;
        const name = `churn-${n}`;
        // Every fifth Service shares an address by key, on a port of its own.
        const body = n % 5 === 0 ? lbService(NS, name, { group: GROUP, sharingKey: `share-${n % 8}`, ports: [{ port: 10_000 + n }] }) : lbService(NS, name, { group: GROUP });
        const started = Date.now();
        await withRetry(`create ${name}`, () => core.createNamespacedService({ namespace: NS, body }));
        opMs.push(Date.now() - started);
        live.push(name);
        creates++;
      } else {
        const [name] = live.splice(Math.floor(Math.random() * live.length), 1);
        if (name === undefined) continue;
        const started = Date.now();
        await withRetry(`delete ${name}`, () => core.deleteNamespacedService({ name, namespace: NS }));
        opMs.push(Date.now() - started);
        deletes++;
      }
    }
  };

  // Chaos: find the leader, let it work a little (sometimes not even until it is
  // ready), SIGKILL it, start a replacement standby.
  const chaos = async (): Promise<void> => {
    while (!churnOver()) {
      keepTwoCandidates();
      const early = kills % 4 === 3;
      const leader = await currentLeader(!early);
      await sleep(early ? Math.random() * 300 : 1000 + Math.random() * 3000);
      if (churnOver()) break;
      leader.killed = true;
      await leader.proc.kill();
      kills++;
      await leader.proc.stop(1000);
    }
  };

  let churnMs: number;
  try {
    await Promise.all([bounded(Array.from({ length: IN_FLIGHT }), IN_FLIGHT, lane), chaos()]);
    churnMs = Date.now() - t0;
    keepTwoCandidates();
    await currentLeader(true);
    await waitUntil('every live Service has an address', 90_000, () => ledger.unallocated().length === 0 && ledger.liveCount === live.length, 200).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; unallocated: ${ledger.unallocated().slice(0, 20).join(', ')} (${ledger.unallocated().length} of ${ledger.liveCount})`);
    });
  } finally {
    stopChurn = true;
    await watcher.stop();
  }

  // The API server's own view agrees with the watch: all allocated, no address twice.
  const items = (await core.listNamespacedService({ namespace: NS })).items;
  assert.equal(items.length, live.length);
  const byIP = new Map<string, V1Service[]>();
  for (const svc of items) {
    assert.equal(ingressOf(svc).length, 1, `${svc.metadata?.name} has ${ingressOf(svc).length} addresses`);
    for (const ip of ingressOf(svc)) byIP.set(ip, [...(byIP.get(ip) ?? []), svc]);
  }
  for (const [ip, holders] of byIP) {
    const keys = new Set(holders.map((s) => s.metadata?.annotations?.['purelb.io/allow-shared-ip'] ?? ''));
    assert.ok(holders.length === 1 || (keys.size === 1 && !keys.has('')), `${ip} is held by ${holders.map((s) => s.metadata?.name).join(', ')}`);
  }

  t.diagnostic(`creates ${creates}, deletes ${deletes}, kills ${kills}, allocators started ${started} (${lost} stopped from outside the test), versions observed ${ledger.versions}, live at the end ${live.length}, churn ${(churnMs / 1000).toFixed(1)} s, request p50 ${percentile(opMs, 50)} ms p99 ${percentile(opMs, 99)} ms`);
  assert.deepEqual(ledger.violations, []);
  assert.ok(creates + deletes >= 2000, `only ${creates + deletes} creates and deletes`);
  assert.ok(kills >= MIN_KILLS, `only ${kills} leaders killed`);
});
