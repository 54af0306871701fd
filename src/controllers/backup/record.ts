// A backup with spec.backupLocation is Completed only once its record is in the location's store
// and has been read back with a matching checksum; until then it stays InProgress, saying why, and
// the backup timeout bounds the wait. Deleting the backup deletes the record.

import type { Backup, BackupStatus } from '../../api/generated/types.js';
import { decodeRecord, encodeRecord, recordKey, recordOf } from '../../storage/backup-record.js';
import { ObjectStore } from '../../storage/object-store.js';
import { describeStoreError, openStore } from '../backuplocation/check.js';
import { withConditions, type BackupContext } from './context.js';

/** The Ready condition's reason while the record waits to be stored. */
export const RECORD_PENDING = 'StoringRecord';

/** Runs `use` on the named location's store, or returns why it cannot. */
async function withStore<T>(
  ctx: BackupContext,
  locationName: string,
  use: (store: ObjectStore) => Promise<T>,
): Promise<T | { problem: string }> {
  const location = ctx.cache.locations.get(locationName);
  if (location === undefined) return { problem: `BackupLocation ${locationName} does not exist` };
  const store = await openStore(ctx, location);
  if (!(store instanceof ObjectStore)) return { problem: `BackupLocation ${locationName}: ${store.message}` };
  try {
    return await use(store);
  } catch (err) {
    return { problem: `BackupLocation ${locationName}: ${describeStoreError(ctx, location, err).message}` };
  } finally {
    store.close();
  }
}

/**
 * `completed` with the record stored, or the backup still InProgress with the reason it is not.
 * Writing again after a restart is harmless: the key is the backup's, the newer record replaces it.
 */
export async function storeRecord(
  ctx: BackupContext,
  backup: Backup,
  completed: BackupStatus,
): Promise<BackupStatus> {
  const locationName = backup.spec.backupLocation;
  if (locationName === undefined) return completed;
  const now = ctx.now().toISOString();
  const key = recordKey(ctx.config.clusterName, backup.metadata.namespace ?? '', backup.metadata.name ?? '');
  const { body, checksum } = encodeRecord(recordOf(backup, completed, ctx.config.clusterName));
  const stored = await withStore(ctx, locationName, async (store) => {
    await store.put(key, body);
    const readBack = await store.get(key);
    if (readBack === undefined) return { problem: `record ${key} was written but cannot be read back` };
    const verified = decodeRecord(key, readBack);
    return verified.checksum === checksum
      ? { checksum }
      : { problem: `record ${key} read back with checksum ${verified.checksum}, not ${checksum}` };
  });
  if ('problem' in stored) {
    return withConditions(
      { ...(backup.status ?? {}), phase: 'InProgress' },
      RECORD_PENDING,
      `snapshots ready; storing the record failed: ${stored.problem}`,
      now,
    );
  }
  return { ...completed, record: { location: locationName, key, checksum, storedAt: now } };
}

/** Deletes the backup's record; returns why it could not, or undefined when it is gone. */
export async function deleteRecord(ctx: BackupContext, backup: Backup): Promise<string | undefined> {
  const record = backup.status?.record;
  if (record?.location === undefined || record.key === undefined) return undefined;
  // A location deleted before its backups leaves nothing this cluster can reach to clean up.
  if (ctx.cache.locations.get(record.location) === undefined) return undefined;
  const key = record.key;
  const result = await withStore(ctx, record.location, async (store) => {
    await store.delete(key);
    return {};
  });
  return 'problem' in result ? result.problem : undefined;
}
