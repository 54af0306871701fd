// Every error code of a Restore and a Backup, reached on the real cluster through the path that
// causes it (storage failures injected through the simulator's annotations), each ending Failed
// with the code, a message that names what to fix, the Failed condition and a Warning Event, and
// nothing created that the failure does not account for.

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { labels } from '../../src/api/constants.js';
import type { Backup, Restore, RestorabilityMatrix } from '../../src/api/generated/types.js';
import type { KubeObject, PersistentVolumeClaim, StatefulSet } from '../../src/api/kubernetes.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { resources } from '../../src/runtime/resources.js';
import { createTestNamespace, deleteTestNamespace, testClient, waitFor } from './support/cluster.js';
import { startOperator, type RunningOperator } from './support/operator.js';
import {
  backupManifest,
  createSimSnapshotClass,
  createSimStorageClass,
  deploySampleDataService,
  installCrds,
  isHealthy,
  restoreManifest,
  sampleStatefulSet,
  waitForBackup,
} from './support/snapback.js';
import { SIM } from '../cluster/storage-simulator/constants.js';

/** Short enough for a test, long enough that a healthy step never hits it on a busy machine. */
const TIMEOUT_SECONDS = 15;
const LONG = 3600;

let client: KubeClient;
let namespace: string;
let operator: RunningOperator;
/** Cluster-scoped objects this file made, removed in afterAll. */
const storageClasses: string[] = [];
const snapshotClasses: string[] = [];
let matrixEntry: string | undefined;

beforeAll(async () => {
  client = await testClient();
  await installCrds(client);
  namespace = await createTestNamespace(client, 'errors');
  operator = await startOperator(`errors-${namespace}`, {
    watchNamespace: namespace,
    restore: {
      phaseTimeoutSeconds: {
        Initializing: LONG,
        Pending: LONG,
        RestoringCloudSnap: TIMEOUT_SECONDS,
        RestoringDataServiceDeploymentCR: LONG,
        RestoringDataServiceDeployment: LONG,
        DataServiceDeploymentEnteringNormalMode: LONG,
      },
    },
    backup: { timeoutSeconds: TIMEOUT_SECONDS },
  });
  await deploySampleDataService(client, namespace, 'pg', 2);
  await client.create(resources.backups, backupManifest(namespace, 'pg-backup', 'pg'));
  await waitForBackup(client, namespace, 'pg-backup', 'Completed');
});

afterAll(async () => {
  await operator.stop();
  if (matrixEntry !== undefined) {
    // Applying an empty list under this manager takes back only the entry it owns.
    await client.apply(
      resources.restorabilityMatrices,
      { metadata: { name: 'default' }, spec: { dataServices: [] } },
      { fieldManager: matrixEntry },
    );
  }
  await deleteTestNamespace(client, namespace);
  for (const name of storageClasses) await client.delete(resources.storageClasses, name);
  for (const name of snapshotClasses) await client.delete(resources.volumeSnapshotClasses, name);
  await client.close();
});

/** A StorageClass of the simulator's driver that only this file uses. */
async function storageClass(suffix: string): Promise<string> {
  const name = await createSimStorageClass(client, `${namespace}-${suffix}`);
  storageClasses.push(name);
  return name;
}

async function snapshotClass(suffix: string, annotations: Record<string, string>): Promise<string> {
  const name = await createSimSnapshotClass(client, `${namespace}-${suffix}`, annotations);
  snapshotClasses.push(name);
  return name;
}

/** A data service of its own (name, data service name, storage class), backed up and Completed. */
async function backedUpDataService(
  name: string,
  options: { storageClassName?: string; dataServiceName?: string } = {},
): Promise<Backup> {
  const sts = sampleStatefulSet(namespace, name, 1, options.storageClassName);
  if (options.dataServiceName !== undefined) {
    const podLabels = {
      'app.kubernetes.io/name': options.dataServiceName,
      'app.kubernetes.io/instance': name,
    };
    sts.metadata.labels = { ...sts.metadata.labels, ...podLabels };
    sts.spec.selector = { matchLabels: podLabels };
    sts.spec.template.metadata = { labels: podLabels };
  }
  await client.create(resources.statefulSets, sts);
  await waitFor(`StatefulSet ${name} ready`, async () =>
    isHealthy(await client.get(resources.statefulSets, name, namespace), 1),
  );
  await client.create(resources.backups, backupManifest(namespace, `${name}-backup`, name));
  return waitForBackup(client, namespace, `${name}-backup`, 'Completed');
}

async function failedRestore(name: string, spec: Restore['spec']): Promise<Restore> {
  await client.create(resources.restores, restoreManifest(namespace, name, spec));
  return waitFor(
    `Restore ${name} Failed`,
    async () => {
      const restore = await client.get(resources.restores, name, namespace);
      if (restore?.status?.phase === 'Successful') throw new Error(`Restore ${name} succeeded`);
      return restore?.status?.phase === 'Failed' ? restore : undefined;
    },
    90_000,
  );
}

async function failedBackup(
  name: string,
  spec: Partial<Backup['spec']> & Pick<Backup['spec'], 'deployment'>,
) {
  await client.create(resources.backups, { metadata: { name, namespace }, spec });
  return waitForBackup(client, namespace, name, 'Failed').catch(async () => {
    throw new Error(
      `Backup ${name}: ${JSON.stringify((await client.get(resources.backups, name, namespace))?.status)}`,
    );
  });
}

/** The Warning Event the operator recorded for the object's failure. */
async function warningFor(kind: string, name: string, reason: string): Promise<string> {
  return waitFor(`a Warning ${reason} event on ${kind} ${name}`, async () => {
    const { items } = await client.list(resources.events, {
      namespace,
      fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}`,
    });
    return items.find((event) => event.type === 'Warning' && event.reason === reason)?.message;
  });
}

/** Objects in the namespace that a restore made (by its label). */
async function madeBy(restore: string): Promise<string[]> {
  const selector = `${labels.restore}=${restore}`;
  const lists = await Promise.all([
    client.list(resources.statefulSets, { namespace, labelSelector: selector }),
    client.list(resources.persistentVolumeClaims, { namespace, labelSelector: selector }),
  ]);
  return lists.flatMap(({ items }) => items.map((item: KubeObject) => item.metadata.name ?? ''));
}

/** A claim nothing of Snapback made, as a deleted StatefulSet leaves behind. */
function leftOverClaim(name: string): Promise<PersistentVolumeClaim> {
  return client.create(resources.persistentVolumeClaims, {
    metadata: { name, namespace },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
  });
}

function expectFailure(restore: Restore, code: string, message: RegExp): void {
  expect(restore.status?.errorCode).toBe(code);
  expect(restore.status?.errorMessage).toMatch(message);
  expect(restore.status?.completedAt).toBeDefined();
  const failed = restore.status?.conditions?.find((c) => c.type === 'Failed');
  expect(failed).toMatchObject({ status: 'True', reason: code });
  const ready = restore.status?.conditions?.find((c) => c.type === 'Ready');
  expect(ready?.status).toBe('False');
}

describe('a Restore fails with', () => {
  it('BackupNotFound when the named Backup does not exist, creating nothing', async () => {
    const restore = await failedRestore('no-backup', {
      source: { backupName: 'ghost' },
      destination: { deploymentName: 'from-ghost' },
    });
    expectFailure(restore, 'BackupNotFound', new RegExp(`Backup ${namespace}/ghost does not exist`));
    expect(await warningFor('Restore', 'no-backup', 'BackupNotFound')).toMatch(/ghost/);
    expect(await madeBy('no-backup')).toEqual([]);
  });

  it('BackupNotCompleted when the Backup failed, saying why it failed', async () => {
    await client.create(resources.statefulSets, {
      ...sampleStatefulSet(namespace, 'diskless', 1),
      spec: { ...sampleStatefulSet(namespace, 'diskless', 1).spec, volumeClaimTemplates: [] },
    } satisfies StatefulSet);
    const backup = await failedBackup('diskless-backup', { deployment: { name: 'diskless' } });
    expect(backup.status?.errorCode).toBe('DeploymentHasNoVolumes');
    const restore = await failedRestore('from-failed', {
      source: { backupName: 'diskless-backup' },
      destination: { deploymentName: 'diskless-copy' },
    });
    expectFailure(restore, 'BackupNotCompleted', /diskless-backup failed .*restore from a Completed backup/);
    expect(await madeBy('from-failed')).toEqual([]);
  });

  it("CloudSnapNotFound when cloudSnapId is none of the backup's handles, listing them", async () => {
    const backup = await client.get(resources.backups, 'pg-backup', namespace);
    const handles = (backup?.status?.volumes ?? []).map((v) => v.cloudSnapId ?? '');
    expect(handles).toHaveLength(2);
    const restore = await failedRestore('bad-cloudsnap', {
      source: { backupName: 'pg-backup', cloudSnapId: 'snap-does-not-exist' },
      destination: { deploymentName: 'pg-one' },
    });
    expectFailure(restore, 'CloudSnapNotFound', /no snapshot with handle "snap-does-not-exist"/);
    for (const handle of handles) expect(restore.status?.errorMessage).toContain(handle);
    expect(await madeBy('bad-cloudsnap')).toEqual([]);
  });

  it('DataServiceDeploymentNameAlreadyExist when the destination is taken, leaving it untouched', async () => {
    const before = await client.get(resources.statefulSets, 'pg', namespace);
    const restore = await failedRestore('taken', {
      source: { backupName: 'pg-backup' },
      destination: { deploymentName: 'pg' },
    });
    expectFailure(restore, 'DataServiceDeploymentNameAlreadyExist', /StatefulSet .*\/pg already exists/);
    const after = await client.get(resources.statefulSets, 'pg', namespace);
    expect(after?.metadata.resourceVersion).toBe(before?.metadata.resourceVersion);
    expect(await madeBy('taken')).toEqual([]);
  });

  it('DataServiceDeploymentNameAlreadyExist when a PVC the deployment would mount is left over', async () => {
    await leftOverClaim('data-orphan-0');
    const restore = await failedRestore('orphan-claim', {
      source: { backupName: 'pg-backup' },
      destination: { deploymentName: 'orphan' },
    });
    expectFailure(restore, 'DataServiceDeploymentNameAlreadyExist', /PersistentVolumeClaim .*data-orphan-0/);
    expect(await madeBy('orphan-claim')).toEqual([]);
  });

  it('DataServiceDeploymentNameAlreadyExist for a left-over PVC of a later ordinal, removing the claim it had made', async () => {
    // Ordinal 0 is free, so the restore makes that claim before the create of ordinal 1 is refused.
    const theirs = await leftOverClaim('data-orphan2-1');
    const restore = await failedRestore('orphan-second', {
      source: { backupName: 'pg-backup' },
      destination: { deploymentName: 'orphan2' },
    });
    expectFailure(restore, 'DataServiceDeploymentNameAlreadyExist', /PersistentVolumeClaim .*data-orphan2-1/);
    expect(restore.status?.volumes?.map((volume) => volume.phase)).toEqual(['Restoring', 'Failed']);
    await waitFor('the claim the restore had made removed', async () =>
      (await madeBy('orphan-second')).length === 0 ? true : undefined,
    );
    const after = await client.get(resources.persistentVolumeClaims, 'data-orphan2-1', namespace);
    expect(after?.metadata.uid).toBe(theirs.metadata.uid);
    expect(after?.metadata.deletionTimestamp).toBeUndefined();
  });

  it('IncompatibleBackup when the RestorabilityMatrix has no condition the capabilities meet', async () => {
    const dataService = `legacy-${namespace}`.slice(0, 63);
    matrixEntry = `errors-test-${namespace}`;
    const entry: RestorabilityMatrix = {
      metadata: { name: 'default' },
      spec: {
        dataServices: [{ name: dataService, conditions: [{ imageCapabilities: { pds_restore: 'v9' } }] }],
      },
    };
    await client.apply(resources.restorabilityMatrices, entry, { fieldManager: matrixEntry });
    await backedUpDataService('legacy', { dataServiceName: dataService });
    const restore = await failedRestore('incompatible', {
      source: { backupName: 'legacy-backup' },
      destination: { deploymentName: 'legacy-copy' },
    });
    expectFailure(restore, 'IncompatibleBackup', /pds_restore/);
    expect(await madeBy('incompatible')).toEqual([]);
  });

  it('CloudSnapRestoreFailed when storage cannot provision from the snapshot, with its message', async () => {
    const sc = await storageClass('flaky');
    await backedUpDataService('flaky', { storageClassName: sc });
    await client.mergePatch(resources.storageClasses, sc, {
      metadata: { annotations: { [SIM.fail]: 'pool exhausted on array-7' } },
    });
    const restore = await failedRestore('no-capacity', {
      source: { backupName: 'flaky-backup' },
      destination: { deploymentName: 'flaky-copy' },
    });
    expectFailure(restore, 'CloudSnapRestoreFailed', /pool exhausted on array-7/);
    expect(restore.status?.volumes?.[0]).toMatchObject({ phase: 'Failed' });
    // The claim it made stays, labelled with the attempt, for the recreate or the deletion to remove.
    const { items: claims } = await client.list(resources.persistentVolumeClaims, {
      namespace,
      labelSelector: `${labels.restoreAttempt}=${restore.status?.customResourceName ?? ''}`,
    });
    expect(claims.map((c) => c.metadata.name)).toEqual(['data-flaky-copy-0']);
    expect(await client.get(resources.statefulSets, 'flaky-copy', namespace)).toBeUndefined();
  });

  it('not at all when provisioning fails for a moment: the provisioner retries (a connection reset)', async () => {
    const sc = await storageClass('blip');
    await backedUpDataService('blip', { storageClassName: sc });
    // The message kube-controller-manager writes when kube-apiserver restarts under it.
    await client.mergePatch(resources.storageClasses, sc, {
      metadata: { annotations: { [SIM.fail]: 'Error saving claim: read tcp: connection reset by peer' } },
    });
    await client.create(
      resources.restores,
      restoreManifest(namespace, 'blip', {
        source: { backupName: 'blip-backup' },
        destination: { deploymentName: 'blip-copy' },
      }),
    );
    const retrying = await waitFor('the volume to show the provisioner retrying', async () => {
      const restore = await client.get(resources.restores, 'blip', namespace);
      if (restore?.status?.phase === 'Failed')
        throw new Error(`failed: ${restore.status.errorMessage ?? ''}`);
      const reason = restore?.status?.volumes?.[0]?.reason ?? '';
      return /provisioner retries: .*connection reset/.test(reason) ? restore : undefined;
    });
    expect(retrying.status?.phase).toBe('RestoringCloudSnap');
    // Longer than the grace period the tests run with (3 s): a transient cause has none.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect((await client.get(resources.restores, 'blip', namespace))?.status?.phase).toBe(
      'RestoringCloudSnap',
    );
    await client.mergePatch(resources.storageClasses, sc, {
      metadata: { annotations: { [SIM.fail]: null } },
    });
    // The simulator, like the external-provisioner, tries the claim again on a change of it.
    await client.mergePatch(
      resources.persistentVolumeClaims,
      'data-blip-copy-0',
      {
        metadata: { annotations: { 'test.snapback.dev/nudge': 'once' } },
      },
      { namespace },
    );
    const done = await waitFor(
      'Restore blip Successful',
      async () => {
        const restore = await client.get(resources.restores, 'blip', namespace);
        if (restore?.status?.phase === 'Failed')
          throw new Error(`failed: ${restore.status.errorMessage ?? ''}`);
        return restore?.status?.phase === 'Successful' ? restore : undefined;
      },
      90_000,
    );
    expect(done.status?.attempt).toBe(1);
  });

  it('no failure, but the cause, while the restored pods cannot be scheduled', async () => {
    await client.create(
      resources.restores,
      restoreManifest(namespace, 'nowhere', {
        source: { backupName: 'pg-backup' },
        destination: { deploymentName: 'pg-nowhere' },
        podSchedulingConfig: { nodeSelector: { 'snapback.dev/test-no-such-node': 'true' } },
      }),
    );
    const waiting = await waitFor(
      "the restore to name the scheduler's reason",
      async () => {
        const restore = await client.get(resources.restores, 'nowhere', namespace);
        const progress = restore?.status?.conditions?.find((c) => c.type === 'Progressing')?.message ?? '';
        return /cannot be scheduled: .*node/.test(progress) ? restore : undefined;
      },
      60_000,
    );
    expect(waiting.status?.phase).toBe('RestoringDataServiceDeployment');
    await client.delete(resources.restores, 'nowhere', { namespace });
  });

  it('DataServiceDeploymentRestoreFailed when the API server rejects the rewritten deployment', async () => {
    const restore = await failedRestore('bad-affinity', {
      source: { backupName: 'pg-backup' },
      destination: { deploymentName: 'pg-affine' },
      podSchedulingConfig: {
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'Near' }] }],
            },
          },
        },
      },
    });
    expectFailure(restore, 'DataServiceDeploymentRestoreFailed', /affinity|Near/);
    expect(await client.get(resources.statefulSets, 'pg-affine', namespace)).toBeUndefined();
  });

  it('PhaseTimeout when a phase outlasts its timeout, naming the phase', async () => {
    const sc = await storageClass('stuck');
    await backedUpDataService('stuck', { storageClassName: sc });
    await client.mergePatch(resources.storageClasses, sc, {
      metadata: { annotations: { [SIM.never]: 'true' } },
    });
    const restore = await failedRestore('too-slow', {
      source: { backupName: 'stuck-backup' },
      destination: { deploymentName: 'stuck-copy' },
    });
    expectFailure(restore, 'PhaseTimeout', new RegExp(`RestoringCloudSnap.*${TIMEOUT_SECONDS}`));
    const entered = restore.status?.phaseHistory?.find((p) => p.phase === 'RestoringCloudSnap')?.enteredAt;
    const took = Date.parse(restore.status?.completedAt ?? '') - Date.parse(entered ?? '');
    expect(took).toBeGreaterThanOrEqual((TIMEOUT_SECONDS - 1) * 1000);
  });
});

describe('a Backup fails with', () => {
  it('DeploymentNotFound when the deployment does not exist', async () => {
    const backup = await failedBackup('of-ghost', { deployment: { name: 'ghost' } });
    expect(backup.status?.errorCode).toBe('DeploymentNotFound');
    expect(backup.status?.errorMessage).toMatch(/ghost/);
    expect(await warningFor('Backup', 'of-ghost', 'DeploymentNotFound')).toMatch(/ghost/);
  });

  it('VolumeSnapshotClassNotFound when the named class does not exist', async () => {
    const backup = await failedBackup('no-class', {
      deployment: { name: 'pg' },
      volumeSnapshotClassName: 'no-such-class',
    });
    expect(backup.status?.errorCode).toBe('VolumeSnapshotClassNotFound');
    expect(backup.status?.errorMessage).toMatch(/no-such-class/);
    const { items } = await client.list(resources.volumeSnapshots, {
      namespace,
      labelSelector: `${labels.backup}=no-class`,
    });
    expect(items).toEqual([]);
  });

  it("PhaseTimeout naming the storage system's error, which the snapshotter retried until the deadline", async () => {
    const vsc = await snapshotClass('broken', { [SIM.fail]: 'snapshot quota exceeded' });
    const backup = await failedBackup('quota', { deployment: { name: 'pg' }, volumeSnapshotClassName: vsc });
    expect(backup.status?.errorCode).toBe('PhaseTimeout');
    expect(backup.status?.errorMessage).toMatch(/snapshotter retries after: .*snapshot quota exceeded/);
  });

  it('not at all when a snapshot error clears: the snapshotter retried and succeeded', async () => {
    const vsc = await snapshotClass('flapping', { [SIM.fail]: 'array busy, try later' });
    await client.create(resources.backups, {
      metadata: { name: 'flapping', namespace },
      spec: { deployment: { name: 'pg' }, volumeSnapshotClassName: vsc },
    });
    const retrying = await waitFor('the Backup to show the snapshot error as retried', async () => {
      const backup = await client.get(resources.backups, 'flapping', namespace);
      const ready = backup?.status?.conditions?.find((c) => c.type === 'Ready');
      return ready?.reason === 'SnapshotsRetrying' ? backup : undefined;
    });
    expect(retrying.status?.phase).toBe('InProgress');
    // The storage recovers: the content's own annotation switches its class's failure off.
    const { items } = await client.list(resources.volumeSnapshots, {
      namespace,
      labelSelector: `${labels.backup}=flapping`,
    });
    for (const snapshot of items) {
      const content = snapshot.status?.boundVolumeSnapshotContentName ?? '';
      await client.mergePatch(resources.volumeSnapshotContents, content, {
        metadata: { annotations: { [SIM.fail]: '' } },
      });
    }
    const completed = await waitForBackup(client, namespace, 'flapping', 'Completed');
    expect(completed.status?.errorCode).toBeUndefined();
  });

  it('PhaseTimeout when snapshots never become ready', async () => {
    const vsc = await snapshotClass('frozen', { [SIM.never]: 'true' });
    const backup = await failedBackup('frozen', { deployment: { name: 'pg' }, volumeSnapshotClassName: vsc });
    expect(backup.status?.errorCode).toBe('PhaseTimeout');
    expect(backup.status?.errorMessage).toMatch(new RegExp(`${TIMEOUT_SECONDS}`));
  });
});
