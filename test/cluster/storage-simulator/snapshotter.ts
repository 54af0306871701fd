// The simulated csi-snapshotter sidecar: carries out decideContent against the API and the backend.

import type {
  PersistentVolume,
  PersistentVolumeClaim,
  VolumeSnapshot,
  VolumeSnapshotClass,
  VolumeSnapshotContent,
} from '../../../src/api/kubernetes.js';
import type { EventRecorder } from '../../../src/observability/events.js';
import type { KubeClient } from '../../../src/runtime/kube-client.js';
import { defineIndex } from '../../../src/runtime/cache.js';
import { resources } from '../../../src/runtime/resources.js';
import { DRIVER, SNAPSHOT } from './constants.js';
import { decideContent, readyStatus, type ContentAction } from './snapshotting.js';
import { isValidHandle, type SnapshotStore } from './state.js';
import type { Log, Result, Store } from './types.js';

export interface SnapshotterDeps {
  client: KubeClient;
  contents: Store<VolumeSnapshotContent>;
  snapshots: Store<VolumeSnapshot>;
  snapshotClasses: Store<VolumeSnapshotClass>;
  volumes: Store<PersistentVolume>;
  claims: Store<PersistentVolumeClaim>;
  backend: SnapshotStore;
  events: EventRecorder;
  log: Log;
  now: () => number;
}

/** PersistentVolumes by their CSI volume handle (ours only). */
export const volumesByHandle = defineIndex<PersistentVolume>('volumeHandle', (volume) => {
  const csi = volume.spec.csi;
  return csi?.driver === DRIVER ? [csi.volumeHandle] : [];
});

/** VolumeSnapshotContents by the handle of the volume they were cut from. */
export const contentsByVolumeHandle = defineIndex<VolumeSnapshotContent>('volumeHandle', (content) =>
  content.spec.source.volumeHandle === undefined ? [] : [content.spec.source.volumeHandle],
);

export class Snapshotter {
  constructor(private readonly deps: SnapshotterDeps) {}

  /** Key: name of a VolumeSnapshotContent. */
  async reconcileContent(key: string): Promise<Result> {
    const { contents, snapshots, snapshotClasses, volumes, claims, backend } = this.deps;
    const content = contents.get(key);
    if (content === undefined || content.spec.driver !== DRIVER) return {};
    const ref = content.spec.volumeSnapshotRef;
    const named = snapshots.get(`${ref.namespace ?? ''}/${ref.name ?? ''}`);
    // A VolumeSnapshot of the same name but another uid is not this content's.
    const snapshot = (ref.uid ?? '') === '' || named?.metadata.uid === ref.uid ? named : undefined;
    const className = content.spec.volumeSnapshotClassName ?? snapshot?.spec.volumeSnapshotClassName;
    const volumeHandle = content.spec.source.volumeHandle;
    const sourceVolume =
      volumeHandle === undefined ? undefined : volumes.byIndex(volumesByHandle, volumeHandle)[0];
    const claimRef = sourceVolume?.spec.claimRef;
    const snapshotHandle = content.spec.source.snapshotHandle;
    const action = decideContent({
      content,
      snapshot,
      snapshotClass: className === undefined ? undefined : snapshotClasses.get(className),
      sourceVolume,
      sourceClaim:
        claimRef === undefined ? undefined : claims.get(`${claimRef.namespace ?? ''}/${claimRef.name ?? ''}`),
      record:
        snapshotHandle !== undefined && isValidHandle(snapshotHandle)
          ? await backend.get(snapshotHandle)
          : undefined,
      nowMs: this.deps.now(),
    });
    return this.carryOut(content, action);
  }

  private async carryOut(content: VolumeSnapshotContent, action: ContentAction): Promise<Result> {
    const { client, backend, log } = this.deps;
    const name = content.metadata.name ?? '';
    const fields = { content: name, action: action.kind };
    const patchStatus = (status: Record<string, unknown>) =>
      client.mergePatch(resources.volumeSnapshotContents, name, { status }, { subresource: 'status' });
    const annotate = (value: string | null) =>
      client.mergePatch(resources.volumeSnapshotContents, name, {
        metadata: { annotations: { [SNAPSHOT.beingCreated]: value } },
      });
    switch (action.kind) {
      case 'none':
        log.debug('content: nothing to do', { ...fields, reason: action.reason });
        return {};
      case 'wait':
        log.info('content: waiting', { ...fields, reason: action.reason, afterMs: action.afterMs });
        return { requeueAfterMs: action.afterMs };
      case 'fail':
        // Like the sidecar: the same error is written (and announced) once.
        if (content.status?.error?.message === action.message && content.status.readyToUse === false)
          return {};
        await patchStatus({
          readyToUse: false,
          error: { message: action.message, time: new Date(this.deps.now()).toISOString() },
        });
        log.warn('content: failed', { ...fields, message: action.message });
        await this.deps.events.record(
          resources.volumeSnapshotContents,
          content,
          'Warning',
          action.reason,
          action.message,
          `${action.reason}/${action.message}`,
        );
        return {};
      case 'create': {
        // The being-created mark keeps snapshot-controller from deleting the content while the
        // backend call runs, so a snapshot cut at the same time cannot leak.
        if (!(SNAPSHOT.beingCreated in (content.metadata.annotations ?? {}))) await annotate('yes');
        const record = await backend.createIfAbsent(action.record);
        await patchStatus({ ...readyStatus(record), error: null });
        await annotate(null);
        log.info('content: snapshot created', {
          ...fields,
          handle: record.handle,
          contentId: record.contentId,
          sizeBytes: record.sizeBytes,
          sourceVolume: record.sourceVolumeName,
        });
        return {};
      }
      case 'ready':
        await patchStatus({ ...action.status, error: null });
        log.info('content: pre-provisioned snapshot found', {
          ...fields,
          handle: action.status.snapshotHandle,
        });
        return {};
      case 'delete': {
        const existed = await backend.delete(action.handle);
        // As the sidecar's clearVolumeContentStatus: the handle goes, then the finalizer.
        await patchStatus({ snapshotHandle: null, readyToUse: null, creationTime: null, restoreSize: null });
        log.info('content: snapshot deleted', { ...fields, handle: action.handle, existed });
        return {};
      }
      case 'removeFinalizer':
        await client.mergePatch(resources.volumeSnapshotContents, name, {
          metadata: {
            resourceVersion: content.metadata.resourceVersion,
            finalizers: (content.metadata.finalizers ?? []).filter((f) => f !== SNAPSHOT.contentFinalizer),
          },
        });
        log.info('content: finalizer removed', fields);
        return {};
      case 'clearBeingCreated':
        await annotate(null);
        return {};
    }
  }
}
