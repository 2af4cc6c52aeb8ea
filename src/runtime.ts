// How Node.js is started for the components, wherever they run: the image's CMD, the
// chart's container commands and the lab all use these flags, and tests check that
// they agree. V8 sizes its young generation for the machine: up to 32 MiB per
// semi-space, which a start-up burst (paging through thousands of Services) grows and
// then keeps resident although a few MiB of it are live. With 4 MiB semi-spaces the
// allocator holding 10,000 Services needs about 50 MiB less RSS, for a few more
// scavenges (docs/performance.md).

export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
