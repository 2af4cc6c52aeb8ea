// Address sharing, as in PureLB and MetalLB: Services may hold the same address only
// when they carry the same non-empty sharing key (`purelb.io/allow-shared-ip`) and no
// two of them listen on the same protocol and port.

export interface Port {
  readonly protocol: string;
  readonly port: number;
}

/** What the sharing rules need to know about a Service holding or wanting an address. */
export interface Sharer {
  readonly service: string;
  readonly sharingKey: string | undefined;
  readonly ports: readonly Port[];
}

export type RefusalReason = 'AddressInUse' | 'PortConflict';

export interface Refusal {
  readonly reason: RefusalReason;
  /** Completes "address X ...", e.g. `is in use by ns/a without a sharing key`. */
  readonly detail: string;
}

/** Why `newcomer` may not join `holders` on one address, or undefined when it may. */
export function sharingRefusal(holders: readonly Sharer[], newcomer: Sharer): Refusal | undefined {
  for (const holder of holders) {
    if (newcomer.sharingKey === undefined || holder.sharingKey !== newcomer.sharingKey) {
      return { reason: 'AddressInUse', detail: `is in use by ${holder.service} ${keyPhrase(holder.sharingKey)}` };
    }
  }
  for (const holder of holders) {
    const clash = newcomer.ports.find((p) => holder.ports.some((q) => q.protocol === p.protocol && q.port === p.port));
    if (clash !== undefined) {
      return { reason: 'PortConflict', detail: `already serves ${clash.protocol}/${clash.port} for ${holder.service}` };
    }
  }
  return undefined;
}

function keyPhrase(key: string | undefined): string {
  return key === undefined ? 'without a sharing key' : `with sharing key "${key}"`;
}

export function samePorts(a: readonly Port[], b: readonly Port[]): boolean {
  return a.length === b.length && a.every((p, i) => p.protocol === b[i]?.protocol && p.port === b[i]?.port);
}

/**
 * Which addresses each sharing key is bound to, counted per holder so the binding
 * ends with the last holder. Start-up may register conflicting holders, so a key
 * can end up bound to more than one address; allocation then picks among them.
 */
export class SharingKeys {
  readonly #bound = new Map<string, Map<bigint, number>>();

  bind(key: string, value: bigint): void {
    let addresses = this.#bound.get(key);
    if (addresses === undefined) {
      addresses = new Map();
      this.#bound.set(key, addresses);
    }
    addresses.set(value, (addresses.get(value) ?? 0) + 1);
  }

  unbind(key: string, value: bigint): void {
    const addresses = this.#bound.get(key);
    const count = addresses?.get(value);
    if (addresses === undefined || count === undefined) return;
    if (count > 1) addresses.set(value, count - 1);
    else addresses.delete(value);
    if (addresses.size === 0) this.#bound.delete(key);
  }

  addresses(key: string): readonly bigint[] {
    return [...(this.#bound.get(key)?.keys() ?? [])];
  }
}
