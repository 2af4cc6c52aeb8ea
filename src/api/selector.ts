// Whether a label selector picks a set of labels, as the API server matches them. The
// syntax of keys and values is not checked here (see docs/api.md): a key that cannot
// exist simply matches no label.

import type { LabelSelector } from './lbnodeagent.ts';

/** Whether a node with `labels` is selected; no selector selects every node. */
export function selects(selector: LabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  return (selector.matchExpressions ?? []).every((e) => {
    const has = Object.hasOwn(labels, e.key);
    const listed = has && (e.values ?? []).includes(labels[e.key] as string);
    switch (e.operator) {
      case 'In':
        return listed;
      case 'NotIn':
        return !listed;
      case 'Exists':
        return has;
      case 'DoesNotExist':
        return !has;
    }
  });
}
