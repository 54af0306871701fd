// What every controller's setup is given: the manager to register with, the shared informers, and
// the operator-wide parts (client, events, clock). Each controller wires its own watches and
// indexes from these (controller-runtime's SetupWithManager).

import type { Logger } from 'winston';
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
  PersistentVolumeClaim,
  Pod,
  StatefulSet,
  StorageClass,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../api/kubernetes.js';
import type { OperatorConfig } from '../config.js';
import type { EventRecorder } from '../observability/events.js';
import type { ObjectClient } from '../runtime/client.js';
import type { DependencyWatch } from '../runtime/controller.js';
import type { Informer } from '../runtime/informer.js';
import type { Manager } from '../runtime/manager.js';

export interface Informers {
  restores: Informer<Restore>;
  backups: Informer<Backup>;
  matrices: Informer<RestorabilityMatrix>;
  locations: Informer<BackupLocation>;
  schedules: Informer<BackupSchedule>;
  claims: Informer<PersistentVolumeClaim>;
  pods: Informer<Pod>;
  /** Data mover pods, in the operator's namespace. */
  movers: Informer<Pod>;
  statefulSets: Informer<StatefulSet>;
  snapshots: Informer<VolumeSnapshot>;
  contents: Informer<VolumeSnapshotContent>;
  events: Informer<Event>;
  storageClasses: Informer<StorageClass>;
  referenceGrants: Informer<ReferenceGrant>;
}

export interface SetupContext {
  manager: Manager;
  informers: Informers;
  client: ObjectClient;
  config: OperatorConfig;
  recorder: EventRecorder;
  logger: Logger;
  now: () => Date;
}

export const keyOf = (namespace: string | undefined, name: string | undefined): string =>
  `${namespace ?? ''}/${name ?? ''}`;

/**
 * The owner a labelled object wakes: `label` names it, in the namespace `namespaceLabel` names
 * (an object in the operator's namespace serving a tenant's), else in the object's own.
 */
export const labelledOwner =
  (label: string, namespaceLabel?: string) =>
  (object: KubeObject): string[] => {
    const owner = object.metadata.labels?.[label];
    const namespace =
      (namespaceLabel === undefined ? undefined : object.metadata.labels?.[namespaceLabel]) ??
      object.metadata.namespace;
    return owner === undefined ? [] : [keyOf(namespace, owner)];
  };

/** A watch whose toKeys is typed by its informer: it only ever hands toKeys its own objects. */
export function dependency<T extends KubeObject>(
  informer: Informer<T>,
  toKeys: (object: T) => string[],
): DependencyWatch {
  return { informer, toKeys };
}
