// The operator killed with SIGKILL inside the phases that wait, and started again: the Backup and
// the Restore finish as if nothing happened, with no duplicate objects and no phase repeated.
// Each phase is held on purpose, so the kill lands in it every time:
//   Backup InProgress and Restore Initializing: the backup's snapshots are delayed;
//   RestoringCloudSnap: the restored volumes' StorageClass delays provisioning;
//   RestoringDataServiceDeployment: the restore's nodeSelector matches no node yet;
//   DataServiceDeploymentEnteringNormalMode: one labelled node fits restore mode's single replica,
//   and required pod anti-affinity keeps the normal mode's 3 replicas from fitting until 3 are.

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { labels } from '../../src/api/constants.js';
import { HAPPY_PATH } from '../../src/controllers/restore/transitions.js';
import type { Restore, RestorePhase } from '../../src/api/generated/types.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { resources } from '../../src/runtime/resources.js';
import { createTestNamespace, deleteTestNamespace, nodes, testClient, waitFor } from './support/cluster.js';
import { startOperator, type RunningOperator } from './support/operator.js';
import {
  backupManifest,
  contentIdOf,
  createSimSnapshotClass,
  createSimStorageClass,
  installCrds,
  isHealthy,
  restoreManifest,
  sampleStatefulSet,
  waitForBackup,
  waitForRestore,
} from './support/snapback.js';
import { SIM } from '../cluster/storage-simulator/constants.js';

const DESTINATION = 'pg-again';

let client: KubeClient;
let namespace: string;
let operator: RunningOperator | undefined;
let nodeLabel: string;
let storageClassName: string;
let snapshotClassName: string;
let generation = 0;
const kills: { phase: string; at: string }[] = [];

const nodeNames = async (): Promise<string[]> =>
  (await client.list(nodes, {})).items.map((node) => node.metadata.name ?? '').sort();

async function labelNodes(names: string[], value: string | null): Promise<void> {
  for (const name of names) {
    await client.mergePatch(nodes, name, { metadata: { labels: { [nodeLabel]: value } } });
  }
}

async function start(): Promise<void> {
  generation += 1;
  operator = await startOperator(`restart-${namespace}-${generation}`, {
    watchNamespace: namespace,
    // The same lease as the killed process: the new one must wait out the dead one's lease.
    leaderElection: { leaseName: `snapback-restart-${namespace}` },
  });
}

/** SIGKILL while the object is in `phase` (checked before and after the kill), then a new process. */
async function killIn(
  what: string,
  phaseOf: () => Promise<string | undefined>,
  phase: string,
): Promise<void> {
  await waitFor(`${what} in ${phase}`, async () => (await phaseOf()) === phase);
  await operator?.kill();
  expect(await phaseOf()).toBe(phase);
  kills.push({ phase: `${what} ${phase}`, at: new Date().toISOString() });
  await start();
}

const restorePhase = async (): Promise<RestorePhase | undefined> =>
  (await client.get(resources.restores, 'again', namespace))?.status?.phase;

beforeAll(async () => {
  client = await testClient();
  await installCrds(client);
  namespace = await createTestNamespace(client, 'restart');
  nodeLabel = `snapback.dev/test-${namespace}`.slice(0, 63);
  storageClassName = await createSimStorageClass(client, `${namespace}-delayed`);
  snapshotClassName = await createSimSnapshotClass(client, `${namespace}-delayed`, {
    [SIM.delayMs]: '15000',
  });
  await start();
});

afterAll(async () => {
  await operator?.stop();
  console.log(`restart-safety kills: ${JSON.stringify(kills)}`);
  await labelNodes(await nodeNames(), null);
  await deleteTestNamespace(client, namespace);
  await client.delete(resources.storageClasses, storageClassName);
  await client.delete(resources.volumeSnapshotClasses, snapshotClassName);
  await client.close();
});

describe('the operator killed inside each waiting phase', () => {
  it('finishes the backup and the restore with no duplicates', async () => {
    await client.create(resources.statefulSets, sampleStatefulSet(namespace, 'pg', 3, storageClassName));
    await waitFor(
      'StatefulSet pg ready',
      async () => isHealthy(await client.get(resources.statefulSets, 'pg', namespace), 3),
      120_000,
    );
    const sourceIds = await Promise.all([0, 1, 2].map((i) => contentIdOf(client, namespace, `data-pg-${i}`)));
    // Volumes of this class now bind only after a delay, so RestoringCloudSnap lasts long enough
    // to be seen. Set before the backup exists: the restore may provision the moment it completes.
    await client.mergePatch(resources.storageClasses, storageClassName, {
      metadata: { annotations: { [SIM.delayMs]: '5000' } },
    });

    // The restore is created with the backup: it waits in Initializing while the backup runs.
    await client.create(
      resources.backups,
      backupManifest(namespace, 'pg-backup', 'pg', { volumeSnapshotClassName: snapshotClassName }),
    );
    const [nodeA, ...otherNodes] = await nodeNames();
    await client.create(
      resources.restores,
      restoreManifest(namespace, 'again', {
        source: { backupName: 'pg-backup' },
        destination: { deploymentName: DESTINATION },
        podSchedulingConfig: {
          nodeSelector: { [nodeLabel]: 'yes' },
          affinity: {
            podAntiAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: [
                {
                  labelSelector: { matchLabels: { 'app.kubernetes.io/instance': DESTINATION } },
                  topologyKey: 'kubernetes.io/hostname',
                },
              ],
            },
          },
        },
      }),
    );
    const backupPhase = async () =>
      (await client.get(resources.backups, 'pg-backup', namespace))?.status?.phase;
    await killIn('Backup', backupPhase, 'InProgress');
    await killIn('Restore', restorePhase, 'Initializing');
    const backup = await waitForBackup(client, namespace, 'pg-backup', 'Completed');

    await killIn('Restore', restorePhase, 'RestoringCloudSnap');
    const attempt = (await client.get(resources.restores, 'again', namespace))?.status?.customResourceName;
    expect(attempt).toMatch(/^restore-again-[a-z2-7]{6}$/);

    await killIn('Restore', restorePhase, 'RestoringDataServiceDeployment');
    await labelNodes(nodeA === undefined ? [] : [nodeA], 'yes');
    await killIn('Restore', restorePhase, 'DataServiceDeploymentEnteringNormalMode');
    await labelNodes(otherNodes, 'yes');

    const restore: Restore = await waitForRestore(client, namespace, 'again', 'Successful');
    const status = restore.status ?? {};
    expect(status.customResourceName).toBe(attempt);
    expect(status.attempt).toBe(1);
    const phases = (status.phaseHistory ?? []).map((entry) => entry.phase);
    expect(phases).toEqual(HAPPY_PATH);

    // One of everything: snapshots of the backup, claims and the StatefulSet of the restore.
    const { items: snapshots } = await client.list(resources.volumeSnapshots, {
      namespace,
      labelSelector: `${labels.backup}=pg-backup,!${labels.restore}`,
    });
    expect(snapshots.map((s) => s.metadata.name).sort()).toEqual(
      (backup.status?.volumes ?? []).map((v) => v.volumeSnapshotName).sort(),
    );
    expect(snapshots).toHaveLength(3);
    const { items: claims } = await client.list(resources.persistentVolumeClaims, {
      namespace,
      labelSelector: `${labels.restore}=again`,
    });
    expect(claims.map((c) => c.metadata.name).sort()).toEqual(
      [0, 1, 2].map((i) => `data-${DESTINATION}-${i}`),
    );
    const { items: sets } = await client.list(resources.statefulSets, { namespace });
    expect(sets.map((s) => s.metadata.name).sort()).toEqual(['pg', DESTINATION]);
    const restored = sets.find((s) => s.metadata.name === DESTINATION);
    expect(isHealthy(restored, 3)).toBe(true);
    expect(restored?.metadata.uid).toBe(status.destination?.deploymentUid);

    const restoredIds = await Promise.all(
      [0, 1, 2].map((i) => contentIdOf(client, namespace, `data-${DESTINATION}-${i}`)),
    );
    expect(restoredIds).toEqual(sourceIds);
    expect(kills).toHaveLength(5);
  });
});
