// One ServiceGroup's addresses: per family, its ranges in order, which addresses are
// taken, who holds each, and which address each sharing key is bound to.

import { formatAddress, formatCidr } from './address.ts';
import type { Address, Family } from './address.ts';
import type { PoolConfig } from './group.ts';
import { Occupancy } from './occupancy.ts';
import { spanContains, spanSize } from './range.ts';
import type { AddressRange } from './range.ts';
import { fail, ok } from './result.ts';
import type { Result } from './result.ts';
import { SharingKeys, sharingRefusal } from './sharing.ts';
import type { RefusalReason, Sharer } from './sharing.ts';

export type FailureReason =
  | 'UnknownPool'
  | 'InvalidRequest'
  | 'NoRange'
  | 'OutsidePool'
  | 'AddressInUse'
  | 'PortConflict'
  | 'SharingKeyBound'
  | 'PoolExhausted';

/** Why an allocation was refused, worded for an `AllocationFailed` Event. */
export interface AllocationFailure<R extends FailureReason = FailureReason> {
  readonly reason: R;
  readonly message: string;
  readonly family?: Family;
  readonly address?: string;
}

export interface RangeSlot {
  readonly range: AddressRange;
  readonly taken: Occupancy;
  readonly space: FamilySpace;
  /** The subnet in canonical form, formatted once. */
  readonly subnet: string;
}

/** One address a Service holds; `slot` is undefined when it lies outside every range. */
export interface Held {
  readonly family: Family;
  readonly value: bigint;
  readonly slot: RangeSlot | undefined;
}

/** A Service's hold on addresses: what the sharing rules see, and what it holds. */
export interface Claim extends Sharer {
  readonly pool: string | undefined;
  held: readonly Held[];
}

export interface RangeStats {
  readonly field: string;
  readonly pool: string;
  readonly size: bigint;
  readonly inUse: bigint;
}

export interface FamilyStats {
  readonly size: bigint;
  readonly inUse: bigint;
  readonly available: bigint;
  readonly ranges: readonly RangeStats[];
}

export interface PoolStats {
  readonly name: string;
  readonly IPv4: FamilyStats;
  readonly IPv6: FamilyStats;
}

export class FamilySpace {
  readonly pool: string;
  readonly family: Family;
  readonly slots: readonly RangeSlot[];
  // Most addresses have one holder, stored bare to keep memory per allocation low.
  readonly #holders = new Map<bigint, Claim | Claim[]>();
  readonly #keys = new SharingKeys();

  constructor(pool: string, family: Family, ranges: readonly AddressRange[]) {
    this.pool = pool;
    this.family = family;
    this.slots = ranges.map((range) => ({
      range,
      taken: new Occupancy(range.first, range.last),
      space: this,
      subnet: formatCidr(range.subnet),
    }));
  }

  slotOf(value: bigint): RangeSlot | undefined {
    return this.slots.find((s) => spanContains(s.range, this.family, value));
  }

  holders(value: bigint): readonly Claim[] {
    const holders = this.#holders.get(value);
    return holders === undefined ? [] : Array.isArray(holders) ? holders : [holders];
  }

  /** Records `claim` as a holder of `value`, without checking any rule. */
  hold(claim: Claim, value: bigint, slot: RangeSlot): void {
    const holders = this.#holders.get(value);
    if (holders === undefined) {
      this.#holders.set(value, claim);
      slot.taken.take(value);
    } else if (Array.isArray(holders)) {
      holders.push(claim);
    } else {
      this.#holders.set(value, [holders, claim]);
    }
    if (claim.sharingKey !== undefined) this.#keys.bind(claim.sharingKey, value);
  }

  /** Holds a value `choose` returned, and describes it. */
  holdNew(claim: Claim, value: bigint): Held {
    const slot = this.slotOf(value) as RangeSlot;
    this.hold(claim, value, slot);
    return { family: this.family, value, slot };
  }

  unhold(claim: Claim, value: bigint, slot: RangeSlot): void {
    const holders = this.#holders.get(value);
    const at = holders === claim ? 0 : Array.isArray(holders) ? holders.indexOf(claim) : -1;
    if (holders === undefined || at < 0) return;
    if (Array.isArray(holders) && holders.length > 1) {
      holders.splice(at, 1);
    } else {
      this.#holders.delete(value);
      slot.taken.free(value);
    }
    if (claim.sharingKey !== undefined) this.#keys.unbind(claim.sharingKey, value);
  }

  /** Why `claim` may not hold `value` within `scope`, or undefined when it may. */
  check(
    claim: Claim,
    value: bigint,
    scope: readonly RangeSlot[],
  ): AllocationFailure<'SharingKeyBound' | RefusalReason> | undefined {
    const bound = this.#bound(claim, scope);
    if (bound.length > 0 && !bound.includes(value)) {
      const address = formatAddress(this.family, value);
      const to = bound.map((v) => formatAddress(this.family, v)).join(', ');
      const message = `sharing key "${claim.sharingKey}" is bound to ${to}, not ${address}`;
      return { reason: 'SharingKeyBound', message, family: this.family, address };
    }
    const refusal = sharingRefusal(this.holders(value), claim);
    if (refusal === undefined) return undefined;
    const address = formatAddress(this.family, value);
    return { reason: refusal.reason, message: `${address} ${refusal.detail}`, family: this.family, address };
  }

  /**
   * The address `claim` gets within `scope`: the one it asked for; else the one its
   * sharing key is bound to; else the one it held before, if still free (so that
   * re-allocating never moves a Service without need); else the lowest free one.
   */
  choose(
    claim: Claim,
    scope: readonly RangeSlot[],
    wanted: bigint | undefined,
    previous: readonly bigint[],
    balance: boolean,
  ): Result<bigint, AllocationFailure> {
    if (wanted !== undefined) {
      const refused = this.check(claim, wanted, scope);
      return refused === undefined ? ok(wanted) : fail(refused);
    }
    const bound = this.#bound(claim, scope);
    if (bound.length > 0) {
      const refusals = bound.map((value) => ({ value, refused: this.check(claim, value, scope) }));
      const usable = refusals.find((r) => r.refused === undefined);
      return usable !== undefined ? ok(usable.value) : fail(refusals[0]?.refused as AllocationFailure);
    }
    const again = previous.find((v) => inScope(scope, v) && !this.#holders.has(v));
    if (again !== undefined) return ok(again);
    let best: RangeSlot | undefined;
    for (const slot of scope) {
      if (slot.taken.firstFree() === undefined) continue;
      if (!balance) {
        best = slot;
        break;
      }
      if (best === undefined || slot.taken.used < best.taken.used) best = slot;
    }
    const free = best?.taken.firstFree();
    if (free === undefined) {
      const ranges = scope.map((s) => s.range.pool).join(', ');
      const message = `ServiceGroup ${this.pool} has no free ${this.family} address in ${ranges}`;
      return fail({ reason: 'PoolExhausted', message, family: this.family });
    }
    return ok(free);
  }

  stats(): FamilyStats {
    let size = 0n;
    let inUse = 0n;
    const ranges = this.slots.map(({ range, taken }) => {
      size += spanSize(range);
      inUse += taken.used;
      return { field: range.field, pool: range.pool, size: spanSize(range), inUse: taken.used };
    });
    return { size, inUse, available: size - inUse, ranges };
  }

  #bound(claim: Claim, scope: readonly RangeSlot[]): readonly bigint[] {
    if (claim.sharingKey === undefined) return [];
    return this.#keys.addresses(claim.sharingKey).filter((v) => inScope(scope, v));
  }
}

function inScope(scope: readonly RangeSlot[], value: bigint): boolean {
  return scope.some((s) => s.taken.first <= value && value <= s.taken.last);
}

export class Pool {
  readonly name: string;
  readonly config: PoolConfig;
  readonly #spaces: Readonly<Record<Family, FamilySpace>>;

  constructor(name: string, config: PoolConfig) {
    this.name = name;
    this.config = config;
    this.#spaces = {
      IPv4: new FamilySpace(name, 'IPv4', config.ranges.IPv4),
      IPv6: new FamilySpace(name, 'IPv6', config.ranges.IPv6),
    };
  }

  hasFamily(family: Family): boolean {
    return this.#spaces[family].slots.length > 0;
  }

  slotOf(address: Address): RangeSlot | undefined {
    return this.#spaces[address.family].slotOf(address.value);
  }

  /** The slots one sharing key binding spans: one range with multiPool, else all. */
  scopeOf(slot: RangeSlot): readonly RangeSlot[] {
    return this.config.multiPool ? [slot] : slot.space.slots;
  }

  /**
   * Gives `claim` its `family` address (one per range with multiPool) and records
   * it as the holder. All or nothing: on failure nothing stays taken.
   */
  take(
    claim: Claim,
    family: Family,
    wanted: bigint | undefined,
    previous: readonly bigint[],
  ): Result<Held[], AllocationFailure> {
    const space = this.#spaces[family];
    if (space.slots.length === 0) {
      return fail({ reason: 'NoRange', message: `ServiceGroup ${this.name} has no ${family} range`, family });
    }
    if (wanted !== undefined && space.slotOf(wanted) === undefined) {
      const address = formatAddress(family, wanted);
      const message = `${address} is not in any range of ServiceGroup ${this.name}`;
      return fail({ reason: 'OutsidePool', message, family, address });
    }
    if (!this.config.multiPool) {
      const choice = space.choose(claim, space.slots, wanted, previous, this.config.balancePools);
      return choice.ok ? ok([space.holdNew(claim, choice.value)]) : choice;
    }
    const taken: Held[] = [];
    for (const slot of space.slots) {
      const want = wanted !== undefined && inScope([slot], wanted) ? wanted : undefined;
      const choice = space.choose(claim, [slot], want, previous, false);
      if (!choice.ok) {
        for (const held of taken) if (held.slot !== undefined) space.unhold(claim, held.value, held.slot);
        return choice;
      }
      taken.push(space.holdNew(claim, choice.value));
    }
    return ok(taken);
  }

  stats(): PoolStats {
    return { name: this.name, IPv4: this.#spaces.IPv4.stats(), IPv6: this.#spaces.IPv6.stats() };
  }
}
