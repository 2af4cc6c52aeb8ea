// The API client against a small HTTP server on loopback: requests as the API server
// sees them, errors with their status, watches line by line, and the request counter
// on /metrics.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { register } from 'prom-client';
import { Api, ApiError, PATHS, resourceOf } from './api.ts';

const seen: Array<{ method: string; url: string; type: string | undefined; body: string }> = [];
let server: Server;
let api: Api;

function handle(req: IncomingMessage, res: ServerResponse): void {
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString()));
  req.on('end', () => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', type: req.headers['content-type'], body });
    res.setHeader('content-type', 'application/json');
    if (req.url?.includes('watch=true') && req.url.includes('hold=1')) {
      // A watch that stays open with nothing to say, as most of a component's watches do.
      res.write('\n');
    } else if (req.url?.includes('watch=true')) {
      res.write('{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n');
      res.write('\n');
      res.end('{"type":"DELETED","object":{"metadata":{"name":"a"}}}\n');
    } else if (req.url?.includes('/services/missing')) {
      res.statusCode = 404;
      res.end(JSON.stringify({ kind: 'Status', message: 'services "missing" not found', code: 404 }));
    } else if (req.method === 'DELETE') {
      res.end('');
    } else {
      res.end(JSON.stringify({ metadata: { name: 'web' }, echoed: body === '' ? null : JSON.parse(body) }));
    }
  });
}

async function counted(verb: string, code: string, resource?: string): Promise<number> {
  const metric = await register.getSingleMetric('purelb_api_requests_total')?.get();
  return (metric?.values ?? []).filter((v) => v.labels.verb === verb && v.labels.code === code && (resource === undefined || v.labels.resource === resource)).reduce((a, v) => a + v.value, 0);
}

before(async () => {
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  api = new Api({ server: `http://127.0.0.1:${port}`, agent: new Agent({ keepAlive: true }), headers: () => ({ authorization: 'Bearer t0ken' }) });
});

after(() => {
  server.closeAllConnections();
  server.close();
});

test('get, create and patch reach the path with the body and content type, and are counted', async () => {
  const gets = await counted('GET', '200');
  const patches = await counted('PATCH', '200', 'services');
  const got = await api.get<{ metadata: { name: string } }>(PATHS.service('ns-a', 'web'), { resourceVersion: '0', labelSelector: undefined });
  assert.equal(got.metadata.name, 'web');
  const created = await api.create<{ echoed: unknown }>(PATHS.services('ns-a'), { kind: 'Service' });
  assert.deepEqual(created.echoed, { kind: 'Service' });
  await api.patch(PATHS.service('ns-a', 'web'), { metadata: { annotations: { a: 'b' } } }, 'strategic');
  await api.delete(PATHS.service('ns-a', 'web'));
  const [g, c, p, d] = seen.slice(-4);
  assert.deepEqual([g?.method, g?.url], ['GET', '/api/v1/namespaces/ns-a/services/web?resourceVersion=0']);
  assert.deepEqual([c?.method, c?.url, c?.type], ['POST', '/api/v1/namespaces/ns-a/services', 'application/json']);
  assert.deepEqual([p?.method, p?.type], ['PATCH', 'application/strategic-merge-patch+json']);
  assert.equal(d?.method, 'DELETE');
  assert.equal(await counted('GET', '200'), gets + 1);
  assert.equal(await counted('PATCH', '200', 'services'), patches + 1);
});

test('an HTTP error becomes an ApiError with the status and the Status message, counted by its code', async () => {
  const before404 = await counted('GET', '404');
  await assert.rejects(api.get(PATHS.service('ns-a', 'missing')), (err: unknown) => {
    assert.ok(err instanceof ApiError);
    assert.equal(err.code, 404);
    assert.match(err.message, /GET \/api\/v1\/namespaces\/ns-a\/services\/missing: HTTP 404: services "missing" not found/);
    return true;
  });
  assert.equal(await counted('GET', '404'), before404 + 1);
});

test('a watch delivers each event line and ends with the stream; it is counted as WATCH', async () => {
  const watches = await counted('WATCH', '200');
  const events: string[] = [];
  await api.watch<{ metadata: { name: string } }>(PATHS.services(), { resourceVersion: '7' }, (phase, obj) => events.push(`${phase} ${obj.metadata.name}`));
  assert.deepEqual(events, ['ADDED a', 'DELETED a']);
  assert.match(seen.at(-1)?.url ?? '', /^\/api\/v1\/services\?resourceVersion=7&watch=true$/);
  assert.equal(await counted('WATCH', '200'), watches + 1);
});

test('a refused connection is counted as an error and rejects', async () => {
  const errors = await counted('GET', 'error');
  const closed = new Api({ server: 'http://127.0.0.1:1', agent: new Agent(), headers: () => ({}) });
  await assert.rejects(closed.get('/api/v1/nodes'));
  assert.equal(await counted('GET', 'error'), errors + 1);
});

test('the resource of a path, for the counter', () => {
  assert.equal(resourceOf(PATHS.serviceStatus('ns', 'web')), 'services');
  assert.equal(resourceOf(PATHS.services()), 'services');
  assert.equal(resourceOf(PATHS.lease('ns', 'node1')), 'leases');
  assert.equal(resourceOf(PATHS.events('ns')), 'events');
  assert.equal(resourceOf(PATHS.node('n')), 'nodes');
  assert.equal(resourceOf(PATHS.endpointSlices()), 'endpointslices');
  assert.equal(resourceOf(PATHS.custom('purelb.io', 'v1', 'ns', 'servicegroups')), 'servicegroups');
  assert.equal(resourceOf('/api/v1/namespaces/ns?watch=true'), 'namespaces');
});

test('requests still go out while more watches are open than the agent has sockets', async () => {
  const { port } = server.address() as AddressInfo;
  const limited = new Api({ server: `http://127.0.0.1:${port}`, agent: new Agent({ keepAlive: true, maxSockets: 4 }), headers: () => ({}) });
  const stop = new AbortController();
  const watches = Array.from({ length: 8 }, () => limited.watch(PATHS.leases('ns-a'), { hold: 1 }, () => undefined, { signal: stop.signal }).catch(() => undefined));
  try {
    // All eight watches are open at the server before the GET is sent.
    for (let i = 0; i < 200 && seen.filter((r) => r.url.includes('hold=1')).length < 8; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(seen.filter((r) => r.url.includes('hold=1')).length, 8, 'the eight watches reached the server');
    const got = await Promise.race([limited.get<{ metadata: { name: string } }>(PATHS.service('ns-a', 'web')), new Promise<undefined>((r) => setTimeout(() => r(undefined), 3000))]);
    assert.equal(got?.metadata.name, 'web', 'the GET was answered beside eight open watches on a four-socket agent');
  } finally {
    stop.abort();
    await Promise.all(watches);
  }
});
