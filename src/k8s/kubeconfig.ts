// In a Pod: the ServiceAccount. Elsewhere: $KUBECONFIG (the lab runs components as
// processes with the kubeconfig of their identity).
//
// client-node 2.0.1 builds a new undici Agent for every API request
// (applySecurityAuthentication → createDispatcher), so no connection is ever reused:
// each request pays a TLS handshake on both ends. Measured in the lab, handshakes were
// the largest part of the allocator's CPU and kept the API server busy. The
// KubeConfig here keeps the first dispatcher built for a cluster and user and hands
// it to every later request (cf. kubernetes-client/javascript#2893 for the same leak
// on the https.Agent path).

import { KubeConfig } from '@kubernetes/client-node';
import type { RequestContext } from '@kubernetes/client-node';

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

export class PooledKubeConfig extends KubeConfig {
  readonly #dispatchers = new Map<string, Dispatcher>();

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const built = context.getDispatcher();
    if (built === undefined) return;
    const key = `${this.getCurrentCluster()?.name}\u0000${this.getCurrentUser()?.name}`;
    let kept = this.#dispatchers.get(key);
    if (kept === undefined) this.#dispatchers.set(key, (kept = built));
    context.setDispatcher(kept);
  }
}

export function loadKubeConfig(path = process.env.KUBECONFIG): KubeConfig {
  const kc = new PooledKubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromCluster();
  return kc;
}
