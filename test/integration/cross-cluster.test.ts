// Two clusters, one object store. Cluster "east" (the test cluster) backs up a data service into a
// BackupLocation; cluster "west" (a second control plane, CLUSTER_NAME=peer) points a location at
// the same bucket, imports the record as a read-only Backup (backup sync) and restores it through
// pre-provisioned VolumeSnapshotContents made from the record's snapshot handles, after copying the
// location's credentials into the destination namespace. The two storage simulators share one
// backend, as two clusters share a storage system, so the restored volumes must carry the source
// volumes' content. Damaged records are refused and reported, not imported; a record that leaves
// the store takes its Backup with it on west; a missing credentials Secret fails the restore with
// FailedBackupCredentialSync, and a recreate succeeds once it is back.

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { labels } from '../../src/api/constants.js';
import type { Backup } from '../../src/api/generated/types.js';
import { syncedBackupName } from '../../src/naming.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { ApiError } from '../../src/runtime/errors.js';
import { resources } from '../../src/runtime/resources.js';
import { referenceGrant } from '../support/builders.js';
import { recordKey, recordOf } from '../../src/storage/backup-record.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  ensurePeerCluster,
  PEER_KUBECONFIG_PATH,
  testClient,
  uniqueName,
  waitFor,
} from './support/cluster.js';
import {
  locationManifest,
  startObjectStore,
  waitForLocation,
  writeCredentials,
  type RunningObjectStore,
} from './support/object-store.js';
import { metricValue, startOperator, type RunningOperator } from './support/operator.js';
import {
  backupManifest,
  contentIdOf,
  createSimSnapshotClass,
  deploySampleDataService,
  installCrds,
  isHealthy,
  restoreManifest,
  waitForBackup,
  waitForRestore,
} from './support/snapback.js';

const BUCKET = 'shared-backups';
const SECRET = 'store-key';
/** Short periods so that the test sees syncs and checks within seconds. */
const PERIOD_SECONDS = 2;

let east: KubeClient;
let west: KubeClient;
/** east: the data service, its Backup, and the operator's credentials. */
let eastNs: string;
/** west: the operator's namespace (credentials, imported Backups). */
let westNs: string;
/** west: where the restores go. */
let westApp: string;
let location: string;
let store: RunningObjectStore;
let eastOperator: RunningOperator;
let westOperator: RunningOperator;

beforeAll(async () => {
  ensurePeerCluster();
  east = await testClient();
  west = await testClient(PEER_KUBECONFIG_PATH);
  await installCrds(east);
  await installCrds(west);
  eastNs = await createTestNamespace(east, 'xc-east');
  westNs = await createTestNamespace(west, 'xc-west');
  westApp = await createTestNamespace(west, 'xc-app');
  // Imports live in west's operator namespace: the admin grants the app's namespace to restore them.
  await west.create(resources.referenceGrants, referenceGrant(westNs, westApp));
  store = await startObjectStore(eastNs);
  await store.createBucket(BUCKET);
  await writeCredentials(east, eastNs, SECRET, store.accessKeyId, store.secretAccessKey);
  await writeCredentials(west, westNs, SECRET, store.accessKeyId, store.secretAccessKey);
  // The same name on both clusters is a coincidence the test avoids on purpose: each cluster's
  // Backups name their own location object.
  location = uniqueName('shared');
  // Each location names the snapshot class of its own cluster: for backups on east, for imports on west.
  await createSimSnapshotClass(east, `${location}-backups`);
  await createSimSnapshotClass(west, `${location}-imports`);
  const spec = { validationFrequencySeconds: PERIOD_SECONDS, syncPeriodSeconds: PERIOD_SECONDS };
  await east.create(
    resources.backupLocations,
    locationManifest(store, `${location}-east`, BUCKET, {
      ...spec,
      volumeSnapshotClassName: `${location}-backups`,
    }),
  );
  await west.create(
    resources.backupLocations,
    locationManifest(store, location, BUCKET, { ...spec, volumeSnapshotClassName: `${location}-imports` }),
  );
  eastOperator = await startOperator(`xc-east-${eastNs}`, {
    clusterName: 'east',
    watchNamespace: eastNs,
    namespace: eastNs,
  });
  westOperator = await startOperator(
    `xc-west-${westNs}`,
    { clusterName: 'west', watchNamespace: '', namespace: westNs },
    PEER_KUBECONFIG_PATH,
  );
});

afterAll(async () => {
  await eastOperator.stop();
  await westOperator.stop();
  await east.delete(resources.backupLocations, `${location}-east`);
  await west.delete(resources.backupLocations, location);
  await east.delete(resources.volumeSnapshotClasses, `${location}-backups`);
  await west.delete(resources.volumeSnapshotClasses, `${location}-imports`);
  await store.stop();
  await deleteTestNamespace(east, eastNs);
  await deleteTestNamespace(west, westNs);
  await deleteTestNamespace(west, westApp);
  await east.close();
  await west.close();
});

/** The Backup west imports for east's Backup `name`, once it is Completed there. */
async function imported(name: string): Promise<Backup> {
  return waitForBackup(
    west,
    westNs,
    syncedBackupName({ cluster: 'east', namespace: eastNs, name }),
    'Completed',
  );
}

describe('a Backup taken on one cluster', () => {
  let source: Backup;
  let synced: Backup;
  let sourceIds: (string | undefined)[];

  it('is imported on the other as a read-only Backup holding its record', async () => {
    await deploySampleDataService(east, eastNs, 'pg', 2);
    sourceIds = await Promise.all([0, 1].map((i) => contentIdOf(east, eastNs, `data-pg-${i}`)));
    expect(sourceIds.every((id) => id !== undefined)).toBe(true);
    await east.create(
      resources.backups,
      backupManifest(eastNs, 'pg-backup', 'pg', { backupLocation: `${location}-east` }),
    );
    source = await waitForBackup(east, eastNs, 'pg-backup', 'Completed');
    expect(source.status?.volumes?.map((v) => v.volumeSnapshotClassName)).toEqual([
      `${location}-backups`,
      `${location}-backups`,
    ]);

    synced = await imported('pg-backup');
    expect(synced.spec).toMatchObject({
      backupLocation: location,
      syncedFrom: { cluster: 'east', namespace: eastNs, name: 'pg-backup' },
    });
    expect(synced.metadata.labels).toMatchObject({
      [labels.syncedFromLocation]: location,
      [labels.syncedFromCluster]: 'east',
    });
    expect(synced.status?.volumes).toEqual(source.status?.volumes);
    expect(synced.status?.manifest).toEqual(source.status?.manifest);
    expect(synced.status?.record).toMatchObject({
      location,
      key: recordKey('east', eastNs, 'pg-backup'),
      checksum: source.status?.record?.checksum,
    });
    const status = await waitForLocation(west, location, (l) => l.status?.syncedBackups === 1, '1 synced');
    expect(status.status?.conditions?.find((c) => c.type === 'Synced')).toMatchObject({ status: 'True' });
    const metrics = await westOperator.metrics();
    expect(metricValue(metrics, 'snapback_backup_location_available', { location })).toBe(1);
    expect(metricValue(metrics, 'snapback_backup_location_synced_backups', { location })).toBe(1);
    // Imports are told of once per sync, on the location; not one Event per imported Backup.
    await waitFor('a BackupsSynced Event', async () => {
      const { items } = await west.list(resources.events, {
        namespace: 'default',
        fieldSelector: `involvedObject.kind=BackupLocation,involvedObject.name=${location},reason=BackupsSynced`,
      });
      return items.some((event) => event.message.includes('1 imported'));
    });
    const { items: backupEvents } = await west.list(resources.events, {
      namespace: westNs,
      fieldSelector: `involvedObject.kind=Backup,involvedObject.name=${synced.metadata.name ?? ''}`,
    });
    expect(backupEvents).toEqual([]);
    // Nothing was snapshotted on west for it.
    const { items } = await west.list(resources.volumeSnapshots, { namespace: westNs });
    expect(items).toEqual([]);

    // Read-only: its spec cannot be changed.
    const err = await west
      .mergePatch(
        resources.backups,
        synced.metadata.name ?? '',
        { spec: { syncedFrom: null } },
        { namespace: westNs },
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).message).toMatch(/immutable/);
  });

  it('is restored there with the source volumes’ content, the location credentials left where they are', async () => {
    await west.create(
      resources.restores,
      restoreManifest(westApp, 'from-east', {
        source: { backupRef: { namespace: westNs, name: synced.metadata.name ?? '' } },
      }),
    );
    const restore = await waitForRestore(west, westApp, 'from-east', 'Successful');
    expect(isHealthy(await west.get(resources.statefulSets, 'pg', westApp), 2)).toBe(true);
    expect(await Promise.all([0, 1].map((i) => contentIdOf(west, westApp, `data-pg-${i}`)))).toEqual(
      sourceIds,
    );

    // Imported through pre-provisioned contents made from the record's handles.
    const { items: contents } = await west.list(resources.volumeSnapshotContents, {
      labelSelector: `${labels.restore}=from-east`,
    });
    expect(contents.map((c) => c.spec.source.snapshotHandle).sort()).toEqual(
      (source.status?.volumes ?? []).map((v) => v.cloudSnapId).sort(),
    );
    expect(contents.map((c) => c.spec.volumeSnapshotClassName)).toEqual([
      `${location}-imports`,
      `${location}-imports`,
    ]);

    // The location's key, which every cluster on the bucket shares, is nowhere in the restore's
    // namespace: not in a Secret, not named on the restored claims.
    const { items: secrets } = await west.list(resources.secrets, { namespace: westApp });
    const values = secrets.flatMap((item) =>
      Object.values(item.data ?? {}).map((value) => Buffer.from(value, 'base64').toString()),
    );
    expect(values).not.toContain(store.secretAccessKey);
    expect(restore.status).not.toHaveProperty('backupCredentialsSecret');
    const claim = await west.get(resources.persistentVolumeClaims, 'data-pg-0', westApp);
    expect(
      Object.keys(claim?.metadata.annotations ?? {}).filter((key) => key.startsWith('snapback.dev/')),
    ).toEqual([]);
  });

  it('fails a restore with FailedBackupCredentialSync while the credentials are missing, and recreates once they are back', async () => {
    await west.delete(resources.secrets, SECRET, { namespace: westNs });
    await west.create(
      resources.restores,
      restoreManifest(westApp, 'no-key', {
        source: { backupRef: { namespace: westNs, name: synced.metadata.name ?? '' } },
        destination: { deploymentName: 'pg-copy' },
      }),
    );
    const failed = await waitForRestore(west, westApp, 'no-key', 'Failed');
    expect(failed.status?.errorCode).toBe('FailedBackupCredentialSync');
    expect(failed.status?.errorMessage).toContain(`Secret ${westNs}/${SECRET}`);
    expect(failed.status?.errorMessage).toMatch(/create it.*recreateToken/);
    expect(await west.get(resources.statefulSets, 'pg-copy', westApp)).toBeUndefined();
    // The location says the same; the imported Backup stays.
    await waitForLocation(west, location, 'CredentialsNotFound');
    expect(await west.get(resources.backups, synced.metadata.name ?? '', westNs)).toBeDefined();

    await writeCredentials(west, westNs, SECRET, store.accessKeyId, store.secretAccessKey);
    await west.mergePatch(
      resources.restores,
      'no-key',
      { spec: { recreateToken: 'key-is-back' } },
      { namespace: westApp },
    );
    await waitForRestore(west, westApp, 'no-key', 'Successful');
  });

  it('is removed there when its record leaves the store, and deleting the import keeps the record', async () => {
    const name = synced.metadata.name ?? '';
    // Deleting the import on west: the record stays, so the next sync brings it back.
    await west.delete(resources.backups, name, { namespace: westNs });
    const again = await waitFor('the Backup to be imported again', async () => {
      const backup = await west.get(resources.backups, name, westNs);
      return backup !== undefined && backup.metadata.uid !== synced.metadata.uid ? backup : undefined;
    });
    expect(again.spec.syncedFrom).toEqual(synced.spec.syncedFrom);
    expect(
      await store.inBucket(BUCKET, (reader) => reader.get(recordKey('east', eastNs, 'pg-backup'))),
    ).toBeDefined();

    // Deleting the Backup on east deletes the record; west follows within a sync period.
    await east.delete(resources.backups, 'pg-backup', { namespace: eastNs });
    await waitFor(
      'the import to go',
      async () => (await west.get(resources.backups, name, westNs)) === undefined,
    );
    await waitForLocation(west, location, (l) => l.status?.syncedBackups === 0, '0 synced');
  });
});

describe('backup sync', () => {
  it('refuses damaged, misplaced and schema-breaking records, reports them, and imports none of them', async () => {
    const backup: Backup = {
      metadata: { name: 'genuine', namespace: eastNs, uid: 'u-1' },
      spec: { deployment: { name: 'pg' } },
    };
    const { body } = store.records.encode(
      recordOf(backup, { phase: 'Completed' }, { name: 'east', uid: 'uid-east' }),
    );
    const altered = body.replace('"genuine"', '"forged"');
    const keys = {
      altered: recordKey('east', eastNs, 'forged'),
      misplaced: recordKey('east', eastNs, 'elsewhere'),
      truncated: recordKey('east', eastNs, 'truncated'),
      unfit: recordKey('east', eastNs, 'unfit'),
      stray: 'backups/notes.json',
    };
    await store.inBucket(BUCKET, async (writer) => {
      await writer.put(keys.altered, altered);
      await writer.put(keys.misplaced, body);
      await writer.put(keys.truncated, body.slice(0, 40));
      // Checksum intact, yet a status the Backup schema refuses (a manifest without a kind).
      const unfit = recordOf(
        { ...backup, metadata: { ...backup.metadata, name: 'unfit' } },
        { phase: 'Completed', manifest: { apiVersion: 'apps/v1', metadata: { name: 'pg' } } },
        { name: 'east', uid: 'uid-east' },
      );
      await writer.put(keys.unfit, store.records.encode(unfit).body);
      await writer.put(keys.stray, '{}');
    });
    const reported = await waitForLocation(
      west,
      location,
      (l) => (l.status?.corruptRecords ?? []).length === 5,
      '5 refused records',
    );
    const reasons = Object.fromEntries(
      (reported.status?.corruptRecords ?? []).map((r) => [r.key, r.message]),
    );
    expect(reasons[keys.altered]).toMatch(/checksum .* does not match/);
    expect(reasons[keys.misplaced]).toMatch(/is of backup east\/.*\/genuine, not of the one its key names/);
    expect(reasons[keys.truncated]).toMatch(/not JSON/);
    expect(reasons[keys.stray]).toMatch(/not a record key/);
    expect(reasons[keys.unfit]).toMatch(/does not fit the Backup schema: status\.manifest: .*'kind'/);
    expect(reported.status?.conditions?.find((c) => c.type === 'Synced')).toMatchObject({
      status: 'False',
      reason: 'RecordsRefused',
    });
    const { items } = await west.list(resources.backups, { namespace: westNs });
    expect(items.filter((b) => b.spec.syncedFrom !== undefined)).toEqual([]);
    const { items: events } = await west.list(resources.events, {
      namespace: 'default',
      fieldSelector: `involvedObject.kind=BackupLocation,involvedObject.name=${location},reason=RecordsRefused`,
    });
    expect(events.length).toBeGreaterThan(0);
    expect(
      metricValue(await westOperator.metrics(), 'snapback_backup_location_refused_records', { location }),
    ).toBe(5);
  });

  it('finishes an import the operator was killed in the middle of, with no Backup twice', async () => {
    const count = 40;
    await store.inBucket(BUCKET, async (writer) => {
      for (let i = 0; i < count; i++) {
        const backup: Backup = {
          metadata: { name: `nightly-${String(i)}`, namespace: 'shop', uid: `u-${String(i)}` },
          spec: { deployment: { name: 'pg' } },
        };
        await writer.put(
          recordKey('north', 'shop', `nightly-${String(i)}`),
          store.records.encode(recordOf(backup, { phase: 'Completed' }, { name: 'north', uid: 'uid-north' }))
            .body,
        );
      }
    });
    const imports = async (): Promise<Backup[]> =>
      (
        await west.list(resources.backups, {
          namespace: westNs,
          labelSelector: `${labels.syncedFromCluster}=north`,
        })
      ).items;
    await waitFor('the import to begin', async () => (await imports()).length > 0, 60_000, 20);
    await westOperator.kill();
    const completedAtKill = (await imports()).filter((b) => b.status?.phase === 'Completed').length;
    westOperator = await startOperator(
      `xc-west-restarted-${westNs}`,
      { clusterName: 'west', watchNamespace: '', namespace: westNs },
      PEER_KUBECONFIG_PATH,
    );
    const all = await waitFor('every record imported and Completed', async () => {
      const items = await imports();
      return items.length === count && items.every((b) => b.status?.phase === 'Completed')
        ? items
        : undefined;
    });
    expect(new Set(all.map((b) => b.spec.syncedFrom?.name)).size).toBe(count);
    // The kill came with work left for the restarted operator.
    expect(completedAtKill).toBeLessThan(count);
  });

  it('left both operators running throughout', () => {
    expect(eastOperator.running()).toBe(true);
    expect(westOperator.running()).toBe(true);
  });
});
