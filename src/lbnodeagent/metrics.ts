// The agent's Prometheus metrics, named as PureLB names them where PureLB has them.
// Counters kept by other modules (heartbeats, announcements) are read at scrape time.

import { Counter, Gauge, Histogram } from 'prom-client';
import type { DetectorCounters } from './heartbeat/detector.ts';
import type { AnnouncementCounters } from './announce/announcer.ts';

export const electionChanges = new Counter({
  name: 'purelb_election_changes_total',
  help: 'Times the set of local addresses this node wins changed.',
});

export const takeoverSeconds = new Histogram({
  name: 'purelb_lbnodeagent_takeover_seconds',
  help: 'From a membership change to the new addresses in the kernel with their first announcement sent.',
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
});

export const reconcileSeconds = new Histogram({
  name: 'purelb_lbnodeagent_reconcile_seconds',
  help: 'Duration of one reconcile of the kernel against the desired announcements.',
  buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
});

export const announcedAddresses = new Gauge({
  name: 'purelb_lbnodeagent_addresses',
  help: 'Addresses this node announces, by kind (local = on the node interface, nonlocal = on the dummy interface).',
  labelNames: ['kind'],
});

export const unknownAddresses = new Gauge({
  name: 'purelb_lbnodeagent_unknown_addresses',
  help: 'Addresses this node should announce that are already on it but were not added by purelb-ts (the node, an operator, another daemon): left alone.',
});

export function registerMembershipMetrics(members: () => number, counters: () => DetectorCounters | undefined, quorate: () => boolean | undefined): void {
  new Gauge({
    name: 'purelb_lbnodeagent_members',
    help: 'Live members this agent counts in elections (itself included).',
    collect() {
      this.set(members());
    },
  });
  new Gauge({
    name: 'purelb_lbnodeagent_quorate',
    help: '1 when this agent hears at least half of its peers (it acts on missing heartbeats only then).',
    collect() {
      const q = quorate();
      if (q !== undefined) this.set(q ? 1 : 0);
    },
  });
  new Counter({
    name: 'purelb_lbnodeagent_heartbeats_total',
    help: 'Heartbeat datagrams, by outcome: sent, received (accepted), forged, replayed, malformed, unknown_sender.',
    labelNames: ['result'],
    collect() {
      const c = counters();
      if (!c) return;
      this.reset();
      this.inc({ result: 'sent' }, c.sent);
      this.inc({ result: 'received' }, c.received);
      this.inc({ result: 'forged' }, c.forged);
      this.inc({ result: 'replayed' }, c.replayed);
      this.inc({ result: 'malformed' }, c.malformed);
      this.inc({ result: 'unknown_sender' }, c.unknownSender);
    },
  });
}

export function registerAnnouncementMetrics(counters: () => AnnouncementCounters): void {
  new Counter({
    name: 'purelb_lbnodeagent_garp_total',
    help: 'Gratuitous ARP frames, by result.',
    labelNames: ['result'],
    collect() {
      const c = counters();
      this.reset();
      this.inc({ result: 'sent' }, c.garpSent);
      this.inc({ result: 'failed' }, c.garpFailed);
    },
  });
  new Counter({
    name: 'purelb_lbnodeagent_na_total',
    help: 'Unsolicited IPv6 neighbour advertisements, by result.',
    labelNames: ['result'],
    collect() {
      const c = counters();
      this.reset();
      this.inc({ result: 'sent' }, c.naSent);
      this.inc({ result: 'failed' }, c.naFailed);
    },
  });
}

/** Objects in the agent's caches, by informer (the slices only of LoadBalancer Services: inputs.ts). */
export function registerCacheMetrics(counts: () => Record<string, number>): void {
  new Gauge({
    name: 'purelb_informer_objects',
    help: 'Objects this agent keeps in its caches, by informer.',
    labelNames: ['informer'],
    collect() {
      this.reset();
      for (const [informer, n] of Object.entries(counts())) this.set({ informer }, n);
    },
  });
}
