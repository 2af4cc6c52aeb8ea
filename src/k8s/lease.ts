// The one read-modify-write of a coordination.k8s.io/v1 Lease, shared by leader
// election and the agents' membership: read it, let the caller decide what to write,
// create it when absent, else replace it guarded by the resourceVersion that was read
// (a concurrent writer makes the replace fail with 409, never lose an update).

import type { V1ObjectMeta } from '@kubernetes/client-node';
import { PATHS } from './api.ts';
import type { Api } from './api.ts';

/** A coordination.k8s.io/v1 Lease as JSON: its times are MicroTime strings (api.ts microTime()). */
export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

export type LeaseApi = Pick<Api, 'get' | 'create' | 'replace'>;

export function httpCode(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? Number((err as { code: unknown }).code) : undefined;
}

/** Rejects when `p` takes longer than `ms`: a hung API server must not hang a renew loop. */
function withTimeout<T>(p: Promise<T>, ms: number | undefined): Promise<T> {
  if (ms === undefined) return p;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * `change` gets the Lease as read (undefined: there is none) and returns the Lease to
 * write, or undefined to write nothing. Resolves true when something was written;
 * errors other than "not found" on the read reject, each call bounded by `timeoutMs`.
 */
export async function writeLease(
  api: LeaseApi,
  namespace: string,
  name: string,
  change: (current: Lease | undefined) => Lease | undefined,
  timeoutMs?: number,
): Promise<boolean> {
  let current: Lease | undefined;
  try {
    current = await withTimeout(api.get<Lease>(PATHS.lease(namespace, name)), timeoutMs);
  } catch (err) {
    if (httpCode(err) !== 404) throw err;
  }
  const next = change(current);
  if (next === undefined) return false;
  if (current === undefined) {
    await withTimeout(api.create(PATHS.leases(namespace), next), timeoutMs);
  } else {
    const body = { ...next, metadata: { ...next.metadata, resourceVersion: current.metadata?.resourceVersion } };
    await withTimeout(api.replace(PATHS.lease(namespace, name), body), timeoutMs);
  }
  return true;
}
