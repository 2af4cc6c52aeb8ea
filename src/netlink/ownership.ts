// The ownership record: how the agent tells its own addresses where the kernel drops
// the IFA_PROTO marker (before Linux 5.18). A file lists every address this agent added,
// per interface (name and index), with the flags and lifetimes it asked for and the
// kernel's creation stamp of the address (IFA_CACHEINFO cstamp, hundredths of a second
// since boot). The stamp is what makes the record safe: an address deleted and added
// again by someone else, even with the same IP, prefix and interface, has another one.
//
// Rules (docs/kernel-interface.md, "Which addresses are ours"):
// - An entry is written as `adding` BEFORE the kernel add, and only for an address the
//   kernel did not have just before; after the add it becomes `held` with the stamp.
// - `held`: ours while the kernel has that address on that interface with that prefix
//   and that stamp.
// - `adding` (the agent died between the add and the update): ours while the kernel has
//   the address with the flags and the kind of lifetime asked for (finite or not, no
//   more than asked): it was absent when the entry was written, so it was created after.
// - Anything else is not ours: never changed, never deleted, reported.
// - A missing, unreadable or corrupt record holds nothing: the agent is conservative.
// The file lives under /run (a tmpfs: it survives an agent restart, not a reboot) and
// is named after the network namespace, so agents of several namespaces can share the
// directory; it also carries the boot id, so a record from an earlier boot is ignored.

import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import type { AddressRecord } from './messages.ts';
import { IFA_F_NOPREFIXROUTE } from './messages.ts';

export const DEFAULT_OWNERSHIP_DIR = '/run/purelb-ts';

const lifetimes = z.object({ validSec: z.number().int().positive(), preferredSec: z.number().int().nonnegative() });

const recordedAddress = z.object({
  ifname: z.string().min(1),
  ifindex: z.number().int().positive(),
  ip: z.string().min(1),
  prefix: z.number().int().min(0).max(128),
  state: z.enum(['adding', 'held']),
  /** IFA_CACHEINFO cstamp of the address the kernel created for us (state `held`). */
  created: z.number().int().nonnegative().optional(),
  noPrefixRoute: z.boolean(),
  lifetimes: lifetimes.optional(),
  /** When this entry was last written (ISO 8601), for people reading the file. */
  at: z.string(),
});

const recordFile = z.object({
  version: z.literal(1),
  bootId: z.string(),
  addresses: z.array(recordedAddress),
});

export type RecordedAddress = z.infer<typeof recordedAddress>;

/** Index of entries and kernel addresses alike: interface, IP (canonical) and prefix. */
export const entryKey = (a: { ifindex: number; ip: string; prefix: number }): string => `${a.ifindex}|${a.ip}|${a.prefix}`;

/** Whether the kernel's address `a` is the one `entry` records (see the rules above). */
export function recordedAs(entry: RecordedAddress | undefined, a: AddressRecord): boolean {
  if (entry === undefined || entry.ifindex !== a.ifindex || entry.ip !== a.ip || entry.prefix !== a.prefix) return false;
  if (entry.state === 'held') return entry.created !== undefined && entry.created === a.created;
  if (((a.flags & IFA_F_NOPREFIXROUTE) !== 0) !== entry.noPrefixRoute) return false;
  if (entry.lifetimes === undefined) return a.validLifetime === undefined;
  return a.validLifetime !== undefined && a.validLifetime <= entry.lifetimes.validSec;
}

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/** The record file of the calling process's network namespace in `dir`. */
export function recordPathIn(dir: string): string {
  let netns = 'unknown';
  try {
    netns = String(statSync('/proc/self/ns/net').ino);
  } catch {
    // No /proc: one record for the directory.
  }
  return join(dir, `addresses-netns-${netns}.json`);
}

export interface LoadedRecord {
  entries: Map<string, RecordedAddress>;
  /** Why what was on disk could not be used; the entries are then empty. */
  problem?: string;
}

export class OwnershipRecord {
  readonly path: string;
  private readonly bootId = readBootId();

  constructor(path: string) {
    this.path = path;
  }

  /** Reads the record; a file that cannot be used is moved aside (`.corrupt`) and reported, never trusted. */
  load(): LoadedRecord {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { entries: new Map() };
      return { entries: new Map(), problem: `cannot read ownership record ${this.path}: ${(error as Error).message}` };
    }
    let problem: string | undefined;
    let parsed: z.infer<typeof recordFile> | undefined;
    try {
      const result = recordFile.safeParse(JSON.parse(text));
      if (result.success) parsed = result.data;
      else problem = `ownership record ${this.path} is not valid: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`;
    } catch (error) {
      problem = `ownership record ${this.path} is not valid JSON (${text.length} bytes, truncated?): ${(error as Error).message}`;
    }
    if (parsed === undefined) {
      try {
        renameSync(this.path, `${this.path}.corrupt`);
      } catch {
        // Left in place: it is replaced at the next write.
      }
      return { entries: new Map(), problem };
    }
    // A record of an earlier boot (when /run is not a tmpfs) describes addresses that are gone.
    if (parsed.bootId !== this.bootId) return { entries: new Map() };
    return { entries: new Map(parsed.addresses.map((a) => [entryKey(a), a])) };
  }

  /** Replaces the record atomically and durably: temporary file, fsync, rename, fsync of the directory. */
  store(entries: ReadonlyMap<string, RecordedAddress>): void {
    const dir = this.path.slice(0, this.path.lastIndexOf('/')) || '/';
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const body = `${JSON.stringify({ version: 1, bootId: this.bootId, addresses: [...entries.values()] }, undefined, 1)}\n`;
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, body);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
    } catch (error) {
      rmSync(tmp, { force: true });
      throw new Error(`cannot write ownership record ${this.path}: ${(error as Error).message}`, { cause: error });
    }
    const dirFd = openSync(dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
}

/**
 * Record changes run one at a time per file within the process (every change is a
 * read-modify-write of the whole file); one agent per node is the DaemonSet's rule.
 */
const turns = new Map<string, Promise<unknown>>();

export function inTurn<T>(path: string, work: () => Promise<T>): Promise<T> {
  const previous = turns.get(path) ?? Promise.resolve();
  const mine = previous.then(work, work);
  const settled = mine.catch(() => undefined);
  turns.set(path, settled);
  void settled.then(() => {
    if (turns.get(path) === settled) turns.delete(path);
  });
  return mine;
}
