// Bounded process execution for the lab: every command has a timeout, every wait has a
// deadline and an iteration cap, and every long-running process the lab starts is
// recorded by PID (with a marker that must appear in its command line) so that it can be
// stopped by PID later — never by name.

import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LAB_DIR_NAME } from './plan.ts';

/** The checkout this file belongs to (two levels above e2e/lab/). */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
/** Lab state (git-ignored). */
export const LAB_DIR = join(REPO_ROOT, LAB_DIR_NAME);
/** The network part of the lab keeps its pids, configs, sockets, logs and captures here. */
export const NET_DIR = join(LAB_DIR, 'net');
/** Node 24 (the system Node is too old for the project). */
export const NODE_BIN = join(REPO_ROOT, 'node_modules', '.bin', 'node');

export const DEFAULT_EXEC_TIMEOUT_MS = 10_000;
const MAX_OUTPUT_BYTES = 32 * 1024 * 1024;

export interface ExecOptions {
  /** Killed (whole process group, SIGKILL) after this long. Default 10 s. */
  timeoutMs?: number;
  /** Written to stdin, which is then closed. */
  input?: string;
  /** Throw on a non-zero exit or a timeout (default true). */
  check?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface ExecResult {
  argv: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

export class ExecError extends Error {
  readonly result: ExecResult;
  constructor(result: ExecResult) {
    const why = result.timedOut ? 'timed out' : result.signal ? `killed by ${result.signal}` : `exit ${result.code}`;
    const err = result.stderr.trim() || result.stdout.trim();
    super(`${result.argv.join(' ')}: ${why} after ${Math.round(result.ms)} ms${err ? `: ${err.slice(0, 2000)}` : ''}`);
    this.name = 'ExecError';
    this.result = result;
  }
}

/** Runs argv (no shell) with a hard timeout; the child gets its own process group. */
export function run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
  const check = opts.check ?? true;
  const [cmd, ...args] = argv;
  if (cmd === undefined) return Promise.reject(new Error('run: empty argv'));
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      env: opts.env ?? process.env,
      cwd: opts.cwd ?? REPO_ROOT,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let timedOut = false;
    const collect = (sink: Buffer[]) => (b: Buffer) => {
      outBytes += b.length;
      if (outBytes <= MAX_OUTPUT_BYTES) sink.push(b);
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGKILL');
    }, timeoutMs);
    let spawnError: Error | undefined;
    child.on('error', (e) => {
      spawnError = e;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result: ExecResult = {
        argv: [...argv],
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + (spawnError ? String(spawnError) : ''),
        timedOut,
        ms: performance.now() - started,
      };
      if (check && (timedOut || code !== 0 || spawnError)) reject(new ExecError(result));
      else resolve(result);
    });
    child.stdin.on('error', () => {
      /* the command may exit before reading its input */
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs argv inside network namespace ns (`ip netns exec`), bounded like run(). */
export function nsExec(ns: string, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return run(['ip', 'netns', 'exec', ns, ...argv], opts);
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Thrown from a waitUntil callback to stop waiting at once (the condition cannot come true). */
export class WaitAbort extends Error {
  override name = 'WaitAbort';
}

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** Used in the timeout error. */
  what?: string;
}

/**
 * Polls fn until it returns a value other than undefined/false, at most
 * ceil(timeout/interval)+1 times and never past the deadline; throws on timeout with
 * the last value or error seen, or at once if fn throws a WaitAbort.
 */
export async function waitUntil<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, opts: WaitOptions): Promise<T> {
  const interval = Math.max(5, opts.intervalMs ?? 100);
  const deadline = performance.now() + opts.timeoutMs;
  const maxTries = Math.ceil(opts.timeoutMs / interval) + 1;
  let last: unknown;
  for (let i = 0; i < maxTries; i++) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (e) {
      if (e instanceof WaitAbort) throw e;
      last = e;
    }
    const left = deadline - performance.now();
    if (left <= 0) break;
    await sleep(Math.min(interval, left));
  }
  const detail = last instanceof Error ? last.message : JSON.stringify(last);
  throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what ?? 'condition'} (last: ${detail})`);
}

// ---------------------------------------------------------------------------------
// Long-running processes, recorded by PID.

export interface DaemonRecord {
  name: string;
  pid: number;
  /** A string that must occur in /proc/PID/cmdline for the PID to still be ours. */
  marker: string;
  argv: string[];
  log: string;
  startedAt: string;
}

/** Where the control plane keeps its processes: apart from NET_DIR, so cycling the network leaves it running. */
export const CONTROL_PLANE_DIR = join(LAB_DIR, 'cp');

const pidFile = (name: string, dir: string): string => join(dir, `${name}.pid.json`);

export function ensureNetDir(dir = NET_DIR): void {
  mkdirSync(dir, { recursive: true });
}

/**
 * Starts argv detached (own session, stdout+stderr to NET_DIR/<name>.log) and records its
 * PID. The marker must be part of argv so a recycled PID is never mistaken for ours.
 */
export function startDaemon(name: string, argv: readonly string[], marker: string, dir = NET_DIR): DaemonRecord {
  if (!argv.join(' ').includes(marker)) throw new Error(`startDaemon ${name}: marker ${marker} not in argv`);
  ensureNetDir(dir);
  const log = join(dir, `${name}.log`);
  const fd = openSync(log, 'w');
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('startDaemon: empty argv');
  try {
    const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], detached: true, cwd: REPO_ROOT });
    if (child.pid === undefined) throw new Error(`startDaemon ${name}: spawn of ${cmd} failed`);
    child.on('error', () => {
      /* reported through liveness checks */
    });
    // While the starter lives, how the daemon ended goes into its log: a crash by a signal
    // leaves no output of its own (CI once saw clientd "exited" with an empty log).
    child.on('exit', (code, signal) => {
      try {
        appendFileSync(log, `\n[${name} (pid ${child.pid}) exited: ${signal ? `signal ${signal}` : `code ${code}`} at ${new Date().toISOString()}]\n`);
      } catch {
        /* the log's directory is gone: the lab was taken down */
      }
    });
    child.unref();
    const rec: DaemonRecord = { name, pid: child.pid, marker, argv: [...argv], log, startedAt: new Date().toISOString() };
    writeFileSync(pidFile(name, dir), JSON.stringify(rec, null, 2) + '\n');
    return rec;
  } finally {
    closeSync(fd);
  }
}

export function readDaemons(dir = NET_DIR): DaemonRecord[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((f) => f.endsWith('.pid.json'));
  } catch {
    return [];
  }
  const out: DaemonRecord[] = [];
  for (const f of names.sort()) {
    try {
      out.push(JSON.parse(readFileSync(join(dir, f), 'utf8')) as DaemonRecord);
    } catch {
      rmSync(join(dir, f), { force: true });
    }
  }
  return out;
}

/**
 * True if pid is alive, not a zombie, and its command line contains marker. A process
 * in the middle of an exec (`ip netns exec` and `env` exec the daemon after they start)
 * shows an empty command line for a moment: that is read again, up to 500 ms, not taken
 * for a death. (It was: CI saw "exited: clientd:" with an empty log, about 1 run in 20;
 * a probe here read an empty cmdline 140 times in 40 such starts.)
 */
export function pidMatches(pid: number, marker: string): boolean {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'Z' || state === 'X') return false;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline !== '') return cmdline.split('\0').join(' ').includes(marker);
    } catch {
      return false;
    }
    Atomics.wait(pause, 0, 0, 5);
  }
  return false;
}

export function daemonAlive(rec: DaemonRecord): boolean {
  return pidMatches(rec.pid, rec.marker);
}

/** SIGTERM, wait up to graceMs, then SIGKILL; only if the PID still carries the marker. */
export async function stopPid(pid: number, marker: string | undefined, graceMs = 3000): Promise<boolean> {
  const ours = (): boolean => (marker === undefined ? pidAlive(pid) : pidMatches(pid, marker));
  if (!ours()) return false;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return false;
  }
  const deadline = performance.now() + graceMs;
  for (let i = 0; i < 1000 && performance.now() < deadline; i++) {
    if (!pidAlive(pid)) return true;
    await sleep(20);
  }
  if (ours()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    for (let i = 0; i < 100 && pidAlive(pid); i++) await sleep(10);
  }
  return true;
}

function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The last `lines` lines of a daemon's log, for error messages. */
export function logTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function stopDaemon(rec: DaemonRecord, graceMs = 3000): Promise<boolean> {
  const stopped = await stopPid(rec.pid, rec.marker, graceMs);
  rmSync(join(dirname(rec.log), `${rec.name}.pid.json`), { force: true });
  return stopped;
}
