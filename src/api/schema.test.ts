import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type * as z from 'zod';
import { BAD_CASES, MORE_GOOD, referenceManifests, V2_REFERENCE } from './fixtures.ts';
import type { Manifest } from './fixtures.ts';
import { LBNodeAgent, LBNodeAgentV1, LBNodeAgentV2 } from './lbnodeagent.ts';
import { normalizeLBNodeAgent, normalizeServiceGroup, zodIssues } from './normalize.ts';
import { ServiceGroup, ServiceGroupV1, ServiceGroupV2 } from './servicegroup.ts';

/** The schema of exactly one PureLB version, and the served union of both. */
function schemas(m: Manifest): { version: z.ZodType; served: z.ZodType } {
  const v1 = m.apiVersion === 'purelb.io/v1';
  return m.kind === 'ServiceGroup'
    ? { version: v1 ? ServiceGroupV1 : ServiceGroupV2, served: ServiceGroup }
    : { version: v1 ? LBNodeAgentV1 : LBNodeAgentV2, served: LBNodeAgent };
}

const normalize = (m: Manifest) => (m.kind === 'ServiceGroup' ? normalizeServiceGroup(m) : normalizeLBNodeAgent(m));

function assertAccepted(m: Manifest): void {
  for (const [name, schema] of Object.entries(schemas(m))) {
    const r = schema.safeParse(m);
    assert.ok(r.success, `${name} schema: ${r.success ? '' : JSON.stringify(zodIssues(r.error, m))}`);
  }
  const n = normalize(m);
  assert.ok(n.ok, `normaliser: ${n.ok ? '' : JSON.stringify(n.errors)}`);
}

describe('manifests that must apply', () => {
  it('examples/purelb-guide holds the reference LBNodeAgent and two ServiceGroups', () => {
    assert.deepEqual(
      referenceManifests().map((m) => `${m.apiVersion} ${m.kind} ${m.metadata.name}`),
      ['purelb.io/v1 LBNodeAgent default', 'purelb.io/v1 ServiceGroup layer2-ippool', 'purelb.io/v1 ServiceGroup bgp-ippool'],
    );
  });
  for (const m of [...referenceManifests(), ...V2_REFERENCE, ...MORE_GOOD]) {
    it(`${m.apiVersion} ${m.kind} ${m.metadata.name}`, () => assertAccepted(m));
  }
});

describe('malformed manifests', () => {
  it('the table is large enough to mean something', () => {
    assert.ok(BAD_CASES.length >= 30, `${BAD_CASES.length} cases`);
    for (const kind of ['ServiceGroup', 'LBNodeAgent']) {
      for (const version of ['purelb.io/v1', 'purelb.io/v2']) {
        assert.ok(BAD_CASES.some((c) => c.manifest.kind === kind && c.manifest.apiVersion === version), `${version} ${kind}`);
      }
    }
  });
  for (const c of BAD_CASES) {
    it(`${c.manifest.kind} ${c.manifest.metadata.name}: ${c.why} → ${c.field}`, () => {
      if (c.atAdmission !== false) {
        const r = schemas(c.manifest).served.safeParse(c.manifest);
        assert.ok(!r.success, 'the served schema accepted it');
        const fields = zodIssues(r.error, c.manifest).map((i) => i.field);
        assert.ok(fields.includes(c.field), `issues name ${fields.join(', ')}`);
      }
      const n = normalize(c.manifest);
      assert.ok(!n.ok, 'the normaliser accepted it');
      const fields = n.errors.map((e) => e.field);
      assert.ok(fields.includes(c.field), `errors name ${fields.join(', ')}`);
    });
  }
});

describe('version schemas', () => {
  const remote = V2_REFERENCE[2]!;
  it('v1 has no remote', () => {
    const r = ServiceGroupV1.safeParse({ ...remote, apiVersion: 'purelb.io/v1' });
    assert.ok(!r.success);
    assert.deepEqual(
      zodIssues(r.error, remote).map((i) => `${i.field}: ${i.message}`),
      ['spec.local: Invalid input: expected object, received undefined', 'spec.remote: unknown field'],
    );
  });
  it('v2 has no flat pool, the served schema keeps both', () => {
    const flat = MORE_GOOD.find((m) => m.metadata.name === 'legacy-flat')!;
    const asV2 = { ...flat, apiVersion: 'purelb.io/v2' };
    assert.ok(!ServiceGroupV2.safeParse(asV2).success);
    assert.ok(ServiceGroup.safeParse(asV2).success);
    assert.ok(ServiceGroup.safeParse({ ...remote, apiVersion: 'purelb.io/v1' }).success);
  });
  it('v1 LBNodeAgent has no nodeSelector, v2 no localint', () => {
    const full = MORE_GOOD.find((m) => m.metadata.name === 'full')!;
    const v1 = referenceManifests()[0]!;
    assert.ok(!LBNodeAgentV1.safeParse({ ...full, apiVersion: 'purelb.io/v1' }).success);
    assert.ok(!LBNodeAgentV2.safeParse({ ...v1, apiVersion: 'purelb.io/v2' }).success);
    assert.ok(LBNodeAgent.safeParse({ ...v1, apiVersion: 'purelb.io/v2' }).success);
    assert.ok(LBNodeAgent.safeParse({ ...full, apiVersion: 'purelb.io/v1' }).success);
  });
  it('messages quote the values, as the API server does', () => {
    const bad = BAD_CASES.find((c) => c.manifest.metadata.name === 'outside-range')!;
    const r = normalize(bad.manifest);
    assert.ok(!r.ok);
    assert.deepEqual(r.errors[0], {
      field: 'spec.local.v4pools[1].pool',
      value: '192.0.2.250-192.0.3.5',
      message: "pool must lie inside subnet (pool '192.0.2.250-192.0.3.5', subnet '192.0.2.0/24')",
    });
  });
});
