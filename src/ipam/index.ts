// The IPAM's public face: pure address management for the allocator. No Kubernetes
// and no I/O: ServiceGroup specs and Service facts come in as plain values.

export { FAMILIES, formatAddress, parseAddress } from './address.ts';
export type { Address, Family } from './address.ts';
export { parseServiceGroupSpec } from './group.ts';
export type { Announce, PoolConfig } from './group.ts';
export { IPAM } from './ipam.ts';
export type {
  Allocated,
  Allocation,
  AllocationRequest,
  AssignedAddress,
  Reconfigured,
  Reservation,
  ReservationIssue,
  ReservationReason,
} from './ipam.ts';
export { findOverlaps } from './overlap.ts';
export type { NamedRanges, Overlap, RangeRef } from './overlap.ts';
export type { AllocationFailure, FailureReason, FamilyStats, PoolStats, RangeStats } from './pool.ts';
export { formatSpan, parsePool, parseRange, spanSize } from './range.ts';
export type { AddressRange, RangeContext, RangeSpec, Span } from './range.ts';
export type { FieldIssue, Result, Validated } from './result.ts';
export type { Port } from './sharing.ts';
