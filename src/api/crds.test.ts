import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import * as z from 'zod';
import { customResourceDefinition, KINDS, renderCrds, toStructural } from './crd.ts';

const CRDS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'crds');

type Node = { [key: string]: unknown };

/** Every schema node with its path. */
function* nodes(schema: Node, at = ''): Generator<[string, Node]> {
  yield [at, schema];
  for (const [name, child] of Object.entries((schema.properties ?? {}) as Record<string, Node>)) yield* nodes(child, `${at}.${name}`);
  if (schema.items) yield* nodes(schema.items as Node, `${at}[]`);
  if (typeof schema.additionalProperties === 'object') yield* nodes(schema.additionalProperties as Node, `${at}{}`);
}

describe('crds/', () => {
  it('is what scripts/gen-crds.ts writes from the zod schemas', () => {
    const rendered = renderCrds();
    assert.deepEqual(readdirSync(CRDS_DIR).sort(), [...rendered.keys()].sort());
    for (const [name, text] of rendered) {
      assert.ok(readFileSync(path.join(CRDS_DIR, name), 'utf8') === text, `crds/${name} is stale: run node_modules/.bin/node scripts/gen-crds.ts`);
    }
  });

  for (const def of KINDS) {
    const crd = customResourceDefinition(def) as { spec: Node & { versions: Node[]; names: Node } };
    const schema = (crd.spec.versions[0]!.schema as { openAPIV3Schema: Node }).openAPIV3Schema;

    it(`${def.kind}: namespaced, both versions served from one schema, v2 stored`, () => {
      assert.equal(crd.spec.scope, 'Namespaced');
      assert.deepEqual(crd.spec.conversion, { strategy: 'None' });
      assert.deepEqual(
        crd.spec.versions.map((v) => [v.name, v.served, v.storage]),
        [
          ['v2', true, true],
          ['v1', true, false],
        ],
      );
      assert.deepEqual(crd.spec.versions[1]!.schema, crd.spec.versions[0]!.schema);
      assert.deepEqual(crd.spec.names.shortNames, def.kind === 'ServiceGroup' ? ['sg', 'sgs'] : ['lbna', 'lbnas']);
    });

    it(`${def.kind}: the schema is structural`, () => {
      for (const [at, node] of nodes(schema)) {
        const intOrString = node['x-kubernetes-int-or-string'] === true;
        assert.ok(typeof node.type === 'string' || intOrString, `${at}: no type`);
        assert.ok(!('$ref' in node) && !('$defs' in node) && !('oneOf' in node) && !('allOf' in node), `${at}: not structural`);
        assert.ok(!('anyOf' in node) || intOrString, `${at}: anyOf`);
        assert.ok(node.additionalProperties === undefined || typeof node.additionalProperties === 'object', `${at}: additionalProperties`);
        assert.ok(!('x-kubernetes-preserve-unknown-fields' in node), `${at}: preserves unknown fields`);
      }
    });

    it(`${def.kind}: every rule has a message and a field that exists`, () => {
      let rules = 0;
      for (const [at, node] of nodes(schema)) {
        for (const v of (node['x-kubernetes-validations'] ?? []) as Node[]) {
          rules++;
          assert.ok(typeof v.message === 'string' && v.message.length > 10, `${at}: ${String(v.rule)}`);
          if (v.fieldPath !== undefined) {
            const field = String(v.fieldPath).slice(1);
            assert.ok(field in ((node.properties ?? {}) as Node), `${at}: fieldPath ${String(v.fieldPath)}`);
            assert.ok(v.message.startsWith(field) || v.message.includes(` ${field} `), `${at}: "${v.message}" does not name ${field}`);
          }
        }
      }
      assert.ok(rules > 0);
    });
  }

  it('ServiceGroup: kubectl get shows readiness and the counts per family', () => {
    const crd = parse(renderCrds().get('servicegroups.purelb.io.yaml')!) as { spec: { versions: { additionalPrinterColumns: Node[] }[] } };
    for (const v of crd.spec.versions) {
      assert.deepEqual(
        v.additionalPrinterColumns.filter((c) => c.priority === undefined).map((c) => `${String(c.name)}=${String(c.jsonPath)}`),
        [
          'Ready=.status.conditions[?(@.type=="Ready")].status',
          'Allocated-V4=.status.allocatedIPv4',
          'Available-V4=.status.availableIPv4',
          'Allocated-V6=.status.allocatedIPv6',
          'Available-V6=.status.availableIPv6',
          'Age=.metadata.creationTimestamp',
        ],
      );
    }
  });
});

describe('toStructural', () => {
  const convert = (schema: z.ZodType) => toStructural(z.toJSONSchema(schema, { io: 'input' }) as Node);

  it('turns a union of integer and string into int-or-string', () => {
    assert.deepEqual(convert(z.union([z.int().min(0), z.string()])), {
      'x-kubernetes-int-or-string': true,
      anyOf: [{ type: 'integer' }, { type: 'string' }],
    });
  });

  it('drops what structural schemas forbid and zod adds', () => {
    assert.deepEqual(convert(z.strictObject({ n: z.int(), c: z.literal('x'), m: z.record(z.string(), z.string()) })), {
      type: 'object',
      required: ['n', 'c', 'm'],
      properties: { n: { type: 'integer' }, c: { type: 'string', enum: ['x'] }, m: { type: 'object', additionalProperties: { type: 'string' } } },
    });
  });

  it('refuses what it cannot express', () => {
    assert.throws(() => convert(z.union([z.object({ a: z.string() }), z.object({ b: z.string() })])), /anyOf/);
    assert.throws(() => convert(z.string().nullable()), /exactly one type/);
    assert.throws(() => convert(z.string().default('x')), /default/);
  });
});
