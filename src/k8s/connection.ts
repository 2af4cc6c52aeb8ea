// How the components reach the API server: in a Pod, the ServiceAccount (its token,
// re-read as the kubelet rotates it, and the cluster CA); elsewhere, a kubeconfig file
// ($KUBECONFIG; the lab runs components as processes with the kubeconfig of their
// identity). One keep-alive agent per process, so requests reuse their TLS connections.
//
// The kubeconfig reader knows what a component needs: the current context's cluster
// (server, CA file or data, insecure-skip-tls-verify) and user (token, tokenFile, client
// certificate and key, file or data). Exec and auth-provider plugins are for people's
// kubectl, not for a component: the CLI, which runs with people's kubeconfigs, uses
// client-node's full KubeConfig (kubeconfig.ts, connectionOf()).

import { readFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { parse } from 'yaml';

export interface Connection {
  /** `https://host:port`, without a trailing slash. */
  server: string;
  agent: HttpsAgent | HttpAgent;
  /** Headers for one request (Authorization). */
  headers(): Promise<Record<string, string>> | Record<string, string>;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** A rotated token is picked up within this long (the kubelet refreshes at 80% of its life, an hour at least). */
const TOKEN_REREAD_MS = 60_000;

/** A bearer token from a file, re-read every minute. */
function tokenFile(path: string): () => Record<string, string> {
  let cached: { token: string; at: number } | undefined;
  return () => {
    if (cached === undefined || Date.now() - cached.at > TOKEN_REREAD_MS) cached = { token: readFileSync(path, 'utf8').trim(), at: Date.now() };
    return { authorization: `Bearer ${cached.token}` };
  };
}

function agentFor(server: string, tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean }): HttpsAgent | HttpAgent {
  const common = { keepAlive: true, maxSockets: 16 };
  return server.startsWith('https:') ? new HttpsAgent({ ...common, ...tls }) : new HttpAgent(common);
}

export function inClusterConnection(): Connection {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new Error('not in a Pod (KUBERNETES_SERVICE_HOST/PORT unset) and no KUBECONFIG given');
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return { server, agent: agentFor(server, { ca: readFileSync(`${SA_DIR}/ca.crt`), rejectUnauthorized: true }), headers: tokenFile(`${SA_DIR}/token`) };
}

interface KubeconfigFile {
  'current-context'?: string;
  contexts?: Array<{ name: string; context?: { cluster?: string; user?: string } }>;
  clusters?: Array<{ name: string; cluster?: Record<string, unknown> }>;
  users?: Array<{ name: string; user?: Record<string, unknown> }>;
}

export function kubeconfigConnection(path: string): Connection {
  const text = readFileSync(path, 'utf8');
  const file = parse(text) as KubeconfigFile;
  const fail = (what: string) => new Error(`kubeconfig ${path}: ${what}`);
  const ctxName = file['current-context'];
  const ctx = file.contexts?.find((c) => c.name === ctxName)?.context ?? (file.contexts?.length === 1 ? file.contexts[0]?.context : undefined);
  if (!ctx) throw fail(`no context "${ctxName ?? ''}"`);
  const cluster = file.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster) throw fail(`no cluster "${ctx.cluster ?? ''}"`);
  const user = file.users?.find((u) => u.name === ctx.user)?.user ?? {};
  const str = (o: Record<string, unknown>, k: string) => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  const dataOrFile = (o: Record<string, unknown>, k: string): Buffer | undefined => {
    const data = str(o, `${k}-data`);
    if (data !== undefined) return Buffer.from(data, 'base64');
    const f = str(o, k);
    return f === undefined ? undefined : readFileSync(f);
  };
  for (const unsupported of ['exec', 'auth-provider', 'username']) {
    if (unsupported in user) throw fail(`user "${ctx.user}" uses ${unsupported}, which components do not support: use a token or a client certificate`);
  }
  const server = str(cluster, 'server')?.replace(/\/$/, '');
  if (!server) throw fail(`cluster "${ctx.cluster}" has no server`);
  const agent = agentFor(server, {
    ca: dataOrFile(cluster, 'certificate-authority'),
    cert: dataOrFile(user, 'client-certificate'),
    key: dataOrFile(user, 'client-key'),
    rejectUnauthorized: cluster['insecure-skip-tls-verify'] !== true,
  });
  const token = str(user, 'token');
  const tokenPath = str(user, 'tokenFile');
  const headers = token !== undefined ? () => ({ authorization: `Bearer ${token}` }) : tokenPath !== undefined ? tokenFile(tokenPath) : () => ({});
  return { server, agent, headers };
}

/** $KUBECONFIG (or `path`) when set, else the Pod's ServiceAccount. */
export function loadConnection(path = process.env.KUBECONFIG): Connection {
  return path ? kubeconfigConnection(path) : inClusterConnection();
}
