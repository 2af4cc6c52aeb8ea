// Real-kernel test helpers: throw-away network namespaces (prefix `plbt-`, never the
// lab's `plb-`), veth pairs between them, and a fixture process running inside a
// namespace that the test drives over stdin/stdout (netns-fixture.ts). Every command
// has a time limit; namespaces left by a killed test run are swept on the next start.

import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const COMMAND_TIMEOUT_MS = 10_000;
/** A fixture's start, Node's own start-up included: seconds under software emulation. */
const START_TIMEOUT_MS = 60_000;
const NETNS_PREFIX = 'plbt-';
const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(here, '..', '..');

/** Runs a command to completion (bounded in time); throws with its stderr on failure. */
export function run(command: string, args: readonly string[], timeoutMs = COMMAND_TIMEOUT_MS): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim() ?? '';
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr || String(error)}`, { cause: error });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Deletes `plbt-…-<pid>` namespaces whose creating process is gone. */
export function sweepStaleNamespaces(): void {
  const listed = run('ip', ['netns', 'list'])
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '');
  for (const name of listed) {
    const pid = /^plbt-.*-(\d+)-[0-9a-f]+$/.exec(name)?.[1];
    if (pid !== undefined && Number(pid) !== process.pid && !alive(Number(pid))) run('ip', ['netns', 'delete', name]);
  }
}

export class Netns {
  readonly name: string;
  private readonly fixtures = new Set<Fixture>();

  private constructor(name: string) {
    this.name = name;
  }

  /** A fresh namespace with loopback up. */
  static create(tag: string): Netns {
    const ns = new Netns(`${NETNS_PREFIX}${tag}-${process.pid}-${randomBytes(3).toString('hex')}`);
    run('ip', ['netns', 'add', ns.name]);
    ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /**
   * A node as the agent sees it: `eth0` (a veth) with the node's own 198.51.100.2/24 and
   * 2001:db8:100::2/64, and `kube-lb0` (an ifb: this kernel may lack the dummy module;
   * the agent adopts any type), both up.
   */
  static node(tag: string): Netns {
    const ns = Netns.create(tag);
    ns.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p');
    ns.ip('link', 'add', 'kube-lb0', 'type', 'ifb');
    for (const l of ['eth0', 'eth0p', 'kube-lb0']) ns.ip('link', 'set', l, 'up');
    ns.ip('addr', 'add', '198.51.100.2/24', 'dev', 'eth0');
    ns.ip('-6', 'addr', 'add', '2001:db8:100::2/64', 'dev', 'eth0', 'nodad');
    return ns;
  }

  /** `ip -n <ns> …` */
  ip(...args: string[]): string {
    return run('ip', ['-n', this.name, ...args]);
  }

  /** Runs a command inside the namespace. */
  exec(command: string, args: readonly string[], timeoutMs?: number): string {
    return run('ip', ['netns', 'exec', this.name, command, ...args], timeoutMs);
  }

  async startFixture(module: string, callTimeoutMs = COMMAND_TIMEOUT_MS, env: NodeJS.ProcessEnv = {}): Promise<Fixture> {
    const fixture = await Fixture.start(this.name, module, callTimeoutMs, env);
    this.fixtures.add(fixture);
    return fixture;
  }

  /** Stops this namespace's fixtures and deletes it; safe to call twice. */
  delete(): void {
    for (const f of this.fixtures) f.stop();
    this.fixtures.clear();
    if (run('ip', ['netns', 'list']).split('\n').some((l) => l.split(' ')[0] === this.name)) {
      run('ip', ['netns', 'delete', this.name]);
    }
  }
}

/** A veth pair with one end in each namespace, both up. */
export function vethPair(a: Netns, aName: string, b: Netns, bName: string): void {
  run('ip', ['-n', a.name, 'link', 'add', aName, 'type', 'veth', 'peer', 'name', bName, 'netns', b.name]);
  a.ip('link', 'set', aName, 'up');
  b.ip('link', 'set', bName, 'up');
}

/**
 * tcpdump on an interface of a namespace, stopped after `frames` matching frames or
 * `timeoutMs`; `ready` resolves once it listens, `output` with its decoded lines
 * (`-nn -e -vv`).
 */
export function startCapture(ns: Netns, ifname: string, filter: string, frames: number, timeoutMs = 5000): { ready: Promise<void>; output: Promise<string> } {
  const child = spawn('ip', ['netns', 'exec', ns.name, 'tcpdump', '-i', ifname, '-nn', '-e', '-vv', '-l', '-c', String(frames), filter], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const ready = new Promise<void>((resolvePromise, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('listening on')) resolvePromise();
    });
    child.on('error', reject);
    child.on('exit', () => reject(new Error(`tcpdump ended before listening: ${stderr}`)));
  });
  const output = new Promise<string>((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise(stdout);
      else reject(new Error(`tcpdump did not see ${frames} frame(s) within ${timeoutMs} ms (exit ${code}); saw:\n${stdout}\n${stderr}`));
    });
  });
  return { ready, output };
}

/**
 * The ownership records of this test process's fixtures (one file per namespace): a
 * folder of its own, removed at exit, never the agent's /run/purelb-ts. A test that
 * sets PURELB_OWNERSHIP_DIR keeps its own.
 */
let ownershipDir: string | undefined;
function fixtureOwnershipDir(): string {
  if (ownershipDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'plbt-ownership-'));
    ownershipDir = dir;
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return ownershipDir;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

/**
 * A Node process inside a namespace serving the methods of a fixture module
 * (see netns-fixture.ts): `call` sends a request line and awaits its answer; events the
 * module emits are kept for `waitForEvent`.
 */
export class Fixture {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending = new Map<number, Pending>();
  private readonly events: unknown[] = [];
  private eventWaiters: Array<() => void> = [];
  private nextId = 1;
  private stderr = '';
  private readonly callTimeoutMs: number;

  private constructor(child: ChildProcessWithoutNullStreams, callTimeoutMs: number) {
    this.child = child;
    this.callTimeoutMs = callTimeoutMs;
    createInterface({ input: child.stdout }).on('line', (line) => this.receive(line));
    child.stderr.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000);
    });
    child.on('exit', (code, signal) => {
      const error = new Error(`fixture exited (${code ?? signal}): ${this.stderr}`);
      for (const p of this.pending.values()) p.reject(error);
      this.pending.clear();
    });
  }

  /** Starts the fixture; one that does not answer in time is killed, not left behind. */
  static async start(netns: string, module: string, callTimeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<Fixture> {
    const node = join(REPO_ROOT, 'node_modules', '.bin', 'node');
    const child = spawn('ip', ['netns', 'exec', netns, node, join(here, 'netns-fixture.ts'), module], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PURELB_OWNERSHIP_DIR: process.env['PURELB_OWNERSHIP_DIR'] ?? fixtureOwnershipDir(), ...env },
    });
    const fixture = new Fixture(child, callTimeoutMs);
    try {
      await fixture.callWithin(Math.max(callTimeoutMs, START_TIMEOUT_MS), 'ping');
    } catch (error) {
      fixture.stop();
      throw error;
    }
    return fixture;
  }

  /** The process's id, for tests that kill it. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  call<T = unknown>(method: string, ...args: unknown[]): Promise<T> {
    return this.callWithin<T>(this.callTimeoutMs, method, ...args);
  }

  callWithin<T = unknown>(timeoutMs: number, method: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`fixture call ${method} timed out after ${timeoutMs} ms; stderr: ${this.stderr}`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolvePromise(v as T)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.child.stdin.write(`${JSON.stringify({ id, method, args })}\n`);
    });
  }

  /** The events seen so far, in order. */
  seen<T>(): T[] {
    return [...this.events] as T[];
  }

  /** Resolves with the first event (seen before or after the call) that `match` accepts. */
  async waitForEvent<T>(match: (event: T) => boolean, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let checked = 0;
    for (;;) {
      for (; checked < this.events.length; checked++) {
        const event = this.events[checked] as T;
        if (match(event)) return event;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching event within ${timeoutMs} ms; saw ${JSON.stringify(this.events).slice(0, 2000)}`);
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, left);
        this.eventWaiters.push(() => (clearTimeout(timer), wake()));
      });
    }
  }

  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  private receive(line: string): void {
    let message: { id?: number; result?: unknown; error?: string; event?: unknown };
    try {
      message = JSON.parse(line) as typeof message;
    } catch {
      this.stderr += `\n[stdout] ${line}`;
      return;
    }
    if (message.event !== undefined) {
      this.events.push(message.event);
      const waiters = this.eventWaiters;
      this.eventWaiters = [];
      for (const w of waiters) w();
      return;
    }
    const pending = message.id === undefined ? undefined : this.pending.get(message.id);
    if (pending === undefined || message.id === undefined) return;
    this.pending.delete(message.id);
    if (message.error !== undefined) pending.reject(new Error(message.error));
    else pending.resolve(message.result);
  }
}
