// Failover gap on the wire (DESIGN.md §8): hard node loss (the holder's switch port goes
// down) and graceful stop (SIGTERM to the holder's agent), ≥ 20 trials each, measured
// by a client in its own namespace from the fault to the first TCP answer from another
// node. Targets: hard p99 < 1 s, graceful p99 < 0.3 s.

import { failoverTrial, setUpFailoverLab } from '../e2e/lbnodeagent/failover-kit.ts';
import type { Trial } from '../e2e/lbnodeagent/failover-kit.ts';
import { percentile } from '../e2e/lab/measure.ts';
import { withLab } from './lab.ts';
import type { Report } from './run.ts';

const TRIALS = Number(process.env.PURELB_BENCH_FAILOVER_TRIALS ?? 20);
const BASELINE_TRIALS = Number(process.env.PURELB_BENCH_BASELINE_TRIALS ?? 5);
const TARGET_MS = { hard: 1000, graceful: 300 } as const;

function summarize(report: Report, name: string, trials: readonly Trial[]): number[] {
  const gaps = trials.map((t) => t.gapMs).filter((g): g is number => g !== undefined);
  report(`${name}_trials`, trials.length, 'count');
  report(`${name}_no_takeover`, trials.length - gaps.length, 'count');
  report(`${name}_gap_p50`, percentile(gaps, 50), 'ms');
  report(`${name}_gap_p99`, percentile(gaps, 99), 'ms');
  report(`${name}_gap_max`, Math.max(...gaps), 'ms');
  return gaps;
}

export async function run(report: Report): Promise<void> {
  await withLab(async () => {
    const p99 = { hard: NaN, graceful: NaN };
    let hardP50 = NaN;
    const lab = await setUpFailoverLab(6);
    try {
      for (const mode of ['hard', 'graceful'] as const) {
        const trials: Trial[] = [];
        for (let i = 0; i < TRIALS; i++) trials.push(await failoverTrial(lab, lab.vips[i % lab.vips.length] as string, mode));
        const gaps = summarize(report, mode, trials);
        p99[mode] = percentile(gaps, 99);
        if (mode === 'hard') hardP50 = percentile(gaps, 50);
        report(`${mode}_p99_over_target`, p99[mode] / TARGET_MS[mode], 'ratio');
      }
    } finally {
      await lab.close();
    }
    // Side by side, same run: the same agents detecting failures by Lease expiry alone
    // (10 s Leases, PureLB's approach), to show what the heartbeats buy.
    const baseline = await setUpFailoverLab(6, { heartbeats: false, memberLeaseMs: 10_000 });
    try {
      const trials: Trial[] = [];
      for (let i = 0; i < BASELINE_TRIALS; i++) trials.push(await failoverTrial(baseline, baseline.vips[i % baseline.vips.length] as string, 'hard', 20_000));
      const leaseP50 = percentile(summarize(report, 'lease_only_hard', trials), 50);
      report('hard_p50_lease_only_over_heartbeat', leaseP50 / hardP50, 'ratio');
    } finally {
      await baseline.close();
    }
  });
}
