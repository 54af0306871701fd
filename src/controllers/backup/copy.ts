// InProgress, once the snapshots are ready: a backup stored in a location that copies volume data
// sends each volume's files into the location's repository before its record is stored. A data
// mover pod per volume runs in the operator's namespace, where the location's credentials are, and
// mounts a claim made from the snapshot there: a pre-provisioned VolumeSnapshotContent by the
// snapshot's handle (Retain: deleting it never deletes the snapshot), a VolumeSnapshot bound to it,
// a PVC from that. All four are named from the Backup's UID and the volume, so a restarted operator
// finds them; they are deleted once the copies are done, or the backup failed or is deleted.

import { labels, MANAGED_BY } from '../../api/constants.js';
import type { Backup, BackupLocation, BackupVolume, VolumeDataCopy } from '../../api/generated/types.js';
import type { Labels, Pod } from '../../api/kubernetes.js';
import { boundedName, shortHash } from '../../naming.js';
import { resources } from '../../runtime/resources.js';
import { defineIndex } from '../../runtime/cache.js';
import { moverPod, moverState } from '../../storage/data-mover.js';
import { claimFromSnapshot, preProvisionedContent, snapshotOfContent } from '../../storage/snapshots.js';
import { DATA_COPY_RETRYING } from '../shared/conditions.js';
import { ensureCreated } from '../shared/objects.js';
import { fail, wait } from '../shared/outcome.js';
import type { BackupContext, BackupOutcome } from './context.js';

/** The Ready condition's reason while the movers copy. */
export const COPYING = 'CopyingVolumeData';

/** A failed mover is started again after 5 s, then twice as long each time, at most 5 minutes. */
const RETRY_BASE_MS = 5_000;
const RETRY_MAX_MS = 300_000;

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

function moverLabels(backup: Backup): Labels {
  return {
    [labels.managedBy]: MANAGED_BY,
    [labels.moverFor]: backup.metadata.uid ?? '',
    [labels.backup]: backup.metadata.name ?? '',
    [labels.backupNamespace]: backup.metadata.namespace ?? '',
  };
}

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
  const attempt = Math.max(1, copy.attempts ?? 0);
  const podName = names.pod(attempt);
  const pod = ctx.cache.movers.get(`${ctx.namespace}/${podName}`);
  if (pod === undefined) {
    const problem = await startMover(ctx, backup, location, volume, names.claim, podName, copy.manifest);
    if (problem !== undefined) return { problem };
    return {
      copy: { ...copy, phase: 'Pending', attempts: attempt, moverPod: podName, message: 'mover pod created' },
    };
  }
  const state = moverState(pod);
  switch (state.state) {
    case 'waiting':
    case 'running':
      return {
        copy: {
          ...copy,
          phase: state.state === 'running' ? 'Running' : 'Pending',
          attempts: attempt,
          moverPod: podName,
          message: state.message,
        },
      };
    case 'succeeded': {
      const { result } = state;
      if (result.manifest !== copy.manifest) {
        return { problem: `mover pod ${podName} stored manifest ${result.manifest}, not ${copy.manifest}` };
      }
      const { progress } = result;
      return {
        copy: {
          ...copy,
          phase: 'Completed',
          attempts: attempt,
          moverPod: podName,
          message: `copied in ${result.seconds.toFixed(1)} s`,
          bytesTotal: progress.bytesTotal,
          bytesDone: progress.bytesDone,
          bytesUploaded: progress.bytesTransferred,
          files: progress.files,
          chunksNew: progress.chunksNew,
          chunksReused: progress.chunksReused,
          completionTime: ctx.now().toISOString(),
        },
      };
    }
    case 'failed': {
      if (!state.retry) return { problem: state.message };
      // The failed pod stays until its retry is due, so its end is what the backoff counts from.
      const finished = pod.status?.containerStatuses?.[0]?.state?.terminated?.finishedAt;
      const endedAt = Date.parse(finished ?? pod.metadata.creationTimestamp ?? '');
      const dueAt =
        (Number.isNaN(endedAt) ? ctx.now().getTime() : endedAt) +
        Math.min(RETRY_BASE_MS * 2 ** (attempt - 1), RETRY_MAX_MS);
      const waitMs = dueAt - ctx.now().getTime();
      const failed = { ...copy, attempts: attempt, moverPod: podName, phase: 'Pending' as const };
      if (waitMs > 0) {
        return {
          copy: {
            ...failed,
            message: `attempt ${attempt} failed: ${state.message}; retrying in ${Math.ceil(waitMs / 1000)} s`,
          },
          retrying: true,
          recheckMs: waitMs,
        };
      }
      await ctx.client.delete(resources.pods, podName, { namespace: ctx.namespace });
      const nextPod = names.pod(attempt + 1);
      const problem = await startMover(ctx, backup, location, volume, names.claim, nextPod, copy.manifest);
      if (problem !== undefined) return { problem };
      return {
        copy: {
          ...failed,
          attempts: attempt + 1,
          moverPod: nextPod,
          message: `attempt ${attempt} failed: ${state.message}; attempt ${attempt + 1} started`,
        },
        retrying: true,
      };
    }
  }
}

/**
 * Creates what the mover of one volume needs and then its pod (each found, if a restart repeats
 * this); returns why it cannot, or undefined.
 */
async function startMover(
  ctx: BackupContext,
  backup: Backup,
  location: BackupLocation,
  volume: BackupVolume,
  claimName: string,
  podName: string,
  manifest: string,
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
  const owned = async (
    what: string,
    created: Promise<{ outcome: string; object: { metadata: { name?: string } } }>,
  ): Promise<string | undefined> => {
    const { outcome, object } = await created;
    return outcome === 'taken'
      ? `${what} ${object.metadata.name ?? ''} exists and belongs to something else; nothing of it was changed`
      : undefined;
  };
  const steps: (() => Promise<string | undefined>)[] = [
    () =>
      owned(
        'VolumeSnapshotContent',
        ensureCreated(
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
      ),
    () =>
      owned(
        'VolumeSnapshot',
        ensureCreated(
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
      ),
    () =>
      owned(
        'PersistentVolumeClaim',
        ensureCreated(
          ctx.client,
          resources.persistentVolumeClaims,
          claimFromSnapshot({
            name: claimName,
            namespace: ctx.namespace,
            snapshotName: claimName,
            claim: source.spec,
            ...(volume.sizeBytes === undefined ? {} : { minimumBytes: volume.sizeBytes }),
            labels: moverLabelSet,
          }),
          labels.moverFor,
        ),
      ),
    () =>
      owned(
        'Pod',
        ensureCreated(
          ctx.client,
          resources.pods,
          moverPod({
            name: podName,
            namespace: ctx.namespace,
            labels: moverLabelSet,
            config: ctx.mover,
            location,
            claimName,
            operation: 'backup',
            manifest,
          }),
          labels.moverFor,
        ),
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
    const attempts = volume.dataCopy?.attempts ?? 0;
    const namespace = ctx.namespace;
    for (let attempt = 1; attempt <= Math.max(1, attempts); attempt++) {
      await ctx.client.delete(resources.pods, names.pod(attempt), { namespace });
    }
    await ctx.client.delete(resources.persistentVolumeClaims, names.claim, { namespace });
    await ctx.client.delete(resources.volumeSnapshots, names.claim, { namespace });
    await ctx.client.delete(resources.volumeSnapshotContents, names.claim);
  }
}
