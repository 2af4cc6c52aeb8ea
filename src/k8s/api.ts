// The API server as purelb-ts calls it: the paths, in one place, and plain HTTP over a
// Connection (connection.ts: the server, a keep-alive agent, the credentials). Objects
// travel as the JSON the API server sends, typed by client-node's interfaces, which
// are types only. client-node's generated API classes and its fetch-based client are
// not loaded: they cost tens of MiB in every process (docs/performance.md), and
// purelb-ts makes a dozen kinds of call.
//
// Errors carry the HTTP status as `code`, as client-node's ApiException does, and the
// API server's Status message.

import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { AgentOptions, IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createInterface } from 'node:readline';
import { Counter } from 'prom-client';
import type { Connection } from './connection.ts';

/**
 * Every request of this process to the API server, by verb (WATCH for a watch) and
 * HTTP status, on the component's /metrics: how much API work it does, and whether it
 * has stopped writing (the idle benchmarks wait for that).
 */
export const apiRequests = new Counter({
  name: 'purelb_api_requests_total',
  help: 'Requests to the Kubernetes API server by verb (GET, POST, PUT, PATCH, DELETE, WATCH), resource (services, leases, events, …) and HTTP status code.',
  labelNames: ['verb', 'resource', 'code'],
});

/**
 * Watches get their own keep-alive agent, with the same TLS and no socket limit: a watch
 * holds its connection for minutes, and on the connection's agent (16 sockets) the 17th
 * watch, or every request after 16 of them, would wait for one to end. (Synthetic peers
 * in the agent bench, 27 Lease watches in one process, met this: their renewals never
 * went out.)
 */
const watchAgents = new WeakMap<Connection['agent'], Connection['agent']>();

function watchAgentOf(agent: Connection['agent']): Connection['agent'] {
  let watch = watchAgents.get(agent);
  if (watch === undefined) {
    const options = { ...(agent as unknown as { options: AgentOptions }).options, keepAlive: true, maxSockets: Infinity };
    watch = agent instanceof HttpsAgent ? new HttpsAgent(options) : new HttpAgent(options);
    watchAgents.set(agent, watch);
  }
  return watch;
}

/** The resource a path names: `services` for /api/v1/namespaces/x/services/y/status. */
export function resourceOf(path: string): string {
  const segs = (path.split('?')[0] ?? '').split('/').filter((s) => s !== '');
  let i = segs[0] === 'api' ? 2 : 3;
  if (segs[i] === 'namespaces' && segs.length > i + 2) i += 2;
  return segs[i] ?? 'unknown';
}

export class ApiError extends Error {
  /** The HTTP status. */
  readonly code: number;
  /** The response body: the API server's Status object, or its text. */
  readonly body: unknown;
  constructor(code: number, message: string, body: unknown) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.body = body;
  }
}

export type PatchType = 'merge' | 'json' | 'strategic';
const PATCH_CONTENT: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

const seg = encodeURIComponent;
const core = (ns: string) => `/api/v1/namespaces/${seg(ns)}`;

/** Every path purelb-ts reads or writes. */
export const PATHS = {
  services: (ns?: string) => (ns === undefined ? '/api/v1/services' : `${core(ns)}/services`),
  service: (ns: string, name: string) => `${core(ns)}/services/${seg(name)}`,
  serviceStatus: (ns: string, name: string) => `${core(ns)}/services/${seg(name)}/status`,
  endpointSlices: (ns?: string) => (ns === undefined ? '/apis/discovery.k8s.io/v1/endpointslices' : `/apis/discovery.k8s.io/v1/namespaces/${seg(ns)}/endpointslices`),
  nodes: () => '/api/v1/nodes',
  node: (name: string) => `/api/v1/nodes/${seg(name)}`,
  events: (ns: string) => `${core(ns)}/events`,
  event: (ns: string, name: string) => `${core(ns)}/events/${seg(name)}`,
  secret: (ns: string, name: string) => `${core(ns)}/secrets/${seg(name)}`,
  leases: (ns: string) => `/apis/coordination.k8s.io/v1/namespaces/${seg(ns)}/leases`,
  lease: (ns: string, name: string) => `/apis/coordination.k8s.io/v1/namespaces/${seg(ns)}/leases/${seg(name)}`,
  daemonSet: (ns: string, name: string) => `/apis/apps/v1/namespaces/${seg(ns)}/daemonsets/${seg(name)}`,
  configMap: (ns: string, name: string) => `${core(ns)}/configmaps/${seg(name)}`,
  /** A namespaced custom resource collection, e.g. purelb.io/v1 servicegroups. */
  custom: (group: string, version: string, ns: string, plural: string) => `/apis/${group}/${version}/namespaces/${seg(ns)}/${plural}`,
  customObject: (group: string, version: string, ns: string, plural: string, name: string) =>
    `/apis/${group}/${version}/namespaces/${seg(ns)}/${plural}/${seg(name)}`,
  /** A custom resource collection across all namespaces, or of a cluster-scoped kind. */
  customAll: (group: string, version: string, plural: string) => `/apis/${group}/${version}/${plural}`,
  customStatus: (group: string, version: string, ns: string, plural: string, name: string) =>
    `/apis/${group}/${version}/namespaces/${seg(ns)}/${plural}/${seg(name)}/status`,
} as const;

export interface List<T> {
  items: T[];
  metadata?: { resourceVersion?: string; continue?: string };
}

/** A Kubernetes MicroTime (RFC 3339 with microseconds), as Leases' times are written. */
export function microTime(d: Date = new Date()): string {
  return d.toISOString().replace(/Z$/, '000Z');
}

export type WatchPhase = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export class Api {
  private readonly conn: Connection;

  constructor(conn: Connection) {
    this.conn = conn;
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, { query });
  }

  list<T>(path: string, query?: Query): Promise<List<T>> {
    return this.request<List<T>>('GET', path, { query });
  }

  create<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }

  replace<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }

  patch<T>(path: string, body: unknown, type: PatchType = 'merge'): Promise<T> {
    return this.request<T>('PATCH', path, { body, contentType: PATCH_CONTENT[type] });
  }

  delete(path: string): Promise<unknown> {
    return this.request('DELETE', path, {});
  }

  /**
   * Streams the watch of `path` until it ends, `signal` aborts it, or nothing arrives
   * for `idleMs` (the end, not an error: the caller resumes from the last version).
   * Rejects on an HTTP error, with its status as `code`.
   */
  async watch<T>(path: string, query: Query, onEvent: (phase: WatchPhase, obj: T) => void, opts: { signal?: AbortSignal; idleMs?: number } = {}): Promise<void> {
    const res = await this.send('WATCH', path, { ...query, watch: true }, undefined, undefined, opts.signal);
    if ((res.statusCode ?? 0) >= 300) {
      const text = await readAll(res);
      throw apiError('GET', path, res.statusCode ?? 0, text);
    }
    await new Promise<void>((resolve, reject) => {
      let idle: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(idle);
        idle = setTimeout(() => res.destroy(), opts.idleMs ?? 5 * 60_000);
        idle.unref();
      };
      arm();
      const lines = createInterface({ input: res, crlfDelay: Infinity });
      lines.on('line', (line) => {
        arm();
        if (line === '') return;
        let e: { type: WatchPhase; object: T };
        try {
          e = JSON.parse(line) as { type: WatchPhase; object: T };
        } catch {
          return;
        }
        onEvent(e.type, e.object);
      });
      const done = () => {
        clearTimeout(idle);
        resolve();
      };
      // A stream cut by the server, by the idle timer or by `signal` ends the watch; the
      // caller resumes from the last version it saw.
      const failed = (err: Error) => {
        clearTimeout(idle);
        if (opts.signal?.aborted || res.destroyed || (err as NodeJS.ErrnoException).code === 'ECONNRESET') resolve();
        else reject(err);
      };
      res.on('close', done);
      res.on('end', done);
      res.on('error', failed);
      lines.on('error', failed);
    });
  }

  private async request<T>(method: Method, path: string, opts: { query?: Query; body?: unknown; contentType?: string }): Promise<T> {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const res = await this.send(method, path, opts.query, body, opts.contentType);
    const text = await readAll(res);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw apiError(method, path, status, text);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  private async send(verb: Method | 'WATCH', path: string, query: Query | undefined, body: string | undefined, contentType?: string, signal?: AbortSignal): Promise<IncomingMessage> {
    const method = verb === 'WATCH' ? 'GET' : verb;
    const url = new URL(this.conn.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { ...(await this.conn.headers()), accept: 'application/json' };
    if (body !== undefined) {
      headers['content-type'] = contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const agent = verb === 'WATCH' ? watchAgentOf(this.conn.agent) : this.conn.agent;
      const req = send(url, { method, headers, agent, ...(signal ? { signal } : {}) }, (res) => {
        apiRequests.inc({ verb, resource: resourceOf(path), code: String(res.statusCode ?? 0) });
        resolve(res);
      });
      req.on('error', (err) => {
        apiRequests.inc({ verb, resource: resourceOf(path), code: 'error' });
        reject(err);
      });
      req.end(body);
    });
  }
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function apiError(method: string, path: string, status: number, text: string): ApiError {
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: kept as text.
  }
  const message = (parsed as { message?: string } | undefined)?.message ?? text;
  return new ApiError(status, `${method} ${path}: HTTP ${status}: ${message}`, parsed);
}
