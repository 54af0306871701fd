// RestoringCloudSnap (PDS RESTORING_CLOUDSNAP): a PVC per volume from the backup's snapshots (or,
// see from-bucket.ts, from the backup's copy in its backup location),
// then wait until all are Bound, or Pending by design: a claim of a WaitForFirstConsumer class is
// provisioned only once a pod that mounts it is scheduled, which the restored deployment's pods do
// in the phases after this one. A snapshot in another namespace, or taken on another cluster (a
// synced Backup), is reached through a pre-provisioned VolumeSnapshotContent (by snapshot handle)
// and a VolumeSnapshot bound to it.

import { labels } from '../../api/constants.js';
import type { Restore, VolumeRestorePhase, VolumeRestoreStatus } from '../../api/generated/types.js';
import type { PersistentVolumeClaim, StorageClass } from '../../api/kubernetes.js';
import { childName } from '../../naming.js';
import { resources } from '../../runtime/resources.js';
import { preProvisionedContent, snapshotOfContent, snapshotState } from '../../storage/snapshots.js';
import {
  bindsOnFirstConsumer,
  SELECTED_NODE_ANNOTATION,
  storageClassOf,
} from '../../storage/storage-classes.js';
import { VOLUMES_RETRYING } from '../shared/conditions.js';
import { ensureCreated } from '../shared/objects.js';
import { createRestoredClaim } from './claims.js';
import {
  claimProvisioning,
  notRestoredFrom,
  scaffoldingLabels,
  type PlannedVolume,
  type RestoreContext,
  type RestorePlan,
  type VolumeProgress,
} from './context.js';
import { restoreFromBucket, volumeSourceOf } from './from-bucket.js';
import { advance, fail, wait, type StepOutcome } from './outcome.js';

export async function restoringCloudSnap(
  ctx: RestoreContext,
  restore: Restore,
  plan: RestorePlan,
): Promise<StepOutcome> {
  const volumes: VolumeRestoreStatus[] = [];
  let recheckAt = Infinity;
  let retrying = 0;
  for (const volume of plan.volumes) {
    const progress = await restoreVolume(ctx, restore, plan, volume);
    if ('problem' in progress) {
      return fail('CloudSnapRestoreFailed', progress.problem, {
        volumes: withFailed(restore, volumes, volume, progress.problem),
      });
    }
    if ('conflict' in progress) {
      return {
        ...progress.conflict,
        status: { volumes: withFailed(restore, volumes, volume, progress.conflict.message) },
      };
    }
    const { recheckAt: at, retrying: retried, ...status } = progress;
    recheckAt = Math.min(recheckAt, at ?? Infinity);
    if (retried === true) retrying++;
    volumes.push(status);
  }
  const inPhase = (phase: VolumeRestorePhase): number =>
    volumes.filter((volume) => volume.phase === phase).length;
  const bound = inPhase('Bound');
  const deferred = inPhase('WaitingForFirstConsumer');
  if (bound + deferred === volumes.length) {
    const message =
      deferred === 0
        ? `all ${bound} volume(s) restored and bound`
        : `all ${volumes.length} volume(s) restored: ${bound} bound, ${deferred} bind when the restored pods are scheduled (WaitForFirstConsumer)`;
    return advance('RestoringDataServiceDeploymentCR', message, { volumes });
  }
  const recheck = Number.isFinite(recheckAt) ? Math.max(0, recheckAt - ctx.now().getTime()) : undefined;
  const waitingForConsumer = deferred === 0 ? '' : `, ${deferred} waiting for their first consumer`;
  const retried = retrying === 0 ? '' : `, ${retrying} retried by the storage (see volumes)`;
  return wait(
    retrying === 0 ? 'RestoringVolumes' : VOLUMES_RETRYING,
    `${bound}/${volumes.length} volume(s) bound${waitingForConsumer}${retried}`,
    { volumes },
    recheck,
  );
}

async function restoreVolume(
  ctx: RestoreContext,
  restore: Restore,
  plan: RestorePlan,
  volume: PlannedVolume,
): Promise<VolumeProgress> {
  const restoredFrom = volumeSourceOf(ctx, restore, plan, volume);
  if (typeof restoredFrom !== 'string') return restoredFrom;
  if (restoredFrom === 'BackupLocation') return restoreFromBucket(ctx, restore, plan, volume);
  const namespace = restore.metadata.namespace ?? '';
  const base = {
    pvcName: volume.pvcName,
    cloudSnapId: volume.source.cloudSnapId ?? '',
    restoredFrom,
  };
  const source = await snapshotInNamespace(ctx, restore, plan, volume);
  if ('problem' in source) return source;
  if (!source.ready) {
    return {
      ...base,
      phase: 'Restoring',
      reason: source.waiting,
      ...(source.retrying === true ? { retrying: true } : {}),
    };
  }

  const claim = ctx.cache.claims.get(`${namespace}/${volume.pvcName}`);
  if (claim === undefined) {
    const created = await createRestoredClaim(ctx, restore, plan, volume, {
      snapshotName: source.snapshotName,
    });
    if ('conflict' in created) return created;
    return { ...base, phase: 'Restoring', reason: 'volume requested from the snapshot' };
  }
  // The cache holds every claim labelled with some restore: one of this name may be another's.
  if (claim.metadata.labels?.[labels.restoreAttempt] !== restore.status?.customResourceName) {
    return {
      problem: `PersistentVolumeClaim ${namespace}/${volume.pvcName} belongs to another restore attempt; nothing of theirs was changed.`,
    };
  }
  if (claim.status?.phase === 'Bound') return { ...base, phase: 'Bound' };
  const verdict = claimProvisioning(ctx, claim);
  const from = notRestoredFrom(base);
  if (verdict.kind === 'failed') return { problem: `${from}: ${verdict.message}` };
  if (verdict.kind === 'retrying') {
    const until =
      verdict.giveUpAt === undefined ? '' : `; the restore fails at ${verdict.giveUpAt} unless it succeeds`;
    return {
      ...base,
      phase: 'Restoring',
      reason: `provisioning failed, the provisioner retries: ${verdict.message}${until}`,
      retrying: true,
      // The grace period ends without an event: look again then.
      ...(verdict.giveUpAt === undefined ? {} : { recheckAt: Date.parse(verdict.giveUpAt) }),
    };
  }
  // Judged after the verdict: once a node is selected the class provisions, and its failures count.
  const storageClass = storageClassOf(claim, ctx.cache.storageClasses);
  if (storageClass !== undefined && bindsOnFirstConsumer(storageClass)) {
    return { ...base, phase: 'WaitingForFirstConsumer', reason: firstConsumerReason(claim, storageClass) };
  }
  // An Immediate class is provisioning now; a class that does not exist (yet) is waited for too,
  // as the provisioner's events explain.
  return { ...base, phase: 'Restoring', reason: 'waiting for the volume to be provisioned and bound' };
}

function firstConsumerReason(claim: PersistentVolumeClaim, storageClass: StorageClass): string {
  const why = `StorageClass ${storageClass.metadata.name ?? ''} uses WaitForFirstConsumer`;
  const node = claim.metadata.annotations?.[SELECTED_NODE_ANNOTATION];
  return node === undefined
    ? `binds when the restored pod is scheduled (${why})`
    : `being provisioned for the pod scheduled on node ${node} (${why})`;
}

/** The VolumeSnapshot in the restore's namespace that the PVC is made from, creating it if needed. */
async function snapshotInNamespace(
  ctx: RestoreContext,
  restore: Restore,
  plan: RestorePlan,
  volume: PlannedVolume,
): Promise<
  | { ready: true; snapshotName: string }
  | { ready: false; waiting: string; retrying?: true }
  | { problem: string }
> {
  const namespace = restore.metadata.namespace ?? '';
  const synced = plan.backup.spec.syncedFrom !== undefined;
  if (plan.backup.metadata.namespace === namespace && !synced) {
    return { ready: true, snapshotName: volume.source.volumeSnapshotName };
  }
  const attempt = restore.status?.customResourceName ?? '';
  const name = childName(attempt, restore.metadata.uid ?? '', 'snap', volume.index);
  const handle = volume.source.cloudSnapId;
  const driver = volume.source.driver;
  if (handle === undefined || driver === undefined) {
    return {
      problem: `Backup ${plan.backup.metadata.name ?? ''} does not record the snapshot handle and driver of ${volume.source.pvcName}, which a restore into another namespace needs.`,
    };
  }
  // The class the snapshot was taken with may not exist here; the location names this cluster's.
  const className =
    (synced
      ? ctx.cache.locations.get(plan.backup.spec.backupLocation ?? '')?.spec.volumeSnapshotClassName
      : undefined) ?? volume.source.volumeSnapshotClassName;
  const labels = scaffoldingLabels(restore, plan.backup, plan.deploymentName);
  const content = ctx.cache.contents.get(name);
  if (content === undefined) {
    await ensureCreated(
      ctx.client,
      resources.volumeSnapshotContents,
      preProvisionedContent({
        name,
        driver,
        snapshotHandle: handle,
        snapshotName: name,
        snapshotNamespace: namespace,
        ...(className === undefined ? {} : { className }),
        labels,
      }),
    );
  }
  const snapshot = ctx.cache.snapshots.get(`${namespace}/${name}`);
  if (snapshot === undefined) {
    await ensureCreated(
      ctx.client,
      resources.volumeSnapshots,
      snapshotOfContent({ name, namespace, contentName: name, labels }),
    );
    return { ready: false, waiting: `snapshot ${handle} is being imported into ${namespace}` };
  }
  const state = snapshotState(snapshot, content);
  // The snapshot controller retries and clears status.error on success: progress, not failure.
  if (!state.ready) {
    return state.error === undefined
      ? { ready: false, waiting: `waiting for imported snapshot ${name} to be ready` }
      : {
          ready: false,
          waiting: `imported snapshot ${name} is not ready; the snapshotter retries after: ${state.error}`,
          retrying: true,
        };
  }
  return { ready: true, snapshotName: name };
}

/**
 * The volumes' status once `volume` failed: those looked at in this reconcile, the failed one, and
 * for the volumes after it what status showed before (the plan's order is status's order).
 */
function withFailed(
  restore: Restore,
  done: VolumeRestoreStatus[],
  volume: PlannedVolume,
  reason: string,
): VolumeRestoreStatus[] {
  const failed: VolumeRestoreStatus = {
    pvcName: volume.pvcName,
    cloudSnapId: volume.source.cloudSnapId ?? '',
    phase: 'Failed',
    reason,
  };
  return [...done, failed, ...(restore.status?.volumes ?? []).slice(done.length + 1)];
}
