// Figures for benchmarks and test diagnostics: percentiles of latencies, and what a
// process has used so far, read from /proc.

import { readFileSync } from 'node:fs';

/** The nearest-rank percentile `p` (0–100) of `values`; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

/** User + system CPU seconds of a process so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A memory figure of a process in bytes: resident now (VmRSS) or at its peak (VmHWM). */
/** A field of /proc/PID/smaps_rollup in bytes: the resident set split by kind of memory. */
export function smapsRollup(pid: number, field: 'Rss' | 'Anonymous' | 'Shared_Clean' | 'Private_Clean'): number {
  const line = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return Number(line?.split(/\s+/)[1] ?? NaN) * 1024;
}

/** Resident bytes of the process's malloc heap (the [heap] mapping, glibc's main arena). */
export function brkHeapRss(pid: number): number {
  const text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const at = text.indexOf('[heap]');
  if (at < 0) return 0;
  const rss = /\nRss:\s+(\d+) kB/.exec(text.slice(at));
  return Number(rss?.[1] ?? 0) * 1024;
}

export function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return Number(line?.split(/\s+/)[1] ?? NaN) * 1024;
}

export interface MappingRss {
  /** Start address, size of the mapping and what it is, as far as /proc tells. */
  start: string;
  sizeKiB: number;
  rssKiB: number;
  kind: string;
}

/**
 * The process's anonymous resident memory, one entry per mapping, largest first: for
 * finding where an RSS goes beyond what the heaps report. A 64 MiB-aligned mapping of at
 * most 64 MiB, reserved as a whole, is how glibc lays out a thread's malloc arena.
 */
export function anonymousMappings(pid: number): MappingRss[] {
  const out: MappingRss[] = [];
  let cur: (MappingRss & { end: bigint; begin: bigint; named: string }) | undefined;
  const flush = (): void => {
    if (cur === undefined) return;
    const { begin, end, named } = cur;
    const size = end - begin;
    const arenaAligned = begin % (64n << 20n) === 0n && size <= 64n << 20n;
    if (named === '' || named.startsWith('[')) {
      out.push({ start: cur.start, sizeKiB: cur.sizeKiB, rssKiB: cur.rssKiB, kind: named !== '' ? named : arenaAligned ? 'malloc arena (64 MiB-aligned)' : 'anonymous' });
    }
    cur = undefined;
  };
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      flush();
      const begin = BigInt(`0x${head[1]}`);
      const end = BigInt(`0x${head[2]}`);
      cur = { start: head[1] as string, begin, end, named: (head[3] ?? '').trim(), sizeKiB: Number((end - begin) >> 10n), rssKiB: 0, kind: '' };
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && cur) cur.rssKiB = Number(rss[1]);
  }
  flush();
  return out.filter((m) => m.rssKiB > 0).sort((a, b) => b.rssKiB - a.rssKiB);
}
