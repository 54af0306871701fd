import { GROUP, VERSION } from '../api/constants.js';
import type {
  Backup,
  BackupLocation,
  BackupSchedule,
  ReferenceGrant,
  RestorabilityMatrix,
  Restore,
} from '../api/generated/types.js';
import type {
  Event,
  KubeObject,
  Lease,
  Namespace,
  PersistentVolume,
  PersistentVolumeClaim,
  Pod,
  Secret,
  StatefulSet,
  StorageClass,
  VolumeSnapshot,
  VolumeSnapshotClass,
  VolumeSnapshotContent,
} from '../api/kubernetes.js';

/**
 * A REST resource the operator talks to. The type parameter carries the object type, so
 * client calls on `resources.statefulSets` return StatefulSets without casts at call sites.
 */
export interface ResourceType<T extends KubeObject = KubeObject> {
  /** Empty for the core group. */
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  /** Phantom field: never set, only carries T. */
  readonly _type?: T;
}

function resource<T extends KubeObject>(
  group: string,
  version: string,
  kind: string,
  plural: string,
  namespaced: boolean,
): ResourceType<T> {
  return { group, version, kind, plural, namespaced };
}

export function apiVersionOf(rt: ResourceType): string {
  return rt.group === '' ? rt.version : `${rt.group}/${rt.version}`;
}

/** The collection path, e.g. /apis/apps/v1/namespaces/ns/statefulsets. */
export function collectionPath(rt: ResourceType, namespace?: string): string {
  const prefix = rt.group === '' ? `/api/${rt.version}` : `/apis/${rt.group}/${rt.version}`;
  if (rt.namespaced && namespace !== undefined) {
    return `${prefix}/namespaces/${encodeURIComponent(namespace)}/${rt.plural}`;
  }
  return `${prefix}/${rt.plural}`;
}

export function objectPath(rt: ResourceType, name: string, namespace?: string, subresource?: string): string {
  if (rt.namespaced && namespace === undefined) {
    throw new Error(`${rt.kind} ${name}: a namespace is required`);
  }
  const path = `${collectionPath(rt, namespace)}/${encodeURIComponent(name)}`;
  return subresource === undefined ? path : `${path}/${subresource}`;
}

export const resources = {
  namespaces: resource<Namespace>('', 'v1', 'Namespace', 'namespaces', false),
  events: resource<Event>('', 'v1', 'Event', 'events', true),
  pods: resource<Pod>('', 'v1', 'Pod', 'pods', true),
  secrets: resource<Secret>('', 'v1', 'Secret', 'secrets', true),
  persistentVolumeClaims: resource<PersistentVolumeClaim>(
    '',
    'v1',
    'PersistentVolumeClaim',
    'persistentvolumeclaims',
    true,
  ),
  persistentVolumes: resource<PersistentVolume>('', 'v1', 'PersistentVolume', 'persistentvolumes', false),
  statefulSets: resource<StatefulSet>('apps', 'v1', 'StatefulSet', 'statefulsets', true),
  storageClasses: resource<StorageClass>('storage.k8s.io', 'v1', 'StorageClass', 'storageclasses', false),
  leases: resource<Lease>('coordination.k8s.io', 'v1', 'Lease', 'leases', true),
  volumeSnapshots: resource<VolumeSnapshot>(
    'snapshot.storage.k8s.io',
    'v1',
    'VolumeSnapshot',
    'volumesnapshots',
    true,
  ),
  volumeSnapshotContents: resource<VolumeSnapshotContent>(
    'snapshot.storage.k8s.io',
    'v1',
    'VolumeSnapshotContent',
    'volumesnapshotcontents',
    false,
  ),
  volumeSnapshotClasses: resource<VolumeSnapshotClass>(
    'snapshot.storage.k8s.io',
    'v1',
    'VolumeSnapshotClass',
    'volumesnapshotclasses',
    false,
  ),
  backups: resource<Backup>(GROUP, VERSION, 'Backup', 'backups', true),
  restores: resource<Restore>(GROUP, VERSION, 'Restore', 'restores', true),
  restorabilityMatrices: resource<RestorabilityMatrix>(
    GROUP,
    VERSION,
    'RestorabilityMatrix',
    'restorabilitymatrices',
    false,
  ),
  backupLocations: resource<BackupLocation>(GROUP, VERSION, 'BackupLocation', 'backuplocations', false),
  backupSchedules: resource<BackupSchedule>(GROUP, VERSION, 'BackupSchedule', 'backupschedules', true),
  referenceGrants: resource<ReferenceGrant>(GROUP, VERSION, 'ReferenceGrant', 'referencegrants', true),
} as const;
