// A Backup stored in a BackupLocation copies its volumes' files into the bucket: a data mover pod
// on the real node, in the operator's namespace, mounts the snapshot of a real PostgreSQL volume
// (through the project's CSI driver and the real sidecars) and uploads it to versitygw. What the
// bucket holds is then restored on this machine, away from the cluster, into an empty directory,
// where PostgreSQL starts and the rows match. A second backup uploads only what changed. Then the
// source's volume and every snapshot are destroyed, and a Restore rebuilds the database on the
// cluster from the bucket alone, through an operator SIGKILLed while the mover downloads.

import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { annotations, labels } from '../../src/api/constants.js';
import type { Backup, VolumeDataCopy } from '../../src/api/generated/types.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { resources } from '../../src/runtime/resources.js';
import { restoreFiles } from '../../src/storage/repository/files.js';
import { Repository } from '../../src/storage/repository/repository.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  REPO_ROOT,
  testClient,
  uniqueName,
  waitFor,
} from './support/cluster.js';
import {
  LOCATION_KEY,
  locationManifest,
  startObjectStore,
  waitForLocation,
  writeCredentials,
  type RunningObjectStore,
} from './support/object-store.js';
import { startOperator, type RunningOperator } from './support/operator.js';
import { Postgres, uid } from './support/postgres.js';
import { freePort } from './support/process.js';
import {
  BRIDGE_IP,
  CSI_DATA_DIR,
  digestQuery,
  podIP,
  postgresWithRows,
  psql,
  readDigest,
  tableDigest,
  waitForPostgres,
  type TableDigest,
} from './support/real-node.js';
import {
  backupManifest,
  installCrds,
  restoreManifest,
  waitForBackup,
  waitForRestore,
} from './support/snapback.js';

const BUCKET = 'cloudsnaps';
/** The postgres user and group of the image (test/cluster/images/postgres). */
const IMAGE_POSTGRES_UID = 101;

let client: KubeClient;
let operatorNs: string;
let namespace: string;
let store: RunningObjectStore;
let operator: RunningOperator | undefined;
let location: string;
let work: string;

beforeAll(async () => {
  client = await testClient();
  await installCrds(client);
  operatorNs = await createTestNamespace(client, 'copy-ops');
  namespace = await createTestNamespace(client, 'copy');
  // On the pod bridge: the movers reach this machine there, the operator too.
  store = await startObjectStore(namespace, BRIDGE_IP);
  await store.createBucket(BUCKET);
  await writeCredentials(client, operatorNs, 'store-key', store.accessKeyId, store.secretAccessKey);
  location = uniqueName('copy');
  await client.create(
    resources.backupLocations,
    locationManifest(store, location, BUCKET, { copyVolumeData: true, syncPeriodSeconds: 0 }),
  );
  operator = await startOperator(`copy-${namespace}`, { namespace: operatorNs, watchNamespace: namespace });
  await waitForLocation(client, location, 'Available');
  work = mkdtempSync(join(REPO_ROOT, '.cache', 'copy-'));
  // The postgres user of this machine reaches the restored data directories under it.
  chmodSync(work, 0o755);
});

afterAll(async () => {
  await operator?.stop();
  await deleteTestNamespace(client, namespace);
  await deleteTestNamespace(client, operatorNs);
  await client.delete(resources.backupLocations, location);
  await store.stop();
  await client.close();
  rmSync(work, { recursive: true, force: true });
});

async function backUp(name: string): Promise<{ backup: Backup; copy: VolumeDataCopy }> {
  await client.create(resources.backups, backupManifest(namespace, name, 'pg', { backupLocation: location }));
  const backup = await waitForBackup(client, namespace, name, 'Completed', 240_000);
  const copy = backup.status?.volumes?.[0]?.dataCopy;
  if (copy === undefined) throw new Error(`Backup ${name} records no copy of its volume`);
  return { backup, copy };
}

/** The manifest restored from the bucket into a new directory on this machine, by the library the mover runs. */
async function restoreFromBucket(manifest: string): Promise<string> {
  const target = mkdtempSync(join(work, 'volume-'));
  const bucket = store.open(BUCKET);
  // Inline chunk work: jest's module loader does not reach worker threads.
  const repository = await Repository.open(bucket, Buffer.from(LOCATION_KEY, 'base64'));
  try {
    await restoreFiles(repository, manifest, target);
  } finally {
    await repository.close();
    bucket.close();
  }
  return target;
}

/** PostgreSQL started on the restored data directory (owned by this machine's postgres user now). */
async function digestOfRestored(dataDir: string, table: string): Promise<TableDigest> {
  execFileSync('chown', ['-R', `${uid('postgres')}:${uid('postgres')}`, dataDir]);
  // A crash-consistent copy keeps the pod's lock file, as the image's entrypoint knows.
  rmSync(join(dataDir, 'postmaster.pid'), { force: true });
  const pg = new Postgres(dataDir, await freePort());
  pg.start();
  try {
    return readDigest(pg.sql(digestQuery(table)));
  } finally {
    pg.stop();
  }
}

let source:
  { host: string; first: VolumeDataCopy; second?: { backup: Backup; digest: TableDigest } } | undefined;

describe('a Backup stored in a location that copies volume data', () => {
  it('copies the PostgreSQL volume into the bucket, from which it restores away from the cluster', async () => {
    const { host, digest } = await postgresWithRows(client, namespace, 'pg', {
      table: 'orders',
      rows: 20_000,
    });
    const { backup, copy } = await backUp('pg-copied');
    source = { host, first: copy };
    process.stdout.write(`volume data copy: ${JSON.stringify(copy)}\n`);
    expect(copy).toMatchObject({ phase: 'Completed', attempts: 1 });
    expect(copy.manifest).toMatch(new RegExp(`^test/${namespace}/pg-copied-[a-z2-7]{6}/data-pg-0$`));
    expect(copy.bytesTotal).toBeGreaterThan(20_000_000);
    expect(copy.bytesDone).toBe(copy.bytesTotal);
    // Compressed: PostgreSQL's empty pages and WAL shrink well.
    expect(copy.bytesUploaded).toBeGreaterThan(0);
    expect(copy.bytesUploaded ?? Infinity).toBeLessThan(copy.bytesTotal ?? 0);
    expect(backup.status?.record?.key).toBeDefined();
    expect(backup.status?.conditions?.find((c) => c.type === 'Ready')?.message).toContain(
      `1 volume(s) copied into BackupLocation ${location}`,
    );

    // Nothing of the mover is left: its pod, claim, snapshot and content (deleted as the Backup
    // completed; the claim goes once its pod has).
    const selector = { labelSelector: `${labels.moverFor}=${backup.metadata.uid ?? ''}` };
    const left = async (): Promise<number[]> =>
      (
        await Promise.all([
          client.list(resources.pods, { namespace: operatorNs, ...selector }),
          client.list(resources.persistentVolumeClaims, { namespace: operatorNs, ...selector }),
          client.list(resources.volumeSnapshots, { namespace: operatorNs, ...selector }),
          client.list(resources.volumeSnapshotContents, selector),
        ])
      ).map((list) => list.items.length);
    await waitFor('the mover and what it mounted to go', async () => (await left()).every((n) => n === 0));
    // The backup's own snapshot is untouched (the content the mover mounted it by was Retain).
    const snapshot = await client.get(
      resources.volumeSnapshots,
      backup.status?.volumes?.[0]?.volumeSnapshotName ?? '',
      namespace,
    );
    expect(snapshot?.status?.readyToUse).toBe(true);

    // Written after the backup: the copy must not have it.
    await psql(host, 'INSERT INTO orders VALUES (100001, $$after the backup$$)');
    const volume = await restoreFromBucket(copy.manifest);
    const dataDir = join(volume, 'pgdata');
    // Owner and mode as in the pod: PostgreSQL refuses a data directory that is not 0700 and its own.
    const stats = statSync(dataDir);
    expect(stats.uid).toBe(IMAGE_POSTGRES_UID);
    expect(stats.mode & 0o777).toBe(0o700);
    expect(await digestOfRestored(dataDir, 'orders')).toEqual(digest);
  });

  it('uploads only what changed in the next backup, which restores with the new rows', async () => {
    if (source === undefined) throw new Error('the first backup did not run');
    await psql(source.host, 'INSERT INTO orders VALUES (100002, $$in the second backup$$); CHECKPOINT');
    const digest = await tableDigest(source.host, 'orders');
    const { backup, copy } = await backUp('pg-again');
    source.second = { backup, digest };
    process.stdout.write(`incremental volume data copy: ${JSON.stringify(copy)}\n`);
    expect(copy.chunksReused).toBeGreaterThan(0);
    // The chunks the first backup stored are not sent again.
    expect(copy.bytesUploaded ?? Infinity).toBeLessThan((source.first.bytesUploaded ?? 0) / 4);
    const volume = await restoreFromBucket(copy.manifest);
    expect(await digestOfRestored(join(volume, 'pgdata'), 'orders')).toEqual(digest);
  });

  it('rebuilds the database on the cluster from the bucket alone once its volume and snapshots are gone', async () => {
    const second = source?.second;
    if (second === undefined) throw new Error('the second backup did not run');
    // Destroyed: the StatefulSet, its claim (the class deletes the volume) and every snapshot
    // (the class's deletionPolicy Delete: the driver deletes them, then the contents go).
    const snapshotData = join(
      CSI_DATA_DIR,
      'snapshots',
      second.backup.status?.volumes?.[0]?.cloudSnapId ?? '',
    );
    expect(existsSync(snapshotData)).toBe(true);
    await client.delete(resources.statefulSets, 'pg', { namespace });
    await client.delete(resources.persistentVolumeClaims, 'data-pg-0', { namespace });
    const snapshots = await client.list(resources.volumeSnapshots, { namespace });
    const handles = snapshots.items.map((snapshot) => snapshot.status?.boundVolumeSnapshotContentName ?? '');
    for (const snapshot of snapshots.items) {
      await client.delete(resources.volumeSnapshots, snapshot.metadata.name ?? '', { namespace });
    }
    await waitFor('the CSI driver to delete every snapshot', async () => {
      const contents = await Promise.all(
        handles.map((name) => client.get(resources.volumeSnapshotContents, name)),
      );
      return contents.every((content) => content === undefined);
    });
    expect(existsSync(snapshotData)).toBe(false);

    await client.create(
      resources.restores,
      restoreManifest(namespace, 'rebuilt', {
        source: { backupName: 'pg-again' },
        destination: { deploymentName: 'pg-rebuilt' },
      }),
    );
    // The operator dies while the mover downloads; the next one finds the mover by its name.
    await waitFor('the restore mover to start', async () => {
      const restore = await client.get(resources.restores, 'rebuilt', namespace);
      return restore?.status?.volumes?.[0]?.dataRestore?.moverPod !== undefined;
    });
    await operator?.kill();
    operator = await startOperator(`copy-${namespace}`, { namespace: operatorNs, watchNamespace: namespace });

    const restore = await waitForRestore(client, namespace, 'rebuilt', 'Successful', 240_000);
    const volume = restore.status?.volumes?.[0];
    process.stdout.write(`volume data restore: ${JSON.stringify(volume?.dataRestore)}\n`);
    expect(volume).toMatchObject({
      restoredFrom: 'BackupLocation',
      phase: 'Bound',
      dataRestore: { manifest: second.backup.status?.volumes?.[0]?.dataCopy?.manifest, phase: 'Completed' },
    });
    // One mover run: the restart did not start the download again.
    expect(volume?.dataRestore?.attempts).toBe(1);
    expect(volume?.dataRestore?.bytesDownloaded).toBeGreaterThan(0);
    const host = await podIP(client, namespace, 'pg-rebuilt-0');
    await waitForPostgres(host);
    expect(await tableDigest(host, 'orders')).toEqual(second.digest);

    // The volume is the restore's claim's, with its reclaim policy back; nothing of the mover is left.
    const claim = await client.get(resources.persistentVolumeClaims, 'data-pg-rebuilt-0', namespace);
    const pv = await client.get(resources.persistentVolumes, claim?.spec.volumeName ?? '');
    expect(pv?.spec.persistentVolumeReclaimPolicy).toBe('Delete');
    expect(pv?.spec.claimRef).toMatchObject({ namespace, name: 'data-pg-rebuilt-0' });
    const moverOf = {
      namespace: operatorNs,
      labelSelector: `${labels.moverFor}=${restore.metadata.uid ?? ''}`,
    };
    await waitFor('the restore mover and its claim to go', async () => {
      const lists = await Promise.all([
        client.list(resources.pods, moverOf),
        client.list(resources.persistentVolumeClaims, moverOf),
      ]);
      return lists.every((list) => list.items.length === 0);
    });
  });

  it("verifies a Backup's data in the bucket on request, reading every chunk back", async () => {
    const second = source?.second;
    if (second === undefined) throw new Error('the second backup did not run');
    await client.mergePatch(
      resources.backups,
      'pg-again',
      { metadata: { annotations: { [annotations.verify]: 'check-1' } } },
      { namespace },
    );
    const verified = await waitFor('the verification to end', async () => {
      const backup = await client.get(resources.backups, 'pg-again', namespace);
      const verification = backup?.status?.verification;
      return verification?.token === 'check-1' && verification.phase !== 'Running' ? verification : undefined;
    });
    process.stdout.write(`verification: ${JSON.stringify(verified)}\n`);
    expect(verified.phase).toBe('Verified');
    expect(verified.bytesChecked).toBe(second.backup.status?.volumes?.[0]?.dataCopy?.bytesTotal);
    expect(verified.completionTime).toBeDefined();
  });

  it("deletes a Backup's manifests with it, and no chunk another backup holds", async () => {
    const second = source?.second;
    if (source === undefined || second === undefined) throw new Error('the backups did not run');
    const manifests = () => store.inBucket(BUCKET, (bucket) => bucket.list('repository/manifests/'));
    const first = `repository/manifests/${source.first.manifest}`;
    const kept = `repository/manifests/${second.backup.status?.volumes?.[0]?.dataCopy?.manifest ?? ''}`;
    expect(await manifests()).toEqual(expect.arrayContaining([first, kept]));
    await client.delete(resources.backups, 'pg-copied', { namespace });
    await waitFor(
      'the Backup to go',
      async () => (await client.get(resources.backups, 'pg-copied', namespace)) === undefined,
    );
    const left = await manifests();
    expect(left).not.toContain(first);
    expect(left).toContain(kept);
    // The remaining backup still restores whole from the bucket.
    const volume = await restoreFromBucket(second.backup.status?.volumes?.[0]?.dataCopy?.manifest ?? '');
    expect(await digestOfRestored(join(volume, 'pgdata'), 'orders')).toEqual(second.digest);
  });
});
