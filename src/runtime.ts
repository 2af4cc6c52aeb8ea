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
//   counts milliseconds.

export const NODE_FLAGS = {
  allocator: ['--optimize-for-size', '--max-semi-space-size=4'],
  lbnodeagent: ['--max-semi-space-size=4'],
} as const satisfies Record<'allocator' | 'lbnodeagent', readonly string[]>;
