// The one step of a BackupLocation: read its credentials, probe its store, and say in words what
// the result means for the person who configured it.

import type { BackupLocation } from '../../api/generated/types.js';
import type { Cache } from '../../runtime/cache.js';
import {
  describeBucket,
  describeStoreError,
  openStore,
  type LocationCheck,
  type StoreAccess,
} from '../../storage/location-store.js';

export interface BackupLocationContext extends StoreAccess {
  cache: { locations: Cache<BackupLocation> };
  /** Names this cluster's probe object, so clusters sharing a bucket do not clobber each other's. */
  clusterName: string;
  now(): Date;
}

/** Checks the location's store with its credentials. Throws only on errors of the Kubernetes API. */
export async function checkLocation(
  ctx: BackupLocationContext,
  location: BackupLocation,
): Promise<LocationCheck> {
  const opened = await openStore(ctx, location);
  if ('reason' in opened) return opened;
  const { store } = opened;
  try {
    await store.probe(ctx.clusterName);
    return {
      reason: 'Available',
      message: `${describeBucket(location.spec.s3)} can be listed, written and deleted from.`,
    };
  } catch (err) {
    return describeStoreError(ctx, location, err);
  } finally {
    store.close();
  }
}
