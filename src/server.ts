// The components' HTTP endpoint: Prometheus metrics on /metrics, liveness on /healthz,
// readiness on /readyz, and for the allocator /leader (200 only on the active replica).

import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { register } from 'prom-client';

export function serveMetrics(port: number, host: string, ready: () => boolean, leader?: () => boolean): Server {
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/metrics')) {
      register.metrics().then(
        (body) => {
          res.writeHead(200, { 'Content-Type': register.contentType });
          res.end(body);
        },
        (err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
      return;
    }
    if (url.startsWith('/healthz')) {
      res.writeHead(200);
      res.end('ok\n');
      return;
    }
    if (url.startsWith('/leader') && leader) {
      const yes = leader();
      res.writeHead(yes ? 200 : 503);
      res.end(yes ? 'leader\n' : 'standby\n');
      return;
    }
    if (url.startsWith('/readyz')) {
      const ok = ready();
      res.writeHead(ok ? 200 : 503);
      res.end(ok ? 'ready\n' : 'not ready\n');
      return;
    }
    res.writeHead(404);
    res.end();
  });
  server.on('error', (err) => {
    // Without its endpoint the component cannot be probed or scraped: fail loudly.
    console.error(JSON.stringify({ level: 'error', message: `metrics endpoint ${host}:${port} unavailable`, err: err.message }));
    process.exit(1);
  });
  server.listen(port, host);
  return server;
}
