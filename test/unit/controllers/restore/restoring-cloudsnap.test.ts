// RestoringCloudSnap: a PVC per volume from the backup's snapshots, then wait until all are Bound
// (or, under a WaitForFirstConsumer StorageClass, Pending until the restored pod is scheduled).
// First the cases that used to fail restores for what the cluster retries: ProvisioningFailed
// Events written while kube-apiserver restarts, an imported snapshot with status.error, and the
// credential copy's throttled or conflicting reads.

import { describe, expect, it } from '@jest/globals';
import { labels, MANAGED_BY } from '../../../../src/api/constants.js';
import type { Backup, Restore } from '../../../../src/api/generated/types.js';
import type { PersistentVolumeClaim } from '../../../../src/api/kubernetes.js';
import type { StepOutcome } from '../../../../src/controllers/restore/outcome.js';
import { planRestore } from '../../../../src/controllers/restore/context.js';
import { restoringCloudSnap } from '../../../../src/controllers/restore/restoring-cloudsnap.js';
import { applyOutcome } from '../../../../src/controllers/restore/status.js';
import { childName } from '../../../../src/naming.js';
import { resources } from '../../../../src/runtime/resources.js';
import {
  attemptLabelsOf,
  backupLocation,
  backupVolume,
  BACKUP_NAME,
  claim,
  completedBackup,
  destinationClaim,
  NAMESPACE,
  OPERATOR_NAMESPACE,
  planOf,
  provisioningFailed,
  referenceGrant,
  restoreIn,
  restoreWorld,
  RESTORE_UID,
  secret,
  setStatus,
  SNAPSHOT_CLASS,
  statefulSet,
  storageClass,
  syncedBackup,
  volumeSnapshot,
  type ClaimOptions,
  type RestoreInOptions,
} from '../../../support/builders.js';
import { apiError, type FakeClient } from '../../../support/fake-client.js';

const CLAIM_UID = '5e1f0c2a-2222-4222-8222-222222222222';

/** What the PV controller records when its PUT of the claim dies with a restarting API server. */
const SAVE_CLAIM_RESET =
  'Error saving claim: Put "https://10.96.0.1:443/api/v1/namespaces/demo/persistentvolumeclaims/data-pg-restored-0": ' +
  'read tcp 10.244.0.12:52364->10.96.0.1:443: read: connection reset by peer';
const POOL_EXHAUSTED = 'failed to provision volume with StorageClass "fast": pool exhausted on array-7';
const INVALID_ARGUMENT =
  'failed to provision volume with StorageClass "fast": rpc error: code = InvalidArgument desc = snapshot snap-handle-0 belongs to another pool';

function setup(options: { backup?: Backup; restore?: RestoreInOptions } = {}) {
  const world = restoreWorld();
  const { fake, ctx, clock } = world;
  const backup = fake.seed(resources.backups, options.backup ?? completedBackup());
  const seeded = fake.seed(
    resources.restores,
    restoreIn('RestoringCloudSnap', { backup, ...options.restore }),
  );
  const key = { name: seeded.metadata.name ?? '', namespace: seeded.metadata.namespace ?? '' };
  const current = (): Restore => {
    const found = fake.peek(resources.restores, key.name, key.namespace);
    if (found === undefined) throw new Error('the restore is gone');
    return found;
  };
  /** One step against the restore as it is stored now. */
  const run = (): Promise<StepOutcome> => restoringCloudSnap(ctx, current(), planOf(ctx, current()));
  /** Writes an outcome's status, as the reconciler would after the step. */
  const record = (outcome: StepOutcome): void => {
    const restore = current();
    setStatus(
      fake,
      resources.restores,
      key.name,
      key.namespace,
      applyOutcome(restore.status ?? {}, outcome, clock.now().toISOString(), restore.metadata.generation),
    );
  };
  return { ...world, backup, restore: seeded, current, run, record };
}

/** The attempt's claim for `ordinal`, as this step created it, not yet bound. */
function pendingClaim(
  fake: FakeClient,
  restore: Restore,
  ordinal = 0,
  uid = CLAIM_UID,
  options: ClaimOptions = {},
): PersistentVolumeClaim {
  return fake.seed(
    resources.persistentVolumeClaims,
    claim(destinationClaim(ordinal), {
      uid,
      labels: attemptLabelsOf(restore),
      phase: 'Pending',
      snapshotName: backupVolume(ordinal).volumeSnapshotName,
      ...options,
    }),
  );
}

function expectWait(outcome: StepOutcome): Extract<StepOutcome, { type: 'wait' }> {
  if (outcome.type !== 'wait') throw new Error(`expected wait, got ${outcome.type}: ${outcome.message}`);
  return outcome;
}

function expectFail(outcome: StepOutcome): Extract<StepOutcome, { type: 'fail' }> {
  if (outcome.type !== 'fail') throw new Error(`expected fail, got ${outcome.type}: ${outcome.message}`);
  return outcome;
}

const volumeReason = (outcome: StepOutcome, ordinal = 0): string | undefined =>
  outcome.status?.volumes?.[ordinal]?.reason;

describe('restoringCloudSnap: ProvisioningFailed events', () => {
  it('waits, showing the message, on "Error saving claim ... connection reset by peer" (kube-apiserver restarting)', async () => {
    const { fake, clock, run, restore } = setup();
    const pvc = pendingClaim(fake, restore);
    fake.seed(resources.events, provisioningFailed(pvc, SAVE_CLAIM_RESET, { firstTimestamp: clock.at(-20) }));

    const outcome = expectWait(await run());

    // A reason of its own, so the write is not paced as progress and a short retry is still shown.
    expect(outcome.reason).toBe('VolumesRetrying');
    expect(outcome.message).toBe('0/1 volume(s) bound, 1 retried by the storage (see volumes)');
    expect(outcome.status?.volumes).toEqual([
      {
        pvcName: 'data-pg-restored-0',
        cloudSnapId: 'snap-handle-0',
        restoredFrom: 'Snapshot',
        phase: 'Restoring',
        reason: `provisioning failed, the provisioner retries: ${SAVE_CLAIM_RESET}`,
      },
    ]);
    // A transient cause has no grace period to run out: no "fails at", nothing to look at again.
    expect(volumeReason(outcome)).not.toMatch(/fails at/);
    expect(outcome.requeueAfterMs).toBeUndefined();
  });

  it('keeps waiting on a transient message however long it has repeated (past the grace period)', async () => {
    const { fake, clock, run, restore } = setup();
    const pvc = pendingClaim(fake, restore);
    fake.seed(
      resources.events,
      provisioningFailed(pvc, SAVE_CLAIM_RESET, {
        firstTimestamp: clock.at(-3600),
        lastTimestamp: clock.at(-5),
        count: 40,
      }),
    );

    const outcome = expectWait(await run());
    expect(volumeReason(outcome)).toBe(`provisioning failed, the provisioner retries: ${SAVE_CLAIM_RESET}`);
  });

  it.each([
    [
      'a throttled API server',
      'Error saving claim: the server has received too many requests and has asked us to try again later',
    ],
    ['a gRPC Unavailable', 'rpc error: code = Unavailable desc = connection refused'],
    ['an etcd leader change', 'Error saving claim: etcdserver: leader changed'],
    [
      'a stale claim (conflict)',
      'Operation cannot be fulfilled on persistentvolumeclaims "data-pg-restored-0": the object has been modified',
    ],
  ])('waits without a deadline on %s', async (_what, message) => {
    const { fake, clock, run, restore } = setup();
    const pvc = pendingClaim(fake, restore);
    fake.seed(resources.events, provisioningFailed(pvc, message, { firstTimestamp: clock.at(-1000) }));

    const outcome = expectWait(await run());
    expect(volumeReason(outcome)).toBe(`provisioning failed, the provisioner retries: ${message}`);
    expect(outcome.requeueAfterMs).toBeUndefined();
  });

  it('waits on a lasting cause younger than the grace period, naming when it fails and looking again then', async () => {
    const { fake, clock, run, restore } = setup();
    const pvc = pendingClaim(fake, restore);
    fake.seed(
      resources.events,
      provisioningFailed(pvc, POOL_EXHAUSTED, {
        firstTimestamp: clock.at(-60),
        lastTimestamp: clock.at(-10),
      }),
    );

    const outcome = expectWait(await run());

    // Grace 300s from the first failure 60s ago: it fails in 240s.
    expect(volumeReason(outcome)).toBe(
      `provisioning failed, the provisioner retries: ${POOL_EXHAUSTED}; the restore fails at 2030-03-01T12:04:00.000Z unless it succeeds`,
    );
    expect(outcome.requeueAfterMs).toBe(240_000);
  });

  it('fails CloudSnapRestoreFailed, naming the message, once a lasting cause is older than the grace period', async () => {
    const { fake, clock, run, restore } = setup();
    const pvc = pendingClaim(fake, restore);
    fake.seed(
      resources.events,
      provisioningFailed(pvc, POOL_EXHAUSTED, {
        firstTimestamp: clock.at(-400),
        lastTimestamp: clock.at(-15),
        count: 9,
      }),
    );

    const outcome = expectFail(await run());

    expect(outcome.errorCode).toBe('CloudSnapRestoreFailed');
    expect(outcome.message).toBe(
      `volume data-pg-restored-0 could not be restored from snapshot snap-handle-0: ${POOL_EXHAUSTED} ` +
        '(failing since 2030-03-01T11:53:20.000Z, retried for 300s)',
    );
    expect(outcome.status?.volumes).toEqual([
      {
        pvcName: 'data-pg-restored-0',
        cloudSnapId: 'snap-handle-0',
        phase: 'Failed',
        reason: outcome.message,
      },
    ]);
  });

  it.each([
    [-299, 'wait'],
    [-300, 'fail'],
  ] as const)('judges the grace period to the second: first failure %is ago -> %s', async (ago, type) => {
    const { fake, clock, run, restore } = setup();
    const pvc = pendingClaim(fake, restore);
    fake.seed(resources.events, provisioningFailed(pvc, POOL_EXHAUSTED, { firstTimestamp: clock.at(ago) }));

    const outcome = await run();
    expect(outcome.type).toBe(type);
    if (outcome.type === 'wait') expect(outcome.requeueAfterMs).toBe(1000);
  });

  it('fails at once on "rpc error: code = InvalidArgument", however young', async () => {
    const { fake, clock, run, restore } = setup();
    const pvc = pendingClaim(fake, restore);
    fake.seed(resources.events, provisioningFailed(pvc, INVALID_ARGUMENT, { firstTimestamp: clock.at(-1) }));

    const outcome = expectFail(await run());
    expect(outcome.errorCode).toBe('CloudSnapRestoreFailed');
    expect(outcome.message).toBe(
      `volume data-pg-restored-0 could not be restored from snapshot snap-handle-0: ${INVALID_ARGUMENT}`,
    );
  });

  it('ignores the events of an older claim of the same name (another UID)', async () => {
    const { fake, clock, run, restore } = setup();
    const pvc = pendingClaim(fake, restore);
    fake.seed(
      resources.events,
      provisioningFailed(pvc, INVALID_ARGUMENT, {
        uid: 'an-earlier-claim-uid',
        firstTimestamp: clock.at(-900),
      }),
    );
    fake.seed(
      resources.events,
      provisioningFailed(pvc, POOL_EXHAUSTED, {
        uid: 'an-earlier-claim-uid',
        firstTimestamp: clock.at(-900),
      }),
    );

    const outcome = expectWait(await run());
    expect(volumeReason(outcome)).toBe('waiting for the volume to be provisioned and bound');
    expect(outcome.requeueAfterMs).toBeUndefined();
  });

  it('ignores Normal events and other reasons on the claim', async () => {
    const { fake, clock, run, restore } = setup();
    const pvc = pendingClaim(fake, restore);
    fake.seed(
      resources.events,
      provisioningFailed(pvc, INVALID_ARGUMENT, { type: 'Normal', firstTimestamp: clock.at(-900) }),
    );
    fake.seed(
      resources.events,
      provisioningFailed(pvc, INVALID_ARGUMENT, { reason: 'FailedBinding', firstTimestamp: clock.at(-900) }),
    );

    const outcome = expectWait(await run());
    expect(volumeReason(outcome)).toBe('waiting for the volume to be provisioned and bound');
  });

  it('goes by the latest event: a transient one after a lasting one waits without a deadline', async () => {
    const { fake, clock, run, restore } = setup();
    const pvc = pendingClaim(fake, restore);
    fake.seed(
      resources.events,
      provisioningFailed(pvc, POOL_EXHAUSTED, {
        firstTimestamp: clock.at(-600),
        lastTimestamp: clock.at(-120),
      }),
    );
    fake.seed(
      resources.events,
      provisioningFailed(pvc, SAVE_CLAIM_RESET, {
        firstTimestamp: clock.at(-30),
        lastTimestamp: clock.at(-30),
      }),
    );

    const outcome = expectWait(await run());
    expect(volumeReason(outcome)).toBe(`provisioning failed, the provisioner retries: ${SAVE_CLAIM_RESET}`);
  });

  it('starts the grace period at the first lasting failure, not at earlier transient ones', async () => {
    const { fake, clock, run, restore } = setup();
    const pvc = pendingClaim(fake, restore);
    fake.seed(
      resources.events,
      provisioningFailed(pvc, SAVE_CLAIM_RESET, { firstTimestamp: clock.at(-1000) }),
    );
    fake.seed(resources.events, provisioningFailed(pvc, POOL_EXHAUSTED, { firstTimestamp: clock.at(-30) }));

    const outcome = expectWait(await run());
    expect(volumeReason(outcome)).toMatch(
      /the restore fails at 2030-03-01T12:04:30\.000Z unless it succeeds$/,
    );
    expect(outcome.requeueAfterMs).toBe(270_000);
  });

  it('with two volumes, waits on the bound one and the failing one, looking again when the grace period ends', async () => {
    const { fake, clock, run, restore } = setup({
      backup: completedBackup({ volumeCount: 2 }),
      restore: { volumeCount: 2 },
    });
    const bound = pendingClaim(fake, restore, 0, 'claim-0');
    setStatus(fake, resources.persistentVolumeClaims, bound.metadata.name ?? '', NAMESPACE, {
      phase: 'Bound',
    });
    const failing = pendingClaim(fake, restore, 1, 'claim-1');
    fake.seed(
      resources.events,
      provisioningFailed(failing, POOL_EXHAUSTED, { firstTimestamp: clock.at(-100) }),
    );

    const outcome = expectWait(await run());
    expect(outcome.message).toBe('1/2 volume(s) bound, 1 retried by the storage (see volumes)');
    expect(outcome.status?.volumes?.map((volume) => [volume.pvcName, volume.phase])).toEqual([
      ['data-pg-restored-0', 'Bound'],
      ['data-pg-restored-1', 'Restoring'],
    ]);
    expect(outcome.requeueAfterMs).toBe(200_000);
  });
});

describe('restoringCloudSnap: an imported snapshot (Backup in another namespace)', () => {
  const crossNamespace = () => {
    const world = setup({
      backup: completedBackup({ namespace: 'prod' }),
      restore: { backupRef: { namespace: 'prod', name: BACKUP_NAME } },
    });
    world.fake.seed(resources.referenceGrants, referenceGrant('prod', NAMESPACE, BACKUP_NAME));
    return world;
  };

  const importedName = (restore: Restore): string =>
    childName(restore.status?.customResourceName ?? '', RESTORE_UID, 'snap', 0);

  it('waits, saying the snapshotter retries, while the imported VolumeSnapshot has status.error', async () => {
    const { fake, run, restore } = crossNamespace();
    const name = importedName(restore);
    fake.seed(resources.volumeSnapshotContents, {
      metadata: { name, labels: { ...attemptLabelsOf(restore), [labels.managedBy]: MANAGED_BY } },
      spec: {
        deletionPolicy: 'Retain',
        driver: 'csi.example.com',
        source: { snapshotHandle: 'snap-handle-0' },
        volumeSnapshotRef: { name, namespace: NAMESPACE },
      },
    });
    const error =
      'Failed to check and update snapshot content: rpc error: code = Internal desc = array-7 unreachable';
    fake.seed(
      resources.volumeSnapshots,
      volumeSnapshot(name, { labels: attemptLabelsOf(restore), readyToUse: false, error }),
    );

    const outcome = expectWait(await run());

    expect(outcome.reason).toBe('VolumesRetrying');
    expect(volumeReason(outcome)).toBe(
      `imported snapshot ${name} is not ready; the snapshotter retries after: ${error}`,
    );
    expect(outcome.status?.volumes?.[0]?.phase).toBe('Restoring');
    // Nothing is made from a snapshot that is not ready.
    expect(fake.objects(resources.persistentVolumeClaims)).toEqual([]);
  });

  it('imports first: a Retain content by handle and a VolumeSnapshot bound to it, then waits', async () => {
    const { fake, run, restore } = crossNamespace();
    const name = importedName(restore);

    const outcome = expectWait(await run());

    expect(volumeReason(outcome)).toBe('snapshot snap-handle-0 is being imported into demo');
    const scaffolding = { ...attemptLabelsOf(restore), [labels.managedBy]: MANAGED_BY };
    expect(fake.objects(resources.volumeSnapshotContents)).toEqual([
      expect.objectContaining({
        metadata: expect.objectContaining({ name, labels: scaffolding }),
        spec: {
          deletionPolicy: 'Retain',
          driver: 'csi.example.com',
          source: { snapshotHandle: 'snap-handle-0' },
          volumeSnapshotRef: { name, namespace: NAMESPACE },
          volumeSnapshotClassName: SNAPSHOT_CLASS,
        },
      }),
    ]);
    expect(fake.objects(resources.volumeSnapshots)).toEqual([
      expect.objectContaining({
        metadata: expect.objectContaining({ name, namespace: NAMESPACE, labels: scaffolding }),
        spec: { source: { volumeSnapshotContentName: name } },
      }),
    ]);
    expect(fake.objects(resources.persistentVolumeClaims)).toEqual([]);
  });

  it('waits for an imported snapshot not ready yet without an error', async () => {
    const { run, restore } = crossNamespace();
    await run();
    const name = importedName(restore);

    const outcome = expectWait(await run());
    expect(volumeReason(outcome)).toBe(`waiting for imported snapshot ${name} to be ready`);
  });

  it('makes the claim from the imported snapshot once it is ready', async () => {
    const { fake, run, restore } = crossNamespace();
    await run();
    const name = importedName(restore);
    setStatus(fake, resources.volumeSnapshots, name, NAMESPACE, { readyToUse: true, restoreSize: '10Gi' });

    const outcome = expectWait(await run());

    expect(volumeReason(outcome)).toBe('volume requested from the snapshot');
    const made = fake.peek(resources.persistentVolumeClaims, 'data-pg-restored-0', NAMESPACE);
    expect(made?.spec.dataSource).toEqual({
      apiGroup: 'snapshot.storage.k8s.io',
      kind: 'VolumeSnapshot',
      name,
    });
  });

  it('fails when the Backup does not record the handle and driver an import needs', async () => {
    const { fake, run } = setup({
      backup: completedBackup({ namespace: 'prod', volumes: [backupVolume(0, { driver: undefined })] }),
      restore: { backupRef: { namespace: 'prod', name: BACKUP_NAME } },
    });
    fake.seed(resources.referenceGrants, referenceGrant('prod', NAMESPACE, BACKUP_NAME));

    const outcome = expectFail(await run());
    expect(outcome.errorCode).toBe('CloudSnapRestoreFailed');
    expect(outcome.message).toMatch(/does not record the snapshot handle and driver of data-pg-0/);
  });
});

describe('restoringCloudSnap: a grant withdrawn before the data is in', () => {
  it('has no plan: ReferenceNotGranted, naming the grant', () => {
    const { fake, ctx } = setup({
      backup: completedBackup({ namespace: 'prod' }),
      restore: { backupRef: { namespace: 'prod', name: BACKUP_NAME } },
    });
    const restore = fake.objects(resources.restores)[0];
    if (restore === undefined) throw new Error('no restore');
    expect(planRestore(ctx, restore)).toEqual({
      errorCode: 'ReferenceNotGranted',
      problem: expect.stringMatching(
        /^no ReferenceGrant in namespace prod lets Restores of namespace demo read/,
      ),
    });
  });
});

describe('restoringCloudSnap: a synced Backup', () => {
  it("imports with the location's snapshot class, and no credential reaches the restore's namespace", async () => {
    const { fake, run, record } = setup({ backup: syncedBackup() });
    fake.seed(
      resources.backupLocations,
      backupLocation('shared-store', { volumeSnapshotClassName: 'imported-class' }),
    );
    fake.seed(
      resources.secrets,
      secret('store-credentials', OPERATOR_NAMESPACE, { accessKeyId: 'QUtJQQ==' }),
    );

    record(await run());
    const [content] = fake.objects(resources.volumeSnapshotContents);
    expect(content?.spec.volumeSnapshotClassName).toBe('imported-class');
    const snapshot = content?.metadata.name ?? '';
    setStatus(fake, resources.volumeSnapshots, snapshot, NAMESPACE, { readyToUse: true });

    expectWait(await run());
    const made = fake.peek(resources.persistentVolumeClaims, 'data-pg-restored-0', NAMESPACE);
    expect(made?.spec.dataSource?.name).toBe(snapshot);
    expect(made?.metadata.annotations).toBeUndefined();
    expect(fake.objects(resources.secrets).map((item) => item.metadata.namespace)).toEqual([
      OPERATOR_NAMESPACE,
    ]);
    expect(fake.calls.filter((call) => call.plural === 'secrets')).toEqual([]);
  });
});

describe('restoringCloudSnap: claims from snapshots in the same namespace', () => {
  it("creates the claim from the backup's VolumeSnapshot, labelled with the attempt, and waits", async () => {
    const { fake, run, restore } = setup();

    const outcome = expectWait(await run());

    expect(outcome.reason).toBe('RestoringVolumes');
    expect(outcome.message).toBe('0/1 volume(s) bound');
    expect(volumeReason(outcome)).toBe('volume requested from the snapshot');
    const made = fake.peek(resources.persistentVolumeClaims, 'data-pg-restored-0', NAMESPACE);
    expect(made?.metadata.labels).toEqual(attemptLabelsOf(restore));
    expect(made?.spec).toEqual({
      accessModes: ['ReadWriteOnce'],
      storageClassName: 'fast',
      resources: { requests: { storage: '10Gi' } },
      dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'pg-backup-snap-0' },
    });
    // The backup's own snapshot is used: nothing is imported.
    expect(fake.objects(resources.volumeSnapshots)).toEqual([]);
    expect(fake.objects(resources.volumeSnapshotContents)).toEqual([]);
  });

  it("asks for the snapshot's size when the claim template asks for less", async () => {
    const { fake, run } = setup({
      backup: completedBackup({ volumes: [backupVolume(0, { sizeBytes: 12 * 2 ** 30 })] }),
    });
    await run();
    const made = fake.peek(resources.persistentVolumeClaims, 'data-pg-restored-0', NAMESPACE);
    expect(made?.spec.resources).toEqual({ requests: { storage: String(12 * 2 ** 30) } });
  });

  it('restores only the volume spec.source.cloudSnapId names', async () => {
    const { fake, run } = setup({
      backup: completedBackup({ volumeCount: 3 }),
      restore: { cloudSnapId: 'snap-handle-1' },
    });
    const outcome = expectWait(await run());
    expect(outcome.status?.volumes?.map((volume) => volume.pvcName)).toEqual(['data-pg-restored-1']);
    expect(fake.objects(resources.persistentVolumeClaims).map((item) => item.metadata.name)).toEqual([
      'data-pg-restored-1',
    ]);
  });

  it('advances to RestoringDataServiceDeploymentCR once every claim is Bound', async () => {
    const { fake, run, restore } = setup({
      backup: completedBackup({ volumeCount: 2 }),
      restore: { volumeCount: 2 },
    });
    for (const ordinal of [0, 1]) {
      pendingClaim(fake, restore, ordinal, `claim-${ordinal}`);
      setStatus(fake, resources.persistentVolumeClaims, destinationClaim(ordinal), NAMESPACE, {
        phase: 'Bound',
      });
    }
    fake.clearCalls();

    const outcome = await run();

    expect(outcome).toEqual({
      type: 'advance',
      to: 'RestoringDataServiceDeploymentCR',
      message: 'all 2 volume(s) restored and bound',
      status: {
        volumes: [
          {
            pvcName: 'data-pg-restored-0',
            cloudSnapId: 'snap-handle-0',
            restoredFrom: 'Snapshot',
            phase: 'Bound',
          },
          {
            pvcName: 'data-pg-restored-1',
            cloudSnapId: 'snap-handle-1',
            restoredFrom: 'Snapshot',
            phase: 'Bound',
          },
        ],
      },
    });
    // Everything came from the caches.
    expect(fake.calls).toEqual([]);
  });

  it('fails DataServiceDeploymentNameAlreadyExist for a claim of that name it did not make, leaving it alone', async () => {
    const { fake, run } = setup();
    // Unlabelled (left by a deleted StatefulSet): the claims cache, selected by
    // snapback.dev/restore, does not show it; the create's AlreadyExists does.
    fake.seed(resources.persistentVolumeClaims, claim('data-pg-restored-0', { phase: 'Bound' }));

    const outcome = expectFail(await run());

    expect(outcome.errorCode).toBe('DataServiceDeploymentNameAlreadyExist');
    expect(outcome.message).toMatch(
      /^PersistentVolumeClaim demo\/data-pg-restored-0, which StatefulSet pg-restored would mount, already exists \(often left behind by a deleted StatefulSet of that name\); nothing of it was changed, and what this restore had created for it is removed\./,
    );
    expect(outcome.status?.volumes?.[0]).toMatchObject({ phase: 'Failed' });
    expect(
      fake.peek(resources.persistentVolumeClaims, 'data-pg-restored-0', NAMESPACE)?.metadata.labels,
    ).toBeUndefined();
    // Reads only once the create was refused: the claim, then whether a deployment holds the name.
    expect(
      fake.calls.filter((call) => call.verb === 'get').map((call) => `${call.plural}/${call.name}`),
    ).toEqual(['persistentvolumeclaims/data-pg-restored-0', 'statefulsets/pg-restored']);
  });

  it('names the StatefulSet, not its claim, when a deployment of the destination name holds both', async () => {
    const { fake, run } = setup();
    fake.seed(resources.statefulSets, statefulSet('pg-restored', { replicas: 2 }));
    fake.seed(resources.persistentVolumeClaims, claim('data-pg-restored-0', { phase: 'Bound' }));

    const outcome = expectFail(await run());

    expect(outcome.errorCode).toBe('DataServiceDeploymentNameAlreadyExist');
    expect(outcome.message).toMatch(
      /^StatefulSet demo\/pg-restored already exists and was not made by this restore; nothing of it was changed/,
    );
  });

  // Regression: a claim the cache had was taken as this attempt's without looking at its
  // snapback.dev/restore-attempt label. The claims cache selects every claim labelled
  // snapback.dev/restore, so another Restore's claim of the same name (two Restores into one
  // destination passing Pending together) counted as Bound, and this restore mounted its data.
  it("fails, instead of adopting it, when the cache has another Restore's claim of that name", async () => {
    const { fake, run } = setup();
    const other = restoreIn('RestoringCloudSnap', {
      name: 'other',
      uid: 'uid-other',
      backupName: 'other-backup',
    });
    fake.seed(
      resources.persistentVolumeClaims,
      claim('data-pg-restored-0', {
        labels: attemptLabelsOf(other, { backup: 'other-backup' }),
        phase: 'Bound',
      }),
    );

    const outcome = await run();

    expect(outcome).toMatchObject({ type: 'fail', errorCode: 'CloudSnapRestoreFailed' });
    expect(outcome.message).toMatch(
      /^PersistentVolumeClaim demo\/data-pg-restored-0 belongs to another restore/,
    );
    expect(outcome.status?.volumes?.[0]).toMatchObject({ phase: 'Failed' });
  });

  it('throws what creating the claim throws (503, 403): the reconciler decides retry or fail', async () => {
    for (const err of [apiError(503), apiError(403)]) {
      const { fake, run } = setup();
      fake.failNext('create', 'persistentvolumeclaims', err);
      await expect(run()).rejects.toBe(err);
    }
  });
});

describe('restoringCloudSnap: StorageClasses that bind on the first consumer (WaitForFirstConsumer)', () => {
  const firstConsumerClass = (name = 'fast', options: { isDefault?: boolean } = {}) =>
    storageClass(name, { volumeBindingMode: 'WaitForFirstConsumer', ...options });

  it('advances with a Pending claim of a WaitForFirstConsumer class, saying it binds when the pod is scheduled', async () => {
    const { fake, run, restore } = setup();
    fake.seed(resources.storageClasses, firstConsumerClass());
    pendingClaim(fake, restore, 0, CLAIM_UID, { storageClassName: 'fast' });
    fake.clearCalls();

    expect(await run()).toEqual({
      type: 'advance',
      to: 'RestoringDataServiceDeploymentCR',
      message:
        'all 1 volume(s) restored: 0 bound, 1 bind when the restored pods are scheduled (WaitForFirstConsumer)',
      status: {
        volumes: [
          {
            pvcName: 'data-pg-restored-0',
            cloudSnapId: 'snap-handle-0',
            restoredFrom: 'Snapshot',
            phase: 'WaitingForFirstConsumer',
            reason: 'binds when the restored pod is scheduled (StorageClass fast uses WaitForFirstConsumer)',
          },
        ],
      },
    });
    // The class came from the cache.
    expect(fake.calls).toEqual([]);
  });

  it('waits, as before, for the claims of an Immediate class and of a class that does not exist', async () => {
    const { fake, run, restore } = setup({
      backup: completedBackup({ volumeCount: 3 }),
      restore: { volumeCount: 3 },
    });
    fake.seed(resources.storageClasses, firstConsumerClass());
    fake.seed(resources.storageClasses, storageClass('slow', { volumeBindingMode: 'Immediate' }));
    ['fast', 'slow', 'gone'].forEach((storageClassName, ordinal) =>
      pendingClaim(fake, restore, ordinal, `claim-${ordinal}`, { storageClassName }),
    );

    const outcome = expectWait(await run());

    expect(outcome.message).toBe('0/3 volume(s) bound, 1 waiting for their first consumer');
    expect(outcome.status?.volumes?.map((volume) => [volume.pvcName, volume.phase, volume.reason])).toEqual([
      ['data-pg-restored-0', 'WaitingForFirstConsumer', expect.stringMatching(/^binds when/)],
      ['data-pg-restored-1', 'Restoring', 'waiting for the volume to be provisioned and bound'],
      ['data-pg-restored-2', 'Restoring', 'waiting for the volume to be provisioned and bound'],
    ]);
  });

  it('judges a claim whose node is selected (provisioning started) by its ProvisioningFailed events', async () => {
    const { fake, clock, run, restore } = setup();
    fake.seed(resources.storageClasses, firstConsumerClass());
    const pvc = pendingClaim(fake, restore, 0, CLAIM_UID, {
      storageClassName: 'fast',
      selectedNode: 'node-3',
    });

    const provisioning = await run();
    expect(provisioning.type).toBe('advance');
    expect(volumeReason(provisioning)).toBe(
      'being provisioned for the pod scheduled on node node-3 (StorageClass fast uses WaitForFirstConsumer)',
    );

    fake.seed(resources.events, provisioningFailed(pvc, POOL_EXHAUSTED, { firstTimestamp: clock.at(-60) }));
    const retrying = expectWait(await run());
    expect(retrying.status?.volumes?.[0]?.phase).toBe('Restoring');
    expect(volumeReason(retrying)).toMatch(/^provisioning failed, the provisioner retries: /);
    expect(retrying.requeueAfterMs).toBe(240_000);

    fake.seed(resources.events, provisioningFailed(pvc, INVALID_ARGUMENT, { firstTimestamp: clock.at(-1) }));
    expect(await run()).toMatchObject({
      type: 'fail',
      errorCode: 'CloudSnapRestoreFailed',
      message: expect.stringContaining(INVALID_ARGUMENT),
    });
  });

  it("goes by the cluster's default class for a claim that names none, once there is one", async () => {
    const { fake, run, restore } = setup();
    fake.seed(resources.storageClasses, firstConsumerClass());
    pendingClaim(fake, restore);

    // No default class: nothing says how the claim binds.
    expect(expectWait(await run()).status?.volumes?.[0]?.phase).toBe('Restoring');

    fake.seed(resources.storageClasses, firstConsumerClass('standard', { isDefault: true }));
    const outcome = await run();
    expect(outcome.type).toBe('advance');
    expect(volumeReason(outcome)).toBe(
      'binds when the restored pod is scheduled (StorageClass standard uses WaitForFirstConsumer)',
    );
  });
});
