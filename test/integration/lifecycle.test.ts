// What happens after the first attempt: a Failed restore recreated through spec.recreateToken,
// and Backups deleted with their snapshots, with force-delete, and while a restore reads them.

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { annotations, labels } from '../../src/api/constants.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { resources, type ResourceType } from '../../src/runtime/resources.js';
import { createTestNamespace, deleteTestNamespace, testClient, waitFor } from './support/cluster.js';
import { startOperator, type RunningOperator } from './support/operator.js';
import {
  backupManifest,
  contentIdOf,
  createSimStorageClass,
  installCrds,
  isHealthy,
  restoreManifest,
  sampleStatefulSet,
  waitForBackup,
  waitForRestore,
} from './support/snapback.js';
import { SIM } from '../cluster/storage-simulator/constants.js';

let client: KubeClient;
let namespace: string;
let operator: RunningOperator;
let storageClassName: string;

beforeAll(async () => {
  client = await testClient();
  await installCrds(client);
  namespace = await createTestNamespace(client, 'lifecycle');
  storageClassName = await createSimStorageClass(client, `${namespace}-switchable`);
  operator = await startOperator(`lifecycle-${namespace}`, { watchNamespace: namespace });
});

afterAll(async () => {
  await operator.stop();
  await deleteTestNamespace(client, namespace);
  await client.delete(resources.storageClasses, storageClassName);
  await client.close();
});

/** Sets (or with null removes) a failure-injection annotation on this file's StorageClass. */
async function storage(annotation: string, value: string | null): Promise<void> {
  await client.mergePatch(resources.storageClasses, storageClassName, {
    metadata: { annotations: { [annotation]: value } },
  });
}

/** A one-replica data service on this file's StorageClass, backed up. */
async function backedUp(name: string): Promise<void> {
  await client.create(resources.statefulSets, sampleStatefulSet(namespace, name, 1, storageClassName));
  await waitFor(`StatefulSet ${name} ready`, async () =>
    isHealthy(await client.get(resources.statefulSets, name, namespace), 1),
  );
  await client.create(resources.backups, backupManifest(namespace, `${name}-backup`, name));
  await waitForBackup(client, namespace, `${name}-backup`, 'Completed');
}

const snapshotsOf = async (backup: string) =>
  (
    await client.list(resources.volumeSnapshots, {
      namespace,
      labelSelector: `${labels.backup}=${backup},!${labels.restore}`,
    })
  ).items;

const gone = async (rt: ResourceType, name: string) => (await client.get(rt, name, namespace)) === undefined;

describe('recreate through spec.recreateToken', () => {
  it('cleans up the failed attempt and succeeds in a second one', async () => {
    await backedUp('db');
    await storage(SIM.fail, 'array offline for maintenance');
    await client.create(
      resources.restores,
      restoreManifest(namespace, 'retry', {
        source: { backupName: 'db-backup' },
        destination: { deploymentName: 'db-retry' },
      }),
    );
    const failed = await waitFor('the first attempt to fail', async () => {
      const restore = await client.get(resources.restores, 'retry', namespace);
      return restore?.status?.phase === 'Failed' ? restore : undefined;
    });
    expect(failed.status?.errorCode).toBe('CloudSnapRestoreFailed');
    const firstAttempt = failed.status?.customResourceName ?? '';
    const leftover = await client.get(resources.persistentVolumeClaims, 'data-db-retry-0', namespace);
    expect(leftover?.metadata.labels?.[labels.restoreAttempt]).toBe(firstAttempt);

    // The cause fixed, a new token starts attempt 2.
    await storage(SIM.fail, null);
    await client.mergePatch(
      resources.restores,
      'retry',
      { spec: { recreateToken: 'after-maintenance' } },
      {
        namespace,
      },
    );
    const restore = await waitForRestore(client, namespace, 'retry', 'Successful');
    const status = restore.status ?? {};
    expect(status.attempt).toBe(2);
    expect(status.observedRecreateToken).toBe('after-maintenance');
    expect(status.customResourceName).toMatch(/^restore-retry-[a-z2-7]{6}$/);
    expect(status.customResourceName).not.toBe(firstAttempt);
    expect(status.errorCode).toBeUndefined();
    expect(status.phaseHistory?.[0]?.phase).toBe('Initializing');

    // The failed attempt's claim was removed; the one in place is the second attempt's.
    const claim = await client.get(resources.persistentVolumeClaims, 'data-db-retry-0', namespace);
    expect(claim?.metadata.uid).not.toBe(leftover?.metadata.uid);
    expect(claim?.metadata.labels?.[labels.restoreAttempt]).toBe(status.customResourceName);
    const { items: byFirst } = await client.list(resources.persistentVolumeClaims, {
      namespace,
      labelSelector: `${labels.restoreAttempt}=${firstAttempt}`,
    });
    expect(byFirst).toEqual([]);
    expect(await contentIdOf(client, namespace, 'data-db-retry-0')).toBe(
      await contentIdOf(client, namespace, 'data-db-0'),
    );

    // A token change on a Successful restore is ignored.
    await client.mergePatch(resources.restores, 'retry', { spec: { recreateToken: 'again' } }, { namespace });
    await waitFor('the operator to see the change', async () => {
      const current = await client.get(resources.restores, 'retry', namespace);
      return current?.status?.observedGeneration === current?.metadata.generation;
    });
    const after = await client.get(resources.restores, 'retry', namespace);
    expect(after?.status?.attempt).toBe(2);
    expect(after?.status?.phase).toBe('Successful');
  });
});

describe('deleting a Backup', () => {
  it('deletes its VolumeSnapshots and their contents first', async () => {
    await backedUp('plain');
    const snapshots = await snapshotsOf('plain-backup');
    expect(snapshots).toHaveLength(1);
    const contentName = snapshots[0]?.status?.boundVolumeSnapshotContentName ?? '';
    expect(contentName).not.toBe('');
    await client.delete(resources.backups, 'plain-backup', { namespace });
    await waitFor('the Backup to go', () => gone(resources.backups, 'plain-backup'));
    expect(await snapshotsOf('plain-backup')).toEqual([]);
    await waitFor(
      'the snapshot content to go',
      async () => (await client.get(resources.volumeSnapshotContents, contentName)) === undefined,
    );
  });

  it('with snapback.dev/force-delete leaves the snapshots', async () => {
    await backedUp('forced');
    const before = await snapshotsOf('forced-backup');
    await client.mergePatch(
      resources.backups,
      'forced-backup',
      { metadata: { annotations: { [annotations.forceDelete]: 'true' } } },
      { namespace },
    );
    await client.delete(resources.backups, 'forced-backup', { namespace });
    await waitFor('the Backup to go', () => gone(resources.backups, 'forced-backup'));
    const after = await snapshotsOf('forced-backup');
    expect(after.map((s) => s.metadata.uid)).toEqual(before.map((s) => s.metadata.uid));
    expect(
      after.every((s) => s.status?.readyToUse === true && s.metadata.deletionTimestamp === undefined),
    ).toBe(true);
  });

  it('waits while a running restore reads it, and goes once the restore ends', async () => {
    await backedUp('busy');
    await storage(SIM.never, 'true');
    await client.create(
      resources.restores,
      restoreManifest(namespace, 'reader', {
        source: { backupName: 'busy-backup' },
        destination: { deploymentName: 'busy-copy' },
      }),
    );
    await waitFor('the restore to wait on storage', async () => {
      const restore = await client.get(resources.restores, 'reader', namespace);
      return restore?.status?.phase === 'RestoringCloudSnap';
    });
    await client.delete(resources.backups, 'busy-backup', { namespace });
    const waiting = await waitFor('the Backup to say what it waits for', async () => {
      const backup = await client.get(resources.backups, 'busy-backup', namespace);
      const condition = backup?.status?.conditions?.find((c) => c.reason === 'WaitingForRestores');
      return backup?.status?.phase === 'Deleting' && condition !== undefined ? condition : undefined;
    });
    expect(waiting.message).toContain(`${namespace}/reader`);
    expect(await snapshotsOf('busy-backup')).toHaveLength(1);

    // The restore ends (here: it is deleted, which also removes what its attempt made).
    await client.delete(resources.restores, 'reader', { namespace });
    await waitFor('the Restore to go', () => gone(resources.restores, 'reader'));
    expect(await client.get(resources.persistentVolumeClaims, 'data-busy-copy-0', namespace)).toBeUndefined();
    await waitFor('the Backup to go', () => gone(resources.backups, 'busy-backup'), 30_000);
    expect(await snapshotsOf('busy-backup')).toEqual([]);
    await storage(SIM.never, null);
  });
});
