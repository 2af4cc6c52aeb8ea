// The chart and the helm CLI for tests: helm built from its Go module (build.sh, run
// by scripts/setup.sh), rendering with values, and the rendered objects by kind.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT, run } from '../lab/exec.ts';
import type { ExecResult } from '../lab/exec.ts';

export const CHART_DIR = path.join(REPO_ROOT, 'helm', 'purelb');
export const HELM_BIN = path.join(REPO_ROOT, 'e2e', 'install', 'helm', 'bin', 'helm');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** helm, bounded in time; fails loudly when the binary was not built. */
export async function helm(args: readonly string[], opts: { check?: boolean; timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
  if (!existsSync(HELM_BIN)) throw new Error(`${HELM_BIN} missing: run bash e2e/install/helm/build.sh (scripts/setup.sh does)`);
  return run([HELM_BIN, ...args], { timeoutMs: opts.timeoutMs ?? 60_000, check: opts.check ?? true, ...(opts.input === undefined ? {} : { input: opts.input }) });
}

/** `--set` arguments for a flat map of values (`{'bird.enabled': true}`). */
export function setArgs(values: Record<string, string | number | boolean>): string[] {
  return Object.entries(values).flatMap(([k, v]) => [typeof v === 'string' ? '--set-string' : '--set', `${k}=${String(v)}`]);
}

export function parseObjects(yaml: string): K8sObject[] {
  return parseAllDocuments(yaml)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null && typeof o === 'object');
}

/** The chart's objects for `values`, as `helm template` renders them offline. */
export async function render(values: Record<string, string | number | boolean> = {}, opts: { namespace?: string; includeCrds?: boolean } = {}): Promise<K8sObject[]> {
  const args = ['template', 'purelb', CHART_DIR, '--namespace', opts.namespace ?? 'purelb', ...setArgs(values)];
  if (opts.includeCrds) args.push('--include-crds');
  return parseObjects((await helm(args)).stdout);
}

export function find(objects: readonly K8sObject[], kind: string, name?: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
}

export function one(objects: readonly K8sObject[], kind: string, name?: string): K8sObject {
  const found = find(objects, kind, name);
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0] as K8sObject;
}
