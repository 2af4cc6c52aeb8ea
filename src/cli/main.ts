// kubectl-purelb: a kubectl plugin (`kubectl purelb …`) for operators.
//
//   kubectl purelb status [-n NAMESPACE] [--kubeconfig FILE]
//       ServiceGroup usage and, per address, the node(s) announcing it.
//   kubectl purelb validate FILE... (or - for standard input)
//       Offline checks of ServiceGroup / LBNodeAgent manifests and Services' purelb.io
//       annotations with the schemas the CRDs come from; exits 1 on any error.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { GROUP } from '../api/meta.ts';
import { statusReport } from './status.ts';
import type { ServiceGroupObject } from './status.ts';
import { formatVerdicts, validateText } from './validate.ts';

const USAGE = `Usage:
  kubectl purelb status [-n NAMESPACE] [--kubeconfig FILE]
  kubectl purelb validate FILE... ("-" reads standard input)

NAMESPACE is where purelb-ts runs and its ServiceGroups live
(default: $PURELB_NAMESPACE, else purelb).
`;

async function status(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { namespace: { type: 'string', short: 'n' }, kubeconfig: { type: 'string' } },
    strict: true,
  });
  const namespace = values.namespace ?? process.env.PURELB_NAMESPACE ?? 'purelb';
  // Loaded here: the client takes a second to load and `validate` does not need it.
  const { CoreV1Api, CustomObjectsApi, KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (values.kubeconfig) kc.loadFromFile(values.kubeconfig);
  else kc.loadFromDefault();
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const [groups, services] = await Promise.all([
    custom.listNamespacedCustomObject({ group: GROUP, version: 'v1', namespace, plural: 'servicegroups' }) as Promise<{ items: ServiceGroupObject[] }>,
    core.listServiceForAllNamespaces(),
  ]);
  process.stdout.write(statusReport(groups.items, services.items, namespace));
  return 0;
}

function validate(files: string[]): number {
  if (files.length === 0) {
    process.stderr.write(USAGE);
    return 2;
  }
  let failed = false;
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file === '-' ? 0 : file, 'utf8');
    } catch (err) {
      process.stdout.write(`${file}: error: cannot read: ${(err as Error).message}\n`);
      failed = true;
      continue;
    }
    const verdicts = validateText(text);
    if (verdicts.some((v) => v.errors.length > 0)) failed = true;
    const lines = formatVerdicts(file, verdicts);
    process.stdout.write((lines.length > 0 ? lines : [`${file}: no documents`]).join('\n') + '\n');
  }
  return failed ? 1 : 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'status':
      return status(rest);
    case 'validate':
      return validate(rest);
    case undefined:
    case 'help':
    case '-h':
    case '--help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`kubectl-purelb: unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const body = (err as { body?: unknown }).body;
    process.stderr.write(`kubectl-purelb: ${err instanceof Error ? err.message : String(err)}${body ? `\n${typeof body === 'string' ? body : JSON.stringify(body)}` : ''}\n`);
    process.exit(1);
  },
);
