// How Node.js is started for each component, wherever it runs: the image's CMD, the
// chart's container commands and the lab all use these flags, and tests check that
// they agree (docs/performance.md has the measurements).
//
// - `--max-semi-space-size=4`: V8 sizes its young generation for the machine, up to
//   32 MiB per semi-space, which a start-up burst (paging through thousands of
//   Services) grows and then keeps resident although a few MiB of it are live. 4 MiB
//   semi-spaces cost a few more scavenges and save about 50 MiB of RSS.
// - `--optimize-for-size` (allocator): V8 trades some speed for a smaller heap and
//   less code; with 10,000 Services the allocator needs about 20 MiB less RSS and its
//   cold start takes about 0.5 s longer. Its throughput is bounded by the API server,
//   not by its own CPU.
// - `--lite-mode` (agent): no JIT compiler (V8's interpreter runs everything; no
//   WebAssembly, which the agent does not use), optimize-for-size, lazily allocated
//   feedback. Idle with 1,000 VIPs the agent's RSS is 48–50 MiB against 81–94 MiB with
//   the JIT compilers and the same other flags, for about 0.7 points more idle CPU
//   (2.45 % against 1.7 % of a core with the default timings); a Service's VIP reaches
//   the kernel as fast (p99 34–44 ms), 1,000 VIPs after a restart in 1.3–1.9 s. Tried
//   alone, each part saves less: jitless 71 MiB, optimize-for-size 64 MiB, no
//   optimizing tiers 74 MiB (docs/performance.md). Every node runs an agent; a few
//   tens of MiB there matter more than a fraction of a percent of a core.
// - `--v8-pool-size=1` (agent): one V8 worker thread instead of one per core: fewer
//   malloc arenas (9.4 → 2.4 MiB resident) for a process that has little to do in
//   parallel.
// - `--heap-growing-percent=20`: after each full collection V8 lets the old
//   generation grow to 1.2 times what survived, instead of up to 4 times. V8 keeps the
//   pages a collection empties (in a process with timers its memory reducer never
//   runs), so the peak of a burst (1,000 VIPs, a restart with 1,000 Services) used to
//   stay resident: idle RSS with 1,000 VIPs 177 MiB, then 124 MiB, peak as well, with
//   the same idle CPU. A memory-reducing collection (`gc({flavor: 'last-resort'})`)
//   gives the pages back too, but pauses 115–160 ms with 1,000 VIPs: too close to the
//   300 ms in which peers declare a silent node dead. The allocator has it too: with
//   10,001 Services its RSS is 112 MiB (peak 114) instead of 166–174 MiB.
//
// Both components also give back, every few minutes, the pages of the node binary they
// no longer touch and the C heap's free pages (src/memory.ts).

export const NODE_FLAGS = {
  allocator: ['--optimize-for-size', '--max-semi-space-size=4', '--heap-growing-percent=20'],
  lbnodeagent: ['--lite-mode', '--max-semi-space-size=4', '--heap-growing-percent=20', '--v8-pool-size=1'],
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
