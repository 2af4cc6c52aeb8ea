// kubectl-purelb: a kubectl plugin (`kubectl purelb …`) for operators.
//
//   kubectl purelb status [-n NAMESPACE] [--kubeconfig FILE]
//       ServiceGroup usage and, per address, the node(s) announcing it.
//   kubectl purelb validate FILE... (or - for standard input)
//       Offline checks of ServiceGroup / LBNodeAgent manifests and Services' purelb.io
//       annotations with the schemas the CRDs come from; exits 1 on any error.
//   kubectl purelb migrate [FILE...|-] [--from-cluster] [--kubeconfig FILE] [-n NAMESPACE] [--apply]
//       MetalLB's or OpenELB's configuration as ServiceGroups (migrate.ts).

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { V1Service } from '@kubernetes/client-node';
import { GROUP } from '../api/meta.ts';
import type { Api } from '../k8s/api.ts';
import { statusReport } from './status.ts';
import type { ServiceGroupObject } from './status.ts';
import { formatVerdicts, validateText } from './validate.ts';

const USAGE = `Usage:
  kubectl purelb status [-n NAMESPACE] [--kubeconfig FILE]
  kubectl purelb validate FILE... ("-" reads standard input)
  kubectl purelb migrate [FILE...|-] [--from-cluster] [--kubeconfig FILE] [-n NAMESPACE] [--dry-run|--apply]

migrate converts MetalLB (its ConfigMap, metallb.io objects) and OpenELB (Eips)
configuration to ServiceGroups and, where needed, an LBNodeAgent: printed as YAML
(--dry-run, the default) or created (--apply, all or nothing). Warnings go to
standard error; on any error nothing is printed or created and it exits 1.

NAMESPACE is where purelb-ts runs and its ServiceGroups live
(default: $PURELB_NAMESPACE, else purelb).
`;

const defaultNamespace = () => process.env.PURELB_NAMESPACE ?? 'purelb';

/** The API client with the user's kubeconfig; loaded on demand, as `validate` needs no client. */
async function connect(kubeconfig: string | undefined): Promise<Api> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const { Api } = await import('../k8s/api.ts');
  const { connectionOf } = await import('../k8s/kubeconfig.ts');
  const kc = new KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault();
  return new Api(await connectionOf(kc));
}

async function status(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { namespace: { type: 'string', short: 'n' }, kubeconfig: { type: 'string' } },
    strict: true,
  });
  const namespace = values.namespace ?? defaultNamespace();
  const { PATHS } = await import('../k8s/api.ts');
  const api = await connect(values.kubeconfig);
  const [groups, services] = await Promise.all([
    api.list<ServiceGroupObject>(PATHS.custom(GROUP, 'v1', namespace, 'servicegroups')),
    api.list<V1Service>(PATHS.services()),
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
    case 'migrate': {
      const { migrateCommand } = await import('./migrate.ts');
      const code = await migrateCommand(rest, defaultNamespace(), {
        connect,
        read: (file) => readFileSync(file === '-' ? 0 : file, 'utf8'),
        stdout: (text) => process.stdout.write(text),
        stderr: (text) => process.stderr.write(text),
      });
      if (code === 2) process.stderr.write(USAGE);
      return code;
    }
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
    process.stderr.write(`kubectl-purelb: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
