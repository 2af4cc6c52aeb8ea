// Benchmarks that need the lab use the one that is up, or bring one up for the run and
// take it down afterwards; and they time addresses as a watcher of the API sees them.

import type { V1Service } from '@kubernetes/client-node';
import { PATHS } from '../src/k8s/api.ts';
import type { Connection } from '../src/k8s/connection.ts';
import { Informer } from '../src/k8s/informer.ts';
import { ingressOf } from '../e2e/allocator/kit.ts';
import { controlPlaneStatus } from '../e2e/lab/controlplane.ts';
import { labDown, labUp } from '../e2e/lab/lab.ts';
import { networkStatus } from '../e2e/lab/network.ts';

export async function withLab<T>(fn: () => Promise<T>): Promise<T> {
  const up = (await networkStatus()).up && controlPlaneStatus().apiServer !== undefined;
  if (up) return fn();
  // An interrupted run takes down the lab it brought up, as a finished one does.
  const interrupted = (signal: NodeJS.Signals): void => {
    void labDown().finally(() => process.kill(process.pid, signal));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  await labUp();
  try {
    return await fn();
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await labDown();
  }
}

/**
 * When each Service of a namespace was first seen with an address in its status, by
 * name and by address, on `clock` (the process's monotonic clock by default; the
 * agent bench uses wall-clock time, to compare with the kernel's timestamps).
 */
export class AddressWatch {
  readonly byName = new Map<string, number>();
  readonly byIp = new Map<string, number>();
  private readonly informer: Informer<V1Service>;

  constructor(conn: Connection, namespace: string, clock: () => number = () => performance.now()) {
    this.informer = new Informer<V1Service>(conn, {
      name: `bench-${namespace}`,
      path: PATHS.services(namespace),
    });
    this.informer.on((e) => {
      if (e.type === 'delete') return;
      const ips = ingressOf(e.obj);
      if (ips.length === 0) return;
      const now = clock();
      const name = e.obj.metadata?.name ?? '';
      if (!this.byName.has(name)) this.byName.set(name, now);
      for (const ip of ips) if (!this.byIp.has(ip)) this.byIp.set(ip, now);
    });
  }

  start(): Promise<void> {
    return this.informer.start();
  }

  stop(): Promise<void> {
    return this.informer.stop();
  }
}
