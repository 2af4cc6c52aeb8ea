// The registry of pools, keyed by ServiceGroup name, and of what every Service holds.
// The allocator's only view of addresses: it registers what Services already hold
// (`reserve`) before it hands out anything new (`allocate`), and gives addresses
// back with `release`.

import { FAMILIES, formatAddress, parseAddress } from './address.ts';
import type { Address, Family } from './address.ts';
import type { PoolConfig } from './group.ts';
import { findOverlaps } from './overlap.ts';
import type { Overlap } from './overlap.ts';
import { Pool } from './pool.ts';
import type { AllocationFailure, Claim, Held, PoolStats, RangeSlot } from './pool.ts';
import { fail, ok } from './result.ts';
import type { Result } from './result.ts';
import { samePorts } from './sharing.ts';
import type { Port } from './sharing.ts';

export interface AllocationRequest {
  /** The ServiceGroup to allocate from. */
  readonly pool: string;
  /** One address per family (per range with multiPool), all or none. */
  readonly families: readonly Family[];
  /** Specific addresses (`purelb.io/addresses`, `loadBalancerIP`), at most one per family. */
  readonly addresses?: readonly string[];
  /** `purelb.io/allow-shared-ip`; empty means no sharing. */
  readonly sharingKey?: string;
  readonly ports?: readonly Port[];
}

/** What a Service already holds, as found at start-up or after a configuration change. */
export interface Reservation {
  /** The group it was allocated from (`purelb.io/allocated-from`), if known. */
  readonly pool?: string;
  readonly addresses: readonly string[];
  readonly sharingKey?: string;
  readonly ports?: readonly Port[];
}

export interface AssignedAddress {
  readonly family: Family;
  readonly address: string;
  /** Group, subnet and aggregation of the range; undefined outside every range. */
  readonly pool?: string;
  readonly subnet?: string;
  readonly aggregation?: number;
}

export interface Allocation {
  readonly service: string;
  readonly pool: string | undefined;
  readonly addresses: readonly AssignedAddress[];
}

export interface Allocated extends Allocation {
  /** False when the Service already held exactly these addresses. */
  readonly changed: boolean;
}

export type ReservationReason =
  | 'InvalidAddress'
  | 'UnknownPool'
  | 'OutsideNamedPool'
  | 'OutsideEveryRange'
  | 'AddressInUse'
  | 'PortConflict'
  | 'SharingKeyBound';

/** Something wrong with an existing allocation; it is registered anyway. */
export interface ReservationIssue {
  readonly service: string;
  readonly address: string;
  readonly reason: ReservationReason;
  readonly message: string;
}

export interface Reconfigured {
  readonly ipam: IPAM;
  readonly issues: readonly ReservationIssue[];
}

const NO_PORTS: readonly Port[] = [];

export class IPAM {
  readonly #pools: ReadonlyMap<string, Pool>;
  readonly #claims = new Map<string, Claim>();

  private constructor(pools: ReadonlyMap<string, Pool>) {
    this.#pools = pools;
  }

  /** Pools must not overlap (else one address could be handed out twice); the overlaps are returned instead. */
  static build(configs: Iterable<readonly [string, PoolConfig]>): Result<IPAM, readonly Overlap[]> {
    const entries = [...configs];
    const overlaps = findOverlaps(
      entries.map(([group, config]) => ({ group, ranges: [...config.ranges.IPv4, ...config.ranges.IPv6] })),
    );
    if (overlaps.length > 0) return fail(overlaps);
    return ok(new IPAM(new Map(entries.map(([name, config]) => [name, new Pool(name, config)]))));
  }

  /**
   * A new IPAM for new pool configurations that keeps every existing allocation:
   * pool edits never move an address. Allocations the new pools no longer cover
   * are kept and reported.
   */
  reconfigure(configs: Iterable<readonly [string, PoolConfig]>): Result<Reconfigured, readonly Overlap[]> {
    const built = IPAM.build(configs);
    if (!built.ok) return built;
    const issues: ReservationIssue[] = [];
    for (const claim of this.#claims.values()) {
      issues.push(
        ...built.value.reserve(claim.service, {
          ...(claim.pool === undefined ? {} : { pool: claim.pool }),
          addresses: claim.held.map((h) => formatAddress(h.family, h.value)),
          ...(claim.sharingKey === undefined ? {} : { sharingKey: claim.sharingKey }),
          ports: claim.ports,
        }),
      );
    }
    return ok({ ipam: built.value, issues });
  }

  get poolNames(): readonly string[] {
    return [...this.#pools.keys()];
  }

  poolConfig(name: string): PoolConfig | undefined {
    return this.#pools.get(name)?.config;
  }

  /** The group whose ranges contain `address`, for `purelb.io/addresses` without a group. */
  poolOf(address: string): string | undefined {
    const parsed = parseAddress(address);
    return parsed === undefined ? undefined : this.#slotOf(parsed)?.space.pool;
  }

  /**
   * Makes `service` hold addresses that satisfy `request`. Idempotent; an address
   * the Service already holds is kept whenever the request still allows it. All or
   * nothing: on failure the Service keeps exactly what it held before.
   */
  allocate(service: string, request: AllocationRequest): Result<Allocated, AllocationFailure> {
    const pool = this.#pools.get(request.pool);
    if (pool === undefined) {
      return fail({ reason: 'UnknownPool', message: `ServiceGroup ${request.pool} does not exist` });
    }
    const wanted = wantedAddresses(request);
    if (!wanted.ok) return wanted;
    const sharingKey = keyOf(request.sharingKey);
    const ports = request.ports ?? NO_PORTS;
    const old = this.#claims.get(service);
    if (old !== undefined && satisfies(old, pool, request, wanted.value, sharingKey, ports)) {
      return ok({ ...this.#describe(old), changed: false });
    }

    if (old !== undefined) unholdAll(old);
    const claim: Claim = { service, pool: pool.name, sharingKey, ports, held: [] };
    for (const family of request.families) {
      const previous = old?.held.filter((h) => h.family === family).map((h) => h.value) ?? [];
      const taken = pool.take(claim, family, wanted.value.get(family), previous);
      if (!taken.ok) {
        unholdAll(claim);
        if (old !== undefined) holdAll(old);
        return taken;
      }
      claim.held = claim.held.length === 0 ? taken.value : [...claim.held, ...taken.value];
    }
    this.#claims.set(service, claim);
    return ok({ ...this.#describe(claim), changed: old === undefined || !sameHeld(old, claim) });
  }

  /** Gives back everything `service` holds; an address is free once its last holder leaves. */
  release(service: string): readonly AssignedAddress[] {
    const claim = this.#claims.get(service);
    if (claim === undefined) return [];
    unholdAll(claim);
    this.#claims.delete(service);
    return this.#describe(claim).addresses;
  }

  /**
   * Registers what `service` already holds, exactly as found: nothing is dropped or
   * moved, even where the rules would refuse it today. Problems are returned for
   * Events and conditions, and an address outside every range is kept as well.
   */
  reserve(service: string, reservation: Reservation): readonly ReservationIssue[] {
    const old = this.#claims.get(service);
    if (old !== undefined) {
      unholdAll(old);
      this.#claims.delete(service);
    }
    const issues: ReservationIssue[] = [];
    const report = (address: string, reason: ReservationReason, message: string): void => {
      issues.push({ service, address, reason, message });
    };
    const named = reservation.pool === undefined ? undefined : this.#pools.get(reservation.pool);
    if (reservation.pool !== undefined && named === undefined) {
      report('', 'UnknownPool', `ServiceGroup ${reservation.pool} of ${service} does not exist`);
    }
    const found: Held[] = [];
    for (const address of distinctAddresses(reservation.addresses)) {
      if (typeof address === 'string') {
        report(address, 'InvalidAddress', `${service} holds "${address}", which is not an IP address`);
      } else {
        found.push({ ...address, slot: named?.slotOf(address) ?? this.#slotOf(address) });
      }
    }
    if (found.length === 0) return issues;
    const claim: Claim = {
      service,
      pool: named?.name ?? found.find((h) => h.slot !== undefined)?.slot?.space.pool,
      sharingKey: keyOf(reservation.sharingKey),
      ports: reservation.ports ?? NO_PORTS,
      held: found,
    };
    for (const { family, value, slot } of found) {
      const text = formatAddress(family, value);
      if (slot === undefined) {
        report(text, 'OutsideEveryRange', `${text} of ${service} is outside every ServiceGroup range`);
        continue;
      }
      if (named !== undefined && slot.space.pool !== named.name) {
        report(text, 'OutsideNamedPool', `${text} of ${service} is in ServiceGroup ${slot.space.pool}, not ${named.name}`);
      }
      const pool = this.#pools.get(slot.space.pool) as Pool;
      const refused = slot.space.check(claim, value, pool.scopeOf(slot));
      if (refused !== undefined) report(text, refused.reason, `${service}: ${refused.message}`);
      slot.space.hold(claim, value, slot);
    }
    this.#claims.set(service, claim);
    return issues;
  }

  allocation(service: string): Allocation | undefined {
    const claim = this.#claims.get(service);
    return claim === undefined ? undefined : this.#describe(claim);
  }

  get services(): readonly string[] {
    return [...this.#claims.keys()];
  }

  /** Sizes and use per pool, exact for any range size. */
  stats(): readonly PoolStats[] {
    return [...this.#pools.values()].map((p) => p.stats());
  }

  /** Held addresses that lie outside every range: kept until the user acts. */
  outsideRanges(): readonly { readonly service: string; readonly address: string }[] {
    const found = [];
    for (const claim of this.#claims.values()) {
      for (const h of claim.held) {
        if (h.slot === undefined) found.push({ service: claim.service, address: formatAddress(h.family, h.value) });
      }
    }
    return found;
  }

  #slotOf(address: Address): RangeSlot | undefined {
    for (const pool of this.#pools.values()) {
      const slot = pool.slotOf(address);
      if (slot !== undefined) return slot;
    }
    return undefined;
  }

  #describe(claim: Claim): Allocation {
    return { service: claim.service, pool: claim.pool, addresses: claim.held.map(assigned) };
  }
}

function assigned(held: Held): AssignedAddress {
  const address = formatAddress(held.family, held.value);
  if (held.slot === undefined) return { family: held.family, address };
  const { space, subnet, range } = held.slot;
  return { family: held.family, address, pool: space.pool, subnet, aggregation: range.aggregation };
}

function keyOf(sharingKey: string | undefined): string | undefined {
  return sharingKey === undefined || sharingKey === '' ? undefined : sharingKey;
}

/** The specific address wanted per family, checked against the requested families. */
function wantedAddresses(request: AllocationRequest): Result<Map<Family, bigint>, AllocationFailure> {
  const invalid = (message: string, address?: string): Result<never, AllocationFailure> =>
    fail({ reason: 'InvalidRequest', message, ...(address === undefined ? {} : { address }) });
  const families = request.families;
  if (families.length === 0 || new Set(families).size !== families.length || !families.every((f) => FAMILIES.includes(f))) {
    return invalid(`families must name IPv4 and/or IPv6 once each, got [${families.join(', ')}]`);
  }
  const wanted = new Map<Family, bigint>();
  for (const text of request.addresses ?? []) {
    const address = parseAddress(text.trim());
    if (address === undefined) return invalid(`"${text}" is not an IP address`, text);
    if (!families.includes(address.family)) return invalid(`${text} is ${address.family}, not one of the requested families`, text);
    if (wanted.has(address.family)) return invalid(`more than one ${address.family} address requested`, text);
    wanted.set(address.family, address.value);
  }
  return ok(wanted);
}

/** Addresses parsed and deduplicated; what does not parse is passed on as text. */
function distinctAddresses(texts: readonly string[]): (Address | string)[] {
  const seen = new Set<string>();
  const out: (Address | string)[] = [];
  for (const text of texts) {
    const address = parseAddress(text.trim());
    const key = address === undefined ? text : `${address.family}/${address.value}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(address ?? text);
  }
  return out;
}

/** Whether what `claim` holds already answers the request, so nothing need change. */
function satisfies(
  claim: Claim,
  pool: Pool,
  request: AllocationRequest,
  wanted: ReadonlyMap<Family, bigint>,
  sharingKey: string | undefined,
  ports: readonly Port[],
): boolean {
  // Addresses a pool edit left outside the pool still count: they are kept until
  // the request changes, never moved behind the user's back.
  if (claim.pool !== pool.name || claim.sharingKey !== sharingKey || !samePorts(claim.ports, ports)) return false;
  // Addresses are listed in the requested family order (the Service's primary first).
  const order = [...new Set(claim.held.map((h) => h.family))];
  if (order.join() !== request.families.join()) return false;
  for (const family of request.families) {
    const held = claim.held.filter((h) => h.family === family);
    if (held.length !== (pool.config.multiPool ? pool.config.ranges[family].length : 1)) return false;
    const want = wanted.get(family);
    if (want !== undefined && !held.some((h) => h.value === want)) return false;
  }
  return true;
}

function sameHeld(a: Claim, b: Claim): boolean {
  return a.held.length === b.held.length && a.held.every((h, i) => h.value === b.held[i]?.value && h.family === b.held[i]?.family);
}

function holdAll(claim: Claim): void {
  for (const { value, slot } of claim.held) slot?.space.hold(claim, value, slot);
}

function unholdAll(claim: Claim): void {
  for (const { value, slot } of claim.held) slot?.space.unhold(claim, value, slot);
}
