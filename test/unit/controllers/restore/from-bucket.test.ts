// RestoringCloudSnap from the bucket: which source a volume is restored from, and the volume's way
// from the mover's claim in the operator's namespace to the restore's claim, step by step against
// the fake API server (the real PV controller's part played by the test).

import { describe, expect, it } from '@jest/globals';
import { annotations, labels } from '../../../../src/api/constants.js';
import type { Backup, Restore, VolumeDataCopy } from '../../../../src/api/generated/types.js';
import type { PersistentVolume, Pod } from '../../../../src/api/kubernetes.js';
import { cleanUpAttempt } from '../../../../src/controllers/restore/cleanup.js';
import type { StepOutcome } from '../../../../src/controllers/restore/outcome.js';
import { restoringCloudSnap } from '../../../../src/controllers/restore/restoring-cloudsnap.js';
import { applyOutcome } from '../../../../src/controllers/restore/status.js';
import { resources } from '../../../../src/runtime/resources.js';
import { MOVER_ENV } from '../../../../src/storage/data-mover.js';
import {
  backupLocation,
  backupVolume,
  completedBackup,
  destinationClaim,
  moverPodEnded,
  NAMESPACE,
  OPERATOR_NAMESPACE,
  planOf,
  restoreIn,
  restoreWorld,
  setStatus,
  volumeSnapshot,
  type RestoreInOptions,
} from '../../../support/builders.js';

const LOCATION = 'vault';
const MANIFEST = 'east/demo/pg-backup-abcdef/data-pg-0';
const PV = 'pvc-0f1e2d3c';
const COPY: VolumeDataCopy = { manifest: MANIFEST, phase: 'Completed', attempts: 1, bytesTotal: 4096 };

function setup(
  options: { copy?: VolumeDataCopy | null; restore?: RestoreInOptions; moverImage?: string } = {},
) {
  const world = restoreWorld(
    options.moverImage === undefined ? {} : { mover: { image: options.moverImage } },
  );
  const { fake, ctx, clock } = world;
  fake.seed(resources.backupLocations, backupLocation(LOCATION));
  const copy = options.copy === undefined ? COPY : options.copy;
  const backup: Backup = fake.seed(
    resources.backups,
    completedBackup({
      spec: { backupLocation: LOCATION },
      volumes: [backupVolume(0, copy === null ? {} : { dataCopy: copy })],
    }),
  );
  const seeded = fake.seed(
    resources.restores,
    restoreIn('RestoringCloudSnap', { backup, ...options.restore }),
  );
  const name = seeded.metadata.name ?? '';
  const current = (): Restore => {
    const found = fake.peek(resources.restores, name, NAMESPACE);
    if (found === undefined) throw new Error('the restore is gone');
    return found;
  };
  /** One step, its status written as the reconciler would. */
  const step = async (): Promise<StepOutcome> => {
    const outcome = await restoringCloudSnap(ctx, current(), planOf(ctx, current()));
    const restore = current();
    setStatus(
      fake,
      resources.restores,
      name,
      NAMESPACE,
      applyOutcome(restore.status ?? {}, outcome, clock.now().toISOString(), restore.metadata.generation),
    );
    return outcome;
  };
  const volume = () => current().status?.volumes?.[0];
  const movers = (): Pod[] => ctx.cache.movers.list();
  return { ...world, backup, current, step, volume, movers };
}

const moverEnds = (
  w: ReturnType<typeof setup>,
  pod: string,
  phase: 'Succeeded' | 'Failed',
  result: unknown,
) => moverPodEnded(w.fake, OPERATOR_NAMESPACE, pod, phase, result, w.clock.now().toISOString());

const restored = {
  operation: 'restore',
  manifest: MANIFEST,
  seconds: 2.5,
  progress: {
    bytesTotal: 4096,
    bytesDone: 4096,
    bytesTransferred: 1200,
    files: 12,
    chunksNew: 0,
    chunksReused: 0,
  },
};

/** The PV controller's part: the mover's claim bound to a provisioned volume. */
function provision(w: ReturnType<typeof setup>, claimName: string): void {
  w.fake.seed(resources.persistentVolumes, {
    metadata: { name: PV },
    spec: {
      capacity: { storage: '10Gi' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Delete',
      storageClassName: 'fast',
      claimRef: { kind: 'PersistentVolumeClaim', namespace: OPERATOR_NAMESPACE, name: claimName, uid: 'u-1' },
    },
    status: { phase: 'Bound' },
  } satisfies PersistentVolume);
  const stored = w.fake.peek(resources.persistentVolumeClaims, claimName, OPERATOR_NAMESPACE);
  if (stored === undefined) throw new Error(`no claim ${claimName}`);
  const { resourceVersion: _rv, ...metadata } = stored.metadata;
  w.fake.seed(resources.persistentVolumeClaims, {
    ...stored,
    metadata,
    spec: { ...stored.spec, volumeName: PV },
    status: { phase: 'Bound' },
  });
}

/** The Backup's own VolumeSnapshot of the volume, ready on this cluster. */
function backupSnapshotReady(w: ReturnType<typeof setup>): void {
  w.fake.seed(
    resources.volumeSnapshots,
    volumeSnapshot(backupVolume(0).volumeSnapshotName, {
      readyToUse: true,
      labels: { [labels.backup]: w.backup.metadata.name ?? '' },
    }),
  );
}

const pv = (w: ReturnType<typeof setup>): PersistentVolume | undefined =>
  w.fake.peek(resources.persistentVolumes, PV);

describe('where a volume is restored from (spec.source.volumesFrom)', () => {
  it('Auto: the Backup’s own snapshot while it is ready on this cluster', async () => {
    const w = setup();
    backupSnapshotReady(w);
    await w.step();
    expect(w.volume()?.restoredFrom).toBe('Snapshot');
    expect(w.movers()).toEqual([]);
  });

  it('Auto: the copy in the bucket once the snapshot is gone, and keeps to it', async () => {
    const w = setup();
    await w.step();
    expect(w.volume()?.restoredFrom).toBe('BackupLocation');
    // A snapshot seen later does not change the source of a volume under way.
    backupSnapshotReady(w);
    await w.step();
    expect(w.volume()?.restoredFrom).toBe('BackupLocation');
  });

  it('Auto: the snapshot by its handle when the Backup holds no copy', async () => {
    const w = setup({ copy: null });
    await w.step();
    expect(w.volume()?.restoredFrom).toBe('Snapshot');
  });

  it('BackupLocation: fails at once, creating nothing, when the Backup holds no copy', async () => {
    const w = setup({ copy: null, restore: { volumesFrom: 'BackupLocation' } });
    w.fake.clearCalls();
    const outcome = await w.step();
    expect(outcome.type).toBe('fail');
    expect(outcome.type === 'fail' && outcome.errorCode).toBe('CloudSnapRestoreFailed');
    expect(outcome.message).toContain('holds no copy of volume data-pg-0 in a bucket');
    expect(outcome.message).toContain('not stored in a backup location that copies volume data');
    expect(w.fake.calls.filter((call) => call.verb === 'create')).toEqual([]);
  });

  it('Snapshot: the snapshot even when the bucket holds a copy', async () => {
    const w = setup({ restore: { volumesFrom: 'Snapshot' } });
    await w.step();
    expect(w.volume()?.restoredFrom).toBe('Snapshot');
    expect(w.movers()).toEqual([]);
  });
});

describe('a volume restored from the bucket', () => {
  it('is filled by a mover in the operator’s namespace, then handed to the restore’s claim', async () => {
    const w = setup({ restore: { volumesFrom: 'BackupLocation' } });
    await w.step();

    // The mover and its empty claim, in the operator's namespace: the credentials stay there.
    const [pod] = w.movers();
    expect(pod?.metadata.labels?.[labels.restoreNamespace]).toBe(NAMESPACE);
    const container = pod?.spec.containers[0] as
      | { args?: string[]; env?: { name: string; valueFrom?: { secretKeyRef?: { name: string } } }[] }
      | undefined;
    expect(container?.args).toEqual(['mover', 'restore', MANIFEST, '/data']);
    const keyRef = container?.env?.find((env) => env.name === MOVER_ENV.locationKey);
    expect(keyRef?.valueFrom?.secretKeyRef?.name).toBe('store-credentials');
    const volumes = pod?.spec.volumes as { persistentVolumeClaim?: { claimName: string } }[] | undefined;
    const claimName = volumes?.[0]?.persistentVolumeClaim?.claimName ?? '';
    const moverClaim = w.fake.peek(resources.persistentVolumeClaims, claimName, OPERATOR_NAMESPACE);
    expect(moverClaim?.spec.dataSource).toBeUndefined();
    expect((await w.fake.list(resources.secrets, { namespace: NAMESPACE })).items).toEqual([]);
    expect(w.volume()).toMatchObject({
      phase: 'Restoring',
      restoredFrom: 'BackupLocation',
      dataRestore: { manifest: MANIFEST, phase: 'Pending', attempts: 1, moverPod: pod?.metadata.name },
    });

    provision(w, claimName);
    await moverEnds(w, pod?.metadata.name ?? '', 'Succeeded', restored);
    await w.step();
    expect(w.volume()?.dataRestore).toMatchObject({
      phase: 'Completed',
      bytesDownloaded: 1200,
      files: 12,
      volumeName: PV,
    });

    // Kept, then released: the mover and its claim go, the volume stays.
    await w.step();
    expect(pv(w)?.spec.persistentVolumeReclaimPolicy).toBe('Retain');
    expect(pv(w)?.metadata.annotations?.[annotations.reclaimPolicy]).toBe('Delete');
    expect(w.movers().filter((mover) => mover.metadata.deletionTimestamp === undefined)).toEqual([]);
    expect(w.fake.peek(resources.persistentVolumeClaims, claimName, OPERATOR_NAMESPACE)).toBeUndefined();
    // The restore's claim first, named for the volume: a taken name would fail before it moves.
    const target = w.fake.peek(resources.persistentVolumeClaims, destinationClaim(0), NAMESPACE);
    expect(target?.spec).toMatchObject({ volumeName: PV, storageClassName: 'fast' });
    expect(target?.metadata.labels?.[labels.restoreAttempt]).toBe(w.current().status?.customResourceName);

    // Released (the PV controller): pointed at the restore's claim, by its uid.
    setStatus(w.fake, resources.persistentVolumes, PV, undefined, { phase: 'Released' });
    await w.step();
    expect(pv(w)?.spec.claimRef).toEqual({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      namespace: NAMESPACE,
      name: destinationClaim(0),
      uid: target?.metadata.uid,
    });

    // Bound: the volume's own reclaim policy back, the volume Bound, the restore on.
    setStatus(w.fake, resources.persistentVolumeClaims, destinationClaim(0), NAMESPACE, { phase: 'Bound' });
    const outcome = await w.step();
    expect(pv(w)?.spec.persistentVolumeReclaimPolicy).toBe('Delete');
    expect(pv(w)?.metadata.annotations?.[annotations.reclaimPolicy]).toBeUndefined();
    expect(outcome.type === 'advance' && outcome.to).toBe('RestoringDataServiceDeploymentCR');
    expect(w.volume()).toMatchObject({ phase: 'Bound', restoredFrom: 'BackupLocation' });
  });

  it('shows a running mover’s progress from its log, and looks again in a few seconds', async () => {
    const w = setup({ restore: { volumesFrom: 'BackupLocation' } });
    await w.step();
    const pod = w.movers()[0]?.metadata.name ?? '';
    await w.fake.mergePatch(
      resources.pods,
      pod,
      { status: { phase: 'Running' } },
      { namespace: OPERATOR_NAMESPACE, subresource: 'status' },
    );
    const line = (bytesDone: number) =>
      JSON.stringify({
        progress: {
          ...restored.progress,
          bytesTotal: 8 * 2 ** 20,
          bytesDone,
          bytesTransferred: bytesDone / 2,
        },
        bytesPerSecond: 2 * 2 ** 20,
        etaSeconds: 1.5,
      });
    w.fake.setLog(OPERATOR_NAMESPACE, pod, `${line(2 ** 20)}\n${line(5 * 2 ** 20)}\n`);
    const outcome = await w.step();
    expect(w.volume()?.dataRestore).toMatchObject({
      phase: 'Running',
      bytesTotal: 8 * 2 ** 20,
      bytesDone: 5 * 2 ** 20,
      bytesDownloaded: 2.5 * 2 ** 20,
      bytesPerSecond: 2 * 2 ** 20,
      secondsLeft: 2,
    });
    expect(w.volume()?.dataRestore?.message).toContain('5.0 of 8.0 MiB, 2.0 MiB/s, 2 s left');
    expect(outcome.type === 'wait' && outcome.requeueAfterMs).toBe(5_000);
  });

  it('fails on a claim name someone else holds before the filled volume moves, leaving both alone', async () => {
    const w = setup({ restore: { volumesFrom: 'BackupLocation' } });
    await w.fake.create(resources.persistentVolumeClaims, {
      metadata: { name: destinationClaim(0), namespace: NAMESPACE },
      spec: {},
    });
    await w.step();
    const [pod] = w.movers();
    const volumes = pod?.spec.volumes as { persistentVolumeClaim?: { claimName: string } }[] | undefined;
    provision(w, volumes?.[0]?.persistentVolumeClaim?.claimName ?? '');
    await moverEnds(w, pod?.metadata.name ?? '', 'Succeeded', restored);
    await w.step();
    const outcome = await w.step();
    expect(outcome.type === 'fail' && outcome.errorCode).toBe('DataServiceDeploymentNameAlreadyExist');
    expect(pv(w)?.spec.claimRef?.namespace).toBe(OPERATOR_NAMESPACE);
    expect(pv(w)?.spec.persistentVolumeReclaimPolicy).toBe('Delete');
  });

  it('fails naming the object when the mover finds a chunk damaged; a store outage is retried', async () => {
    const w = setup({ restore: { volumesFrom: 'BackupLocation' } });
    await w.step();
    const first = w.movers()[0]?.metadata.name ?? '';
    await moverEnds(w, first, 'Failed', { error: { code: 'StoreUnreachable', message: 'ECONNRESET' } });
    const retried = await w.step();
    expect(retried.type).toBe('wait');
    expect(retried.type === 'wait' && retried.reason).toBe('VolumesRetrying');
    w.clock.advance(6_000);
    await w.step();
    const second = w.volume()?.dataRestore?.moverPod ?? '';
    expect(second).not.toBe(first);
    expect(w.volume()?.dataRestore?.attempts).toBe(2);

    await moverEnds(w, second, 'Failed', {
      error: { code: 'ObjectCorrupt', message: 'repository/packs/ab/abcd: chunk 1f2e refused', object: 'x' },
    });
    const outcome = await w.step();
    expect(outcome.type === 'fail' && outcome.errorCode).toBe('CloudSnapRestoreFailed');
    expect(outcome.message).toContain('could not be restored from BackupLocation vault');
    expect(outcome.message).toContain('ObjectCorrupt: repository/packs/ab/abcd');
  });

  it('fails at once, creating nothing, when the operator has no mover image', async () => {
    const w = setup({ restore: { volumesFrom: 'BackupLocation' }, moverImage: '' });
    const outcome = await w.step();
    expect(outcome.type).toBe('fail');
    expect(outcome.message).toContain('no data mover image');
    expect(w.movers()).toEqual([]);
  });
});

describe('an attempt that ends before its volume reached its claim', () => {
  it('gives the kept volume its reclaim policy back and deletes it, with the mover and its claim', async () => {
    const w = setup({ restore: { volumesFrom: 'BackupLocation' } });
    await w.step();
    const [pod] = w.movers();
    const volumes = pod?.spec.volumes as { persistentVolumeClaim?: { claimName: string } }[] | undefined;
    const claimName = volumes?.[0]?.persistentVolumeClaim?.claimName ?? '';
    provision(w, claimName);
    await moverEnds(w, pod?.metadata.name ?? '', 'Succeeded', restored);
    await w.step();
    await w.step();
    setStatus(w.fake, resources.persistentVolumes, PV, undefined, { phase: 'Released' });
    expect(pv(w)?.spec.persistentVolumeReclaimPolicy).toBe('Retain');

    // Deleted before the restore's claim was made: the volume must not stay behind, kept.
    const attemptPod = await w.fake.create(resources.pods, {
      metadata: {
        name: 'left-mover',
        namespace: OPERATOR_NAMESPACE,
        labels: {
          [labels.restoreAttempt]: w.current().status?.customResourceName ?? '',
          [labels.moverFor]: w.current().metadata.uid ?? '',
        },
      },
      spec: { containers: [] },
    });
    const remaining = await cleanUpAttempt(w.fake, w.current(), {
      includeDeployment: true,
      movers: { namespace: OPERATOR_NAMESPACE },
    });
    expect(remaining).toBeGreaterThan(0);
    expect(w.fake.peek(resources.pods, attemptPod.metadata.name ?? '', OPERATOR_NAMESPACE)).toBeUndefined();
    // The policy back first (Delete: the provisioner deletes the storage), then the object.
    const onVolume = w.fake.calls
      .filter((call) => call.plural === 'persistentvolumes' && call.verb !== 'get' && call.verb !== 'list')
      .map((call) => call.verb);
    expect(onVolume.slice(-2)).toEqual(['patch', 'delete']);
    expect(pv(w)).toBeUndefined();
  });

  it("leaves the restored deployment's pods and claims alone when the operator's namespace is the restore's", async () => {
    const w = setup({ restore: { volumesFrom: 'BackupLocation' } });
    const attempt = { [labels.restoreAttempt]: w.current().status?.customResourceName ?? '' };
    const restoredPod = await w.fake.create(resources.pods, {
      metadata: { name: 'pg-restored-0', namespace: NAMESPACE, labels: attempt },
      spec: { containers: [] },
    });
    const restoredClaim = await w.fake.create(resources.persistentVolumeClaims, {
      metadata: { name: destinationClaim(0), namespace: NAMESPACE, labels: attempt },
      spec: {},
    });
    await cleanUpAttempt(w.fake, w.current(), { includeDeployment: false, movers: { namespace: NAMESPACE } });
    expect(w.fake.peek(resources.pods, restoredPod.metadata.name ?? '', NAMESPACE)).toBeDefined();
    expect(
      w.fake.peek(resources.persistentVolumeClaims, restoredClaim.metadata.name ?? '', NAMESPACE),
    ).toBeDefined();
  });
});
