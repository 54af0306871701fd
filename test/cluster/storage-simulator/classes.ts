// The StorageClass and VolumeSnapshotClass the simulator serves, created at start when missing.

import type { KubeObject, StorageClass, VolumeSnapshotClass } from '../../../src/api/kubernetes.js';
import type { KubeClient } from '../../../src/runtime/kube-client.js';
import { isAlreadyExists } from '../../../src/runtime/errors.js';
import type { ResourceType } from '../../../src/runtime/resources.js';
import { resources } from '../../../src/runtime/resources.js';
import { CLASS_NAME, DRIVER, KUBE, SNAPSHOT } from './constants.js';

export const storageClass: StorageClass = {
  metadata: { name: CLASS_NAME, annotations: { [KUBE.defaultStorageClass]: 'true' } },
  provisioner: DRIVER,
  reclaimPolicy: 'Delete',
  volumeBindingMode: 'Immediate',
  allowVolumeExpansion: false,
};

export const volumeSnapshotClass: VolumeSnapshotClass = {
  metadata: { name: CLASS_NAME, annotations: { [SNAPSHOT.defaultClass]: 'true' } },
  driver: DRIVER,
  deletionPolicy: 'Delete',
};

/** Creates the object unless it exists; an existing one is left as it is (it may carry edits). */
async function ensure<T extends KubeObject>(
  client: KubeClient,
  rt: ResourceType<T>,
  object: T,
): Promise<'created' | 'exists'> {
  if ((await client.get(rt, object.metadata.name ?? '')) !== undefined) return 'exists';
  try {
    await client.create(rt, object);
    return 'created';
  } catch (err) {
    if (isAlreadyExists(err)) return 'exists';
    throw err;
  }
}

export async function ensureClasses(
  client: KubeClient,
): Promise<{ storageClass: 'created' | 'exists'; volumeSnapshotClass: 'created' | 'exists' }> {
  return {
    storageClass: await ensure(client, resources.storageClasses, storageClass),
    volumeSnapshotClass: await ensure(client, resources.volumeSnapshotClasses, volumeSnapshotClass),
  };
}
