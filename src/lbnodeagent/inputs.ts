// What the agent reads from the API server: Services, EndpointSlices, ServiceGroups,
// LBNodeAgents and its own Node, each through an Informer. The agent asks this for its
// snapshot inputs and is told when anything changed; the own Node also says whether
// this node is in service (not cordoned, not excluded from load balancers).
//
// The agent runs on every node, so its caches are kept small: of the Services only the
// LoadBalancers (and any that still carry an announcing annotation, so that a Service
// changed to another type loses this node's entry), and of everything only the fields
// read (api/slim.ts).

import type { Connection } from '../k8s/connection.ts';
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { ANNOTATIONS } from '../api/annotations.ts';
import type { ServiceGroupObject } from '../api/configuration.ts';
import { GROUP } from '../api/meta.ts';
import { slimEndpointSlice, slimService } from '../api/slim.ts';
import { PATHS } from '../k8s/api.ts';
import { Informer } from '../k8s/informer.ts';
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

export class AgentInputs {
  readonly services: Informer<V1Service>;
  readonly slices: Informer<V1EndpointSlice>;
  readonly groups: Informer<CustomObject>;
  readonly agents: Informer<CustomObject>;
  private readonly self: Informer<V1Node>;
  private readonly node: string;
  private readonly log: Logger;

  constructor(conn: Connection, namespace: string, node: string, log: Logger) {
    this.node = node;
    this.log = log;
    this.services = new Informer<V1Service>(conn, { name: 'services', path: PATHS.services(), keep: wanted, transform: slimService, pageSize: 100, log });
    this.slices = new Informer<V1EndpointSlice>(conn, { name: 'endpointslices', path: PATHS.endpointSlices(), transform: slimEndpointSlice, pageSize: 100, log });
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
    await Promise.all([this.services.start(), this.slices.start(), this.groups.start(), this.agents.start()]);
    // Without its Node (not there yet, or no right to read it) the agent still serves, with no labels.
    const nodeSynced = await Promise.race([this.self.start().then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 5000).unref())]);
    if (!nodeSynced) this.log.warn('cannot read own Node object; nodeSelector sees no labels, cordon is not seen', { op: 'start', node: this.node });
  }

  async stop(): Promise<void> {
    await Promise.all([this.self.stop(), this.services.stop(), this.slices.stop(), this.groups.stop(), this.agents.stop()]);
  }

  /** undefined until the own Node has been read. */
  nodeState(): NodeState | undefined {
    const node = this.self.get(this.node);
    if (!node) return undefined;
    const labels = node.metadata?.labels ?? {};
    return { labels, outOfService: node.spec?.unschedulable === true || EXCLUDE_LABEL in labels };
  }
}
