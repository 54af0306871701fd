// CSI volume snapshots ("cloudsnaps"): the objects a backup and a restore create, and how to
// read their state. Pure builders and readers; the controllers do the API calls.

import { TerminalError } from '../runtime/errors.js';
import type {
  Labels,
  PersistentVolumeClaim,
  PersistentVolumeClaimSpec,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../api/kubernetes.js';

export const SNAPSHOT_API_GROUP = 'snapshot.storage.k8s.io';

export interface SnapshotState {
  ready: boolean;
  /** Set when the snapshot failed; the storage system's own words. */
  error?: string;
  handle?: string;
  sizeBytes?: number;
}

export function volumeSnapshotForClaim(options: {
  name: string;
  namespace: string;
  pvcName: string;
  className?: string;
  labels: Labels;
}): VolumeSnapshot {
  return {
    metadata: { name: options.name, namespace: options.namespace, labels: options.labels },
    spec: {
      source: { persistentVolumeClaimName: options.pvcName },
      ...(options.className === undefined ? {} : { volumeSnapshotClassName: options.className }),
    },
  };
}

/**
 * A VolumeSnapshotContent that points at an existing snapshot by its handle, for a snapshot that
 * lives in another namespace or cluster. Retain: deleting it never deletes the backup's data.
 */
export function preProvisionedContent(options: {
  name: string;
  driver: string;
  snapshotHandle: string;
  snapshotName: string;
  snapshotNamespace: string;
  className?: string;
  labels: Labels;
}): VolumeSnapshotContent {
  return {
    metadata: { name: options.name, labels: options.labels },
    spec: {
      deletionPolicy: 'Retain',
      driver: options.driver,
      source: { snapshotHandle: options.snapshotHandle },
      volumeSnapshotRef: { name: options.snapshotName, namespace: options.snapshotNamespace },
      ...(options.className === undefined ? {} : { volumeSnapshotClassName: options.className }),
    },
  };
}

/** The VolumeSnapshot bound to a pre-provisioned content. */
export function snapshotOfContent(options: {
  name: string;
  namespace: string;
  contentName: string;
  labels: Labels;
}): VolumeSnapshot {
  return {
    metadata: { name: options.name, namespace: options.namespace, labels: options.labels },
    spec: { source: { volumeSnapshotContentName: options.contentName } },
  };
}

/** A PVC whose data comes from a VolumeSnapshot in its own namespace. */
/**
 * A claim like `claim` of at least `minimumBytes`: made from VolumeSnapshot `snapshotName`, bound
 * to the existing PersistentVolume `volumeName`, or (neither) an empty volume the class provisions.
 */
export function volumeClaim(options: {
  name: string;
  namespace: string;
  snapshotName?: string;
  volumeName?: string;
  claim: PersistentVolumeClaimSpec;
  minimumBytes?: number;
  labels: Labels;
}): PersistentVolumeClaim {
  const requested = options.claim.resources?.requests?.storage;
  const storage =
    options.minimumBytes !== undefined &&
    (requested === undefined || parseQuantity(requested) < options.minimumBytes)
      ? String(options.minimumBytes)
      : (requested ?? '1Gi');
  return {
    metadata: {
      name: options.name,
      namespace: options.namespace,
      labels: options.labels,
    },
    spec: {
      accessModes: options.claim.accessModes ?? ['ReadWriteOnce'],
      ...(options.claim.storageClassName === undefined
        ? {}
        : { storageClassName: options.claim.storageClassName }),
      ...(options.claim.volumeMode === undefined ? {} : { volumeMode: options.claim.volumeMode }),
      resources: { requests: { storage } },
      ...(options.snapshotName === undefined
        ? {}
        : {
            dataSource: { apiGroup: SNAPSHOT_API_GROUP, kind: 'VolumeSnapshot', name: options.snapshotName },
          }),
      ...(options.volumeName === undefined ? {} : { volumeName: options.volumeName }),
    },
  };
}

/** What a VolumeSnapshot (and, when known, its content) says about the snapshot. */
export function snapshotState(snapshot: VolumeSnapshot, content?: VolumeSnapshotContent): SnapshotState {
  const error = snapshot.status?.error?.message ?? content?.status?.error?.message;
  const ready = snapshot.status?.readyToUse === true;
  const handle = content?.status?.snapshotHandle ?? content?.spec.source.snapshotHandle;
  const size = content?.status?.restoreSize ?? parseOptionalQuantity(snapshot.status?.restoreSize);
  return {
    ready,
    ...(error === undefined ? {} : { error }),
    ...(handle === undefined ? {} : { handle }),
    ...(size === undefined ? {} : { sizeBytes: size }),
  };
}

const SUFFIXES: Record<string, number> = {
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A Kubernetes resource quantity ("10Gi", "500M", "1e3") in bytes. */
export function parseQuantity(quantity: string): number {
  const match = /^((?:\d+(?:\.\d*)?|\.\d+)(?:e\d+)?)([a-zA-Z]*)$/.exec(quantity.trim());
  const multiplier = match === null ? undefined : SUFFIXES[match[2] ?? ''];
  const value = Number(match?.[1]) * (multiplier ?? NaN);
  // The same text never parses: retrying cannot help.
  if (!Number.isFinite(value)) throw new TerminalError(`not a storage quantity: "${quantity}"`);
  return Math.ceil(value);
}

function parseOptionalQuantity(quantity: string | undefined): number | undefined {
  return quantity === undefined ? undefined : parseQuantity(quantity);
}
