// InProgress, once the snapshots are ready: a backup stored in a location that copies volume data
// sends each volume's files into the location's repository before its record is stored. A data
// mover pod per volume runs in the operator's namespace, where the location's credentials are, and
// mounts a claim made from the snapshot there: a pre-provisioned VolumeSnapshotContent by the
// snapshot's handle (Retain: deleting it never deletes the snapshot), a VolumeSnapshot bound to it,
// a PVC from that. All four are named from the Backup's UID and the volume, so a restarted operator
// finds them; they are deleted once the copies are done, or the backup failed or is deleted.

import { labels } from '../../api/constants.js';
import type { Backup, BackupLocation, BackupVolume, VolumeDataCopy } from '../../api/generated/types.js';
import type { Pod } from '../../api/kubernetes.js';
import { boundedName, shortHash } from '../../naming.js';
import { resources } from '../../runtime/resources.js';
import { defineIndex } from '../../runtime/cache.js';
import { volumeClaim, preProvisionedContent, snapshotOfContent } from '../../storage/snapshots.js';
import { DATA_COPY_RETRYING } from '../shared/conditions.js';
import type { MoverProgress } from '../../storage/data-mover.js';
import type { TransferProgress } from '../../storage/repository/files.js';
import { deleteMoverPods, stepMoverRun, transferFigures } from '../shared/mover-run.js';
import { createdUnlessTaken } from '../shared/objects.js';
import { fail, wait } from '../shared/outcome.js';
import { moverLabels, type BackupContext, type BackupOutcome } from './context.js';

/** The Ready condition's reason while the movers copy. */
export const COPYING = 'CopyingVolumeData';

/** Mover pods by the "namespace/name" of the Backup they copy. */
export const moversByBackup = defineIndex<Pod>('backup', (pod) => {
  const name = pod.metadata.labels?.[labels.backup];
  const namespace = pod.metadata.labels?.[labels.backupNamespace];
  return name === undefined || namespace === undefined ? [] : [`${namespace}/${name}`];
});

/** The location whose bucket the backup's volumes are copied into, if any. */
export function copyLocation(ctx: BackupContext, backup: Backup): BackupLocation | undefined {
  const name = backup.spec.backupLocation;
  if (name === undefined || backup.spec.syncedFrom !== undefined) return undefined;
  const location = ctx.cache.locations.get(name);
  return location?.spec.copyVolumeData === false ? undefined : location;
}

/** The names of what copies the `index`th volume (the pod's per attempt). */
function scaffoldingNames(
  backup: Backup,
  index: number,
): { claim: string; pod: (attempt: number) => string } {
  const id = shortHash([backup.metadata.uid ?? ''], 6);
  const claim = boundedName('snapback-mover', backup.metadata.name ?? '', `${id}-${index}`);
  return {
    claim,
    pod: (attempt) => boundedName('snapback-mover', backup.metadata.name ?? '', `${id}-${index}-${attempt}`),
  };
}

/** The manifest's name in the repository: unique per cluster, Backup (by UID) and volume. */
export const manifestName = (ctx: BackupContext, backup: Backup, volume: BackupVolume): string =>
  [
    ctx.config.clusterName,
    backup.metadata.namespace ?? '',
    `${backup.metadata.name ?? ''}-${shortHash([backup.metadata.uid ?? ''], 6)}`,
    volume.pvcName,
  ].join('/');

type VolumeCopy = { copy: VolumeDataCopy; retrying?: true; recheckMs?: number } | { problem: string };

/**
 * The snapshots are ready (`done`, the advance to Completed): `done` again once every volume's
 * manifest is stored, or still InProgress with the copies' progress, or Failed naming a mover's
 * failure that another try would not change.
 */
export async function copyVolumeData(
  ctx: BackupContext,
  backup: Backup,
  done: Extract<BackupOutcome, { type: 'advance' }>,
): Promise<BackupOutcome> {
  const location = copyLocation(ctx, backup);
  if (location === undefined) return done;
  const locationName = location.metadata.name ?? '';
  const volumes = done.status?.volumes ?? [];
  if (ctx.mover.image === '') {
    return fail(
      'VolumeDataCopyFailed',
      `BackupLocation ${locationName} copies volume data, but the operator has no data mover image (mover.image in its configuration; the Helm chart sets it to the operator's image). Set it, or set copyVolumeData: false on the location, then create a new Backup.`,
      done.status,
    );
  }
  const next: BackupVolume[] = [];
  let retrying = 0;
  let recheckMs = Infinity;
  for (const [index, volume] of volumes.entries()) {
    const copied = await copyVolume(ctx, backup, location, volume, index);
    if ('problem' in copied) {
      return fail(
        'VolumeDataCopyFailed',
        `copying ${volume.pvcName} into BackupLocation ${locationName} failed: ${copied.problem}`,
        { ...done.status, volumes: [...next, ...volumes.slice(index)] },
      );
    }
    if (copied.retrying === true) retrying++;
    recheckMs = Math.min(recheckMs, copied.recheckMs ?? Infinity);
    next.push({ ...volume, dataCopy: copied.copy });
  }
  const copies = next.map((volume) => volume.dataCopy);
  const completed = copies.filter((copy) => copy?.phase === 'Completed').length;
  const status = { ...done.status, volumes: next };
  if (completed < next.length) {
    const doing = next
      .filter((volume) => volume.dataCopy?.phase !== 'Completed')
      .map((volume) => `${volume.pvcName}: ${volume.dataCopy?.message ?? ''}`);
    return wait(
      retrying === 0 ? COPYING : DATA_COPY_RETRYING,
      `snapshots ready; ${completed}/${next.length} volume(s) copied into BackupLocation ${locationName}; ${doing.join('; ')}`,
      status,
      Number.isFinite(recheckMs) ? recheckMs : undefined,
    );
  }
  await removeMovers(ctx, backup, next);
  const total = (field: 'bytesTotal' | 'bytesUploaded'): number =>
    copies.reduce((sum, copy) => sum + (copy?.[field] ?? 0), 0);
  return {
    ...done,
    message: `${done.message}; ${next.length} volume(s) copied into BackupLocation ${locationName}: ${total('bytesTotal')} bytes of files, ${total('bytesUploaded')} bytes uploaded`,
    status,
  };
}

async function copyVolume(
  ctx: BackupContext,
  backup: Backup,
  location: BackupLocation,
  volume: BackupVolume,
  index: number,
): Promise<VolumeCopy> {
  const copy: VolumeDataCopy = volume.dataCopy ?? {
    manifest: manifestName(ctx, backup, volume),
    phase: 'Pending',
    attempts: 0,
  };
  if (copy.phase === 'Completed') return { copy };
  const names = scaffoldingNames(backup, index);
  const step = await stepMoverRun(ctx, {
    attempts: copy.attempts ?? 0,
    podName: names.pod,
    pod: {
      labels: moverLabels(backup),
      location,
      claimName: names.claim,
      operation: 'backup',
      manifest: copy.manifest,
    },
    ownerLabel: labels.moverFor,
    prepare: () => mountSnapshot(ctx, backup, volume, names.claim),
  });
  if ('problem' in step) return step;
  const run = { attempts: step.attempts, moverPod: step.moverPod };
  if (step.phase !== 'Completed') {
    const { retrying, recheckMs, progress } = step;
    return {
      copy: {
        ...copy,
        ...run,
        phase: step.phase,
        message: step.message,
        ...(progress === undefined ? {} : copyFigures(progress.progress, progress)),
      },
      ...(retrying === undefined ? {} : { retrying }),
      ...(recheckMs === undefined ? {} : { recheckMs }),
    };
  }
  const { result } = step;
  if (result.manifest !== copy.manifest) {
    return { problem: `mover pod ${step.moverPod} stored manifest ${result.manifest}, not ${copy.manifest}` };
  }
  return {
    copy: {
      manifest: copy.manifest,
      ...run,
      phase: 'Completed',
      message: `copied in ${result.seconds.toFixed(1)} s`,
      ...copyFigures(result.progress),
      completionTime: ctx.now().toISOString(),
    },
  };
}

/** A copy's figures: the transfer's, the bytes sent and the chunks sent and found stored. */
function copyFigures(progress: TransferProgress, rate?: Omit<MoverProgress, 'progress'>) {
  return {
    ...transferFigures(progress, rate),
    bytesUploaded: progress.bytesTransferred,
    chunksNew: progress.chunksNew,
    chunksReused: progress.chunksReused,
  };
}

/**
 * Creates what the mover of one volume mounts: the snapshot's content, a VolumeSnapshot and a
 * PVC of it (each found, if a restart repeats this); returns why it cannot, or undefined.
 */
async function mountSnapshot(
  ctx: BackupContext,
  backup: Backup,
  volume: BackupVolume,
  claimName: string,
): Promise<string | undefined> {
  const source = await ctx.client.get(
    resources.persistentVolumeClaims,
    volume.pvcName,
    backup.metadata.namespace ?? '',
  );
  if (source === undefined) {
    return `PersistentVolumeClaim ${volume.pvcName} is gone; the mover mounts its snapshot with the claim's StorageClass`;
  }
  if (volume.cloudSnapId === undefined || volume.driver === undefined) {
    return `the snapshot of ${volume.pvcName} records no handle or driver to mount it by`;
  }
  const moverLabelSet = moverLabels(backup);
  const steps: (() => Promise<string | undefined>)[] = [
    () =>
      createdUnlessTaken(
        ctx.client,
        resources.volumeSnapshotContents,
        preProvisionedContent({
          name: claimName,
          driver: volume.driver ?? '',
          snapshotHandle: volume.cloudSnapId ?? '',
          snapshotName: claimName,
          snapshotNamespace: ctx.namespace,
          ...(volume.volumeSnapshotClassName === undefined
            ? {}
            : { className: volume.volumeSnapshotClassName }),
          labels: moverLabelSet,
        }),
        labels.moverFor,
      ),
    () =>
      createdUnlessTaken(
        ctx.client,
        resources.volumeSnapshots,
        snapshotOfContent({
          name: claimName,
          namespace: ctx.namespace,
          contentName: claimName,
          labels: moverLabelSet,
        }),
        labels.moverFor,
      ),
    () =>
      createdUnlessTaken(
        ctx.client,
        resources.persistentVolumeClaims,
        volumeClaim({
          name: claimName,
          namespace: ctx.namespace,
          snapshotName: claimName,
          claim: source.spec,
          ...(volume.sizeBytes === undefined ? {} : { minimumBytes: volume.sizeBytes }),
          labels: moverLabelSet,
        }),
        labels.moverFor,
      ),
  ];
  for (const step of steps) {
    const problem = await step();
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/**
 * Deletes the movers' pods, claims, snapshots and contents of the backup (those already gone are
 * skipped): the pods first, so nothing mounts what is deleted after them.
 */
export async function removeMovers(
  ctx: BackupContext,
  backup: Backup,
  volumes: readonly BackupVolume[] = backup.status?.volumes ?? [],
): Promise<void> {
  for (const [index, volume] of volumes.entries()) {
    const names = scaffoldingNames(backup, index);
    const namespace = ctx.namespace;
    await deleteMoverPods(ctx.client, namespace, volume.dataCopy?.attempts ?? 0, names.pod);
    await ctx.client.delete(resources.persistentVolumeClaims, names.claim, { namespace });
    await ctx.client.delete(resources.volumeSnapshots, names.claim, { namespace });
    await ctx.client.delete(resources.volumeSnapshotContents, names.claim);
  }
}
