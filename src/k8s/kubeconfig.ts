// In a Pod: the ServiceAccount. Elsewhere: $KUBECONFIG (the lab runs components as
// processes with the kubeconfig of their identity).

import { KubeConfig } from '@kubernetes/client-node';

export function loadKubeConfig(path = process.env.KUBECONFIG): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromCluster();
  return kc;
}
