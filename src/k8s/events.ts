// Events on the objects operators look at (`kubectl describe svc`), with PureLB's
// reasons. Identical events within a short window are folded into a count so that a
// retry loop cannot flood the API server.

import { CoreV1Api } from '@kubernetes/client-node';
import type { CoreV1Event, KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.ts';

const FOLD_WINDOW_MS = 10 * 60_000;

export type EventType = 'Normal' | 'Warning';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  obj: KubernetesObject;
}

export class EventRecorder {
  private readonly api: CoreV1Api;
  private readonly component: string;
  private readonly host: string;
  private readonly log: Logger | undefined;
  private readonly recent = new Map<string, { at: number; count: number; written: Promise<CoreV1Event | undefined> }>();

  constructor(kc: KubeConfig, component: string, host: string, log?: Logger) {
    this.api = kc.makeApiClient(CoreV1Api);
    this.component = component;
    this.host = host;
    this.log = log;
  }

  /** Fire and forget: an Event that cannot be written must not fail a reconcile. */
  record(target: EventTarget, type: EventType, reason: string, message: string): void {
    this.write(target, type, reason, message).catch((err: unknown) => this.log?.warn('event not recorded', { op: 'event', reason, err }));
  }

  async write(target: EventTarget, type: EventType, reason: string, message: string): Promise<void> {
    const md = target.obj.metadata ?? {};
    const namespace = md.namespace ?? 'default';
    const key = `${md.uid}|${type}|${reason}|${message}`;
    const now = new Date();
    const seen = this.recent.get(key);
    if (seen && now.getTime() - seen.at < FOLD_WINDOW_MS) {
      // Chained on the previous write, so concurrent repeats fold instead of racing.
      seen.at = now.getTime();
      seen.count++;
      const count = seen.count;
      seen.written = seen.written.then(async (event) => {
        if (!event?.metadata?.name) return event;
        return this.api
          .replaceNamespacedEvent({ name: event.metadata.name, namespace, body: { ...event, count, lastTimestamp: now } })
          .catch(() => event);
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
    const written = this.api.createNamespacedEvent({ namespace, body: event });
    this.recent.set(key, { at: now.getTime(), count: 1, written: written.catch(() => undefined) });
    if (this.recent.size > 10_000) this.recent.delete(this.recent.keys().next().value as string);
    await written;
  }
}
