// RestoringCloudSnap from the bucket: a volume rebuilt from the Backup's copy in its backup
// location, as Velero's data download does it. A data mover pod in the operator's namespace, where
// the location's credentials are, fills an empty claim there; its PersistentVolume then moves to
// the restore's claim in the destination namespace: kept (Retain) while the mover's claim is
// deleted, its claimRef pointed at the restore's claim, that claim created bound to it, and its
// reclaim policy put back. No credential reaches the tenant's namespace. Every step is found again
// from the objects' state, so a restarted operator goes on where the last one stopped.

import { annotations, labels } from '../../api/constants.js';
import type {
  Restore,
  VolumeDataRestore,
  VolumeDataSource,
  VolumeRestoreStatus,
} from '../../api/generated/types.js';
import type { Labels, PersistentVolume } from '../../api/kubernetes.js';
import { childName } from '../../naming.js';
import type { ObjectClient } from '../../runtime/client.js';
import { resources } from '../../runtime/resources.js';
import { volumeClaim } from '../../storage/snapshots.js';
import { deleteMoverPods, stepMoverRun, transferFigures } from '../shared/mover-run.js';
import { createdUnlessTaken } from '../shared/objects.js';
import { createRestoredClaim } from './claims.js';
import {
  scaffoldingLabels,
  type PlannedVolume,
  type RestoreContext,
  type RestorePlan,
  type VolumeProgress,
} from './context.js';

/** While the volume moves between claims nothing the restore watches changes: look again this soon. */
const REBIND_RECHECK_MS = 1_000;

const RETRY = 'then change spec.recreateToken to try again';

/**
 * Where a volume's data comes from: what status recorded for it, else what spec.source.volumesFrom
 * asks for (Auto: the Backup's own snapshot while it is ready on this cluster, else the copy in the
 * bucket if there is one, else the snapshot by its handle); or why the bucket, asked for, cannot be.
 */
export function volumeSourceOf(
  ctx: RestoreContext,
  restore: Restore,
  plan: RestorePlan,
  volume: PlannedVolume,
): VolumeDataSource | { problem: string } {
  const recorded = restore.status?.volumes?.find((status) => status.pvcName === volume.pvcName);
  if (recorded?.restoredFrom !== undefined) return recorded.restoredFrom;
  const wanted = restore.spec.source.volumesFrom ?? 'Auto';
  const copy = volume.source.dataCopy;
  const copied = copy?.phase === 'Completed';
  if (wanted === 'Snapshot') return 'Snapshot';
  if (wanted === 'BackupLocation') {
    if (copied) return 'BackupLocation';
    const why =
      copy === undefined
        ? 'it was not stored in a backup location that copies volume data'
        : `its copy is ${copy.phase ?? 'Pending'}`;
    return {
      problem: `spec.source.volumesFrom is BackupLocation, but Backup ${plan.backup.metadata.name ?? ''} holds no copy of volume ${volume.source.pvcName} in a bucket (${why}); restore it from its snapshot (volumesFrom: Auto or Snapshot), or from a Backup stored with copyVolumeData.`,
    };
  }
  return localSnapshotReady(ctx, plan, volume) || !copied ? 'Snapshot' : 'BackupLocation';
}

/** Whether the Backup was taken on this cluster and its VolumeSnapshot of the volume is ready here. */
function localSnapshotReady(ctx: RestoreContext, plan: RestorePlan, volume: PlannedVolume): boolean {
  if (plan.backup.spec.syncedFrom !== undefined) return false;
  const snapshot = ctx.cache.snapshots.get(
    `${plan.backup.metadata.namespace ?? ''}/${volume.source.volumeSnapshotName}`,
  );
  return snapshot?.status?.readyToUse === true && snapshot.metadata.deletionTimestamp === undefined;
}

/** The mover's claim of the `index`th volume, and its pod per attempt. */
function scaffoldingNames(
  restore: Restore,
  index: number,
): { claim: string; pod: (attempt: number) => string } {
  const attempt = restore.status?.customResourceName ?? '';
  const uid = restore.metadata.uid ?? '';
  return {
    claim: childName(attempt, uid, 'fill', index),
    pod: (run) => childName(attempt, uid, `fill-${index}`, run),
  };
}

function moverLabels(restore: Restore, plan: RestorePlan): Labels {
  return {
    ...scaffoldingLabels(restore, plan.backup, plan.deploymentName),
    [labels.moverFor]: restore.metadata.uid ?? '',
    [labels.restoreNamespace]: restore.metadata.namespace ?? '',
  };
}

/** One step of restoring `volume` from the bucket: filling it, or moving it to the restore's claim. */
export async function restoreFromBucket(
  ctx: RestoreContext,
  restore: Restore,
  plan: RestorePlan,
  volume: PlannedVolume,
): Promise<VolumeProgress> {
  const locationName = plan.backup.spec.backupLocation ?? '';
  const recorded = restore.status?.volumes?.find((status) => status.pvcName === volume.pvcName);
  const data: VolumeDataRestore = recorded?.dataRestore ?? {
    manifest: volume.source.dataCopy?.manifest ?? '',
    phase: 'Pending',
    attempts: 0,
  };
  const names = scaffoldingNames(restore, volume.index);
  const restoring = (dataRestore: VolumeDataRestore, reason: string): VolumeRestoreStatus => ({
    pvcName: volume.pvcName,
    cloudSnapId: volume.source.cloudSnapId ?? '',
    restoredFrom: 'BackupLocation',
    phase: 'Restoring',
    reason,
    dataRestore,
  });
  const notRestored = `volume ${volume.pvcName} could not be restored from BackupLocation ${locationName}`;

  if (data.phase !== 'Completed') {
    const location = ctx.cache.locations.get(locationName);
    if (location === undefined) {
      return {
        problem: `${notRestored}: the BackupLocation does not exist on this cluster; create it with its credentials Secret (the same locationKey), ${RETRY}.`,
      };
    }
    if (ctx.mover.image === '') {
      return {
        problem: `${notRestored}: the operator has no data mover image (mover.image in its configuration; the Helm chart sets it to the operator's image).`,
      };
    }
    const step = await stepMoverRun(ctx, {
      attempts: data.attempts ?? 0,
      podName: names.pod,
      pod: {
        labels: moverLabels(restore, plan),
        location,
        claimName: names.claim,
        operation: 'restore',
        manifest: data.manifest,
      },
      prepare: () => createFillClaim(ctx, restore, plan, volume, names.claim),
    });
    if ('problem' in step) return { problem: `${notRestored}: ${step.problem}` };
    const run = { attempts: step.attempts, moverPod: step.moverPod };
    if (step.phase !== 'Completed') {
      const { progress } = step;
      const figures =
        progress === undefined
          ? {}
          : {
              ...transferFigures(progress.progress, progress),
              bytesDownloaded: progress.progress.bytesTransferred,
            };
      const status = restoring(
        { ...data, ...run, phase: step.phase, message: step.message, ...figures },
        `restoring from BackupLocation ${locationName}: ${step.message}`,
      );
      return {
        ...status,
        ...(step.retrying === undefined ? {} : { retrying: step.retrying }),
        ...(step.recheckMs === undefined ? {} : { recheckAt: ctx.now().getTime() + step.recheckMs }),
      };
    }
    const { result } = step;
    if (result.manifest !== data.manifest) {
      return {
        problem: `${notRestored}: mover pod ${step.moverPod} restored ${result.manifest}, not ${data.manifest}`,
      };
    }
    const claim = await ctx.client.get(resources.persistentVolumeClaims, names.claim, ctx.namespace);
    const volumeName = claim?.spec.volumeName;
    if (volumeName === undefined) {
      return { problem: `${notRestored}: the mover's claim ${ctx.namespace}/${names.claim} has no volume` };
    }
    const filled: VolumeDataRestore = {
      manifest: data.manifest,
      ...run,
      phase: 'Completed',
      message: `restored in ${result.seconds.toFixed(1)} s`,
      ...transferFigures(result.progress),
      bytesDownloaded: result.progress.bytesTransferred,
      completionTime: ctx.now().toISOString(),
      volumeName,
    };
    return {
      ...restoring(filled, `data restored; moving volume ${volumeName} to the restore's claim`),
      recheckAt: ctx.now().getTime(),
    };
  }
  return handOver(ctx, restore, plan, volume, data, restoring);
}

/** Creates the mover's empty claim (found, if a restart repeats this). */
function createFillClaim(
  ctx: RestoreContext,
  restore: Restore,
  plan: RestorePlan,
  volume: PlannedVolume,
  claimName: string,
): Promise<string | undefined> {
  return createdUnlessTaken(
    ctx.client,
    resources.persistentVolumeClaims,
    volumeClaim({
      name: claimName,
      namespace: ctx.namespace,
      claim: volume.claim,
      ...(volume.source.sizeBytes === undefined ? {} : { minimumBytes: volume.source.sizeBytes }),
      labels: moverLabels(restore, plan),
    }),
  );
}

/**
 * The filled volume's way to the restore's claim, one move per look: kept and released by the
 * mover's claim, pointed at the restore's claim, that claim created, and once it is bound the
 * volume's reclaim policy put back.
 */
async function handOver(
  ctx: RestoreContext,
  restore: Restore,
  plan: RestorePlan,
  volume: PlannedVolume,
  data: VolumeDataRestore,
  restoring: (data: VolumeDataRestore, reason: string) => VolumeRestoreStatus,
): Promise<VolumeProgress> {
  const namespace = restore.metadata.namespace ?? '';
  const attempt = restore.status?.customResourceName ?? '';
  const volumeName = data.volumeName ?? '';
  const names = scaffoldingNames(restore, volume.index);
  const soon = ctx.now().getTime() + REBIND_RECHECK_MS;
  const cached = ctx.cache.claims.get(`${namespace}/${volume.pvcName}`);
  if (cached !== undefined && cached.metadata.labels?.[labels.restoreAttempt] !== attempt) {
    return {
      problem: `PersistentVolumeClaim ${namespace}/${volume.pvcName} belongs to another restore attempt; nothing of theirs was changed.`,
    };
  }
  if (cached?.status?.phase === 'Bound') {
    await putBackReclaimPolicy(ctx.client, await ctx.client.get(resources.persistentVolumes, volumeName));
    const { reason: _movingFor, ...bound } = restoring(data, '');
    return { ...bound, phase: 'Bound' };
  }
  const pv = await ctx.client.get(resources.persistentVolumes, volumeName);
  if (pv === undefined) {
    return {
      problem: `volume ${volume.pvcName}: PersistentVolume ${volumeName}, filled from the bucket, is gone; ${RETRY}.`,
    };
  }
  // The restore's claim first, bound by name to the volume (it waits until the volume points back
  // at it): a name someone else holds fails the restore before the volume moves anywhere.
  let claim = cached;
  if (claim === undefined) {
    const created = await createRestoredClaim(ctx, restore, plan, volume, {
      volumeName,
      ...(pv.spec.storageClassName === undefined ? {} : { storageClassName: pv.spec.storageClassName }),
    });
    if ('conflict' in created) return created;
    claim = created.claim;
  }
  const ref = pv.spec.claimRef;
  if (ref?.namespace === ctx.namespace && ref.name === names.claim) {
    if (pv.status?.phase !== 'Released') {
      // Retain first: deleting the mover's claim must not delete the volume.
      if (pv.spec.persistentVolumeReclaimPolicy !== 'Retain') {
        await ctx.client.mergePatch(resources.persistentVolumes, volumeName, {
          metadata: {
            labels: { [labels.restoreAttempt]: attempt },
            annotations: { [annotations.reclaimPolicy]: pv.spec.persistentVolumeReclaimPolicy ?? 'Delete' },
          },
          spec: { persistentVolumeReclaimPolicy: 'Retain' },
        });
      }
      await deleteMoverPods(ctx.client, ctx.namespace, data.attempts ?? 0, names.pod);
      await ctx.client.delete(resources.persistentVolumeClaims, names.claim, { namespace: ctx.namespace });
      return { ...restoring(data, `releasing volume ${volumeName} from the mover's claim`), recheckAt: soon };
    }
    await ctx.client.mergePatch(resources.persistentVolumes, volumeName, {
      spec: {
        claimRef: {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          namespace,
          name: volume.pvcName,
          uid: claim.metadata.uid ?? null,
          resourceVersion: null,
        },
      },
    });
    return { ...restoring(data, `volume ${volumeName} handed to the claim, binding`), recheckAt: soon };
  }
  if (ref !== undefined && (ref.namespace !== namespace || ref.name !== volume.pvcName)) {
    return {
      problem: `volume ${volume.pvcName}: PersistentVolume ${volumeName} is claimed by ${ref.namespace ?? ''}/${ref.name ?? ''}, not by this restore; nothing of it was changed.`,
    };
  }
  return { ...restoring(data, `claim binding to volume ${volumeName}`), recheckAt: soon };
}

/** Gives a volume this restore kept (Retain) its own reclaim policy back; nothing for others. */
export async function putBackReclaimPolicy(
  client: ObjectClient,
  pv: PersistentVolume | undefined,
): Promise<void> {
  const original = pv?.metadata.annotations?.[annotations.reclaimPolicy];
  if (pv === undefined || original === undefined) return;
  await client.mergePatch(resources.persistentVolumes, pv.metadata.name ?? '', {
    metadata: { annotations: { [annotations.reclaimPolicy]: null } },
    spec: { persistentVolumeReclaimPolicy: original },
  });
}
