// Backup then Restore on the real cluster: every phase in order, volumes restored from the right
// snapshots (proved by the storage simulator's content ids), the new StatefulSet healthy with the
// backed-up replica count, the original untouched.

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { labels } from '../../src/api/constants.js';
import { RESTORE_PHASES } from '../../src/api/crds.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { resources } from '../../src/runtime/resources.js';
import { createTestNamespace, deleteTestNamespace, testClient, waitFor } from './support/cluster.js';
import { startOperator, type RunningOperator } from './support/operator.js';
import {
  backupManifest,
  contentIdOf,
  deploySampleDataService,
  installCrds,
  isHealthy,
  restoreManifest,
  waitForBackup,
  waitForRestore,
} from './support/snapback.js';

let client: KubeClient;
let namespace: string;
let operator: RunningOperator;

beforeAll(async () => {
  client = await testClient();
  await installCrds(client);
  namespace = await createTestNamespace(client, 'e2e');
  operator = await startOperator(`e2e-${namespace}`, { watchNamespace: namespace });
});

afterAll(async () => {
  await operator.stop();
  await deleteTestNamespace(client, namespace);
  await client.close();
});

describe('backup and restore of a StatefulSet', () => {
  it('backs up every volume, then restores them into a new healthy StatefulSet through every phase', async () => {
    await deploySampleDataService(client, namespace, 'pg', 3);
    const sourceIds = await Promise.all([0, 1, 2].map((i) => contentIdOf(client, namespace, `data-pg-${i}`)));
    expect(sourceIds.every((id) => id !== undefined)).toBe(true);
    expect(new Set(sourceIds).size).toBe(3);

    await client.create(resources.backups, backupManifest(namespace, 'pg-backup', 'pg'));
    const backup = await waitForBackup(client, namespace, 'pg-backup', 'Completed');
    const backupStatus = backup.status ?? {};
    expect(backupStatus.volumes?.map((v) => v.pvcName)).toEqual(['data-pg-0', 'data-pg-1', 'data-pg-2']);
    expect(backupStatus.volumes?.every((v) => (v.cloudSnapId ?? '') !== '' && (v.sizeBytes ?? 0) > 0)).toBe(
      true,
    );
    expect(backupStatus.cloudSnapId).toBe(backupStatus.volumes?.[0]?.cloudSnapId);
    expect(backupStatus.fileSize).toBe(backupStatus.volumes?.reduce((sum, v) => sum + (v.sizeBytes ?? 0), 0));
    expect(backupStatus.dataServiceDeploymentMetaData).toMatchObject({
      name: 'pg',
      namespaceName: namespace,
      dataServiceName: 'postgresql',
      replicas: 3,
      imageCapabilities: { pds_restore: 'v1' },
    });
    expect(backupStatus.manifest?.metadata).not.toHaveProperty('uid');
    expect(backupStatus.manifest).not.toHaveProperty('status');

    // "Write" to a source volume after the backup: the restore must carry the data as it was.
    await client.mergePatch(
      resources.persistentVolumeClaims,
      'data-pg-0',
      { metadata: { annotations: { 'sim.snapback.dev/write': 'after-backup' } } },
      { namespace },
    );
    await waitFor(
      'the write to data-pg-0 to change its content id',
      async () => (await contentIdOf(client, namespace, 'data-pg-0')) !== sourceIds[0],
    );

    await client.create(
      resources.restores,
      restoreManifest(namespace, 'pg-restore', {
        source: { backupName: 'pg-backup' },
        destination: { deploymentName: 'pg-restored' },
      }),
    );
    const restore = await waitForRestore(client, namespace, 'pg-restore', 'Successful');
    const status = restore.status ?? {};

    expect(status.phaseHistory?.map((entry) => entry.phase)).toEqual(
      RESTORE_PHASES.filter((p) => p !== 'Failed'),
    );
    const times = (status.phaseHistory ?? []).map((entry) => Date.parse(entry.enteredAt));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(status.customResourceName).toMatch(/^restore-pg-restore-[a-z2-7]{6}$/);
    expect(status.attempt).toBe(1);
    expect(status.errorCode).toBeUndefined();
    expect(status.backup).toMatchObject({ namespace, name: 'pg-backup', uid: backup.metadata.uid });
    expect(status.volumes?.map((v) => [v.pvcName, v.phase])).toEqual([
      ['data-pg-restored-0', 'Bound'],
      ['data-pg-restored-1', 'Bound'],
      ['data-pg-restored-2', 'Bound'],
    ]);
    const conditions = Object.fromEntries((status.conditions ?? []).map((c) => [c.type, c.status]));
    expect(conditions).toEqual({ Ready: 'True', Progressing: 'False', Failed: 'False' });

    // The restored volumes hold the data of the snapshots, not of the volumes as they are now.
    const restoredIds = await Promise.all(
      [0, 1, 2].map((i) => contentIdOf(client, namespace, `data-pg-restored-${i}`)),
    );
    expect(restoredIds).toEqual(sourceIds);

    const restored = await client.get(resources.statefulSets, 'pg-restored', namespace);
    expect(isHealthy(restored, 3)).toBe(true);
    expect(restored?.metadata.uid).toBe(status.destination?.deploymentUid);
    expect(restored?.metadata.annotations?.['snapback.dev/mode']).toBe('normal');
    expect(restored?.metadata.labels).toMatchObject({
      [labels.restore]: 'pg-restore',
      [labels.restoreAttempt]: status.customResourceName,
      [labels.backup]: 'pg-backup',
      [labels.project]: 'payments',
    });
    // Renamed so the restored pods do not join the original's selectors.
    expect(restored?.spec.selector.matchLabels?.['app.kubernetes.io/instance']).toBe('pg-restored');

    const original = await client.get(resources.statefulSets, 'pg', namespace);
    expect(isHealthy(original, 3)).toBe(true);
    expect(original?.metadata.labels?.[labels.restore]).toBeUndefined();

    // Events for the start and the end of the attempt, listed by kubectl describe; the phases
    // between are in status.phaseHistory (above).
    const { items: events } = await client.list(resources.events, {
      namespace,
      fieldSelector: `involvedObject.kind=Restore,involvedObject.name=pg-restore`,
    });
    expect(events.map((event) => event.reason).sort()).toEqual(['Initializing', 'Successful']);

    // Listing by backup works with a field selector (selectableFields).
    const { items: byBackup } = await client.list(resources.restores, {
      namespace,
      fieldSelector: 'spec.source.backupName=pg-backup',
    });
    expect(byBackup.map((r) => r.metadata.name)).toEqual(['pg-restore']);
  });
});
