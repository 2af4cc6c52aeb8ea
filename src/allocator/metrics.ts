// The allocator's Prometheus metrics, with PureLB's pool metric names. Pool sizes and
// use are read from the IPAM at scrape time; IPv6 pools larger than 2^53 are reported
// as the nearest float, which is what Prometheus stores anyway.

import { Counter, Gauge } from 'prom-client';
import type { PoolStats } from '../ipam/pool.ts';

export const allocations = new Counter({
  name: 'purelb_allocator_allocations_total',
  help: 'Addresses assigned to Services (a new or moved allocation), by ServiceGroup.',
  labelNames: ['pool'],
});

export const allocationFailures = new Counter({
  name: 'purelb_allocator_allocation_failures_total',
  help: 'Allocations refused, by reason (InvalidRequest, PoolExhausted, AddressInUse, ...).',
  labelNames: ['reason'],
});

export function registerPoolMetrics(stats: () => readonly PoolStats[]): void {
  const perFamily = (name: string, help: string, value: (s: PoolStats, family: 'IPv4' | 'IPv6') => bigint) =>
    new Gauge({
      name,
      help,
      labelNames: ['pool', 'family'],
      collect() {
        this.reset();
        for (const s of stats()) {
          for (const family of ['IPv4', 'IPv6'] as const) {
            if (s[family].size > 0n) this.set({ pool: s.name, family }, Number(value(s, family)));
          }
        }
      },
    });
  perFamily('purelb_address_pool_size', 'Addresses in the ServiceGroup, per family.', (s, f) => s[f].size);
  perFamily('purelb_address_pool_addresses_in_use', 'Addresses of the ServiceGroup held by Services, per family.', (s, f) => s[f].inUse);
}
