// The lab client's helper process. It runs inside the client namespace
//   ip netns exec plb-client node_modules/.bin/node e2e/lab/clientd.ts SOCKET
// and serves requests on a Unix socket (a path in the file system, so reachable from the
// root namespace): one JSON request per connection, one JSON reply. It makes TCP
// connections *from the client namespace* without starting a process per attempt, which
// keeps the timing of failover measurements honest (timestamps are taken in here).
//
// Requests:
//   {op:'connect', host, port, timeoutMs}            → ConnectResult
//   {op:'probe', host, port, attemptTimeoutMs, intervalMs, durationMs, maxAttempts,
//                stopWhenNot?}                        → {attempts: ConnectResult[]}
//   {op:'ping'}                                       → {ok:true, pid}

import { createConnection, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { rmSync } from 'node:fs';

export interface ConnectResult {
  ok: boolean;
  /** The node name the responder sent (trimmed), when ok. */
  node?: string;
  error?: string;
  /** Epoch milliseconds (fractional) when the attempt started. */
  at: number;
  /** Milliseconds until the TCP handshake completed / the whole exchange ended. */
  connectMs?: number;
  ms: number;
}

export interface ConnectRequest {
  op: 'connect';
  host: string;
  port: number;
  timeoutMs: number;
}

export interface ProbeRequest {
  op: 'probe';
  host: string;
  port: number;
  attemptTimeoutMs: number;
  intervalMs: number;
  durationMs: number;
  maxAttempts: number;
  /** Stop at the first successful answer from a node other than this one. */
  stopWhenNot?: string;
}

export type ClientRequest = ConnectRequest | ProbeRequest | { op: 'ping' };

const now = (): number => performance.timeOrigin + performance.now();

export function connectOnce(host: string, port: number, timeoutMs: number): Promise<ConnectResult> {
  const at = now();
  const t0 = performance.now();
  return new Promise((resolve) => {
    let done = false;
    let connectMs: number | undefined;
    let data = '';
    const sock: Socket = createConnection({ host, port, noDelay: true });
    const finish = (r: Omit<ConnectResult, 'at' | 'ms' | 'connectMs'>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ ...r, at, ms: performance.now() - t0, ...(connectMs === undefined ? {} : { connectMs }) });
    };
    const timer = setTimeout(() => finish({ ok: false, error: `timeout after ${timeoutMs} ms` }), timeoutMs);
    sock.on('connect', () => {
      connectMs = performance.now() - t0;
      sock.write('WHO\n');
    });
    sock.on('data', (b: Buffer) => {
      data += b.toString('utf8');
      if (data.length > 4096) finish({ ok: false, error: 'answer too long' });
      else if (data.includes('\n')) finish({ ok: true, node: data.split('\n')[0]?.trim() ?? '' });
    });
    sock.on('end', () => {
      if (data.trim()) finish({ ok: true, node: data.trim() });
      else finish({ ok: false, error: 'closed without an answer' });
    });
    sock.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, error: e.code ?? e.message }));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function probe(req: ProbeRequest): Promise<{ attempts: ConnectResult[] }> {
  const duration = Math.min(Math.max(0, req.durationMs), 300_000);
  const maxAttempts = Math.min(Math.max(1, req.maxAttempts), 100_000);
  const interval = Math.max(0, req.intervalMs);
  const deadline = performance.now() + duration;
  const attempts: ConnectResult[] = [];
  for (let i = 0; i < maxAttempts && performance.now() < deadline; i++) {
    const left = deadline - performance.now();
    const r = await connectOnce(req.host, req.port, Math.max(1, Math.min(req.attemptTimeoutMs, left)));
    attempts.push(r);
    if (req.stopWhenNot !== undefined && r.ok && r.node !== req.stopWhenNot) break;
    if (interval > 0) await sleep(Math.min(interval, Math.max(0, deadline - performance.now())));
  }
  return { attempts };
}

async function handle(req: ClientRequest): Promise<unknown> {
  switch (req.op) {
    case 'ping':
      return { ok: true, pid: process.pid };
    case 'connect':
      return connectOnce(req.host, req.port, Math.min(Math.max(1, req.timeoutMs), 60_000));
    case 'probe':
      return probe(req);
    default:
      return { ok: false, error: `unknown op ${(req as { op: string }).op}` };
  }
}

function main(): void {
  const path = process.argv[2];
  if (!path) {
    console.error('usage: clientd.ts SOCKET');
    process.exit(2);
  }
  rmSync(path, { force: true });
  const server = createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > 65_536) {
        sock.destroy();
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let req: ClientRequest;
      try {
        req = JSON.parse(buf.slice(0, nl)) as ClientRequest;
      } catch (e) {
        sock.end(JSON.stringify({ ok: false, error: `bad request: ${String(e)}` }) + '\n');
        return;
      }
      handle(req).then(
        (r) => sock.end(JSON.stringify(r) + '\n'),
        (e: unknown) => sock.end(JSON.stringify({ ok: false, error: String(e) }) + '\n'),
      );
    });
  });
  server.on('error', (e) => {
    console.error(`clientd: ${e.message}`);
    process.exit(1);
  });
  server.listen(path, () => console.log(`clientd listening on ${path}`));
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      server.close();
      rmSync(path, { force: true });
      process.exit(0);
    });
  }
}

if (import.meta.main) main();
