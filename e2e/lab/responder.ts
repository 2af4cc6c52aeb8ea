// A tiny TCP/HTTP responder run inside a node namespace:
//   ip netns exec plb-node1 node_modules/.bin/node e2e/lab/responder.ts plb-node1 [port]
// It listens on [::]:port (IPv4 and IPv6, every address, so VIPs added later answer too)
// and tells who it is:
//   - an HTTP request (first bytes are a method) gets `200 OK`, body `<name>\n` and the
//     header `X-Node: <name>`;
//   - anything else (the lab client sends `WHO\n`) gets `<name>\n`, then the
//     connection is closed.

import { createServer } from 'node:net';

const name = process.argv[2];
const port = Number(process.argv[3] ?? '80');
if (!name || !Number.isInteger(port) || port < 1 || port > 65535) {
  console.error('usage: responder.ts NAME [PORT]');
  process.exit(2);
}

const HTTP = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH) /;

const server = createServer({ allowHalfOpen: false }, (sock) => {
  sock.setNoDelay(true);
  sock.setTimeout(5000, () => sock.destroy());
  sock.on('error', () => sock.destroy());
  sock.once('data', (chunk: Buffer) => {
    const head = chunk.toString('latin1', 0, Math.min(chunk.length, 16));
    if (HTTP.test(head)) {
      const body = `${name}\n`;
      const headOnly = head.startsWith('HEAD ');
      sock.end(
        `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nX-Node: ${name}\r\nConnection: close\r\n\r\n${headOnly ? '' : body}`,
      );
    } else {
      sock.end(`${name}\n`);
    }
  });
});

server.on('error', (e) => {
  console.error(`responder ${name}: ${e.message}`);
  process.exit(1);
});
server.listen({ host: '::', port, ipv6Only: false }, () => {
  console.log(`responder ${name} listening on [::]:${port}`);
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
