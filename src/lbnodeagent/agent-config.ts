// Which LBNodeAgent configures this node, and what happens when it does not validate:
// the one named `default`, else the first by name whose nodeSelector picks the node,
// else the defaults. One that does not validate is refused as a whole, like a
// ServiceGroup edit: the configuration in use stays (the defaults after a start).

import type { KubernetesObject } from '@kubernetes/client-node';
import { DEFAULT_LBNODEAGENT_CONFIG, normalizeLBNodeAgent } from '../api/normalize.ts';
import type { FieldIssue, LBNodeAgentConfig, Validated } from '../api/normalize.ts';
import { selects } from '../api/selector.ts';

export interface ConfigChoice {
  config: LBNodeAgentConfig;
  /** The LBNodeAgent chosen; undefined: none applies, the defaults are used. */
  chosen: KubernetesObject | undefined;
  /** Its warnings, or the errors for which it was refused. */
  issues: readonly FieldIssue[];
  refused: boolean;
}

// Informers replace objects rather than change them: each is parsed once.
const parsed = new WeakMap<KubernetesObject, Validated<LBNodeAgentConfig>>();
function parse(obj: KubernetesObject): Validated<LBNodeAgentConfig> {
  let v = parsed.get(obj);
  if (v === undefined) parsed.set(obj, (v = normalizeLBNodeAgent(obj)));
  return v;
}

export function chooseAgentConfig(objects: readonly KubernetesObject[], labels: Readonly<Record<string, string>>, inUse: LBNodeAgentConfig): ConfigChoice {
  const all = [...objects].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '')).map((obj) => ({ obj, v: parse(obj) }));
  const chosen = all.find((a) => a.obj.metadata?.name === 'default') ?? all.find((a) => a.v.ok && selects(a.v.value.nodeSelector, labels));
  if (chosen === undefined) return { config: DEFAULT_LBNODEAGENT_CONFIG, chosen: undefined, issues: [], refused: false };
  return chosen.v.ok
    ? { config: chosen.v.value, chosen: chosen.obj, issues: chosen.v.warnings, refused: false }
    : { config: inUse, chosen: chosen.obj, issues: chosen.v.errors, refused: true };
}
