// Events on the objects operators look at (`kubectl describe svc`), with PureLB's
// reasons. Identical events within a short window are folded into a count so that a
// retry loop cannot flood the API server. Events are written in the background, a
// few at a time, behind the component's real work: a burst (thousands of Services at
// start-up) must not queue the writes that matter behind its Events. As in
// client-go's broadcaster, a backlog beyond `maxQueued` is dropped (and logged).

import type { Connection } from './connection.ts';
import type { CoreV1Event, KubernetesObject } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.ts';
import { Api, PATHS } from './api.ts';

const FOLD_WINDOW_MS = 10 * 60_000;

export interface EventRecorderOptions {
  /** Event writes in flight at once (default 4). */
  maxInFlight?: number;
  /** Events waiting to be written before new ones are dropped (default 1000, client-go's). */
  maxQueued?: number;
}

export type EventType = 'Normal' | 'Warning';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  obj: KubernetesObject;
}

export class EventRecorder {
  private readonly api: Api;
  private readonly component: string;
  private readonly host: string;
  private readonly log: Logger | undefined;
  /** Recently written Events by content, for folding repeats: the Event's name once created. */
  private readonly recent = new Map<string, { at: number; count: number; written: Promise<string | undefined> }>();
  private readonly backlog: Array<{ reason: string; write: () => Promise<void> }> = [];
  private inFlight = 0;
  private dropped = 0;
  private readonly maxInFlight: number;
  private readonly maxQueued: number;

  constructor(conn: Connection, component: string, host: string, log?: Logger, opts: EventRecorderOptions = {}) {
    this.api = new Api(conn);
    this.component = component;
    this.host = host;
    this.log = log;
    this.maxInFlight = opts.maxInFlight ?? 4;
    this.maxQueued = opts.maxQueued ?? 1000;
  }

  /** Fire and forget: an Event that cannot be written must not fail a reconcile. */
  record(target: EventTarget, type: EventType, reason: string, message: string): void {
    if (this.backlog.length >= this.maxQueued) {
      this.dropped++;
      if (this.dropped === 1 || this.dropped % 1000 === 0) this.log?.warn('events dropped: too many waiting to be written', { op: 'event', reason, dropped: this.dropped });
      return;
    }
    const at = new Date();
    this.backlog.push({ reason, write: () => this.write(target, type, reason, message, at) });
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight) {
      const job = this.backlog.shift();
      if (job === undefined) return;
      this.inFlight++;
      job
        .write()
        .catch((err: unknown) => this.log?.warn('event not recorded', { op: 'event', reason: job.reason, err }))
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }

  async write(target: EventTarget, type: EventType, reason: string, message: string, now: Date = new Date()): Promise<void> {
    const md = target.obj.metadata ?? {};
    const namespace = md.namespace ?? 'default';
    const key = `${md.uid}|${type}|${reason}|${message}`;
    const seen = this.recent.get(key);
    if (seen && now.getTime() - seen.at < FOLD_WINDOW_MS) {
      // Chained on the previous write, so concurrent repeats fold instead of racing.
      seen.at = now.getTime();
      seen.count++;
      const count = seen.count;
      seen.written = seen.written.then(async (name) => {
        if (name === undefined) return name;
        return this.api
          .patch(PATHS.event(namespace, name), { count, lastTimestamp: now.toISOString() })
          .then(
            () => name,
            () => name,
          );
      });
      await seen.written;
      return;
    }
    const event: CoreV1Event = {
      metadata: { name: `${md.name ?? 'object'}.${randomBytes(8).toString('hex')}`, namespace },
      involvedObject: { apiVersion: target.apiVersion, kind: target.kind, name: md.name, namespace: md.namespace, uid: md.uid, resourceVersion: md.resourceVersion },
      type,
      reason,
      message,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: this.component, host: this.host },
      reportingComponent: this.component,
      reportingInstance: this.host,
    };
    const written = this.api.create(PATHS.events(namespace), event);
    // Only the name is kept for folding: thousands of written Events must not stay in memory.
    const name = event.metadata?.name;
    this.recent.set(key, { at: now.getTime(), count: 1, written: written.then(() => name, () => undefined) });
    if (this.recent.size > 10_000) this.recent.delete(this.recent.keys().next().value as string);
    await written;
  }
}
