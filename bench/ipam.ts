// IPAM throughput and memory: a /16 IPv4 pool filled to 90% and an IPv6 /64 given
// the same number of allocations, then emptied in random order (the worst case for
// the free-run structure, which fragments before it merges again).

import { IPAM, parseServiceGroupSpec } from '../src/ipam/index.ts';
import type { AllocationRequest, Family } from '../src/ipam/index.ts';
import type { Report } from './run.ts';

const FILL = Math.floor(65536 * 0.9);
const HEAP_ALLOCATIONS = 100_000;
const ROUNDS = 3;

function poolOf(family: Family, cidr: string): IPAM {
  const range = { pool: cidr, subnet: cidr, aggregation: 'default' };
  const spec = parseServiceGroupSpec({ remote: family === 'IPv4' ? { v4pool: range } : { v6pool: range } });
  if (!spec.ok) throw new Error(JSON.stringify(spec.errors));
  const built = IPAM.build([['bench', spec.value]]);
  if (!built.ok) throw new Error(built.error[0]?.message);
  return built.value;
}

function names(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `bench/service-${i}`);
}

// A fixed-seed Fisher-Yates shuffle so every run releases in the same order.
function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  let seed = 12345;
  for (let i = out.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

function fill(ipam: IPAM, services: readonly string[], request: AllocationRequest): void {
  for (const service of services) {
    const result = ipam.allocate(service, request);
    if (!result.ok) throw new Error(result.error.message);
  }
}

function opsPerSecond(count: number, work: () => void): number {
  const start = process.hrtime.bigint();
  work();
  return count / (Number(process.hrtime.bigint() - start) / 1e9);
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
}

function throughput(report: Report, label: string, family: Family, cidr: string): void {
  const request = { pool: 'bench', families: [family] };
  const services = names(FILL);
  const releaseOrder = shuffled(services);
  const allocs: number[] = [];
  const releases: number[] = [];
  // Round 0 warms the JIT and is not counted.
  for (let round = 0; round <= ROUNDS; round++) {
    const ipam = poolOf(family, cidr);
    const alloc = opsPerSecond(FILL, () => fill(ipam, services, request));
    const release = opsPerSecond(FILL, () => releaseOrder.forEach((s) => ipam.release(s)));
    if (round > 0) {
      allocs.push(alloc);
      releases.push(release);
    }
  }
  report(`${label}_alloc`, median(allocs), 'ops/s');
  report(`${label}_release`, median(releases), 'ops/s');
}

function heapPer100k(report: Report, label: string, family: Family, cidr: string): void {
  const gc = globalThis.gc as () => void;
  const ipam = poolOf(family, cidr);
  const services = names(HEAP_ALLOCATIONS);
  gc();
  const before = process.memoryUsage().heapUsed;
  fill(ipam, services, { pool: 'bench', families: [family] });
  gc();
  const after = process.memoryUsage().heapUsed;
  report(`${label}_heap_per_100k`, after - before, 'bytes');
  if (ipam.services.length !== HEAP_ALLOCATIONS) throw new Error('allocations lost');
}

export function run(report: Report): void {
  throughput(report, 'v4_16', 'IPv4', '10.0.0.0/16');
  throughput(report, 'v6_64', 'IPv6', '2001:db8::/64');
  heapPer100k(report, 'v4_8', 'IPv4', '10.0.0.0/8');
  heapPer100k(report, 'v6_64', 'IPv6', '2001:db8::/64');
}
