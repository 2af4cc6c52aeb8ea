// How Node.js is started for each component, wherever it runs: the image's CMD, the
// chart's container commands and the lab all use these flags, and tests check that
// they agree (docs/performance.md has the measurements).
//
// - `--max-semi-space-size=4`: V8 sizes its young generation for the machine, up to
//   32 MiB per semi-space, which a start-up burst (paging through thousands of
//   Services) grows and then keeps resident although a few MiB of it are live. 4 MiB
//   semi-spaces cost a few more scavenges and save about 50 MiB of RSS.
// - `--optimize-for-size` (allocator only): V8 trades some speed for a smaller heap
//   and less code; with 10,000 Services the allocator needs about 20 MiB less RSS and
//   its cold start takes about 0.5 s longer. Its throughput is bounded by the API
//   server, not by its own CPU. The agent keeps V8's defaults: its failover path
//   counts milliseconds, and with this flag and 1,000 VIPs it took 40% of a core for
//   minutes after a burst (measured).
// - `--heap-growing-percent=20` (agent): after each full collection V8 lets the old
//   generation grow to 1.2 times what survived, instead of up to 4 times. V8 keeps the
//   pages a collection empties (in a process with timers its memory reducer never
//   runs), so the peak of a burst (1,000 VIPs, a restart with 1,000 Services) used to
//   stay resident: idle RSS with 1,000 VIPs 177 MiB, now 124 MiB, peak as well, with
//   the same idle CPU. A memory-reducing collection (`gc({flavor: 'last-resort'})`)
//   gives the pages back too, but pauses 115–160 ms with 1,000 VIPs: too close to the
//   300 ms in which peers declare a silent node dead. The allocator has it too: with
//   10,001 Services its RSS is 112 MiB (peak 114) instead of 166–174 MiB.

export const NODE_FLAGS = {
  allocator: ['--optimize-for-size', '--max-semi-space-size=4', '--heap-growing-percent=20'],
  lbnodeagent: ['--max-semi-space-size=4', '--heap-growing-percent=20'],
} as const satisfies Record<'allocator' | 'lbnodeagent', readonly string[]>;

/**
 * What each component runs, relative to the checkout or the image's /app: the bundles
 * of scripts/bundle.ts (one tree-shaken file each; docs/performance.md has the memory
 * they save).
 */
export const ENTRY = {
  allocator: 'dist/allocator.mjs',
  lbnodeagent: 'dist/lbnodeagent.mjs',
} as const satisfies Record<keyof typeof NODE_FLAGS, string>;

/** The whole command line of a component, as the image and the chart write it. */
export const command = (component: keyof typeof NODE_FLAGS): string[] => ['node', ...NODE_FLAGS[component], ENTRY[component]];
