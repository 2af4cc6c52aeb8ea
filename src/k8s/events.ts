// Events on the objects operators look at (`kubectl describe svc`), with PureLB's
// reasons. Identical events within a short window are folded into a count so that a
// retry loop cannot flood the API server.

import { CoreV1Api } from '@kubernetes/client-node';
import type { CoreV1Event, KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.ts';

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
  private readonly recent = new Map<string, { at: number; event: CoreV1Event }>();

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
    if (seen && now.getTime() - seen.at < 10 * 60_000 && seen.event.metadata?.name) {
      seen.at = now.getTime();
      const count = (seen.event.count ?? 1) + 1;
      seen.event = await this.api.replaceNamespacedEvent({
        name: seen.event.metadata.name,
        namespace,
        body: { ...seen.event, count, lastTimestamp: now },
      }).catch(() => seen.event);
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
    const created = await this.api.createNamespacedEvent({ namespace, body: event });
    this.recent.set(key, { at: now.getTime(), event: created });
    if (this.recent.size > 10_000) this.recent.delete(this.recent.keys().next().value as string);
  }
}
