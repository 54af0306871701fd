// Which StorageClass provisions a claim, and whether that class binds it only once a pod using it is
// scheduled (volumeBindingMode WaitForFirstConsumer, as most CSI drivers' classes do).

import type { PersistentVolumeClaim, StorageClass } from '../api/kubernetes.js';
import type { Cache } from '../runtime/cache.js';

/** Set by the scheduler on a WaitForFirstConsumer claim: the node its first pod was placed on. */
export const SELECTED_NODE_ANNOTATION = 'volume.kubernetes.io/selected-node';

const DEFAULT_CLASS_ANNOTATIONS = [
  'storageclass.kubernetes.io/is-default-class',
  'storageclass.beta.kubernetes.io/is-default-class',
];

const isDefault = (storageClass: StorageClass): boolean =>
  DEFAULT_CLASS_ANNOTATIONS.some((key) => storageClass.metadata.annotations?.[key] === 'true');

/**
 * The class of a claim: the one it names; for a claim naming none, the cluster's default, chosen as
 * Kubernetes chooses it (the newest, then the first by name), which the PV controller will write into
 * the claim. Undefined for `storageClassName: ""` (no class: binds to pre-provisioned volumes only)
 * and for a class that does not exist.
 */
export function storageClassOf(
  claim: PersistentVolumeClaim,
  classes: Cache<StorageClass>,
): StorageClass | undefined {
  const named = claim.spec.storageClassName;
  if (named !== undefined) return named === '' ? undefined : classes.get(named);
  const created = (storageClass: StorageClass): number =>
    Date.parse(storageClass.metadata.creationTimestamp ?? '') || 0;
  return classes
    .list()
    .filter(isDefault)
    .sort((a, b) => created(b) - created(a) || byteOrder(a.metadata.name ?? '', b.metadata.name ?? ''))
    .at(0);
}

const byteOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export const bindsOnFirstConsumer = (storageClass: StorageClass): boolean =>
  storageClass.volumeBindingMode === 'WaitForFirstConsumer';
