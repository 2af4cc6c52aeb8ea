// `kubectl purelb migrate`: MetalLB's or OpenELB's configuration → purelb-ts objects.
// The conversion is src/migrate's (pure); this file reads the input (files, standard
// input, or the cluster through the project's API client), prints, and with --apply
// creates the objects, all or nothing.
//
// Reading the cluster: the ConfigMap metallb-system/config, every metallb.io object in
// every namespace, and OpenELB's Eips. A kind whose CRD is not installed answers 404:
// that means none, not an error. The ServiceGroups and LBNodeAgents already in
// purelb-ts's namespace are read too, so that a name or pool clash is an error before
// anything is written.
//
// Applying: every object is first created with dryRun=All (admission runs, nothing is
// stored), then for real. Objects are created, never updated: an object that exists
// already is a failure, and a failure deletes what this run created, so the cluster is
// left as it was found.

import { parseArgs } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { GROUP } from '../api/meta.ts';
import type { ServiceGroupObject } from '../api/configuration.ts';
import { ApiError, PATHS } from '../k8s/api.ts';
import type { Api } from '../k8s/api.ts';
import { formatMigrationIssue, migrate, parseDocuments } from '../migrate/migrate.ts';
import type { InputDocument, MigratedObject, MigrationIssue } from '../migrate/migrate.ts';

export interface MigrateDeps {
  /** The API client for --from-cluster and --apply. */
  connect(kubeconfig: string | undefined): Promise<Api>;
  /** A file's text; `-` is standard input. */
  read(file: string): string;
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Where the source objects live, newest API version first. */
const CLUSTER_SOURCES: ReadonlyArray<{ group: string; versions: readonly string[]; plural: string }> = [
  { group: 'metallb.io', versions: ['v1beta1'], plural: 'ipaddresspools' },
  { group: 'metallb.io', versions: ['v1beta1'], plural: 'l2advertisements' },
  { group: 'metallb.io', versions: ['v1beta1'], plural: 'bgpadvertisements' },
  { group: 'metallb.io', versions: ['v1beta2', 'v1beta1'], plural: 'bgppeers' },
  { group: 'metallb.io', versions: ['v1beta1'], plural: 'bfdprofiles' },
  { group: 'metallb.io', versions: ['v1beta1'], plural: 'communities' },
  { group: 'metallb.io', versions: ['v1beta1'], plural: 'addresspools' },
  { group: 'network.kubesphere.io', versions: ['v1alpha2', 'v1alpha1'], plural: 'eips' },
  { group: 'network.kubesphere.io', versions: ['v1alpha2'], plural: 'bgpconfs' },
  { group: 'network.kubesphere.io', versions: ['v1alpha2'], plural: 'bgppeers' },
];

const notFound = (err: unknown) => err instanceof ApiError && err.code === 404;

/** A list, or none when the kind is not installed (404) in any of its versions. */
async function listIfInstalled<T>(api: Api, paths: readonly string[]): Promise<T[]> {
  for (const path of paths) {
    try {
      return (await api.list<T>(path)).items;
    } catch (err) {
      if (!notFound(err)) throw err;
    }
  }
  return [];
}

export async function readCluster(api: Api): Promise<InputDocument[]> {
  const inputs: InputDocument[] = [];
  const configMapPath = PATHS.configMap('metallb-system', 'config');
  try {
    inputs.push({ origin: `cluster ${configMapPath}`, document: await api.get<KubernetesObject>(configMapPath) });
  } catch (err) {
    if (!notFound(err)) throw err;
  }
  const lists = await Promise.all(
    CLUSTER_SOURCES.map(async (s) => {
      const paths = s.versions.map((v) => PATHS.customAll(s.group, v, s.plural));
      return (await listIfInstalled<KubernetesObject>(api, paths)).map((document) => ({ origin: `cluster ${paths[0]}`, document }));
    }),
  );
  return [...inputs, ...lists.flat()];
}

async function readExisting(api: Api, namespace: string) {
  const [serviceGroups, lbNodeAgents] = await Promise.all([
    listIfInstalled<ServiceGroupObject>(api, [PATHS.custom(GROUP, 'v2', namespace, 'servicegroups')]),
    listIfInstalled<KubernetesObject>(api, [PATHS.custom(GROUP, 'v2', namespace, 'lbnodeagents')]),
  ]);
  return { serviceGroups, lbNodeAgents };
}

const plural = (obj: MigratedObject) => (obj.kind === 'ServiceGroup' ? 'servicegroups' : 'lbnodeagents');
const labelOf = (obj: MigratedObject) => `${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name}`;
const FIELD_MANAGER = 'kubectl-purelb-migrate';

/** Creates every object or none: admission first for all (dryRun=All), then each for real, undone on a failure. */
export async function applyObjects(api: Api, objects: readonly MigratedObject[], deps: Pick<MigrateDeps, 'stdout' | 'stderr'>): Promise<boolean> {
  const collection = (obj: MigratedObject, query: string) => `${PATHS.custom(GROUP, 'v2', obj.metadata.namespace, plural(obj))}?${query}`;
  for (const obj of objects) {
    try {
      await api.create(collection(obj, `dryRun=All&fieldManager=${FIELD_MANAGER}`), obj);
    } catch (err) {
      deps.stderr(`error: ${labelOf(obj)} would not be created: ${(err as Error).message}\nnothing was created\n`);
      return false;
    }
  }
  const created: MigratedObject[] = [];
  for (const obj of objects) {
    try {
      await api.create(collection(obj, `fieldManager=${FIELD_MANAGER}`), obj);
      created.push(obj);
      deps.stdout(`created ${labelOf(obj)}\n`);
    } catch (err) {
      deps.stderr(`error: creating ${labelOf(obj)}: ${(err as Error).message}\n`);
      if (created.length > 0) deps.stderr(`deleting the ${created.length} object(s) this run created, so that nothing is half-applied\n`);
      for (const done of created.reverse()) {
        try {
          await api.delete(PATHS.customObject(GROUP, 'v2', done.metadata.namespace, plural(done), done.metadata.name));
          deps.stderr(`deleted ${labelOf(done)}\n`);
        } catch (e) {
          deps.stderr(`error: could not delete ${labelOf(done)}: ${(e as Error).message}: delete it by hand\n`);
        }
      }
      return false;
    }
  }
  return true;
}

function printIssues(deps: Pick<MigrateDeps, 'stderr'>, kind: 'warning' | 'error', issues: readonly MigrationIssue[]): void {
  for (const issue of issues) deps.stderr(`${kind}: ${formatMigrationIssue(issue)}\n`);
}

/** The exit code: 0 done, 1 errors (nothing printed or created), 2 a usage error (the caller prints the usage). */
export async function migrateCommand(args: string[], namespaceDefault: string, deps: MigrateDeps): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        'from-cluster': { type: 'boolean' },
        kubeconfig: { type: 'string' },
        namespace: { type: 'string', short: 'n' },
        apply: { type: 'boolean' },
        'dry-run': { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    deps.stderr(`kubectl-purelb migrate: ${(err as Error).message}\n`);
    return 2;
  }
  const { values, positionals: files } = parsed;
  const fromCluster = values['from-cluster'] ?? false;
  if (files.length === 0 && !fromCluster) {
    deps.stderr('kubectl-purelb migrate: name files (- for standard input) or --from-cluster\n');
    return 2;
  }
  if (values.apply && values['dry-run']) {
    deps.stderr('kubectl-purelb migrate: --apply and --dry-run exclude each other\n');
    return 2;
  }
  const namespace = values.namespace ?? namespaceDefault;

  const inputs: InputDocument[] = [];
  const syntax: MigrationIssue[] = [];
  for (const file of files) {
    const origin = file === '-' ? '(stdin)' : file;
    let text: string;
    try {
      text = deps.read(file);
    } catch (err) {
      deps.stderr(`error: ${origin}: cannot read: ${(err as Error).message}\n`);
      return 1;
    }
    const { documents, errors } = parseDocuments(text, origin);
    inputs.push(...documents);
    syntax.push(...errors);
  }
  if (syntax.length > 0) {
    printIssues(deps, 'error', syntax);
    return 1;
  }

  const api = fromCluster || values.apply ? await deps.connect(values.kubeconfig) : undefined;
  if (api && fromCluster) inputs.push(...(await readCluster(api)));
  const existing = api ? await readExisting(api, namespace) : undefined;
  const result = migrate(inputs, { namespace, ...(existing ? { existing } : {}) });
  printIssues(deps, 'warning', result.warnings);
  if (result.errors.length > 0) {
    printIssues(deps, 'error', result.errors);
    return 1;
  }
  if (!values.apply || api === undefined) {
    deps.stdout(result.objects.map((o) => stringify(o)).join('---\n'));
    return 0;
  }
  return (await applyObjects(api, result.objects, deps)) ? 0 : 1;
}
