// PureLB's annotation names and Event reasons: kept as they are so that existing
// manifests, dashboards and scripts keep working. Here in src/api because the
// allocator, the agent and the CLI all read or write them.

export const ANNOTATIONS = {
  serviceGroup: 'purelb.io/service-group',
  addresses: 'purelb.io/addresses',
  allowSharedIP: 'purelb.io/allow-shared-ip',
  allowLocal: 'purelb.io/allow-local',
  allocatedBy: 'purelb.io/allocated-by',
  allocatedFrom: 'purelb.io/allocated-from',
  announcingIPv4: 'purelb.io/announcing-IPv4',
  announcingIPv6: 'purelb.io/announcing-IPv6',
} as const;

/**
 * The spellings of other load balancers for three of ours, honoured by the allocator as
 * aliases (chart: `allocator.annotationAliases`) so that Services annotated for MetalLB
 * or OpenELB keep their pool, address and sharing after a takeover (docs/migration.md).
 * Ours come first and win; when spellings disagree the Service gets a Warning naming both.
 */
export const ANNOTATION_ALIASES = {
  serviceGroup: ['metallb.io/address-pool', 'metallb.universe.tf/address-pool', 'eip.openelb.kubesphere.io/v1alpha2'],
  addresses: ['metallb.io/loadBalancerIPs', 'metallb.universe.tf/loadBalancerIPs'],
  allowSharedIP: ['metallb.io/allow-shared-ip', 'metallb.universe.tf/allow-shared-ip'],
} as const satisfies Partial<Record<keyof typeof ANNOTATIONS, readonly string[]>>;

/** The value of `purelb.io/allocated-by` that brands a Service as ours. */
export const BRAND = 'PureLB';

export const LOAD_BALANCER_CLASS = 'purelb.io/purelb';

export const REASONS = {
  addressAssigned: 'AddressAssigned',
  allocationFailed: 'AllocationFailed',
  addressReleased: 'AddressReleased',
  announcingLocal: 'AnnouncingLocal',
  announcingNonLocal: 'AnnouncingNonLocal',
  configurationWarning: 'ConfigurationWarning',
  addressNotOurs: 'AddressNotOurs',
  /** An address another controller gave a Service, kept as if it had been requested. */
  addressAdopted: 'AddressAdopted',
} as const;
