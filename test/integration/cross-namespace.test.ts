// A restore into another namespace (spec.source.backupRef): the snapshots are reached through
// pre-provisioned VolumeSnapshotContents made from their handles, so the restored volumes carry
// the backed-up data. Deleting the Restore afterwards removes its scaffolding, never the
// deployment it restored. The operator here watches all namespaces, as a cluster-wide install does.

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { labels } from '../../src/api/constants.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { resources } from '../../src/runtime/resources.js';
import { referenceGrant } from '../support/builders.js';
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
let source: string;
let target: string;
let operator: RunningOperator;

beforeAll(async () => {
  client = await testClient();
  await installCrds(client);
  source = await createTestNamespace(client, 'xns-source');
  target = await createTestNamespace(client, 'xns-target');
  // The source namespace consents (tenancy.test.ts shows what happens without).
  await client.create(resources.referenceGrants, referenceGrant(source, target, 'pg-backup'));
  operator = await startOperator(`xns-${source}`, { watchNamespace: '' });
});

afterAll(async () => {
  await operator.stop();
  await deleteTestNamespace(client, source);
  await deleteTestNamespace(client, target);
  await client.close();
});

describe('a restore into another namespace', () => {
  it('restores every volume through pre-provisioned contents, and its deletion keeps the deployment', async () => {
    await deploySampleDataService(client, source, 'pg', 2);
    const sourceIds = await Promise.all([0, 1].map((i) => contentIdOf(client, source, `data-pg-${i}`)));
    await client.create(resources.backups, backupManifest(source, 'pg-backup', 'pg'));
    const backup = await waitForBackup(client, source, 'pg-backup', 'Completed');

    await client.create(
      resources.restores,
      restoreManifest(target, 'copy', { source: { backupRef: { namespace: source, name: 'pg-backup' } } }),
    );
    const restore = await waitForRestore(client, target, 'copy', 'Successful');
    expect(restore.status?.backup).toMatchObject({
      namespace: source,
      name: 'pg-backup',
      uid: backup.metadata.uid,
    });
    // The destination name defaults to the backed-up deployment's.
    expect(restore.status?.destination?.deploymentName).toBe('pg');
    const restored = await client.get(resources.statefulSets, 'pg', target);
    expect(isHealthy(restored, 2)).toBe(true);
    expect(await Promise.all([0, 1].map((i) => contentIdOf(client, target, `data-pg-${i}`)))).toEqual(
      sourceIds,
    );

    // The snapshots were imported: one content per volume, from the backup's handles, owned by no one else.
    const { items: contents } = await client.list(resources.volumeSnapshotContents, {
      labelSelector: `${labels.restore}=copy`,
    });
    const ours = contents.filter((c) => c.spec.volumeSnapshotRef.namespace === target);
    expect(ours.map((c) => c.spec.source.snapshotHandle).sort()).toEqual(
      (backup.status?.volumes ?? []).map((v) => v.cloudSnapId).sort(),
    );
    // The source's own snapshots are untouched.
    const { items: sourceSnapshots } = await client.list(resources.volumeSnapshots, {
      namespace: source,
      labelSelector: `${labels.backup}=pg-backup,!${labels.restore}`,
    });
    expect(sourceSnapshots.every((s) => s.status?.readyToUse === true)).toBe(true);

    await client.delete(resources.restores, 'copy', { namespace: target });
    await waitFor(
      'the Restore to go',
      async () => (await client.get(resources.restores, 'copy', target)) === undefined,
    );
    expect(await client.get(resources.statefulSets, 'pg', target)).toMatchObject({
      metadata: { uid: restored?.metadata.uid },
    });
    const { items: claims } = await client.list(resources.persistentVolumeClaims, { namespace: target });
    expect(claims.map((c) => c.metadata.name).sort()).toEqual(['data-pg-0', 'data-pg-1']);
  });
});
