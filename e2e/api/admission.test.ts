// The CRDs on the lab's real kube-apiserver: every manifest an operator may write
// applies, the table of malformed ones is refused at admission naming the field, the
// API server and the zod schemas agree on random pools, and an object written through
// one version reads back unchanged through the other.
//
// Manifests go through kubectl as an operator's would (strict field validation), with
// --dry-run=server where nothing needs to be stored.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { formatAddress } from '../../src/ipam/address.ts';
import type { Family } from '../../src/ipam/address.ts';
import { BAD_CASES, MORE_GOOD, referenceManifests, V2_REFERENCE } from '../../src/api/fixtures.ts';
import type { Manifest } from '../../src/api/fixtures.ts';
import { ServiceGroup } from '../../src/api/servicegroup.ts';
import { applyCRDs, ensureNamespace, kubectl } from '../lab/testkit.ts';

/** This test's own namespace: no controller of the lab watches it, no other test writes to it. */
const NAMESPACE = 'purelb-api-e2e';
const here = (m: Manifest): Manifest => ({ ...m, metadata: { ...m.metadata, namespace: NAMESPACE } });

async function dryRunCreate(m: Manifest): Promise<{ ok: boolean; output: string }> {
  const r = await kubectl(['create', '--dry-run=server', '-o', 'name', '-f', '-'], { input: JSON.stringify(here(m)), check: false });
  return { ok: r.code === 0, output: `${r.stdout}${r.stderr}`.trim() };
}

/** Objects left by an interrupted run would make a dry-run create collide. */
const cleanUp = () => kubectl(['delete', 'sg,lbna', '--all', '-n', NAMESPACE]);

/** The API server writes `path: …` for schema and CEL errors and `"path"` for unknown fields. */
const namesField = (output: string, field: string) => output.includes(`${field}: `) || output.includes(`"${field}"`);

before(async () => {
  await applyCRDs();
  await ensureNamespace(NAMESPACE);
  await cleanUp();
});

describe('admission accepts', () => {
  for (const m of [...referenceManifests(), ...V2_REFERENCE, ...MORE_GOOD]) {
    it(`${m.apiVersion} ${m.kind} ${m.metadata.name}`, async () => {
      const r = await dryRunCreate(m);
      assert.ok(r.ok, r.output);
    });
  }
});

describe('admission refuses, naming the field', () => {
  for (const c of BAD_CASES) {
    if (c.atAdmission === false) {
      it(`${c.manifest.kind} ${c.manifest.metadata.name}: ${c.why} is left to the components (not expressible in CEL)`, async () => {
        const r = await dryRunCreate(c.manifest);
        assert.ok(r.ok, `now refused at admission, set atAdmission: ${r.output}`);
      });
      continue;
    }
    it(`${c.manifest.kind} ${c.manifest.metadata.name}: ${c.why} → ${c.field}`, async () => {
      const r = await dryRunCreate(c.manifest);
      assert.ok(!r.ok, 'accepted');
      assert.ok(namesField(r.output, c.field), r.output);
    });
  }
});

describe('admission and the zod schema agree', () => {
  const bits = (f: Family) => (f === 'IPv4' ? 32 : 128);
  const max = (f: Family) => (1n << BigInt(bits(f))) - 1n;
  /** IPv6 as RFC 5952, fully expanded with leading zeros, or upper case: all valid input. */
  const written = (f: Family, v: bigint, style: number) => {
    const text = formatAddress(f, v);
    if (f === 'IPv4' || style === 0) return text;
    if (style === 1) return text.toUpperCase();
    return Array.from({ length: 8 }, (_, i) => ((v >> BigInt(112 - 16 * i)) & 0xffffn).toString(16).padStart(4, '0')).join(':');
  };

  const pools = fc
    .record({
      family: fc.constantFrom<Family>('IPv4', 'IPv6'),
      wrongField: fc.boolean(),
      prefix: fc.integer({ min: 8, max: 128 }),
      base: fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
      a: fc.bigInt({ min: 0n, max: 1n << 128n }),
      b: fc.bigInt({ min: 0n, max: 1n << 128n }),
      cidrPool: fc.boolean(),
      poolPrefixDelta: fc.integer({ min: -2, max: 24 }),
      style: fc.integer({ min: 0, max: 2 }),
      aggregation: fc.constantFrom(undefined, 'default', '/24', '/32', '/64', '/128', '/129', '/7'),
    })
    .map((g) => {
      const prefix = Math.min(g.prefix, bits(g.family));
      const size = 1n << BigInt(bits(g.family) - prefix);
      const net = (g.base & max(g.family)) - ((g.base & max(g.family)) % size);
      // Ends up to two addresses either side of the subnet, so containment is tested too.
      const end = (x: bigint) => {
        const v = net - 2n + (x % (size + 4n));
        return v < 0n ? 0n : v > max(g.family) ? max(g.family) : v;
      };
      const a = end(g.a);
      const pool = g.cidrPool
        ? `${written(g.family, a, g.style)}/${Math.max(0, Math.min(bits(g.family), prefix + g.poolPrefixDelta))}`
        : `${written(g.family, a, g.style)}-${written(g.family, end(g.b), g.style)}`;
      const field = (g.family === 'IPv4') !== g.wrongField ? 'v4pool' : 'v6pool';
      const spec = { pool, subnet: `${formatAddress(g.family, net)}/${prefix}`, ...(g.aggregation ? { aggregation: g.aggregation } : {}) };
      return {
        apiVersion: 'purelb.io/v2',
        kind: 'ServiceGroup',
        metadata: { name: 'fuzz', namespace: NAMESPACE },
        spec: { remote: { [field]: spec } },
      } as Manifest;
    });

  it('on 80 random pools', async () => {
    const verdicts = { accepted: 0, refused: 0 };
    for (const m of fc.sample(pools, { numRuns: 80, seed: 1036 })) {
      const zod = ServiceGroup.safeParse(m).success;
      const api = await dryRunCreate(m);
      assert.equal(api.ok, zod, `${JSON.stringify(m.spec)}\nAPI server: ${api.output}`);
      verdicts[zod ? 'accepted' : 'refused']++;
    }
    assert.ok(verdicts.accepted >= 10 && verdicts.refused >= 10, JSON.stringify(verdicts));
  });
});

describe('one schema for both versions', () => {
  const kubectlJSON = async (args: string[]) => JSON.parse((await kubectl([...args, '-o', 'json'])).stdout) as { spec: unknown; status?: unknown };
  after(cleanUp);

  it('a v1 object reads back through v2 unchanged, and a v2 one through v1', async () => {
    const v1 = here(referenceManifests()[1]!);
    const v2 = here({ ...V2_REFERENCE[2]!, metadata: { name: 'bgp-ippool-v2' } });
    await kubectl(['create', '-f', '-'], { input: JSON.stringify(v1) });
    await kubectl(['create', '-f', '-'], { input: JSON.stringify(v2) });
    const asV2 = await kubectlJSON(['get', `servicegroups.v2.purelb.io/${v1.metadata.name}`, '-n', NAMESPACE]);
    const asV1 = await kubectlJSON(['get', `servicegroups.v1.purelb.io/${v2.metadata.name}`, '-n', NAMESPACE]);
    assert.deepEqual(asV2.spec, v1.spec);
    assert.deepEqual(asV1.spec, v2.spec);
  });

  it('status takes counts beyond 2^53 and kubectl get shows them', async () => {
    const name = referenceManifests()[1]!.metadata.name;
    const status = {
      conditions: [{ type: 'Ready', status: 'True', reason: 'InUse', message: 'the configuration is in use', lastTransitionTime: '2026-01-01T00:00:00Z' }],
      allocatedIPv4: 3,
      availableIPv4: 60,
      allocatedIPv6: 1,
      availableIPv6: '18446744073709551615',
    };
    await kubectl(['patch', `servicegroups.v2.purelb.io/${name}`, '-n', NAMESPACE, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
    assert.deepEqual((await kubectlJSON(['get', `servicegroups.v1.purelb.io/${name}`, '-n', NAMESPACE])).status, status);
    const table = (await kubectl(['get', 'sg', name, '-n', NAMESPACE])).stdout.split('\n');
    assert.match(table[0]!, /^NAME\s+READY\s+ALLOCATED-V4\s+AVAILABLE-V4\s+ALLOCATED-V6\s+AVAILABLE-V6\s+AGE/);
    assert.match(table[1]!, new RegExp(`^${name}\\s+True\\s+3\\s+60\\s+1\\s+18446744073709551615\\s`));
  });

  it('short names and the purelb category list both kinds', async () => {
    await kubectl(['create', '-f', '-'], { input: JSON.stringify(here(referenceManifests()[0]!)) });
    const names = (await kubectl(['get', 'purelb', '-n', NAMESPACE, '-o', 'name'])).stdout.trim().split('\n').sort();
    assert.deepEqual(names, [
      'lbnodeagent.purelb.io/default',
      'servicegroup.purelb.io/bgp-ippool-v2',
      'servicegroup.purelb.io/layer2-ippool',
    ]);
    for (const short of ['sg', 'sgs', 'lbna', 'lbnas']) await kubectl(['get', short, '-n', NAMESPACE]);
  });
});
