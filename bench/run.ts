// Benchmark harness: `node bench/run.ts` runs every suite, `node bench/run.ts ipam`
// one. Each figure goes on its own line as `<suite>.<name> <value> <unit>`, so runs
// compare line by line. A suite is a module here exporting `run(report)`; add it to
// SUITES to make it known.

import { spawnSync } from 'node:child_process';

export type Report = (name: string, value: number, unit: string) => void;

export interface Suite {
  run(report: Report): Promise<void> | void;
}

const SUITES: Readonly<Record<string, () => Promise<Suite>>> = {
  ipam: () => import('./ipam.ts'),
  netlink: () => import('./netlink.ts'),
  announce: () => import('./announce.ts'),
  allocator: () => import('./allocator.ts'),
  agent: () => import('./agent.ts'),
  failover: () => import('./failover.ts'),
  cluster: () => import('./cluster.ts'),
  scale: () => import('./scale.ts'),
  'old-kernel': () => import('./old-kernel.ts'),
  takeover: () => import('./takeover.ts'),
  image: () => import('./image.ts'),
};

function formatValue(value: number): string {
  if (Number.isInteger(value) || Math.abs(value) >= 100) return String(Math.round(value));
  return String(Number(value.toPrecision(3)));
}

async function main(names: readonly string[]): Promise<number> {
  const unknown = names.filter((n) => !Object.hasOwn(SUITES, n));
  if (unknown.length > 0) {
    console.error(`unknown suite ${unknown.join(', ')}; known: ${Object.keys(SUITES).join(', ')}`);
    return 2;
  }
  // Memory figures need a full collection on demand.
  if (typeof globalThis.gc !== 'function') {
    const rerun = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
    });
    return rerun.status ?? 1;
  }
  for (const name of names.length > 0 ? names : Object.keys(SUITES)) {
    const load = SUITES[name] as () => Promise<Suite>;
    const suite = await load();
    await suite.run((metric, value, unit) => console.log(`${name}.${metric} ${formatValue(value)} ${unit}`));
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
