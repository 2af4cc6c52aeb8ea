// Create → VIP on Linux 5.10 beside the host kernel (issue: kernels operators have).
// The same trial driver (e2e/lbnodeagent/vip-trials.ts) runs twice against the lab's
// API server and allocator (e2e/lbnodeagent/old-kernel-kit.ts): in a lab node
// namespace on the host kernel, then inside Linux 5.10 under QEMU, where the agent
// keeps the ownership record because the kernel drops IFA_PROTO. Each run times on its
// own kernel's clock. Under software emulation the guest is far slower than the host
// (DEVELOPMENT.md), so its figure bounds what the agent does on that kernel from above;
// the ratio is printed too.

import { percentile } from '../e2e/lab/measure.ts';
import { withOldKernelLab } from '../e2e/lbnodeagent/old-kernel-kit.ts';
import type { VipTrialsResult } from '../e2e/lbnodeagent/vip-trials.ts';
import { withLab } from './lab.ts';
import type { Report } from './run.ts';

const TRIALS = Number(process.env.PURELB_BENCH_OLD_KERNEL_TRIALS ?? 30);

const sorted = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);

function reportRun(report: Report, prefix: string, r: VipTrialsResult): void {
  const create = sorted(r.createToVipMs);
  const del = sorted(r.deleteToWithdrawnMs);
  report(`${prefix}_trials`, create.length, 'count');
  report(`${prefix}_create_to_vip_p50`, percentile(create, 50), 'ms');
  report(`${prefix}_create_to_vip_p99`, percentile(create, 99), 'ms');
  report(`${prefix}_delete_to_withdrawn_p50`, percentile(del, 50), 'ms');
  report(`${prefix}_delete_to_withdrawn_p99`, percentile(del, 99), 'ms');
  report(`${prefix}_agent_start_to_ready`, r.agentReadyMs, 'ms');
}

export async function run(report: Report): Promise<void> {
  await withLab(() =>
    withOldKernelLab(async (lab) => {
      const host = lab.onHost({ trials: TRIALS });
      const guest = lab.inGuest({ trials: TRIALS });
      // The figures mean what they say only if the guest really ran 5.10 with the record.
      if (!guest.kernel.startsWith('5.10.') || guest.ownership !== 'record') throw new Error(`the guest ran Linux ${guest.kernel} with ownership by ${guest.ownership}, not 5.10 with the record`);
      if (host.ownership !== 'marker') throw new Error(`the host agent told its addresses by ${host.ownership}, not the kernel's marker`);
      reportRun(report, 'host', host);
      reportRun(report, 'linux_5_10', guest);
      report('linux_5_10_run_with_boot', guest.seconds, 's');
      report('create_to_vip_p50_5_10_over_host', percentile(sorted(guest.createToVipMs), 50) / percentile(sorted(host.createToVipMs), 50), 'ratio');
    }),
  );
}
