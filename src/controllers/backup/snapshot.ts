// InProgress: one VolumeSnapshot per volume; Completed when every one is ready to use.

import type { Backup, BackupStatus, BackupVolume } from '../../api/generated/types.js';
import { labels } from '../../api/constants.js';
import { adapterFor } from '../../dataservices/index.js';
import { resources } from '../../runtime/resources.js';
import { snapshotState, volumeSnapshotForClaim } from '../../storage/snapshots.js';
import { SNAPSHOTS_RETRYING } from '../shared/conditions.js';
import { ensureCreated } from '../shared/objects.js';
import { advance, fail, wait } from '../shared/outcome.js';
import { backupLabels, type BackupContext, type BackupOutcome } from './context.js';

export async function takeSnapshots(ctx: BackupContext, backup: Backup): Promise<BackupOutcome> {
  const status = backup.status ?? {};
  const namespace = backup.metadata.namespace ?? '';
  const volumes = status.volumes ?? [];
  const taken = (volume: BackupVolume): BackupOutcome =>
    fail(
      'SnapshotFailed',
      `VolumeSnapshot ${namespace}/${volume.volumeSnapshotName} already exists and belongs to something else.`,
    );
  let ready = 0;
  // The snapshot controller retries a snapshot whose status reports an error and clears the error
  // on success (VolumeSnapshotStatus.error): progress to show, bounded by the backup's deadline.
  const retried: string[] = [];
  for (const volume of volumes) {
    const snapshot = ctx.cache.snapshots.get(`${namespace}/${volume.volumeSnapshotName}`);
    if (snapshot === undefined) {
      const result = await ensureCreated(
        ctx.client,
        resources.volumeSnapshots,
        volumeSnapshotForClaim({
          name: volume.volumeSnapshotName,
          namespace,
          pvcName: volume.pvcName,
          ...(volume.volumeSnapshotClassName === undefined
            ? {}
            : { className: volume.volumeSnapshotClassName }),
          labels: backupLabels(backup),
        }),
        labels.backup,
      );
      if (result.outcome === 'taken') return taken(volume);
      continue;
    }
    // The cache holds every VolumeSnapshot labelled with some backup: one of this name may be another's.
    if (snapshot.metadata.labels?.[labels.backup] !== backup.metadata.name) return taken(volume);
    const state = snapshotState(snapshot);
    if (state.ready) ready++;
    else if (state.error !== undefined) retried.push(`${volume.pvcName}: ${state.error}`);
  }
  if (ready < volumes.length) {
    const errors = retried.length === 0 ? '' : `; the snapshotter retries after: ${retried.join('; ')}`;
    return wait(
      retried.length === 0 ? 'SnapshotsInProgress' : SNAPSHOTS_RETRYING,
      `${ready}/${volumes.length} snapshot(s) of ${adapterFor(backup.spec.deployment.kind)?.kind ?? ''} ${backup.spec.deployment.name} ready${errors}`,
    );
  }
  return complete(ctx, backup, status);
}

/**
 * All snapshots are ready: read their handles and sizes from the contents, once. A backup that
 * waits for its record keeps them in its status, so its retries read nothing again.
 */
async function complete(ctx: BackupContext, backup: Backup, status: BackupStatus): Promise<BackupOutcome> {
  const namespace = backup.metadata.namespace ?? '';
  const volumes: BackupVolume[] = [];
  for (const volume of status.volumes ?? []) {
    if (volume.cloudSnapId !== undefined) {
      volumes.push(volume);
      continue;
    }
    const snapshot = ctx.cache.snapshots.get(`${namespace}/${volume.volumeSnapshotName}`);
    const contentName = snapshot?.status?.boundVolumeSnapshotContentName;
    const content =
      contentName === undefined
        ? undefined
        : await ctx.client.get(resources.volumeSnapshotContents, contentName);
    const state = snapshot === undefined ? undefined : snapshotState(snapshot, content);
    if (state?.handle === undefined) {
      return fail(
        'SnapshotFailed',
        `the snapshot of ${volume.pvcName} is ready but records no snapshot handle.`,
      );
    }
    volumes.push({
      ...volume,
      cloudSnapId: state.handle,
      ...(state.sizeBytes === undefined ? {} : { sizeBytes: state.sizeBytes }),
      ...(content?.spec.driver === undefined ? {} : { driver: content.spec.driver }),
    });
  }
  const fileSize = volumes.reduce((sum, volume) => sum + (volume.sizeBytes ?? 0), 0);
  return advance('Completed', `${volumes.length} snapshot(s) ready, ${fileSize} bytes`, {
    volumes,
    cloudSnapId: volumes[0]?.cloudSnapId ?? '',
    fileSize,
  });
}
