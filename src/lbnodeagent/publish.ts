// The API side of the apply stage: the announcing annotations and their Events. Writes
// run beside the reconcile loop, never inside it: while the API server is slow or away,
// the kernel side (including the dead-man lifetimes) keeps its pace. Only the latest
// desired state is written when several pile up. The record of what was written is
// updated only after the write succeeded, so a failed one is planned again.

import type { Connection } from '../k8s/connection.ts';
import type { V1Service } from '@kubernetes/client-node';
import { REASONS } from '../api/annotations.ts';
import type { Family } from '../ipam/address.ts';
import { Api, PATHS } from '../k8s/api.ts';
import type { EventRecorder } from '../k8s/events.ts';
import type { Informer } from '../k8s/informer.ts';
import type { Logger } from '../log.ts';
import { mergeAnnouncing } from './announcing.ts';
import type { OwnedEntries } from './announcing.ts';
import type { Announcement, Snapshot } from './desired.ts';
import { FAMILIES, announcingAnnotation, planAnnouncing } from './plan.ts';
import type { AnnouncingWrite, Written } from './plan.ts';

export interface PublisherOptions {
  conn: Connection;
  node: string;
  services: Informer<V1Service>;
  events: EventRecorder;
  log: Logger;
  /** Called when a write failed; the agent plans again on its next pass. */
  onFailure: () => void;
}

export class AnnouncingPublisher {
  private readonly opts: PublisherOptions;
  private readonly api: Api;
  private readonly written = new Map<string, Written>();
  private pending: { desired: readonly Announcement[]; snapshot: Snapshot; dummyInterface: string } | undefined;
  private running: Promise<void> | undefined;

  constructor(opts: PublisherOptions) {
    this.opts = opts;
    this.api = new Api(opts.conn);
  }

  publish(desired: readonly Announcement[], snapshot: Snapshot, dummyInterface: string): void {
    this.pending = { desired, snapshot, dummyInterface };
    if (this.running) return;
    this.running = (async () => {
      for (let p = this.pending; p !== undefined; p = this.pending) {
        this.pending = undefined;
        try {
          await this.apply(p.desired, p.snapshot, p.dummyInterface);
        } catch (err) {
          this.opts.log.warn('announcing annotations not written', { op: 'annotate', err });
          this.opts.onFailure();
        }
      }
      this.running = undefined;
    })();
  }

  /** On stop: this node's entries leave every Service it wrote, within `timeoutMs`. */
  async withdrawAll(dummyInterface: string, timeoutMs: number): Promise<void> {
    this.pending = undefined;
    const cleanup = (async () => {
      await this.running;
      const none = (): Record<Family, OwnedEntries> => {
        const empty = (): OwnedEntries => ({ node: this.opts.node, dummyInterface, local: [], nonlocal: undefined });
        return { IPv4: empty(), IPv6: empty() };
      };
      await Promise.allSettled([...this.written.keys()].map((key) => this.write(key, none())));
    })();
    await Promise.race([cleanup, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  private async apply(desired: readonly Announcement[], snapshot: Snapshot, dummyInterface: string): Promise<void> {
    const services = this.opts.services;
    const { writes, forget } = planAnnouncing(desired, snapshot, this.written, (key) => {
      const svc = services.get(key);
      return svc ? (svc.metadata?.annotations ?? {}) : undefined;
    }, dummyInterface);
    for (const key of forget) this.written.delete(key);
    const work: Array<Promise<void>> = [];
    for (const w of writes) {
      work.push(this.carryOut(w));
      if (work.length >= 16) await Promise.allSettled(work.splice(0));
    }
    await Promise.allSettled(work);
  }

  private async carryOut(w: AnnouncingWrite): Promise<void> {
    try {
      await this.write(w.key, w.owned);
    } catch (err) {
      this.opts.log.warn('announcing annotation not written', { op: 'annotate', service: w.key, err });
      this.opts.onFailure();
      return;
    }
    if (w.record) this.written.set(w.key, w.record);
    else this.written.delete(w.key);
    const svc = this.opts.services.get(w.key);
    if (!svc) return;
    for (const d of w.fresh) {
      const reason = d.kind === 'local' ? REASONS.announcingLocal : REASONS.announcingNonLocal;
      this.opts.events.record({ apiVersion: 'v1', kind: 'Service', obj: svc }, 'Normal', reason, `Node ${this.opts.node} announcing ${d.ip} on interface ${d.interface}`);
    }
  }

  /** Read-modify-write of our part, guarded by resourceVersion against other agents. */
  private async write(key: string, owned: Record<Family, OwnedEntries>): Promise<void> {
    const [namespace, name] = key.split('/') as [string, string];
    for (let attempt = 0; attempt < 8; attempt++) {
      const svc = attempt === 0 ? this.opts.services.get(key) : await this.api.get<V1Service>(PATHS.service(namespace, name)).catch(() => undefined);
      if (!svc) return;
      const a = svc.metadata?.annotations ?? {};
      const patch: Record<string, string | null> = {};
      for (const f of FAMILIES) {
        const value = mergeAnnouncing(a[announcingAnnotation(f)], owned[f]);
        if (value !== (a[announcingAnnotation(f)] ?? '')) patch[announcingAnnotation(f)] = value === '' ? null : value;
      }
      if (Object.keys(patch).length === 0) return;
      try {
        await this.api.patch(PATHS.service(namespace, name), { metadata: { resourceVersion: svc.metadata?.resourceVersion, annotations: patch } });
        return;
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code === 404) return;
        if (code !== 409) throw err;
      }
    }
    throw new Error(`announcing annotation of ${key}: too many conflicting writers`);
  }
}
