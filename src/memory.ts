// Memory the components hold but do not use, given back to the kernel.
//
// A Node process maps its 120 MB binary and touches about 35 MiB of it while it starts
// (V8's snapshot, the bootstrap, OpenSSL's set-up, the first list of every cache); an
// agent with 1,000 VIPs has 55 MiB of it resident. Those pages stay counted in the
// process's RSS for as long as they stay mapped, although an idle component uses about
// 10 MiB of them (measured: docs/performance.md). So, once the component has settled
// and again whenever its resident file pages have grown since, it drops the mapping of
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
  /** How often the resident file pages are looked at afterwards (a read of /proc/self/status). */
  checkEveryMs: number;
  /** A release happens again when they have grown by this much since the last one. */
  growthKiB: number;
}

/** The schedule, from PURELB_MEMORY_RELEASE_FIRST_MS and PURELB_MEMORY_CHECK_MS (the lab shortens both): 30 s, then a look every minute. */
export function releaseSchedule(env: NodeJS.ProcessEnv = process.env): ReleaseSchedule {
  return { firstAfterMs: envNumber('PURELB_MEMORY_RELEASE_FIRST_MS', 30_000, env), checkEveryMs: envNumber('PURELB_MEMORY_CHECK_MS', 60_000, env), growthKiB: 4096 };
}

/**
 * Releases unused memory once `firstAfterMs` after the call, then again whenever the
 * resident file pages have grown by `growthKiB` since the last release (a burst of new
 * work maps code it will not use again). Returns a function that stops it. The timers
 * do not keep the process alive.
 */
export function scheduleMemoryRelease(log: Logger, schedule: ReleaseSchedule = releaseSchedule(), release: () => Release = releaseUnusedMemory): () => void {
  let fileAfterLast = Infinity;
  let interval: NodeJS.Timeout | undefined;
  const run = (why: string) => {
    try {
      const r = release();
      fileAfterLast = r.after.file;
      releases.inc();
      log.debug('released unused memory', { op: 'memory', why, rssKiB: r.before.total, rssAfterKiB: r.after.total, fileKiB: r.before.file, fileAfterKiB: r.after.file, mappings: r.mappings, ms: Math.round(r.ms * 10) / 10 });
    } catch (err) {
      // Not worth retrying: the process works as before, only larger.
      log.warn('releasing unused memory failed; not tried again', { op: 'memory', err });
      fileAfterLast = -Infinity;
      if (interval) clearInterval(interval);
    }
  };
  const first = setTimeout(() => {
    run('settled');
    if (fileAfterLast === -Infinity) return;
    interval = setInterval(() => {
      if (residentKiB().file - fileAfterLast >= schedule.growthKiB) run('grown');
    }, schedule.checkEveryMs);
    interval.unref();
  }, schedule.firstAfterMs);
  first.unref();
  return () => {
    clearTimeout(first);
    if (interval) clearInterval(interval);
  };
}
