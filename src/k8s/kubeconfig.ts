// client-node's KubeConfig, for tests and the CLI (the components use connection.ts).
// In a Pod: the ServiceAccount. Elsewhere: $KUBECONFIG.
//
// client-node 2.0.1 builds a new undici Agent for every API request
// (applySecurityAuthentication → createDispatcher), so no connection is ever reused:
// each request pays a TLS handshake on both ends. Measured in the lab, handshakes were
// the largest part of the allocator's CPU and kept the API server busy. The
// KubeConfig here keeps the first dispatcher built for a cluster and user and hands
// it to every later request (cf. kubernetes-client/javascript#2893 for the same leak
// on the https.Agent path).

import { Agent } from 'node:https';
import type { RequestOptions } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import type { RequestContext } from '@kubernetes/client-node';
import type { Connection } from './connection.ts';

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

/**
 * A Connection (connection.ts) that authenticates through client-node's KubeConfig, with
 * every way it knows (exec plugins, OIDC): for the CLI, which runs with people's own
 * kubeconfigs. The components use loadConnection().
 */
export async function connectionOf(kc: KubeConfig): Promise<Connection> {
  const server = kc.getCurrentCluster()?.server?.replace(/\/$/, '');
  if (!server) throw new Error('no current cluster in the kubeconfig');
  const opts: RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const agent = new Agent({ keepAlive: true, ca: opts.ca, cert: opts.cert, key: opts.key, rejectUnauthorized: opts.rejectUnauthorized });
  const headers = async () => {
    const o: RequestOptions = {};
    await kc.applyToHTTPSOptions(o);
    return Object.fromEntries(Object.entries(o.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
  };
  return { server, agent, headers };
}
