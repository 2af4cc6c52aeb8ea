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
} as const;
