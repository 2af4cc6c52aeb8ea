// Small helpers shared by lab tests: bounded waiting and idempotent namespaces.

import { CoreV1Api } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { kubeConfig } from './kube.ts';
import { binDir, kubeconfigPath } from './controlplane.ts';
import type { Identity } from './controlplane.ts';
import { REPO_ROOT, run, waitUntil as poll } from './exec.ts';
import type { ExecResult } from './exec.ts';
import { toLabAddresses } from './plan.ts';

/** Polls `probe` every `everyMs` until it is true; throws naming `what` after `timeoutMs`. */
export async function waitUntil(what: string, timeoutMs: number, probe: () => boolean | Promise<boolean>, everyMs = 50): Promise<void> {
  await poll(async () => (await probe()) || undefined, { timeoutMs, intervalMs: everyMs, what });
}

export async function ensureNamespace(name: string): Promise<void> {
  const core = kubeConfig().makeApiClient(CoreV1Api);
  try {
    await core.createNamespace({ body: { metadata: { name } } });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
}

/** kubectl of the lab (built with the control plane) as `identity`, bounded in time. */
export async function kubectl(args: string[], opts: { input?: string; identity?: Identity; check?: boolean; timeoutMs?: number } = {}): Promise<ExecResult> {
  return run([path.join(binDir(), 'kubectl'), '--kubeconfig', kubeconfigPath(opts.identity ?? 'admin'), ...args], {
    timeoutMs: opts.timeoutMs ?? 30_000,
    check: opts.check ?? true,
    ...(opts.input === undefined ? {} : { input: opts.input }),
  });
}

/** Installs (or updates) the project's CRDs and waits until they are served. */
export async function applyCRDs(): Promise<void> {
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', path.join(REPO_ROOT, 'crds')]);
  await kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd/servicegroups.purelb.io', 'crd/lbnodeagents.purelb.io']);
}

/** Short allocator Leases, so that tests and benches do not wait out the 15 s default. */
export const FAST_LEASE_ENV: Readonly<Record<string, string>> = { PURELB_LEASE_DURATION_MS: '3000', PURELB_RENEW_DEADLINE_MS: '2000', PURELB_RETRY_PERIOD_MS: '300' };

/** The HTTP status of a GET of `url`, or 0 when nothing answers within a second. */
export async function httpStatus(url: string): Promise<number> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1000) })).status;
  } catch {
    return 0;
  }
}

/** Creates or updates a ServiceGroup with `spec`, in the API version given (v1 by default). */
export async function applyServiceGroup(namespace: string, name: string, spec: unknown, apiVersion = 'purelb.io/v1'): Promise<void> {
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion, kind: 'ServiceGroup', metadata: { name, namespace }, spec }) });
}

/** The reference manifests (examples/purelb-guide), moved into the lab's address ranges. */
export function referenceManifest(file: 'servicegroups.yaml' | 'services.yaml'): string {
  return toLabAddresses(readFileSync(path.join(REPO_ROOT, 'examples', 'purelb-guide', file), 'utf8'));
}

let nextPort = 17_400 + (process.pid % 500);
/** A loopback port for a component's metrics endpoint, distinct within this process. */
export function freePort(): number {
  return nextPort++;
}

/** The Secret holding the agents' heartbeat key, created once per namespace. */
export async function ensureHeartbeatSecret(namespace: string): Promise<void> {
  const core = kubeConfig().makeApiClient(CoreV1Api);
  try {
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'purelb-heartbeat', namespace }, data: { key: randomBytes(32).toString('base64') } },
    });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
}
