// A backup with spec.backupLocation is Completed only once its record is in the location's store
// and has been read back with a matching checksum; until then it stays InProgress, saying why, and
// the backup timeout bounds the wait. Deleting the backup deletes the record. A Backup that backup
// sync imported from another cluster's record gets its status from that record instead.

import type { Backup, BackupSyncSource } from '../../api/generated/types.js';
import {
  CorruptRecordError,
  RecordCodec,
  recordKey,
  recordOf,
  UnauthenticatedRecordError,
} from '../../storage/backup-record.js';
import { sanitizeRecorded } from '../../dataservices/manifest.js';
import { describeStoreError, openStore, type OpenLocation } from '../../storage/location-store.js';
import { manifestKey } from '../../storage/repository/files.js';
import { advance, fail, wait } from '../shared/outcome.js';
import { applyBackupOutcome, type BackupContext, type BackupOutcome } from './context.js';

/** The Ready condition's reason while the record waits to be stored. */
export const RECORD_PENDING = 'StoringRecord';
/** The Ready condition's reason while a synced Backup's record cannot be read. */
const IMPORT_PENDING = 'ImportingRecord';

/** Runs `use` on the named location's store, or returns why it cannot. */
async function withStore<T>(
  ctx: BackupContext,
  locationName: string,
  use: (opened: OpenLocation) => Promise<T>,
): Promise<T | { problem: string }> {
  const location = ctx.cache.locations.get(locationName);
  if (location === undefined) return { problem: `BackupLocation ${locationName} does not exist` };
  const opened = await openStore(ctx, location);
  if ('reason' in opened) return { problem: `BackupLocation ${locationName}: ${opened.message}` };
  try {
    return await use(opened);
  } catch (err) {
    return { problem: `BackupLocation ${locationName}: ${describeStoreError(ctx, location, err).message}` };
  } finally {
    opened.store.close();
  }
}

/** The identity of the cluster that wrote the record in `body`; undefined for none or one that does not decode. */
function writerOf(records: RecordCodec, key: string, body: string | undefined): string | undefined {
  if (body === undefined) return undefined;
  try {
    return records.decode(key, body).record.clusterUid;
  } catch (err) {
    // A damaged record at this cluster's own key says nothing about its writer: it is replaced.
    if (err instanceof CorruptRecordError) return undefined;
    throw err;
  }
}

/**
 * The snapshots are done (`done`, the advance to Completed): Completed with the record stored, or
 * still InProgress with the reason it is not. Writing again after a restart is harmless: the key is
 * the backup's, the newer record replaces it.
 */
export async function storeRecord(
  ctx: BackupContext,
  backup: Backup,
  done: Extract<BackupOutcome, { type: 'advance' }>,
): Promise<BackupOutcome> {
  const locationName = backup.spec.backupLocation;
  if (locationName === undefined) return done;
  const now = ctx.now().toISOString();
  const completed = applyBackupOutcome(backup.status ?? {}, done, now);
  const key = recordKey(ctx.config.clusterName, backup.metadata.namespace ?? '', backup.metadata.name ?? '');
  const cluster = { name: ctx.config.clusterName, uid: await ctx.clusterUid() };
  const stored = await withStore(ctx, locationName, async ({ store, records }) => {
    const { body, checksum } = records.encode(recordOf(backup, completed, cluster));
    const owner = writerOf(records, key, await store.get(key));
    if (owner !== undefined && owner !== cluster.uid) return { taken: owner };
    await store.put(key, body);
    const readBack = await store.get(key);
    if (readBack === undefined) return { problem: `record ${key} was written but cannot be read back` };
    const verified = records.decode(key, readBack);
    return verified.checksum === checksum
      ? { checksum }
      : { problem: `record ${key} read back with checksum ${verified.checksum}, not ${checksum}` };
  });
  if ('taken' in stored) {
    return fail(
      'ClusterNameConflict',
      `record ${key} in BackupLocation ${locationName} was written by another cluster that is also named ${cluster.name} (its kube-system namespace is ${stored.taken}, this cluster's is ${cluster.uid}); nothing was overwritten. Give each cluster its own clusterName, then create a new Backup.`,
      done.status,
    );
  }
  if ('problem' in stored) {
    // The snapshots' handles and sizes stay, so that the retries need not read them again.
    return wait(RECORD_PENDING, `snapshots ready; storing the record failed: ${stored.problem}`, done.status);
  }
  return {
    ...done,
    status: {
      ...done.status,
      completionTime: completed.completionTime ?? now,
      record: { location: locationName, key, checksum: stored.checksum, storedAt: now },
    },
  };
}

/**
 * A synced Backup's outcome, from its record: Completed as it was on the cluster it was taken on;
 * waiting, saying why, while the store cannot be read. A record missing or damaged is read again
 * until `final` (the import's deadline): backup sync listed and verified it a moment ago, so one
 * miss may be the store's, not the record's. Past the deadline it fails with the cause.
 */
export async function importRecord(
  ctx: BackupContext,
  backup: Backup,
  from: BackupSyncSource,
  final: boolean,
): Promise<BackupOutcome> {
  const locationName = backup.spec.backupLocation ?? '';
  const start =
    backup.metadata.generation === undefined ? {} : { observedGeneration: backup.metadata.generation };
  const key = recordKey(from.cluster, from.namespace, from.name);
  // Backup sync imports only from locations it reads, so this Backup was written by hand.
  if (ctx.cache.locations.get(locationName) === undefined) {
    return fail(
      'RecordNotFound',
      `BackupLocation ${locationName} does not exist; spec.syncedFrom is set by backup sync, create a Backup without it to back up a deployment.`,
      start,
    );
  }
  const read = await withStore(ctx, locationName, async ({ store, records }) => {
    const body = await store.get(key);
    if (body === undefined) return { missing: true } as const;
    try {
      return records.decode(key, body);
    } catch (err) {
      if (err instanceof CorruptRecordError)
        return { corrupt: err.message, forged: err instanceof UnauthenticatedRecordError };
      throw err;
    }
  });
  if ('problem' in read) return wait(IMPORT_PENDING, `reading the record failed: ${read.problem}`, start);
  if ('missing' in read || 'corrupt' in read) {
    const [code, problem] =
      'missing' in read
        ? (['RecordNotFound', `record ${key} is not in BackupLocation ${locationName}`] as const)
        : ([
            read.forged ? 'RecordUnauthenticated' : 'RecordCorrupt',
            `${read.corrupt}; it cannot be restored from`,
          ] as const);
    if (final) return fail(code, `${problem}; the next sync removes this Backup.`, start);
    return wait(IMPORT_PENDING, `${problem}; reading it again until the import's deadline`, start);
  }
  const { phase, manifest, ...recorded } = read.record.status;
  return advance(
    phase ?? 'Completed',
    `imported from BackupLocation ${locationName}: backup ${from.namespace}/${from.name} of cluster ${from.cluster}`,
    {
      ...recorded,
      // Whatever the bucket holds, server-owned metadata (finalizers, owner references) never comes in.
      ...(manifest === undefined ? {} : { manifest: sanitizeRecorded(manifest) }),
      ...start,
      record: { location: locationName, key, checksum: read.checksum, storedAt: ctx.now().toISOString() },
    },
    'Synced',
  );
}

/**
 * Deletes what the backup stored in its location: its volumes' manifests, then its record (so a
 * record never names a manifest that is gone); returns why it could not, or undefined when all is
 * gone. The chunks stay: other backups may hold them.
 */
export async function deleteRecord(ctx: BackupContext, backup: Backup): Promise<string | undefined> {
  const record = backup.status?.record;
  // A synced Backup's record belongs to the cluster that wrote it.
  if (backup.spec.syncedFrom !== undefined) return undefined;
  if (record?.location === undefined || record.key === undefined) return undefined;
  // A location deleted before its backups leaves nothing this cluster can reach to clean up.
  if (ctx.cache.locations.get(record.location) === undefined) return undefined;
  const key = record.key;
  const manifests = (backup.status?.volumes ?? []).flatMap((volume) =>
    volume.dataCopy === undefined ? [] : [manifestKey(volume.dataCopy.manifest)],
  );
  const result = await withStore(ctx, record.location, async ({ store }) => {
    for (const manifest of manifests) await store.delete(manifest);
    await store.delete(key);
    return {};
  });
  return 'problem' in result ? result.problem : undefined;
}
