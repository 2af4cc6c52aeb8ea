// The address pool object `{pool, subnet, aggregation}` of a ServiceGroup, and the
// rules that reject a malformed one at admission: unparseable pool or subnet, a family
// that does not match the field (v4pool holding IPv6), a range whose start lies after
// its end, a pool outside its subnet, an aggregation outside the family's bounds.
//
// Kubernetes CEL has no ordering on IP values, so the range-order rule compares
// fixed-width strings: IPv4 octets padded to three digits, IPv6 groups padded to four
// hex digits with the `::` gap filled in. Equal-width keys sort like the numbers.

import * as z from 'zod';
import { admittedCidr, admittedPool, familyNumber, poolFamily, poolInside } from './address.ts';
import type { Cidr, FamilyNumber, PoolSyntax } from './address.ts';
import { withRules } from './rules.ts';
import type { Rule } from './rules.ts';

/** Long enough for two full IPv6 addresses with spaces around the dash. */
export const POOL_MAX_LENGTH = 100;
/** A full IPv6 address and /128. */
export const SUBNET_MAX_LENGTH = 43;
/** `default`. */
export const AGGREGATION_MAX_LENGTH = 7;
export const MIN_AGGREGATION = 8;
/** Longest list of pools per family; it bounds the CEL cost estimate. */
export const MAX_POOLS_PER_FAMILY = 32;

export interface AddressPoolFields {
  pool?: string | undefined;
  subnet?: string | undefined;
  aggregation?: string | undefined;
}

// ---- CEL building blocks: each takes CEL text for a string and returns CEL text. ----

const celIsRange = (p: string) => `${p}.contains('-')`;
const celStart = (p: string) => `${p}.split('-')[0].trim()`;
const celEnd = (p: string) => `${p}.split('-')[1].trim()`;
const celHex = (a: string) => `!(${a}.contains(':') && ${a}.contains('.'))`;
const celPoolParses = (p: string) =>
  `(${celIsRange(p)} ? size(${p}.split('-')) == 2 && ${celHex(celStart(p))} && ${celHex(celEnd(p))} && ` +
  `isIP(${celStart(p)}) && isIP(${celEnd(p)}) : isCIDR(${p}))`;
const celPoolFamilyIs = (p: string, family: FamilyNumber) =>
  `(${celIsRange(p)} ? ip(${celStart(p)}).family() == ${family} && ip(${celEnd(p)}).family() == ${family} : cidr(${p}).ip().family() == ${family})`;
const celPoolFamilyConsistent = (p: string) => `(!${celIsRange(p)} || ip(${celStart(p)}).family() == ip(${celEnd(p)}).family())`;
const celPoolFamily = (p: string) => `(${celIsRange(p)} ? ip(${celStart(p)}).family() : cidr(${p}).ip().family())`;

const celPadGroups = (list: string, width: number) =>
  `${list}.map(g, ('${'0'.repeat(width - 1)}' + g).substring(size(g) - 1)).join('')`;
const celV4Key = (a: string) => celPadGroups(`${a}.split('.')`, 3);
/**
 * 32 hex digits from IPv6 text: groups left of `::`, zeros, groups right of it. It reads
 * the text as written (lower-cased), not `string(ip(a))`, whose length the cost
 * estimator cannot bound; hence no dotted IPv4 tail in range ends.
 */
const celV6Key = (a: string) => {
  const text = `${a}.lowerAscii()`;
  const left = `${text}.split('::')[0].split(':').filter(g, g != '')`;
  const right = `(${text} + '::').split('::')[1].split(':').filter(g, g != '')`;
  const zeros = `'${'0'.repeat(32)}'.substring(0, 4 * (8 - size(${left}) - size(${right})))`;
  return `${celPadGroups(left, 4)} + ${zeros} + ${celPadGroups(right, 4)}`;
};
const celOrderKey = (a: string, family: FamilyNumber | undefined) => {
  if (family === 4) return celV4Key(a);
  if (family === 6) return celV6Key(a);
  return `(ip(${a}).family() == 4 ? ${celV4Key(a)} : ${celV6Key(a)})`;
};

// ---- Rules of one pool object. ----

const EXAMPLES = {
  4: { cidr: '192.0.2.0/28', range: '192.0.2.10-192.0.2.20', subnet: '192.0.2.0/24' },
  6: { cidr: '2001:db8::/120', range: '2001:db8::10-2001:db8::20', subnet: '2001:db8::/64' },
} as const;

const familyName = (family: FamilyNumber) => (family === 4 ? 'IPv4' : 'IPv6');
const bitsOf = (family: FamilyNumber) => (family === 4 ? 32 : 128);

/** Also CEL text: no backslashes. */
const AGGREGATION_PATTERN = '^/[0-9]{1,3}$';

function aggregationFits(aggregation: string | undefined, maxBits: number): boolean {
  if (!aggregation || aggregation === 'default') return true;
  const bits = new RegExp(AGGREGATION_PATTERN).test(aggregation) ? Number(aggregation.slice(1)) : NaN;
  return bits >= MIN_AGGREGATION && bits <= maxBits;
}

const celAggregationFits = (maxBits: string) =>
  `!has(self.aggregation) || self.aggregation == '' || self.aggregation == 'default' || ` +
  `(self.aggregation.matches('${AGGREGATION_PATTERN}') && int(self.aggregation.substring(1)) >= ${MIN_AGGREGATION} && ` +
  `int(self.aggregation.substring(1)) <= ${maxBits})`;

/**
 * `family`: the family the field holds (v4pool: 4), or undefined for the v1 flat
 * `spec.local.{pool,subnet}`, whose fields are optional and where '' means unset (Go
 * clients of PureLB v1 write empty strings for omitted fields).
 */
function addressPoolRules(family: FamilyNumber | undefined): Rule<AddressPoolFields>[] {
  const legacy = family === undefined;
  const celAbsent = (f: string) => (legacy ? `(!has(self.${f}) || self.${f} == '')` : `!has(self.${f})`);
  const celPresent = (f: string) => (legacy ? `(has(self.${f}) && self.${f} != '')` : `has(self.${f})`);
  const absent = (v: string | undefined) => v === undefined || (legacy && v === '');

  const P = 'self.pool';
  const S = 'self.subnet';
  const poolOK = `(${celPresent('pool')} && ${celPoolParses(P)})`;
  const subnetOK = `(${celPresent('subnet')} && isCIDR(${S}))`;
  const pool = (v: AddressPoolFields): PoolSyntax | undefined => (absent(v.pool) ? undefined : admittedPool(v.pool!));
  const subnet = (v: AddressPoolFields) => (absent(v.subnet) ? undefined : admittedCidr(v.subnet!));

  // The pool's ends are of one family, and that family is right for the field (or, for
  // the flat fields, agrees with the subnet's). Range order and containment only make
  // sense after that, so those rules stay silent until it holds.
  const celEndsAgree = family ? celPoolFamilyIs(P, family) : celPoolFamilyConsistent(P);
  const celFamiliesAgree = `${celEndsAgree} && ${family ? family : celPoolFamily(P)} == cidr(${S}).ip().family()`;
  const endsAgree = (p: PoolSyntax) => {
    const f = poolFamily(p);
    return f !== undefined && (!family || familyNumber(f) === family);
  };
  /** Holds vacuously until pool and subnet parse and the pool's ends agree, like the CEL guards. */
  const whenComparable = (v: AddressPoolFields, check: (p: PoolSyntax, s: Cidr) => boolean) => {
    const p = pool(v);
    const s = subnet(v);
    return !p || !s || !endsAgree(p) || check(p, s);
  };

  const ex = EXAMPLES[family ?? 4];
  const rules: Rule<AddressPoolFields>[] = [
    {
      cel: `${celAbsent('pool')} || ${celPoolParses(P)}`,
      message: `pool must be a CIDR (${ex.cidr}) or a range of two addresses (${ex.range}), IPv6 in hex`,
      field: '.pool',
      quote: ['pool'],
      holds: (v) => absent(v.pool) || pool(v) !== undefined,
    },
    {
      cel: family
        ? `${celAbsent('subnet')} || (isCIDR(${S}) && cidr(${S}).ip().family() == ${family})`
        : `${celAbsent('subnet')} || isCIDR(${S})`,
      message: family
        ? `subnet must be an ${familyName(family)} CIDR such as ${ex.subnet}`
        : `subnet must be a CIDR such as ${EXAMPLES[4].subnet} or ${EXAMPLES[6].subnet}`,
      field: '.subnet',
      quote: ['subnet'],
      holds: (v) => {
        const s = subnet(v);
        return absent(v.subnet) || (s !== undefined && (!family || familyNumber(s.family) === family));
      },
    },
    {
      cel: `!${poolOK} || ${celEndsAgree}`,
      message: family ? `pool must hold ${familyName(family)} addresses only` : 'pool must not mix IPv4 and IPv6 addresses',
      field: '.pool',
      quote: ['pool'],
      holds: (v) => {
        const p = pool(v);
        return p === undefined || endsAgree(p);
      },
    },
    {
      cel:
        `!${poolOK} || !${celIsRange(P)} || !${celEndsAgree} || ` +
        `${celOrderKey(celStart(P), family)} <= ${celOrderKey(celEnd(P), family)}`,
      message: 'pool range start must not be greater than its end',
      field: '.pool',
      quote: ['pool'],
      holds: (v) => {
        const p = pool(v);
        return p?.kind !== 'range' || !endsAgree(p) || p.start.value <= p.end.value;
      },
    },
    {
      cel:
        `!${poolOK} || !${subnetOK} || !(${celFamiliesAgree}) || (${celIsRange(P)} ? ` +
        `cidr(${S}).containsIP(${celStart(P)}) && cidr(${S}).containsIP(${celEnd(P)}) : cidr(${S}).containsCIDR(${P}))`,
      message: 'pool must lie inside subnet',
      field: '.pool',
      quote: ['pool', 'subnet'],
      holds: (v) => whenComparable(v, (p, s) => poolFamily(p) !== s.family || poolInside(p, s)),
    },
  ];

  if (family) {
    rules.push({
      cel: celAggregationFits(String(bitsOf(family))),
      message: `aggregation must be 'default' or a prefix length /${MIN_AGGREGATION} to /${bitsOf(family)}`,
      field: '.aggregation',
      quote: ['aggregation'],
      holds: (v) => aggregationFits(v.aggregation, bitsOf(family)),
    });
    return rules;
  }
  rules.push(
    {
      cel: `!${poolOK} || !${subnetOK} || !${celEndsAgree} || ${celFamiliesAgree}`,
      message: 'pool and subnet must be of the same IP family',
      field: '.pool',
      quote: ['pool', 'subnet'],
      holds: (v) => whenComparable(v, (p, s) => poolFamily(p) === s.family),
    },
    {
      cel: `${celAbsent('pool')} || ${celPresent('subnet')}`,
      message: 'subnet is required when pool is set',
      field: '.subnet',
      holds: (v) => absent(v.pool) || !absent(v.subnet),
    },
    {
      cel: `${celAbsent('subnet')} || ${celPresent('pool')}`,
      message: 'pool is required when subnet is set',
      field: '.pool',
      holds: (v) => absent(v.subnet) || !absent(v.pool),
    },
  );
  return rules;
}

// ---- Rules of `spec.local` / `spec.remote` that involve its pools. ----

export interface PoolSpecFields extends AddressPoolFields {
  v4pool?: AddressPoolFields | undefined;
  v6pool?: AddressPoolFields | undefined;
  v4pools?: AddressPoolFields[] | undefined;
  v6pools?: AddressPoolFields[] | undefined;
}

const celHasV = (n: FamilyNumber) => `(has(self.v${n}pool) || (has(self.v${n}pools) && size(self.v${n}pools) > 0))`;
const hasV = (v: PoolSpecFields, n: FamilyNumber) => (n === 4 ? v.v4pool !== undefined || (v.v4pools?.length ?? 0) > 0 : v.v6pool !== undefined || (v.v6pools?.length ?? 0) > 0);

const celLegacySet = "(has(self.pool) && self.pool != '')";
const legacyPool = (v: PoolSpecFields) => (v.pool ? admittedPool(v.pool) : undefined);
const legacySubnet = (v: PoolSpecFields) => (v.pool && v.subnet ? admittedCidr(v.subnet) : undefined);

/**
 * `aggregation` beside the pools: with the v1 flat pool it is that pool's own; without
 * it (v2) it applies to every range that sets none, so it must fit IPv4 when an IPv4
 * range inherits it.
 */
function groupAggregationRule(legacy: boolean): Rule<PoolSpecFields> {
  const celInheritsV4 =
    "(has(self.v4pool) && (!has(self.v4pool.aggregation) || self.v4pool.aggregation == '')) || " +
    "(has(self.v4pools) && self.v4pools.exists(p, !has(p.aggregation) || p.aggregation == ''))";
  const inheritsV4 = (v: PoolSpecFields) => [...(v.v4pool ? [v.v4pool] : []), ...(v.v4pools ?? [])].some((p) => !p.aggregation);
  const celLegacyV4 = "has(self.subnet) && isCIDR(self.subnet) && cidr(self.subnet).ip().family() == 4";
  const celMaxBits = legacy
    ? `(${celLegacySet} ? (${celLegacyV4} ? 32 : 128) : (${celInheritsV4} ? 32 : 128))`
    : `(${celInheritsV4} ? 32 : 128)`;
  return {
    cel: celAggregationFits(celMaxBits),
    message: `aggregation must be 'default' or a prefix length /${MIN_AGGREGATION} to /32 (IPv4) or /128 (IPv6)`,
    field: '.aggregation',
    quote: ['aggregation'],
    holds: (v) => {
      const v4 = legacy && v.pool ? legacySubnet(v)?.family === 'IPv4' : inheritsV4(v);
      return aggregationFits(v.aggregation, v4 ? 32 : 128);
    },
  };
}

/** The v1 flat pool is one more range of its family; the IPAM takes it only as the family's sole range. */
function legacyAloneRule(): Rule<PoolSpecFields> {
  const celPoolOK = `${celLegacySet} && ${celPoolParses('self.pool')} && ${celPoolFamilyConsistent('self.pool')}`;
  return {
    cel: `!(${celPoolOK}) || !(${celPoolFamily('self.pool')} == 4 ? ${celHasV(4)} : ${celHasV(6)})`,
    message: 'the v1 pool cannot be combined with v4pool/v4pools (IPv4) or v6pool/v6pools (IPv6) of the same family',
    field: '.pool',
    quote: ['pool'],
    holds: (v) => {
      const p = legacyPool(v);
      const f = p && poolFamily(p);
      return !f || !hasV(v, familyNumber(f));
    },
  };
}

export function poolSpecPoolRules(legacy: boolean): Rule<PoolSpecFields>[] {
  return legacy
    ? [...(addressPoolRules(undefined) as Rule<PoolSpecFields>[]), legacyAloneRule(), groupAggregationRule(true)]
    : [groupAggregationRule(false)];
}

// ---- Schemas. ----

const poolField = z
  .string()
  .max(POOL_MAX_LENGTH)
  .describe(
    'Addresses to allocate: a CIDR (every address, network and broadcast included) or an ' +
      'inclusive range A-B. A CIDR with host bits set starts at the address as written.',
  );
const subnetField = z.string().max(SUBNET_MAX_LENGTH).describe('The CIDR that contains the whole pool.');
const aggregationField = z
  .string()
  .max(AGGREGATION_MAX_LENGTH)
  .describe("Prefix length of the address added to the dummy interface: 'default' (the subnet's) or /N.");

/** The v1 flat fields of `spec.local`, kept for single-stack manifests from before dual-stack. */
export const legacyPoolShape = { pool: poolField.optional(), subnet: subnetField.optional() };

/** `aggregation` beside the pools (see groupAggregationRule). */
export const groupAggregationShape = {
  aggregation: aggregationField
    .optional()
    .describe("With the v1 pool: its aggregation. Otherwise the default for ranges that set none: 'default' or /N."),
};

function addressPool(family: FamilyNumber) {
  const schema = z
    .strictObject({ pool: poolField, subnet: subnetField, aggregation: aggregationField.optional() })
    .describe(`A pool of ${familyName(family)} addresses.`);
  return withRules(schema, addressPoolRules(family));
}

export const V4AddressPool = addressPool(4);
export const V6AddressPool = addressPool(6);
export type AddressPool = z.infer<typeof V4AddressPool>;
