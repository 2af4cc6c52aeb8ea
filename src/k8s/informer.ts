// A list-watch cache that does not stall: it lists, then watches from the list's
// resourceVersion with bookmarks; a watch that ends is resumed, a 410 Gone or any
// error leads to a fresh list after a jittered backoff, and a timer relists anyway so
// that a missed event cannot linger. The cache is updated before handlers run, so a
// handler that reads the cache sees the object it was told about. Lists are read in
// pages, and an optional transform slims every object before it is cached, so that
// a large collection neither peaks memory at start-up nor keeps fields nobody reads.

import type { KubernetesObject } from '@kubernetes/client-node';
import { Api } from './api.ts';
import type { Connection } from './connection.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelay } from './backoff.ts';
import type { BackoffPolicy } from './backoff.ts';
import type { Logger } from '../log.ts';

export type InformerEvent<T> =
  | { type: 'add'; obj: T }
  | { type: 'update'; obj: T; old: T }
  | { type: 'delete'; obj: T };

export interface InformerOptions<T> {
  /** For logs and errors, e.g. "services". */
  name: string;
  /** The collection's URL path, e.g. `/api/v1/services`. */
  path: string;
  /** Items per list page (default 500, as client-go's reflector). */
  pageSize?: number;
  /** Applied to every object before it is cached and handed to handlers, e.g. to drop managedFields. */
  transform?: (obj: T) => T;
  /** Objects it refuses are not cached: as if absent (one that stops qualifying is deleted). Runs before `transform`. */
  keep?: (obj: T) => boolean;
  /** Also remember the keys of the objects `keep` refused (see `refused`): a few bytes each instead of the object. */
  rememberRefused?: boolean;
  /** Applied to the list and the watch. */
  labelSelector?: string;
  /** Likewise (e.g. `metadata.name=<one object>`). */
  fieldSelector?: string;
  relistIntervalMs?: number;
  backoff?: BackoffPolicy;
  log?: Logger;
}

export function objectKey(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${obj.metadata?.name ?? ''}` : (obj.metadata?.name ?? '');
}

class Gone extends Error {}

export class Informer<T extends KubernetesObject> {
  private readonly cache = new Map<string, T>();
  /** With `rememberRefused`: the keys of objects that exist but `keep` refused. */
  private refusedKeys = new Set<string>();
  private readonly handlers: Array<(e: InformerEvent<T>) => void> = [];
  private readonly api: Api;
  private readonly opts: InformerOptions<T>;
  private abort: AbortController | undefined;
  private stopped = false;
  private synced = false;
  private firstSync: { promise: Promise<void>; resolve: () => void };
  private loop: Promise<void> | undefined;
  private relistDue = 0;

  constructor(conn: Connection, opts: InformerOptions<T>) {
    this.opts = opts;
    this.api = new Api(conn);
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.firstSync = { promise, resolve };
  }

  on(handler: (e: InformerEvent<T>) => void): void {
    this.handlers.push(handler);
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  size(): number {
    return this.cache.size;
  }

  keys(): string[] {
    return [...this.cache.keys()];
  }

  /** Whether an object of this key exists but was refused by `keep` (only with `rememberRefused`). */
  refused(key: string): boolean {
    return this.refusedKeys.has(key);
  }

  /**
   * Caches objects read outside the list-watch (a narrow list of what has just become
   * wanted) as if the watch had added them, through `transform`. A key already cached
   * is left alone: what the watch delivered since is at least as new.
   */
  admit(objs: readonly T[]): void {
    const transform = this.opts.transform ?? ((o: T) => o);
    for (const obj of objs) if (!this.cache.has(objectKey(obj))) this.apply('ADDED', transform(obj));
  }

  /** Drops the cached objects of these keys, as deletions (they stopped being wanted). */
  forget(keys: Iterable<string>): void {
    for (const key of [...keys]) {
      const obj = this.cache.get(key);
      if (obj !== undefined) this.apply('DELETED', obj);
    }
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Starts the loop; resolves once the first list is in the cache. */
  start(): Promise<void> {
    this.loop ??= this.run();
    return this.firstSync.promise;
  }

  /**
   * Ends the current watch; the loop resumes from the last version it saw on a new
   * request. For a stream that is open but no longer delivers (a connection whose
   * packets were dropped for a while can take TCP minutes to resume).
   */
  restartWatch(): void {
    this.abort?.abort();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    await this.loop;
  }

  private emit(e: InformerEvent<T>): void {
    for (const h of this.handlers) {
      try {
        h(e);
      } catch (err) {
        this.opts.log?.error('informer handler failed', { op: this.opts.name, err });
      }
    }
  }

  private replace(items: T[]): void {
    const seen = new Set<string>();
    for (const obj of items) {
      const key = objectKey(obj);
      seen.add(key);
      this.apply('ADDED', obj);
    }
    for (const [key, obj] of this.cache) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.emit({ type: 'delete', obj });
      }
    }
  }

  private apply(phase: string, obj: T): void {
    const key = objectKey(obj);
    const old = this.cache.get(key);
    if (phase === 'DELETED') {
      this.cache.delete(key);
      this.emit({ type: 'delete', obj: old ?? obj });
      return;
    }
    this.cache.set(key, obj);
    if (!old) this.emit({ type: 'add', obj });
    else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit({ type: 'update', obj, old });
  }

  private async run(): Promise<void> {
    const relistMs = this.opts.relistIntervalMs ?? 10 * 60_000;
    const policy = this.opts.backoff ?? { baseMs: 250, maxMs: 30_000 };
    let failures = 0;
    let rv = '';
    while (!this.stopped) {
      try {
        if (!rv || Date.now() >= this.relistDue) {
          const res = await this.listAll();
          this.refusedKeys = res.refused;
          this.replace(res.items);
          rv = res.resourceVersion;
          this.relistDue = Date.now() + relistMs;
          if (!this.synced) {
            this.synced = true;
            this.firstSync.resolve();
          }
        }
        rv = await this.watchFrom(rv, this.relistDue - Date.now());
        failures = 0;
      } catch (err) {
        if (this.stopped) break;
        rv = '';
        if (err instanceof Gone) continue;
        failures++;
        const delay = backoffDelay(failures - 1, policy);
        this.opts.log?.warn('informer restarting after error', { op: this.opts.name, err, retryInMs: delay });
        await sleep(delay);
      }
    }
  }

  /** Every page of the list, transformed; all pages come from the first page's snapshot. */
  private async listAll(): Promise<{ items: T[]; resourceVersion: string; refused: Set<string> }> {
    const transform = this.opts.transform ?? ((o: T) => o);
    const keep = this.opts.keep ?? (() => true);
    const items: T[] = [];
    const refused = new Set<string>();
    let resourceVersion = '';
    let next: string | undefined;
    for (let pages = 0; pages < 100_000; pages++) {
      const { path, labelSelector, fieldSelector } = this.opts;
      const res = await this.api.list<T>(path, { limit: this.opts.pageSize ?? 500, continue: next, labelSelector, fieldSelector });
      for (const item of res.items) {
        if (keep(item)) items.push(transform(item));
        else if (this.opts.rememberRefused) refused.add(objectKey(item));
      }
      resourceVersion = res.metadata?.resourceVersion ?? resourceVersion;
      next = res.metadata?.continue || undefined;
      if (next === undefined) break;
    }
    return { items, resourceVersion, refused };
  }

  /** Watches until the stream ends or `forMs` passes; returns the last resourceVersion. */
  private async watchFrom(rv: string, forMs: number): Promise<string> {
    let last = rv;
    let failure: Error | undefined;
    const abort = (this.abort = new AbortController());
    const timer = setTimeout(() => abort.abort(), Math.max(1000, forMs));
    timer.unref();
    if (this.stopped) abort.abort();
    const onEvent = (phase: string, obj: T & { code?: number; message?: string }) => {
      if (failure) return;
      if (phase === 'ERROR') {
        failure = obj.code === 410 ? new Gone(obj.message) : new Error(`watch ${this.opts.name}: ${obj.message ?? 'error event'}`);
        abort.abort();
        return;
      }
      last = obj.metadata?.resourceVersion ?? last;
      if (phase === 'BOOKMARK') return;
      const key = objectKey(obj);
      if (this.opts.keep && !this.opts.keep(obj)) {
        if (this.opts.rememberRefused) {
          if (phase === 'DELETED') this.refusedKeys.delete(key);
          else this.refusedKeys.add(key);
        }
        if (this.cache.has(key)) this.apply('DELETED', obj);
        return;
      }
      if (this.opts.rememberRefused) this.refusedKeys.delete(key);
      this.apply(phase, this.opts.transform ? this.opts.transform(obj) : obj);
    };
    try {
      const query = { resourceVersion: last, allowWatchBookmarks: true, labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector };
      await this.api.watch<T & { code?: number; message?: string }>(this.opts.path, query, onEvent, { signal: abort.signal });
    } catch (err) {
      // Aborted by the timer or by stop(): the end of this watch, not an error.
      if (!abort.signal.aborted) throw err;
    } finally {
      clearTimeout(timer);
    }
    if (failure && !this.stopped) throw failure;
    return last;
  }
}
