// Benchmarks that need the lab use the one that is up, or bring one up for the run and
// take it down afterwards.

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

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}
