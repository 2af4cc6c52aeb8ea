// A keyed work queue in the style of client-go's: a key waiting twice is processed
// once; a key being processed is not handed to a second worker, but is queued again if
// it changed meanwhile; failures retry with per-key exponential backoff. Handlers
// return a SyncResult so the queue, not each handler, decides what happens next.

import { backoffDelay } from './backoff.ts';
import type { BackoffPolicy } from './backoff.ts';

export type SyncResult =
  | { kind: 'success' }
  /** Retry this key later with backoff. */
  | { kind: 'error'; err: unknown }
  /** Configuration changed: process every known key again. */
  | { kind: 'reprocessAll' };

export const success: SyncResult = { kind: 'success' };

export interface WorkQueueOptions {
  backoff?: BackoffPolicy;
  /** Called with every key for reprocess-all; must return the keys currently known. */
  allKeys?: () => Iterable<string>;
  onError?: (key: string, err: unknown, failures: number) => void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly waiting = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Idle workers, each waiting to be woken for one new key (or for stop). */
  private readonly waiters: Array<() => void> = [];
  private stopped = false;
  private readonly backoff: BackoffPolicy;
  private readonly opts: WorkQueueOptions;

  constructor(opts: WorkQueueOptions = {}) {
    this.opts = opts;
    this.backoff = opts.backoff ?? { baseMs: 200, maxMs: 60_000 };
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.waiting.has(key)) return;
    this.waiting.add(key);
    this.queue.push(key);
    this.waiters.shift()?.();
  }

  addAll(keys: Iterable<string>): void {
    for (const k of keys) this.add(k);
  }

  addAfter(key: string, ms: number): void {
    if (this.stopped || this.timers.has(key)) return;
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    t.unref();
    this.timers.set(key, t);
  }

  get length(): number {
    return this.queue.length;
  }

  /** True when nothing is queued, in flight or scheduled for retry. */
  idle(): boolean {
    return this.queue.length === 0 && this.processing.size === 0 && this.timers.size === 0;
  }

  failureCount(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  private async next(): Promise<string | undefined> {
    while (!this.stopped) {
      const key = this.queue.shift();
      if (key !== undefined) {
        this.waiting.delete(key);
        this.processing.add(key);
        return key;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return undefined;
  }

  private done(key: string, result: SyncResult): void {
    this.processing.delete(key);
    switch (result.kind) {
      case 'success':
        this.failures.delete(key);
        break;
      case 'error': {
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        this.opts.onError?.(key, result.err, n);
        this.dirty.delete(key);
        this.addAfter(key, backoffDelay(n - 1, this.backoff));
        return;
      }
      case 'reprocessAll':
        this.failures.delete(key);
        if (this.opts.allKeys) this.addAll(this.opts.allKeys());
        break;
    }
    if (this.dirty.delete(key)) this.add(key);
  }

  /** Runs `handler` on keys one at a time until `stop()`. */
  async run(handler: (key: string) => Promise<SyncResult>): Promise<void> {
    for (;;) {
      const key = await this.next();
      if (key === undefined) return;
      let result: SyncResult;
      try {
        result = await handler(key);
      } catch (err) {
        result = { kind: 'error', err };
      }
      this.done(key, result);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const wake of this.waiters.splice(0)) wake();
  }
}
