// What the agent reads from the API server: Services, EndpointSlices, ServiceGroups,
// LBNodeAgents and its own Node, each through an Informer. The agent asks this for its
// snapshot inputs and is told when anything changed; the own Node also says whether
// this node is in service (not cordoned, not excluded from load balancers).
//
// The agent runs on every node, so its caches are kept small: of the Services only the
// LoadBalancers (and any that still carry an announcing annotation, so that a Service
// changed to another type loses this node's entry), of the EndpointSlices only those of
// such Services, and of everything only the fields read (api/slim.ts).
//
// A slice is refused when its Service is known and not wanted; the Service informer
// remembers those keys (a few bytes each, not the objects). A slice whose Service is not
// seen yet is kept, since the two watches are separate streams and a new Service's
// slice may arrive first; it goes when its Service turns out not to be wanted. When a
// Service becomes wanted (a ClusterIP changed to LoadBalancer), its slices, refused
// until then, are read with one narrow list.

import type { Connection } from '../k8s/connection.ts';
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { ANNOTATIONS } from '../api/annotations.ts';
import type { ServiceGroupObject } from '../api/configuration.ts';
import { GROUP } from '../api/meta.ts';
import { SERVICE_NAME, slimEndpointSlice, slimService } from '../api/slim.ts';
import { Api, PATHS } from '../k8s/api.ts';
import { Informer, objectKey } from '../k8s/informer.ts';
import type { Logger } from '../log.ts';

/** The label Kubernetes itself uses to keep a node out of load balancers' target sets. */
const EXCLUDE_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';

/** A purelb.io object as the informers hold it; the normalisers in src/api/ read it. */
export type CustomObject = ServiceGroupObject;

export interface NodeState {
  labels: Record<string, string>;
  /** Cordoned (`kubectl cordon`/`drain`) or labelled exclude-from-external-load-balancers. */
  outOfService: boolean;
}

function wanted(svc: V1Service): boolean {
  const a = svc.metadata?.annotations ?? {};
  return svc.spec?.type === 'LoadBalancer' || ANNOTATIONS.announcingIPv4 in a || ANNOTATIONS.announcingIPv6 in a;
}

/** The key (namespace/name) of a slice's Service; undefined for a slice of no Service. */
export function sliceServiceKey(slice: V1EndpointSlice): string | undefined {
  const name = slice.metadata?.labels?.[SERVICE_NAME];
  return name === undefined ? undefined : `${slice.metadata?.namespace ?? ''}/${name}`;
}

export class AgentInputs {
  readonly services: Informer<V1Service>;
  readonly slices: Informer<V1EndpointSlice>;
  readonly groups: Informer<CustomObject>;
  readonly agents: Informer<CustomObject>;
  private readonly self: Informer<V1Node>;
  private readonly node: string;
  private readonly log: Logger;
  private readonly api: Api;
  /** Services whose slices are being read since they became wanted, with the slices the watch deleted meanwhile. */
  private readonly catchingUp = new Map<string, Set<string>>();
  /** Services refused until their last event, which made them wanted: their slices must be read. */
  private readonly turnedWanted = new Set<string>();
  /** The cached slices' keys by their Service's key, so that a Service's slices go without a scan of all. */
  private readonly slicesByService = new Map<string, Set<string>>();

  constructor(conn: Connection, namespace: string, node: string, log: Logger) {
    this.node = node;
    this.log = log;
    this.api = new Api(conn);
    const keepService = (svc: V1Service): boolean => {
      const key = objectKey(svc);
      const keep = wanted(svc);
      const wasRefused = this.services.refused(key);
      if (keep && wasRefused) this.turnedWanted.add(key);
      // A Service first seen as not wanted: a slice of it that came first goes.
      if (!keep && !wasRefused && this.slices.hasSynced()) this.forgetSlicesOf(key);
      return keep;
    };
    this.services = new Informer<V1Service>(conn, { name: 'services', path: PATHS.services(), keep: keepService, rememberRefused: true, transform: slimService, pageSize: 100, log });
    const keepSlice = (slice: V1EndpointSlice): boolean => {
      const service = sliceServiceKey(slice);
      return service !== undefined && !this.services.refused(service);
    };
    this.slices = new Informer<V1EndpointSlice>(conn, { name: 'endpointslices', path: PATHS.endpointSlices(), keep: keepSlice, transform: slimEndpointSlice, pageSize: 100, log });
    this.services.on((e) => {
      const key = objectKey(e.obj);
      if (e.type === 'delete') this.forgetSlicesOf(key);
      else if (e.type === 'add' && this.turnedWanted.delete(key) && this.slices.hasSynced()) void this.catchUp(e.obj);
    });
    this.slices.on((e) => {
      const key = objectKey(e.obj);
      const was = e.type === 'add' ? undefined : sliceServiceKey(e.type === 'update' ? e.old : e.obj);
      const now = e.type === 'delete' ? undefined : sliceServiceKey(e.obj);
      if (was !== undefined && was !== now) {
        const keys = this.slicesByService.get(was);
        keys?.delete(key);
        if (keys?.size === 0) this.slicesByService.delete(was);
        if (e.type === 'delete') this.catchingUp.get(was)?.add(key);
      }
      if (now !== undefined && now !== was) {
        const keys = this.slicesByService.get(now) ?? new Set<string>();
        keys.add(key);
        this.slicesByService.set(now, keys);
      }
    });
    const customInformer = (plural: string) => new Informer<CustomObject>(conn, { name: plural, path: PATHS.custom(GROUP, 'v1', namespace, plural), log });
    this.groups = customInformer('servicegroups');
    this.agents = customInformer('lbnodeagents');
    this.self = new Informer<V1Node>(conn, { name: 'node', path: PATHS.nodes(), fieldSelector: `metadata.name=${node}`, log });
  }

  /** `changed` for every Service, slice, group and agent configuration event; `nodeChanged` for the own Node. */
  on(changed: () => void, nodeChanged: () => void): void {
    for (const i of [this.services, this.slices, this.groups, this.agents]) i.on(changed);
    this.self.on(nodeChanged);
  }

  async start(): Promise<void> {
    // The Services first: the slices' list refuses those of Services known not to be wanted.
    await Promise.all([this.services.start().then(() => this.slices.start()), this.groups.start(), this.agents.start()]);
    // Without its Node (not there yet, or no right to read it) the agent still serves, with no labels.
    const nodeSynced = await Promise.race([this.self.start().then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 5000).unref())]);
    if (!nodeSynced) this.log.warn('cannot read own Node object; nodeSelector sees no labels, cordon is not seen', { op: 'start', node: this.node });
  }

  async stop(): Promise<void> {
    await Promise.all([this.self.stop(), this.services.stop(), this.slices.stop(), this.groups.stop(), this.agents.stop()]);
  }

  private forgetSlicesOf(service: string): void {
    const keys = this.slicesByService.get(service);
    if (keys !== undefined) this.slices.forget(keys);
  }

  /**
   * A Service that has just become wanted: its slices were refused until now, so they are
   * read with one list by its label. A slice the watch deleted meanwhile is not brought
   * back; one the watch delivered since is newer and stays (Informer.admit).
   */
  private async catchUp(svc: V1Service): Promise<void> {
    const key = objectKey(svc);
    const namespace = svc.metadata?.namespace;
    const name = svc.metadata?.name;
    if (namespace === undefined || name === undefined || this.catchingUp.has(key)) return;
    const deleted = new Set<string>();
    this.catchingUp.set(key, deleted);
    try {
      const res = await this.api.list<V1EndpointSlice>(PATHS.endpointSlices(namespace), { labelSelector: `${SERVICE_NAME}=${name}` });
      if (this.services.get(key) === undefined) return; // no longer wanted
      this.slices.admit(res.items.filter((slice) => !deleted.has(objectKey(slice))));
    } catch (err) {
      // The informer's next relist brings them; until then the Service is seen without endpoints.
      this.log.warn('could not read the EndpointSlices of a Service that became a LoadBalancer', { op: 'inputs', service: key, err });
    } finally {
      this.catchingUp.delete(key);
    }
  }

  sizes(): Record<string, number> {
    return { services: this.services.size(), endpointslices: this.slices.size(), servicegroups: this.groups.size(), lbnodeagents: this.agents.size() };
  }

  /** undefined until the own Node has been read. */
  nodeState(): NodeState | undefined {
    const node = this.self.get(this.node);
    if (!node) return undefined;
    const labels = node.metadata?.labels ?? {};
    return { labels, outOfService: node.spec?.unschedulable === true || EXCLUDE_LABEL in labels };
  }
}
