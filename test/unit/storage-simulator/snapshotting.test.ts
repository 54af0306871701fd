import { describe, expect, it } from '@jest/globals';
import type {
  PersistentVolume,
  PersistentVolumeClaim,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../../../src/api/kubernetes.js';
import { DRIVER, SIM, SNAPSHOT } from '../../cluster/storage-simulator/constants.js';
import { writtenContentId } from '../../cluster/storage-simulator/content-id.js';
import {
  decideContent,
  readyStatus,
  shouldDelete,
  type ContentInputs,
} from '../../cluster/storage-simulator/snapshotting.js';
import type { SnapshotRecord } from '../../cluster/storage-simulator/state.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');

const dynamicContent = (
  extra: { annotations?: Record<string, string>; status?: VolumeSnapshotContent['status'] } = {},
): VolumeSnapshotContent => ({
  metadata: {
    name: 'snapcontent-vs-uid',
    uid: 'content-uid',
    creationTimestamp: new Date(T0 + 100).toISOString(),
    ...(extra.annotations === undefined ? {} : { annotations: extra.annotations }),
    finalizers: [SNAPSHOT.contentFinalizer],
  },
  spec: {
    deletionPolicy: 'Delete',
    driver: DRIVER,
    source: { volumeHandle: 'vol-1' },
    volumeSnapshotRef: { name: 'snap', namespace: 'ns1', uid: 'vs-uid' },
    volumeSnapshotClassName: 'snapback-sim',
  },
  ...(extra.status === undefined ? {} : { status: extra.status }),
});

const snapshot = (annotations: Record<string, string> = {}): VolumeSnapshot => ({
  metadata: {
    name: 'snap',
    namespace: 'ns1',
    uid: 'vs-uid',
    creationTimestamp: new Date(T0).toISOString(),
    annotations,
  },
  spec: { source: { persistentVolumeClaimName: 'data-0' }, volumeSnapshotClassName: 'snapback-sim' },
});

const volume: PersistentVolume = {
  metadata: { name: 'pvc-1', annotations: { [SIM.contentId]: 'c-vol', [SIM.appliedWrite]: 'w1' } },
  spec: {
    capacity: { storage: '2Gi' },
    claimRef: { namespace: 'ns1', name: 'data-0', uid: 'claim-uid' },
    csi: { driver: DRIVER, volumeHandle: 'vol-1' },
  },
};

const claim = (annotations: Record<string, string>, uid = 'claim-uid'): PersistentVolumeClaim => ({
  metadata: { name: 'data-0', namespace: 'ns1', uid, annotations },
  spec: {},
});

const record: SnapshotRecord = {
  handle: 'snap-pre',
  contentId: 'c-pre',
  sizeBytes: 4096,
  createdAt: '2026-01-01T00:00:00.000Z',
  driver: DRIVER,
  sourceVolumeHandle: 'vol-9',
};

const inputs = (overrides: Partial<ContentInputs> = {}): ContentInputs => ({
  content: dynamicContent(),
  snapshot: snapshot(),
  snapshotClass: { metadata: { name: 'snapback-sim' }, driver: DRIVER, deletionPolicy: 'Delete' },
  sourceVolume: volume,
  sourceClaim: claim({ [SIM.write]: 'w1' }),
  record: undefined,
  nowMs: T0 + 1000,
  ...overrides,
});

describe('decideContent: dynamic snapshots', () => {
  it('cuts a snapshot of the source volume, with a handle derived from the content uid', () => {
    expect(decideContent(inputs())).toEqual({
      kind: 'create',
      record: {
        handle: 'snap-content-uid',
        contentId: 'c-vol',
        sizeBytes: 2 * 2 ** 30,
        createdAt: new Date(T0 + 1000).toISOString(),
        driver: DRIVER,
        sourceVolumeHandle: 'vol-1',
        sourceVolumeName: 'pvc-1',
      },
    });
  });

  it('includes a write the claim carries that the volume has not taken yet', () => {
    const action = decideContent(inputs({ sourceClaim: claim({ [SIM.write]: 'w2' }) }));
    expect(action.kind === 'create' && action.record.contentId).toBe(writtenContentId('c-vol', 'w2'));
  });

  it('ignores the write of a different claim with the same name', () => {
    const action = decideContent(inputs({ sourceClaim: claim({ [SIM.write]: 'w2' }, 'other-uid') }));
    expect(action.kind === 'create' && action.record.contentId).toBe('c-vol');
  });

  it('fails when the source volume is unknown', () => {
    expect(decideContent(inputs({ sourceVolume: undefined }))).toEqual({
      kind: 'fail',
      reason: 'SnapshotCreationFailed',
      message: 'Failed to create snapshot: volume vol-1 does not exist in the simulated backend',
    });
  });

  it('leaves other drivers and ready contents alone', () => {
    const foreign = dynamicContent();
    foreign.spec.driver = 'other.csi';
    expect(decideContent(inputs({ content: foreign })).kind).toBe('none');
    const ready = dynamicContent({ status: readyStatus({ ...record, handle: 'snap-content-uid' }) });
    expect(decideContent(inputs({ content: ready }))).toEqual({ kind: 'none', reason: 'ready' });
  });

  it('drops a leftover being-created mark from a ready content', () => {
    const ready = dynamicContent({
      annotations: { [SNAPSHOT.beingCreated]: 'yes' },
      status: readyStatus(record),
    });
    expect(decideContent(inputs({ content: ready }))).toEqual({ kind: 'clearBeingCreated' });
  });
});

describe('decideContent: failure injection', () => {
  it('fails with the VolumeSnapshot annotation message', () => {
    expect(decideContent(inputs({ snapshot: snapshot({ [SIM.fail]: 'array offline' }) }))).toEqual({
      kind: 'fail',
      reason: 'SnapshotCreationFailed',
      message: 'Failed to create snapshot: array offline',
    });
  });

  it('fails from the class, and the snapshot annotation wins over it', () => {
    const failingClass = {
      metadata: { name: 'snapback-sim', annotations: { [SIM.fail]: 'class down' } },
      driver: DRIVER,
      deletionPolicy: 'Delete' as const,
    };
    expect(decideContent(inputs({ snapshotClass: failingClass })).kind).toBe('fail');
    expect(
      decideContent(inputs({ snapshotClass: failingClass, snapshot: snapshot({ [SIM.fail]: 'object' }) })),
    ).toMatchObject({ message: 'Failed to create snapshot: object' });
  });

  it("waits for the delay counted from the end of the VolumeSnapshot's creation second", () => {
    const delayed = snapshot({ [SIM.delayMs]: '3000' });
    expect(decideContent(inputs({ snapshot: delayed, nowMs: T0 + 1000 }))).toMatchObject({
      kind: 'wait',
      afterMs: 2999,
    });
    expect(decideContent(inputs({ snapshot: delayed, nowMs: T0 + 3999 })).kind).toBe('create');
  });

  it('never finishes with never', () => {
    expect(decideContent(inputs({ snapshot: snapshot({ [SIM.never]: 'true' }) })).kind).toBe('none');
  });
});

describe('decideContent: pre-provisioned snapshots', () => {
  const preProvisioned = (): VolumeSnapshotContent => ({
    metadata: { name: 'restore-content', uid: 'pre-uid' },
    spec: {
      deletionPolicy: 'Retain',
      driver: DRIVER,
      source: { snapshotHandle: 'snap-pre' },
      volumeSnapshotRef: { name: 'snap', namespace: 'ns2' },
    },
  });

  it('reports a known handle ready with its size and creation time', () => {
    expect(decideContent(inputs({ content: preProvisioned(), snapshot: undefined, record }))).toEqual({
      kind: 'ready',
      status: {
        snapshotHandle: 'snap-pre',
        readyToUse: true,
        creationTime: T0 * 1e6,
        restoreSize: 4096,
      },
    });
  });

  it('reports an unknown handle as an error', () => {
    expect(decideContent(inputs({ content: preProvisioned(), snapshot: undefined }))).toEqual({
      kind: 'fail',
      reason: 'SnapshotContentCheckandUpdateFailed',
      message:
        'Failed to check and update snapshot content: snapshot snap-pre does not exist in the simulated storage backend',
    });
  });
});

describe('decideContent: deletion', () => {
  const deleting = (annotations: Record<string, string>, status?: VolumeSnapshotContent['status']) => {
    const content = dynamicContent({ annotations, ...(status === undefined ? {} : { status }) });
    content.metadata.deletionTimestamp = new Date(T0 + 5000).toISOString();
    return content;
  };

  it('deletes the backend snapshot once snapshot-controller marked the content', () => {
    const content = deleting(
      { [SNAPSHOT.beingDeleted]: 'yes' },
      readyStatus({ ...record, handle: 'snap-x' }),
    );
    expect(decideContent(inputs({ content }))).toEqual({ kind: 'delete', handle: 'snap-x' });
  });

  it('removes the finalizer once the backend snapshot is gone, or for Retain', () => {
    expect(decideContent(inputs({ content: deleting({ [SNAPSHOT.beingDeleted]: 'yes' }, {}) }))).toEqual({
      kind: 'removeFinalizer',
    });
    const retained = deleting({ [SNAPSHOT.beingDeleted]: 'yes' }, readyStatus(record));
    retained.spec.deletionPolicy = 'Retain';
    expect(decideContent(inputs({ content: retained }))).toEqual({ kind: 'removeFinalizer' });
  });

  it('waits for a CreateSnapshot call in flight and for snapshot-controller', () => {
    const inFlight = deleting({ [SNAPSHOT.beingDeleted]: 'yes', [SNAPSHOT.beingCreated]: 'yes' });
    expect(shouldDelete(inFlight)).toBe(false);
    expect(shouldDelete(deleting({}))).toBe(false);
    expect(shouldDelete(dynamicContent({ annotations: { [SNAPSHOT.beingDeleted]: 'yes' } }))).toBe(false);
  });

  it('deletes an unbound pre-provisioned content without waiting', () => {
    const content: VolumeSnapshotContent = {
      metadata: { name: 'c', deletionTimestamp: 'now' },
      spec: {
        deletionPolicy: 'Retain',
        driver: DRIVER,
        source: { snapshotHandle: 'snap-pre' },
        volumeSnapshotRef: { name: 'snap', namespace: 'ns2' },
      },
    };
    expect(shouldDelete(content)).toBe(true);
  });
});
