import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { BAD_CASES, EXAMPLES_DIR, MORE_GOOD, V2_REFERENCE } from '../api/fixtures.ts';
import { validateText } from './validate.ts';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.ts');
const yaml = (docs: unknown[]) => docs.map((d) => stringify(d)).join('---\n');

function cli(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 30_000, ...(input === undefined ? {} : { input }) });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the reference manifests of examples/purelb-guide validate, as files and through the CLI', () => {
  const files = readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith('.yaml')).map((f) => path.join(EXAMPLES_DIR, f));
  assert.ok(files.length >= 2);
  for (const file of files) {
    for (const v of validateText(readFileSync(file, 'utf8'))) assert.deepEqual(v.errors, [], `${file}#${v.index} ${v.what}`);
  }
  const out = execFileSync(process.execPath, [MAIN, 'validate', ...files], { encoding: 'utf8', timeout: 30_000 });
  assert.match(out, /ServiceGroup purelb\/layer2-ippool \(purelb\.io\/v1\): ok/);
  assert.match(out, /LBNodeAgent purelb\/default \(purelb\.io\/v1\): ok/);
  assert.match(out, /warning: spec\.loadBalancerIP: deprecated/);
});

test('good manifests of both versions pass', () => {
  for (const m of [...V2_REFERENCE, ...MORE_GOOD]) {
    const [v] = validateText(stringify(m));
    assert.deepEqual(v?.errors, [], `${m.kind} ${m.metadata.name}`);
    assert.equal(v?.skipped, false);
  }
});

test('a pool written with host bits passes with a warning naming the field', () => {
  const hostBits = MORE_GOOD.find((m) => m.metadata.name === 'host-bits');
  const [v] = validateText(stringify(hostBits));
  assert.deepEqual(v?.errors, []);
  assert.deepEqual(v?.warnings.map((w) => w.field), ['spec.local.v4pool.pool']);
});

test('every malformed manifest of the table is rejected with an error naming its field', () => {
  for (const bad of BAD_CASES) {
    const [v] = validateText(stringify(bad.manifest));
    const fields = (v?.errors ?? []).map((e) => e.field);
    assert.ok(fields.includes(bad.field), `${bad.why}: expected an error at ${bad.field}, got ${JSON.stringify(v?.errors)}`);
  }
});

const service = (annotations: Record<string, string>, spec: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 's', namespace: 'default', annotations },
  spec: { type: 'LoadBalancer', ports: [{ port: 80 }], ...spec },
});

test("Services' purelb.io annotations are checked as the allocator reads them", () => {
  const cases: Array<[string, ReturnType<typeof service>, string | undefined]> = [
    ['one address', service({ 'purelb.io/addresses': '192.0.2.10' }), undefined],
    ['dual-stack pair', service({ 'purelb.io/addresses': '192.0.2.10, 2001:db8::10' }), undefined],
    ['not an address', service({ 'purelb.io/addresses': '192.0.2.300' }), 'metadata.annotations[purelb.io/addresses]'],
    ['a zoned IPv6 address, which the allocator does not take', service({ 'purelb.io/addresses': 'fe80::1%eth0' }), 'metadata.annotations[purelb.io/addresses]'],
    ['two of one family', service({ 'purelb.io/addresses': '192.0.2.10,192.0.2.11' }), 'metadata.annotations[purelb.io/addresses]'],
    ['three addresses', service({ 'purelb.io/addresses': '192.0.2.1,2001:db8::1,192.0.2.2' }), 'metadata.annotations[purelb.io/addresses]'],
    ['empty group', service({ 'purelb.io/service-group': ' ' }), 'metadata.annotations[purelb.io/service-group]'],
    ['bad loadBalancerIP', service({}, { loadBalancerIP: 'ten' }), 'spec.loadBalancerIP'],
  ];
  for (const [why, svc, field] of cases) {
    const [v] = validateText(stringify(svc));
    assert.deepEqual((v?.errors ?? []).map((e) => e.field), field === undefined ? [] : [field], why);
  }
});

test('other documents are skipped; broken YAML and unknown purelb.io kinds are errors', () => {
  const verdicts = validateText(`apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: purelb.io/v1\nkind: Pool\nmetadata: {name: p}\n---\n: [\n`);
  assert.deepEqual(
    verdicts.map((v) => [v.index, v.skipped, v.errors.map((e) => e.field)]),
    [
      [1, true, []],
      [2, false, ['kind']],
      [3, false, ['(document)']],
    ],
  );
  assert.deepEqual(validateText('apiVersion: purelb.io/v3\nkind: ServiceGroup\nmetadata: {name: x}\n')[0]?.errors.map((e) => e.field), ['apiVersion']);
});

test('the CLI exits 1 and prints field-level errors for a bad file, 0 for a good one, 2 without files', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'purelb-validate-'));
  try {
    const bad = BAD_CASES[0]!;
    writeFileSync(path.join(dir, 'bad.yaml'), yaml([V2_REFERENCE[1], bad.manifest]));
    writeFileSync(path.join(dir, 'good.yaml'), yaml(V2_REFERENCE));
    const failed = cli(['validate', path.join(dir, 'good.yaml'), path.join(dir, 'bad.yaml')]);
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /good\.yaml#3: ServiceGroup purelb\/bgp-ippool \(purelb\.io\/v2\): ok/);
    assert.match(failed.stdout, new RegExp(`bad\\.yaml#2: ServiceGroup purelb/${bad.manifest.metadata.name} \\(purelb\\.io/v1\\): error: ${bad.field.replace(/[.[\]]/g, '\\$&')}: .*\\(value "banana"\\)`));
    assert.equal(cli(['validate', path.join(dir, 'good.yaml')]).code, 0);
    assert.equal(cli(['validate', '-'], yaml(V2_REFERENCE)).code, 0);
    assert.equal(cli(['validate']).code, 2);
    assert.equal(cli(['frobnicate']).code, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ServiceGroups of one namespace are checked as one configuration: an overlap across groups is an error naming both', () => {
  const group = (name: string, namespace: string, pool: string) => ({
    apiVersion: 'purelb.io/v2',
    kind: 'ServiceGroup',
    metadata: { name, namespace },
    spec: { local: { v4pool: { subnet: '198.51.100.0/24', pool, aggregation: 'default' } } },
  });
  const verdicts = validateText(
    yaml([group('a', 'purelb', '198.51.100.64-198.51.100.126'), group('b', 'purelb', '198.51.100.120-198.51.100.130'), group('c', 'elsewhere', '198.51.100.64-198.51.100.70')]),
  );
  assert.deepEqual(verdicts.map((v) => v.errors.length), [0, 1, 0]);
  assert.equal(verdicts[1]?.errors[0]?.field, 'spec.local.v4pool');
  assert.match(verdicts[1]?.errors[0]?.message ?? '', /ServiceGroup a overlaps .*ServiceGroup b on 198\.51\.100\.120-198\.51\.100\.126/);
});
