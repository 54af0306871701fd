// Pure decisions of the simulated external-provisioner: what to do for a claim and for a volume.
// They follow sig-storage-lib-external-provisioner (shouldProvision, provisionClaimOperation,
// shouldDelete, handleProtectionFinalizer) and external-provisioner's getSnapshotSource.

import type {
  PersistentVolume,
  PersistentVolumeClaim,
  StorageClass,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../../../src/api/kubernetes.js';
import { parseQuantity } from '../../../src/storage/snapshots.js';
import { DRIVER, KUBE, SIM, SNAPSHOT } from './constants.js';
import { contentIdAfterWrite, freshContentId, writtenContentId } from './content-id.js';
import { createdAt, directivesFrom, gate } from './directives.js';
import type { SnapshotRecord } from './state.js';

/** external-provisioner's deterministic PV name. */
export const volumeNameFor = (claimUid: string): string => `pvc-${claimUid}`;
/** The simulated driver's volume id. */
export const volumeHandleFor = (claimUid: string): string => `vol-${claimUid}`;

export function claimClassName(claim: PersistentVolumeClaim): string | undefined {
  const name = claim.spec.storageClassName ?? claim.metadata.annotations?.[KUBE.betaStorageClass];
  return name === '' ? undefined : name;
}

export interface SnapshotRef {
  namespace: string;
  name: string;
}

export type DataSource =
  { kind: 'none' } | { kind: 'snapshot'; ref: SnapshotRef } | { kind: 'unsupported'; message: string };

/** What the claim's data comes from. dataSourceRef wins: it is the superset the API server keeps in sync. */
export function claimDataSource(claim: PersistentVolumeClaim): DataSource {
  const source = claim.spec.dataSourceRef ?? claim.spec.dataSource;
  if (source === undefined) return { kind: 'none' };
  const namespace = claim.metadata.namespace ?? '';
  if (source.kind !== 'VolumeSnapshot' || source.apiGroup !== SNAPSHOT.group) {
    return {
      kind: 'unsupported',
      message: `data source ${source.kind}${source.apiGroup === undefined ? '' : `.${source.apiGroup}`} "${source.name}" is not supported by ${DRIVER} (only VolumeSnapshots are)`,
    };
  }
  const sourceNamespace = claim.spec.dataSourceRef?.namespace;
  if (sourceNamespace !== undefined && sourceNamespace !== namespace) {
    return {
      kind: 'unsupported',
      message: `cross-namespace data source ${sourceNamespace}/${source.name} is not supported by ${DRIVER}`,
    };
  }
  return { kind: 'snapshot', ref: { namespace, name: source.name } };
}

export type SourceResolution =
  { ok: true; handle: string; contentId: string; sizeBytes: number } | { ok: false; message: string };

/**
 * Whether the VolumeSnapshot a claim restores from can be used now, with the checks
 * external-provisioner makes before it asks the driver for a volume from a snapshot.
 */
export function resolveSnapshotSource(
  ref: SnapshotRef,
  snapshot: VolumeSnapshot | undefined,
  content: VolumeSnapshotContent | undefined,
  record: SnapshotRecord | undefined,
): SourceResolution {
  const what = `VolumeSnapshot ${ref.namespace}/${ref.name}`;
  if (snapshot === undefined) return { ok: false, message: `${what} does not exist` };
  if (snapshot.metadata.deletionTimestamp !== undefined) {
    return { ok: false, message: `${what} is being deleted` };
  }
  const contentName = snapshot.status?.boundVolumeSnapshotContentName;
  if (contentName === undefined) {
    return { ok: false, message: `${what} is not bound to a VolumeSnapshotContent yet` };
  }
  const pointsBack = (back: VolumeSnapshotContent['spec']['volumeSnapshotRef']): boolean =>
    back.uid === snapshot.metadata.uid && back.namespace === ref.namespace && back.name === ref.name;
  if (content === undefined || !pointsBack(content.spec.volumeSnapshotRef)) {
    return {
      ok: false,
      message: `${what} is not bound: VolumeSnapshotContent ${contentName} does not point back to it`,
    };
  }
  if (content.spec.driver !== DRIVER) {
    return { ok: false, message: `${what} belongs to driver ${content.spec.driver}, not ${DRIVER}` };
  }
  if (snapshot.status?.readyToUse !== true) {
    const error = snapshot.status?.error?.message;
    return {
      ok: false,
      message: `${what} is not ready to use${error === undefined ? '' : ` (its error: ${error})`}`,
    };
  }
  const handle = content.status?.snapshotHandle;
  if (handle === undefined) {
    return { ok: false, message: `${what}: VolumeSnapshotContent ${contentName} has no snapshot handle` };
  }
  if (record === undefined) {
    return {
      ok: false,
      message: `${what}: snapshot ${handle} does not exist in the simulated storage backend`,
    };
  }
  return { ok: true, handle, contentId: record.contentId, sizeBytes: record.sizeBytes };
}

export interface ClaimInputs {
  claim: PersistentVolumeClaim;
  storageClass: StorageClass | undefined;
  /** The PersistentVolume provisioned for the claim (pvc-<uid>), or the one it is bound to. */
  volume: PersistentVolume | undefined;
  /** Required when the claim's data source is a VolumeSnapshot. */
  source: SourceResolution | undefined;
  nowMs: number;
}

export type ClaimAction =
  | { kind: 'none'; reason: string }
  | { kind: 'wait'; afterMs: number; reason: string }
  /** Leave the claim Pending with a ProvisioningFailed event; `retry` when it may heal by itself. */
  | { kind: 'fail'; message: string; retry: boolean }
  | { kind: 'provision'; volume: PersistentVolume }
  | { kind: 'write'; volumeName: string; contentId: string; write: string };

export function decideClaim(input: ClaimInputs): ClaimAction {
  const { claim, storageClass, volume } = input;
  const uid = claim.metadata.uid ?? '';
  if (claim.spec.volumeName !== undefined && claim.spec.volumeName !== '') {
    return decideWrite(claim, volume);
  }
  const className = claimClassName(claim);
  if (className === undefined) return { kind: 'none', reason: 'the claim has no storage class' };
  if (storageClass === undefined) return { kind: 'none', reason: `StorageClass ${className} does not exist` };
  if (storageClass.provisioner !== DRIVER) {
    return { kind: 'none', reason: `StorageClass ${className} belongs to ${storageClass.provisioner}` };
  }
  const annotations = claim.metadata.annotations ?? {};
  const provisioner = annotations[KUBE.storageProvisioner] ?? annotations[KUBE.betaStorageProvisioner];
  if (provisioner !== DRIVER) {
    return { kind: 'none', reason: 'waiting for the PV controller to hand the claim to this provisioner' };
  }
  if (
    storageClass.volumeBindingMode === 'WaitForFirstConsumer' &&
    (annotations[KUBE.selectedNode] ?? '') === ''
  ) {
    return { kind: 'none', reason: 'waiting for the scheduler to select a node' };
  }
  if (claim.metadata.deletionTimestamp !== undefined)
    return { kind: 'none', reason: 'the claim is being deleted' };
  if (volume !== undefined) {
    return { kind: 'none', reason: `${volume.metadata.name ?? ''} exists; the PV controller binds it` };
  }

  const decision = gate(
    directivesFrom([claim.metadata.annotations, storageClass.metadata.annotations]),
    createdAt(claim.metadata),
    input.nowMs,
  );
  if (decision.kind === 'hold') return { kind: 'none', reason: `${SIM.never} is set` };
  if (decision.kind === 'wait') return { kind: 'wait', afterMs: decision.afterMs, reason: SIM.delayMs };
  if (decision.kind === 'fail') return { kind: 'fail', message: decision.message, retry: false };

  const dataSource = claimDataSource(claim);
  if (dataSource.kind === 'unsupported') return { kind: 'fail', message: dataSource.message, retry: false };
  let source: Extract<SourceResolution, { ok: true }> | undefined;
  if (dataSource.kind === 'snapshot') {
    const resolved = input.source ?? { ok: false, message: 'the snapshot source was not looked up' };
    if (!resolved.ok) return { kind: 'fail', message: resolved.message, retry: true };
    source = resolved;
  }

  const request = claim.spec.resources?.requests?.storage;
  if (request === undefined) return { kind: 'fail', message: 'the claim requests no storage', retry: false };
  let requestBytes: number;
  try {
    requestBytes = parseQuantity(request);
  } catch {
    return { kind: 'fail', message: `the storage request "${request}" is not a quantity`, retry: false };
  }
  if (source !== undefined && source.sizeBytes > requestBytes) {
    return {
      kind: 'fail',
      message: `requested volume size ${String(requestBytes)} is less than the size ${String(source.sizeBytes)} for the source snapshot ${source.handle}`,
      retry: false,
    };
  }

  const write = annotations[SIM.write];
  const contentId = contentIdAfterWrite(source?.contentId ?? freshContentId(uid), undefined, write);
  const pvAnnotations: Record<string, string> = {
    [KUBE.provisionedBy]: DRIVER,
    [SIM.contentId]: contentId,
  };
  if (source !== undefined) pvAnnotations[SIM.restoredFrom] = source.handle;
  if (write !== undefined) pvAnnotations[SIM.appliedWrite] = write;
  const reclaimPolicy = storageClass.reclaimPolicy ?? 'Delete';
  return {
    kind: 'provision',
    volume: {
      metadata: {
        name: volumeNameFor(uid),
        annotations: pvAnnotations,
        ...(reclaimPolicy === 'Delete' ? { finalizers: [KUBE.provisionerFinalizer] } : {}),
      },
      spec: {
        capacity: { storage: request },
        accessModes: claim.spec.accessModes ?? ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: reclaimPolicy,
        storageClassName: className,
        volumeMode: claim.spec.volumeMode ?? 'Filesystem',
        claimRef: {
          kind: 'PersistentVolumeClaim',
          apiVersion: 'v1',
          namespace: claim.metadata.namespace ?? '',
          name: claim.metadata.name ?? '',
          uid,
          ...(claim.metadata.resourceVersion === undefined
            ? {}
            : { resourceVersion: claim.metadata.resourceVersion }),
        },
        csi: { driver: DRIVER, volumeHandle: volumeHandleFor(uid) },
      },
    },
  };
}

/** A bound claim whose `write` annotation the volume has not taken yet gets a new content id. */
function decideWrite(claim: PersistentVolumeClaim, volume: PersistentVolume | undefined): ClaimAction {
  const write = claim.metadata.annotations?.[SIM.write];
  if (write === undefined) return { kind: 'none', reason: 'bound' };
  if (volume === undefined || volume.spec.csi?.driver !== DRIVER) {
    return { kind: 'none', reason: 'bound to a volume this driver does not own' };
  }
  const annotations = volume.metadata.annotations ?? {};
  const contentId = annotations[SIM.contentId];
  if (contentId === undefined) return { kind: 'none', reason: 'the volume has no content id' };
  if (annotations[SIM.appliedWrite] === write) return { kind: 'none', reason: 'bound; write applied' };
  return {
    kind: 'write',
    volumeName: volume.metadata.name ?? '',
    contentId: writtenContentId(contentId, write),
    write,
  };
}

/** Whether the simulator provisioned (or, for static volumes, serves) this PersistentVolume. */
export function ownsVolume(volume: PersistentVolume): boolean {
  const provisionedBy = volume.metadata.annotations?.[KUBE.provisionedBy];
  return provisionedBy === undefined ? volume.spec.csi?.driver === DRIVER : provisionedBy === DRIVER;
}

export type VolumeAction =
  | { kind: 'none' }
  | { kind: 'addFinalizer' }
  | { kind: 'removeFinalizer' }
  /** Delete the backing volume and the PV object, then drop the finalizer. */
  | { kind: 'delete' };

/** The reclaim side of the provisioner contract for one PersistentVolume. */
export function decideVolume(volume: PersistentVolume): VolumeAction {
  if (!ownsVolume(volume)) return { kind: 'none' };
  const policy = volume.spec.persistentVolumeReclaimPolicy;
  const phase = volume.status?.phase;
  const deleting = volume.metadata.deletionTimestamp !== undefined;
  const hasFinalizer = (volume.metadata.finalizers ?? []).includes(KUBE.provisionerFinalizer);
  if (policy === 'Delete' && !deleting && phase === 'Bound' && !hasFinalizer) return { kind: 'addFinalizer' };
  if (policy !== 'Delete' && hasFinalizer) return { kind: 'removeFinalizer' };
  // Without the finalizer a deleting volume has been dealt with already.
  if (deleting && !hasFinalizer) return { kind: 'none' };
  if (phase === 'Released' && policy === 'Delete') return { kind: 'delete' };
  return { kind: 'none' };
}
