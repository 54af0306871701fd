// A restored deployment that was healthy in restore mode is the user's: it may serve already. A
// Restore that fails after that (here a PhaseTimeout in normal mode), then deleted, leaves the
// StatefulSet, its volumes and its rows in place; only the scaffolding goes. On the real node,
// with a real PostgreSQL.

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { resources } from '../../src/runtime/resources.js';
import { createTestNamespace, deleteTestNamespace, testClient, waitFor } from './support/cluster.js';
import { startOperator, type RunningOperator } from './support/operator.js';
import { podIP, postgresWithRows, tableDigest, waitForPostgres } from './support/real-node.js';
import { backupManifest, installCrds, restoreManifest, waitForBackup } from './support/snapback.js';

const LONG = 600;

let client: KubeClient;
let namespace: string;
let operator: RunningOperator;

beforeAll(async () => {
  client = await testClient();
  await installCrds(client);
  namespace = await createTestNamespace(client, 'handover');
  // Normal mode rolls both replicas and starts PostgreSQL twice: never within a second.
  operator = await startOperator(`handover-${namespace}`, {
    watchNamespace: namespace,
    restore: {
      phaseTimeoutSeconds: {
        Initializing: LONG,
        Pending: LONG,
        RestoringCloudSnap: LONG,
        RestoringDataServiceDeploymentCR: LONG,
        RestoringDataServiceDeployment: LONG,
        DataServiceDeploymentEnteringNormalMode: 1,
      },
    },
  });
});

afterAll(async () => {
  await operator.stop();
  await deleteTestNamespace(client, namespace);
  await client.close();
});

describe('a restore that fails after restore mode was healthy', () => {
  it('deleted, leaves the restored PostgreSQL, its volumes and its rows to the user', async () => {
    const { digest } = await postgresWithRows(client, namespace, 'pg', {
      table: 'items',
      rows: 1000,
      replicas: 2,
    });
    await client.create(resources.backups, backupManifest(namespace, 'pg-backup', 'pg'));
    await waitForBackup(client, namespace, 'pg-backup', 'Completed');
    await client.create(
      resources.restores,
      restoreManifest(namespace, 'late-failure', {
        source: { backupName: 'pg-backup' },
        destination: { deploymentName: 'pg-copy' },
      }),
    );
    const failed = await waitFor(
      'the restore to fail',
      async () => {
        const restore = await client.get(resources.restores, 'late-failure', namespace);
        return restore?.status?.phase === 'Failed' ? restore : undefined;
      },
      120_000,
    );
    expect(failed.status?.errorCode).toBe('PhaseTimeout');
    expect(failed.status?.phaseHistory?.map((entry) => entry.phase)).toContain(
      'DataServiceDeploymentEnteringNormalMode',
    );
    const deployment = await client.get(resources.statefulSets, 'pg-copy', namespace);
    const claims = ['data-pg-copy-0', 'data-pg-copy-1'];
    const claimUids = await Promise.all(
      claims.map(
        async (name) => (await client.get(resources.persistentVolumeClaims, name, namespace))?.metadata.uid,
      ),
    );

    await client.delete(resources.restores, 'late-failure', { namespace });
    await waitFor(
      'the Restore to be gone',
      async () => (await client.get(resources.restores, 'late-failure', namespace)) === undefined,
    );

    // The same StatefulSet and claims (no deletion pending), and the rows as backed up.
    const after = await client.get(resources.statefulSets, 'pg-copy', namespace);
    expect(after?.metadata.uid).toBe(deployment?.metadata.uid);
    expect(after?.metadata.deletionTimestamp).toBeUndefined();
    for (const [index, name] of claims.entries()) {
      const claim = await client.get(resources.persistentVolumeClaims, name, namespace);
      expect(claim?.metadata.uid).toBe(claimUids[index]);
      expect(claim?.metadata.deletionTimestamp).toBeUndefined();
    }
    const host = await podIP(client, namespace, 'pg-copy-0');
    await waitForPostgres(host);
    expect(await tableDigest(host, 'items')).toEqual(digest);
  });
});
