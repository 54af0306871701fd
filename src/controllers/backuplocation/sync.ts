// Backup sync: the records other clusters stored in a location become read-only Backups here, so
// a Restore on this cluster can name them. A record that vanished from the store takes its Backup
// with it; a record that is damaged or clashes with a Backup of this cluster is refused, reported
// in the location's status, and imported by nobody.

import { API_VERSION, finalizers, labels } from '../../api/constants.js';
import type { Backup, BackupLocation, RefusedRecord } from '../../api/generated/types.js';
import { syncedBackupName } from '../../naming.js';
import { forEachLimit } from '../../runtime/async.js';
import { resources } from '../../runtime/resources.js';
import {
  CorruptRecordError,
  parseRecordKey,
  RECORDS_PREFIX,
  type BackupRecord,
  type RecordSource,
} from '../../storage/backup-record.js';
import type { Cache } from '../../runtime/cache.js';
import { ensureCreated } from '../shared/objects.js';
import { describeStoreError, openStore, type OpenLocation } from '../../storage/location-store.js';
import type { BackupLocationContext } from './check.js';

/** Records read and Backups written at once by one sync (`make bench`: sync). */
const SYNC_CONCURRENCY = 8;

export interface BackupSyncContext extends BackupLocationContext {
  cache: BackupLocationContext['cache'] & { backups: Cache<Backup> };
  /** Where imported Backups are created. */
  syncNamespace: string;
}

export interface SyncPlan {
  /** Records of other clusters with no Backup here yet. */
  imports: { key: string; source: RecordSource; name: string }[];
  /** Imported Backups whose record is gone from the store. */
  removals: Backup[];
  /** Keys under the records prefix that are not record keys. */
  strayKeys: string[];
  /** Imported Backups whose record is still in the store. */
  kept: number;
}

export type SyncResult =
  | { synced: number; imported: number; removed: number; refused: RefusedRecord[]; message: string }
  | { problem: string };

/** Backups this cluster imported from `location`. */
function importedFrom(ctx: BackupSyncContext, location: string): Backup[] {
  return ctx.cache.backups
    .list()
    .filter(
      (backup) =>
        backup.metadata.namespace === ctx.syncNamespace &&
        backup.spec.syncedFrom !== undefined &&
        backup.spec.backupLocation === location,
    );
}

/** Compares the store's keys with the Backups imported before. This cluster's own records are left out. */
export function planSync(keys: readonly string[], imported: readonly Backup[], ownCluster: string): SyncPlan {
  const wanted = new Map<string, { key: string; source: RecordSource }>();
  const strayKeys: string[] = [];
  for (const key of keys) {
    const source = parseRecordKey(key);
    if (source === undefined) strayKeys.push(key);
    else if (source.cluster !== ownCluster) wanted.set(syncedBackupName(source), { key, source });
  }
  const present = new Set(imported.map((backup) => backup.metadata.name ?? ''));
  return {
    imports: [...wanted]
      .filter(([name]) => !present.has(name))
      .map(([name, record]) => ({ ...record, name })),
    removals: imported.filter(
      (backup) => !wanted.has(backup.metadata.name ?? '') && backup.metadata.deletionTimestamp === undefined,
    ),
    strayKeys,
    kept: imported.filter((backup) => wanted.has(backup.metadata.name ?? '')).length,
  };
}

/** The read-only Backup that stands for `record` here. */
export function syncedBackup(
  location: string,
  namespace: string,
  name: string,
  record: BackupRecord,
): Backup {
  const project = record.metadata.labels?.[labels.project];
  const { deployment, volumeSnapshotClassName } = record.spec;
  return {
    apiVersion: API_VERSION,
    kind: 'Backup',
    metadata: {
      name,
      namespace,
      // Born with the Backup controller's finalizer: one write fewer per import (`make bench`: sync).
      finalizers: [finalizers.backup],
      labels: {
        [labels.syncedFromLocation]: location,
        [labels.syncedFromCluster]: record.cluster,
        [labels.deployment]: deployment.name,
        [labels.managedBy]: 'snapback',
        ...(project === undefined ? {} : { [labels.project]: project }),
      },
    },
    spec: {
      deployment,
      ...(volumeSnapshotClassName === undefined ? {} : { volumeSnapshotClassName }),
      backupLocation: location,
      syncedFrom: {
        cluster: record.cluster,
        namespace: record.metadata.namespace,
        name: record.metadata.name,
      },
    },
  };
}

/** Imports new records, removes Backups whose records vanished. Throws only on Kubernetes API errors. */
export async function syncLocation(ctx: BackupSyncContext, location: BackupLocation): Promise<SyncResult> {
  const locationName = location.metadata.name ?? '';
  const opened = await openStore(ctx, location);
  if ('reason' in opened) return { problem: opened.message };
  const { store } = opened;
  try {
    let keys: string[];
    try {
      keys = await store.list(RECORDS_PREFIX);
    } catch (err) {
      return { problem: describeStoreError(ctx, location, err).message };
    }
    const plan = planSync(keys, importedFrom(ctx, locationName), ctx.clusterName);
    const refused: RefusedRecord[] = plan.strayKeys.map((key) => ({
      key,
      message: `not a record key (${RECORDS_PREFIX}<cluster>/<namespace>/<name>.json)`,
    }));
    let imported = 0;
    await forEachLimit(plan.imports, SYNC_CONCURRENCY, async (entry) => {
      const outcome = await importRecord(ctx, opened, location, entry);
      if (outcome === 'imported') imported++;
      else if (outcome !== 'vanished') refused.push({ key: entry.key, message: outcome.refused });
    });
    await forEachLimit(plan.removals, SYNC_CONCURRENCY, async (backup) => {
      await ctx.client.delete(resources.backups, backup.metadata.name ?? '', {
        namespace: ctx.syncNamespace,
        preconditions: { uid: backup.metadata.uid ?? '' },
      });
    });
    refused.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return {
      synced: plan.kept + imported,
      imported,
      removed: plan.removals.length,
      refused,
      message: `${plan.kept + imported} Backup(s) from other clusters: ${imported} imported, ${plan.removals.length} removed (record gone), ${refused.length} record(s) refused.`,
    };
  } finally {
    store.close();
  }
}

async function importRecord(
  ctx: BackupSyncContext,
  { store, records }: OpenLocation,
  location: BackupLocation,
  { key, source, name }: SyncPlan['imports'][number],
): Promise<'imported' | 'vanished' | { refused: string }> {
  let body: string | undefined;
  try {
    body = await store.get(key);
  } catch (err) {
    return { refused: `could not be read: ${describeStoreError(ctx, location, err).message}` };
  }
  if (body === undefined) return 'vanished';
  let record: BackupRecord;
  try {
    record = records.decode(key, body).record;
  } catch (err) {
    if (err instanceof CorruptRecordError) return { refused: err.message };
    throw err;
  }
  const says = `${record.cluster}/${record.metadata.namespace}/${record.metadata.name}`;
  if (says !== `${source.cluster}/${source.namespace}/${source.name}`)
    return { refused: `the record is of backup ${says}, not of the one its key names` };
  const created = await ensureCreated(
    ctx.client,
    resources.backups,
    syncedBackup(location.metadata.name ?? '', ctx.syncNamespace, name, record),
    labels.syncedFromLocation,
  );
  return created.outcome === 'taken'
    ? {
        refused: `Backup ${ctx.syncNamespace}/${name} already exists and was not imported from this location; rename or delete it to import the record.`,
      }
    : 'imported';
}
