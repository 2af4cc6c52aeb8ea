// The takeover from a real MetalLB (issue #13): the client's longest gap per VIP while
// MetalLB's controller and speakers give way to purelb-ts's allocator and agents
// (e2e/allocator/takeover-kit.ts), in the doc's order (speakers removed, then agents
// started) and the other way round, PURELB_BENCH_TAKEOVER_TRIALS times each (default 2).
// `cold`: VIPs whose ARP entry the client lost when the speakers stopped; `warm`: VIPs
// whose entry it kept.

import { cleanUp, setUpTakeoverLab, takeover } from '../e2e/allocator/takeover-kit.ts';
import type { Order } from '../e2e/allocator/takeover-kit.ts';
import { percentile } from '../e2e/lab/measure.ts';
import { withLab } from './lab.ts';
import type { Report } from './run.ts';

const TRIALS = Math.min(10, Math.max(1, Number(process.env.PURELB_BENCH_TAKEOVER_TRIALS ?? 2)));

export async function run(report: Report): Promise<void> {
  await withLab(async () => {
    await setUpTakeoverLab();
    try {
      for (const order of ['speakers first', 'agents first'] as const satisfies readonly Order[]) {
        const cold: number[] = [];
        const warm: number[] = [];
        const switchMs: number[] = [];
        for (let i = 0; i < TRIALS; i++) {
          const o = await takeover(order);
          cold.push(...o.cold);
          warm.push(...o.warm);
          switchMs.push(o.switchMs);
        }
        const key = order.replace(' ', '_');
        report(`${key}_trials`, TRIALS, 'count');
        report(`${key}_cold_gap_p50`, percentile(cold, 50), 'ms');
        report(`${key}_cold_gap_max`, Math.max(...cold), 'ms');
        report(`${key}_warm_gap_p50`, percentile(warm, 50), 'ms');
        report(`${key}_warm_gap_max`, Math.max(...warm), 'ms');
        report(`${key}_switch_p50`, percentile(switchMs, 50), 'ms');
      }
    } finally {
      await cleanUp();
    }
  });
}
