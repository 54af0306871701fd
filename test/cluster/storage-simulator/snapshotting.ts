// Pure decisions of the simulated csi-snapshotter sidecar for one VolumeSnapshotContent. They
// follow external-snapshotter v8's pkg/sidecar-controller (syncContent, shouldDelete,
// createSnapshotWrapper, checkandUpdateContentStatusOperation, deleteCSISnapshotOperation).

import type {
  PersistentVolume,
  PersistentVolumeClaim,
  VolumeSnapshot,
  VolumeSnapshotClass,
  VolumeSnapshotContent,
} from '../../../src/api/kubernetes.js';
import { parseQuantity } from '../../../src/storage/snapshots.js';
import { DRIVER, SIM, SNAPSHOT } from './constants.js';
import { contentIdAfterWrite } from './content-id.js';
import { createdAt, directivesFrom, gate } from './directives.js';
import { isValidHandle, type SnapshotRecord } from './state.js';

/** The backend snapshot id of a dynamically provisioned content: one per content, so retries reuse it. */
export const snapshotHandleFor = (contentUid: string): string => `snap-${contentUid}`;

export interface ContentInputs {
  content: VolumeSnapshotContent;
  /** The VolumeSnapshot the content's volumeSnapshotRef names, when it exists. */
  snapshot: VolumeSnapshot | undefined;
  snapshotClass: VolumeSnapshotClass | undefined;
  /** Dynamic contents: the PersistentVolume whose CSI volume handle is spec.source.volumeHandle. */
  sourceVolume: PersistentVolume | undefined;
  /** Dynamic contents: the claim bound to sourceVolume (a write pending on it is part of the snapshot). */
  sourceClaim: PersistentVolumeClaim | undefined;
  /** Pre-provisioned contents: the backend record of spec.source.snapshotHandle. */
  record: SnapshotRecord | undefined;
  nowMs: number;
}

/** VolumeSnapshotContent status as the sidecar writes it: times in ns since the epoch, sizes in bytes. */
export interface ReadyStatus {
  snapshotHandle: string;
  readyToUse: true;
  creationTime: number;
  restoreSize: number;
}

export type ContentAction =
  | { kind: 'none'; reason: string }
  | { kind: 'wait'; afterMs: number; reason: string }
  /** Set status.error (readyToUse false) and emit a Warning event with `reason`. */
  | { kind: 'fail'; message: string; reason: string }
  /** Cut the snapshot in the backend (idempotent per handle), then report it ready. */
  | { kind: 'create'; record: SnapshotRecord }
  | { kind: 'ready'; status: ReadyStatus }
  /** Delete the backend snapshot, then clear the status' snapshot fields. */
  | { kind: 'delete'; handle: string }
  | { kind: 'removeFinalizer' }
  | { kind: 'clearBeingCreated' };

export function readyStatus(record: SnapshotRecord): ReadyStatus {
  return {
    snapshotHandle: record.handle,
    readyToUse: true,
    creationTime: Date.parse(record.createdAt) * 1e6,
    restoreSize: record.sizeBytes,
  };
}

/** The sidecar's shouldDelete: only snapshot-controller's being-deleted mark starts a deletion. */
export function shouldDelete(content: VolumeSnapshotContent): boolean {
  if (content.metadata.deletionTimestamp === undefined) return false;
  const annotations = content.metadata.annotations ?? {};
  // An unbound pre-provisioned content has no VolumeSnapshot to wait for.
  if (content.spec.source.snapshotHandle !== undefined && (content.spec.volumeSnapshotRef.uid ?? '') === '') {
    return true;
  }
  // A CreateSnapshot call in flight must finish first, or its snapshot would leak.
  if (SNAPSHOT.beingCreated in annotations) return false;
  return SNAPSHOT.beingDeleted in annotations;
}

export function decideContent(input: ContentInputs): ContentAction {
  const { content } = input;
  if (content.spec.driver !== DRIVER) return { kind: 'none', reason: `driver ${content.spec.driver}` };

  if (shouldDelete(content)) {
    const handle = content.status?.snapshotHandle;
    if (content.spec.deletionPolicy === 'Delete' && handle !== undefined) return { kind: 'delete', handle };
    if ((content.metadata.finalizers ?? []).includes(SNAPSHOT.contentFinalizer))
      return { kind: 'removeFinalizer' };
    return { kind: 'none', reason: 'deleted' };
  }

  if (content.status?.readyToUse === true) {
    if (SNAPSHOT.beingCreated in (content.metadata.annotations ?? {})) return { kind: 'clearBeingCreated' };
    return { kind: 'none', reason: 'ready' };
  }

  const dynamic = content.spec.source.volumeHandle !== undefined;
  const failure = (message: string): ContentAction =>
    dynamic
      ? { kind: 'fail', message: `Failed to create snapshot: ${message}`, reason: 'SnapshotCreationFailed' }
      : {
          kind: 'fail',
          message: `Failed to check and update snapshot content: ${message}`,
          reason: 'SnapshotContentCheckandUpdateFailed',
        };

  const decision = gate(
    directivesFrom([
      content.metadata.annotations,
      input.snapshot?.metadata.annotations,
      input.snapshotClass?.metadata.annotations,
    ]),
    createdAt(input.snapshot?.metadata ?? content.metadata),
    input.nowMs,
  );
  if (decision.kind === 'hold') return { kind: 'none', reason: `${SIM.never} is set` };
  if (decision.kind === 'wait') return { kind: 'wait', afterMs: decision.afterMs, reason: SIM.delayMs };
  if (decision.kind === 'fail') return failure(decision.message);

  const volumeHandle = content.spec.source.volumeHandle;
  if (volumeHandle !== undefined) {
    const volume = input.sourceVolume;
    if (volume === undefined)
      return failure(`volume ${volumeHandle} does not exist in the simulated backend`);
    const annotations = volume.metadata.annotations ?? {};
    const contentId = annotations[SIM.contentId];
    if (contentId === undefined) {
      return failure(`volume ${volumeHandle} has no ${SIM.contentId} annotation on its PersistentVolume`);
    }
    const claim = input.sourceClaim;
    const claimMatches = claim !== undefined && claim.metadata.uid === volume.spec.claimRef?.uid;
    const write = claimMatches ? claim.metadata.annotations?.[SIM.write] : undefined;
    return {
      kind: 'create',
      record: {
        handle: snapshotHandleFor(content.metadata.uid ?? ''),
        contentId: contentIdAfterWrite(contentId, annotations[SIM.appliedWrite], write),
        sizeBytes: parseQuantity(volume.spec.capacity?.storage ?? '0'),
        createdAt: new Date(input.nowMs).toISOString(),
        driver: DRIVER,
        sourceVolumeHandle: volumeHandle,
        ...(volume.metadata.name === undefined ? {} : { sourceVolumeName: volume.metadata.name }),
      },
    };
  }

  const snapshotHandle = content.spec.source.snapshotHandle;
  if (snapshotHandle !== undefined) {
    if (!isValidHandle(snapshotHandle) || input.record === undefined) {
      return failure(`snapshot ${snapshotHandle} does not exist in the simulated storage backend`);
    }
    return { kind: 'ready', status: readyStatus(input.record) };
  }
  return { kind: 'none', reason: 'the content has neither a volumeHandle nor a snapshotHandle' };
}
