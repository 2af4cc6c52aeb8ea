// Memory the components hold but do not use, given back to the kernel.
//
// A Node process maps its 120 MB binary and touches about 35 MiB of it while it starts
// (V8's snapshot, the bootstrap, OpenSSL's set-up, the first list of every cache); an
// agent with 1,000 VIPs has 55 MiB of it resident. Those pages stay counted in the
// process's RSS for as long as they stay mapped, although an idle component uses 10–20
// MiB of them (measured: docs/performance.md). So, once the component has settled and
// every few minutes after that, it drops the mapping of
// the pages of its read-only file mappings (MADV_DONTNEED, native/kernel.c): a page it
// uses again is mapped again from the page cache on its next touch, a minor fault of
// about a microsecond; the others stay in the page cache, clean, where the kernel
// reclaims them first when memory runs short. Then malloc_trim gives the C heap's free
// pages back. Only mappings without private (copied-on-write) pages qualify: for those
// MADV_DONTNEED cannot lose anything.

import { readFileSync } from 'node:fs';
import { Counter } from 'prom-client';
import { envNumber } from './env.ts';
import type { Logger } from './log.ts';
import { releasePages } from './netlink/native.ts';

/** One mapping of /proc/self/smaps, with the fields the choice needs. */
export interface Mapping {
  start: number;
  end: number;
  perms: string;
  path: string;
  rssKiB: number;
  anonymousKiB: number;
}

/** Parses /proc/PID/smaps. */
export function parseSmaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  let current: Mapping | undefined;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      current = { start: parseInt(head[1]!, 16), end: parseInt(head[2]!, 16), perms: head[3]!, path: head[4]!.trim(), rssKiB: 0, anonymousKiB: 0 };
      out.push(current);
      continue;
    }
    const field = /^(Rss|Anonymous):\s+(\d+) kB$/.exec(line);
    if (field && current) {
      if (field[1] === 'Rss') current.rssKiB = Number(field[2]);
      else current.anonymousKiB = Number(field[2]);
    }
  }
  return out;
}

/**
 * The mappings whose resident pages can be dropped without loss: backed by a file (a
 * path, not `[heap]`, `[vdso]` or an anonymous mapping), not writable, private or
 * shared, and without anonymous (copied) pages; only those with pages resident.
 */
export function releasable(mappings: readonly Mapping[]): Mapping[] {
  return mappings.filter((m) => m.path.startsWith('/') && !m.path.endsWith(' (deleted)') && m.perms[1] !== 'w' && m.anonymousKiB === 0 && m.rssKiB > 0);
}

/** The process's resident memory by kind, in KiB, from /proc/self/status. */
export function residentKiB(status = readFileSync('/proc/self/status', 'utf8')): { total: number; anon: number; file: number } {
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { total: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile') };
}

export interface Release {
  /** Resident KiB before and after, by kind. */
  before: { total: number; anon: number; file: number };
  after: { total: number; anon: number; file: number };
  mappings: number;
  ms: number;
}

/** Drops the resident pages of the releasable mappings and trims the C heap, now. */
export function releaseUnusedMemory(): Release {
  const t0 = performance.now();
  const before = residentKiB();
  const chosen = releasable(parseSmaps(readFileSync('/proc/self/smaps', 'utf8')));
  releasePages(chosen.flatMap((m) => [m.start, m.end - m.start]));
  return { before, after: residentKiB(), mappings: chosen.length, ms: performance.now() - t0 };
}

const releases = new Counter({
  name: 'purelb_memory_releases_total',
  help: 'Times the component gave unused memory back to the kernel (the node binary pages it no longer touches, the C heap free pages).',
});

export interface ReleaseSchedule {
  /** The first release, this long after start(): once the component has settled. */
  firstAfterMs: number;
  /** Then one every so often. */
  everyMs: number;
}

/**
 * The schedule, from PURELB_MEMORY_RELEASE_FIRST_MS and PURELB_MEMORY_RELEASE_EVERY_MS
 * (the lab shortens both): 30 s after start, then every 5 minutes. A release costs the
 * pages a component uses coming back, a few thousand minor faults (about 10 ms of CPU
 * for an agent with 1,000 VIPs), and catches the pages a burst of work (a thousand new
 * Services, a failover) touched once.
 */
export function releaseSchedule(env: NodeJS.ProcessEnv = process.env): ReleaseSchedule {
  return { firstAfterMs: envNumber('PURELB_MEMORY_RELEASE_FIRST_MS', 30_000, env), everyMs: envNumber('PURELB_MEMORY_RELEASE_EVERY_MS', 300_000, env) };
}

/**
 * Releases unused memory `firstAfterMs` after the call and then every `everyMs`; a
 * release that fails is reported once and not tried again (the component works as
 * before, only larger). Returns a function that stops it. The timers do not keep the
 * process alive.
 */
export function scheduleMemoryRelease(log: Logger, schedule: ReleaseSchedule = releaseSchedule(), release: () => Release = releaseUnusedMemory): () => void {
  let timer: NodeJS.Timeout;
  const run = () => {
    try {
      const r = release();
      releases.inc();
      log.debug('released unused memory', { op: 'memory', rssKiB: r.before.total, rssAfterKiB: r.after.total, fileKiB: r.before.file, fileAfterKiB: r.after.file, mappings: r.mappings, ms: Math.round(r.ms * 10) / 10 });
    } catch (err) {
      log.warn('releasing unused memory failed; not tried again', { op: 'memory', err });
      return;
    }
    timer = setTimeout(run, schedule.everyMs);
    timer.unref();
  };
  timer = setTimeout(run, schedule.firstAfterMs);
  timer.unref();
  return () => clearTimeout(timer);
}
