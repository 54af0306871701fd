import { describe, expect, it } from '@jest/globals';
import type {
  PersistentVolume,
  PersistentVolumeClaim,
  StorageClass,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../../../src/api/kubernetes.js';
import { DRIVER, KUBE, SIM } from '../../cluster/storage-simulator/constants.js';
import { freshContentId, writtenContentId } from '../../cluster/storage-simulator/content-id.js';
import {
  claimDataSource,
  decideClaim,
  decideVolume,
  resolveSnapshotSource,
  type ClaimInputs,
  type SourceResolution,
} from '../../cluster/storage-simulator/provisioning.js';
import type { SnapshotRecord } from '../../cluster/storage-simulator/state.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');

function claim(
  overrides: Partial<PersistentVolumeClaim['spec']> = {},
  annotations: Record<string, string> = {},
) {
  const pvc: PersistentVolumeClaim = {
    metadata: {
      name: 'data-0',
      namespace: 'ns1',
      uid: 'uid-1',
      resourceVersion: '42',
      creationTimestamp: new Date(T0).toISOString(),
      annotations: { [KUBE.storageProvisioner]: DRIVER, ...annotations },
    },
    spec: {
      storageClassName: 'snapback-sim',
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '1Gi' } },
      ...overrides,
    },
    status: { phase: 'Pending' },
  };
  return pvc;
}

const storageClass = (
  annotations: Record<string, string> = {},
  extra: Partial<StorageClass> = {},
): StorageClass => ({
  metadata: { name: 'snapback-sim', annotations },
  provisioner: DRIVER,
  reclaimPolicy: 'Delete',
  volumeBindingMode: 'Immediate',
  ...extra,
});

const inputs = (overrides: Partial<ClaimInputs> = {}): ClaimInputs => ({
  claim: claim(),
  storageClass: storageClass(),
  volume: undefined,
  source: undefined,
  nowMs: T0 + 5,
  ...overrides,
});

const snapshotSource = { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'snap' };

describe('decideClaim: provisioning', () => {
  it('provisions a PV the PV controller can bind to the claim', () => {
    const action = decideClaim(inputs());
    expect(action.kind).toBe('provision');
    if (action.kind !== 'provision') return;
    const pv = action.volume;
    expect(pv.metadata.name).toBe('pvc-uid-1');
    expect(pv.metadata.annotations).toEqual({
      [KUBE.provisionedBy]: DRIVER,
      [SIM.contentId]: freshContentId('uid-1'),
    });
    expect(pv.metadata.finalizers).toEqual([KUBE.provisionerFinalizer]);
    expect(pv.spec).toEqual({
      capacity: { storage: '1Gi' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Delete',
      storageClassName: 'snapback-sim',
      volumeMode: 'Filesystem',
      claimRef: {
        kind: 'PersistentVolumeClaim',
        apiVersion: 'v1',
        namespace: 'ns1',
        name: 'data-0',
        uid: 'uid-1',
        resourceVersion: '42',
      },
      csi: { driver: DRIVER, volumeHandle: 'vol-uid-1' },
    });
  });

  it('keeps a Retain class without the provisioner finalizer', () => {
    const action = decideClaim(inputs({ storageClass: storageClass({}, { reclaimPolicy: 'Retain' }) }));
    expect(action.kind === 'provision' && action.volume.metadata.finalizers).toBeUndefined();
    expect(action.kind === 'provision' && action.volume.spec.persistentVolumeReclaimPolicy).toBe('Retain');
  });

  it('applies a write the claim already carries', () => {
    const action = decideClaim(inputs({ claim: claim({}, { [SIM.write]: 'v1' }) }));
    expect(action.kind === 'provision' && action.volume.metadata.annotations).toMatchObject({
      [SIM.contentId]: writtenContentId(freshContentId('uid-1'), 'v1'),
      [SIM.appliedWrite]: 'v1',
    });
  });

  it.each<[string, Partial<ClaimInputs>, RegExp]>([
    [
      'another class',
      { storageClass: storageClass({}, { provisioner: 'other.csi' }) },
      /belongs to other\.csi/,
    ],
    ['no class object', { storageClass: undefined }, /does not exist/],
    ['no class name', { claim: claim({ storageClassName: '' }) }, /no storage class/],
    [
      'no provisioner annotation yet',
      { claim: { ...claim(), metadata: { uid: 'u', annotations: {} } } },
      /PV controller/,
    ],
    [
      'WaitForFirstConsumer without a node',
      { storageClass: storageClass({}, { volumeBindingMode: 'WaitForFirstConsumer' }) },
      /select a node/,
    ],
    ['an existing PV', { volume: { metadata: { name: 'pvc-uid-1' }, spec: {} } }, /exists/],
  ])('leaves the claim alone with %s', (_what, overrides, reason) => {
    const action = decideClaim(inputs(overrides));
    expect(action.kind).toBe('none');
    expect(action.kind === 'none' && action.reason).toMatch(reason);
  });

  it('provisions WaitForFirstConsumer claims once the scheduler picked a node', () => {
    const action = decideClaim(
      inputs({
        claim: claim({}, { [KUBE.selectedNode]: 'node-1' }),
        storageClass: storageClass({}, { volumeBindingMode: 'WaitForFirstConsumer' }),
      }),
    );
    expect(action.kind).toBe('provision');
  });

  it('accepts the beta provisioner annotation', () => {
    const pvc = claim();
    pvc.metadata.annotations = { [KUBE.betaStorageProvisioner]: DRIVER };
    expect(decideClaim(inputs({ claim: pvc })).kind).toBe('provision');
  });
});

describe('decideClaim: failure injection', () => {
  it('fails with the claim annotation message', () => {
    expect(decideClaim(inputs({ claim: claim({}, { [SIM.fail]: 'quota exceeded' }) }))).toEqual({
      kind: 'fail',
      message: 'quota exceeded',
      retry: false,
    });
  });

  it('fails with the class annotation unless the claim overrides it', () => {
    const failing = storageClass({ [SIM.fail]: 'class broken' });
    expect(decideClaim(inputs({ storageClass: failing }))).toMatchObject({
      kind: 'fail',
      message: 'class broken',
    });
    expect(decideClaim(inputs({ storageClass: failing, claim: claim({}, { [SIM.fail]: '' }) })).kind).toBe(
      'provision',
    );
  });

  it("waits out a delay counted from the end of the claim's creation second", () => {
    const delayed = claim({}, { [SIM.delayMs]: '2000' });
    expect(decideClaim(inputs({ claim: delayed, nowMs: T0 + 500 }))).toMatchObject({
      kind: 'wait',
      afterMs: 2499,
    });
    expect(decideClaim(inputs({ claim: delayed, nowMs: T0 + 2999 })).kind).toBe('provision');
  });

  it('never provisions with never', () => {
    const action = decideClaim(inputs({ claim: claim({}, { [SIM.never]: 'true' }), nowMs: T0 + 1e9 }));
    expect(action).toMatchObject({ kind: 'none', reason: expect.stringContaining(SIM.never) as unknown });
  });
});

describe('decideClaim: restore from a snapshot', () => {
  const restoring = claim({ dataSource: snapshotSource, dataSourceRef: snapshotSource });
  const ready: SourceResolution = { ok: true, handle: 'snap-h', contentId: 'c-snap', sizeBytes: 2 ** 30 };

  it('provisions with the snapshot content id and records the handle', () => {
    const action = decideClaim(inputs({ claim: restoring, source: ready }));
    expect(action.kind === 'provision' && action.volume.metadata.annotations).toMatchObject({
      [SIM.contentId]: 'c-snap',
      [SIM.restoredFrom]: 'snap-h',
    });
  });

  it('fails, to retry, while the snapshot cannot be used', () => {
    expect(decideClaim(inputs({ claim: restoring, source: { ok: false, message: 'not ready' } }))).toEqual({
      kind: 'fail',
      message: 'not ready',
      retry: true,
    });
  });

  it('refuses a volume smaller than the snapshot', () => {
    const action = decideClaim(inputs({ claim: restoring, source: { ...ready, sizeBytes: 2 ** 31 } }));
    expect(action).toMatchObject({
      kind: 'fail',
      message: expect.stringContaining('is less than the size') as unknown,
    });
  });
});

describe('decideClaim: writes', () => {
  const bound = (annotations: Record<string, string>) => claim({ volumeName: 'pvc-uid-1' }, annotations);
  const volume = (annotations: Record<string, string>): PersistentVolume => ({
    metadata: { name: 'pvc-uid-1', annotations },
    spec: { csi: { driver: DRIVER, volumeHandle: 'vol-uid-1' } },
  });

  it('gives the volume a new content id for a new write value', () => {
    const action = decideClaim(
      inputs({
        claim: bound({ [SIM.write]: 'w2' }),
        volume: volume({ [SIM.contentId]: 'c-0', [SIM.appliedWrite]: 'w1' }),
      }),
    );
    expect(action).toEqual({
      kind: 'write',
      volumeName: 'pvc-uid-1',
      contentId: writtenContentId('c-0', 'w2'),
      write: 'w2',
    });
  });

  it('does nothing when the write was applied or there is none', () => {
    const applied = volume({ [SIM.contentId]: 'c-0', [SIM.appliedWrite]: 'w1' });
    expect(decideClaim(inputs({ claim: bound({ [SIM.write]: 'w1' }), volume: applied })).kind).toBe('none');
    expect(decideClaim(inputs({ claim: bound({}), volume: applied })).kind).toBe('none');
  });
});

describe('claimDataSource', () => {
  it('finds a VolumeSnapshot source in the claim namespace', () => {
    expect(claimDataSource(claim({ dataSource: snapshotSource }))).toEqual({
      kind: 'snapshot',
      ref: { namespace: 'ns1', name: 'snap' },
    });
  });

  it('rejects other kinds and other namespaces', () => {
    expect(claimDataSource(claim({ dataSource: { kind: 'PersistentVolumeClaim', name: 'x' } })).kind).toBe(
      'unsupported',
    );
    expect(claimDataSource(claim({ dataSourceRef: { ...snapshotSource, namespace: 'other' } })).kind).toBe(
      'unsupported',
    );
    expect(claimDataSource(claim()).kind).toBe('none');
  });
});

describe('resolveSnapshotSource', () => {
  const ref = { namespace: 'ns1', name: 'snap' };
  const snapshot = (status: VolumeSnapshot['status'], extra: Partial<VolumeSnapshot['metadata']> = {}) => ({
    metadata: { name: 'snap', namespace: 'ns1', uid: 'vs-uid', ...extra },
    spec: { source: { persistentVolumeClaimName: 'data-0' } },
    status,
  });
  const content: VolumeSnapshotContent = {
    metadata: { name: 'snapcontent-vs-uid' },
    spec: {
      deletionPolicy: 'Delete',
      driver: DRIVER,
      source: { volumeHandle: 'vol-1' },
      volumeSnapshotRef: { name: 'snap', namespace: 'ns1', uid: 'vs-uid' },
    },
    status: { snapshotHandle: 'snap-h', readyToUse: true },
  };
  const record: SnapshotRecord = {
    handle: 'snap-h',
    contentId: 'c-snap',
    sizeBytes: 10,
    createdAt: '2026-01-01T00:00:00Z',
    driver: DRIVER,
    sourceVolumeHandle: 'vol-1',
  };
  const ready = { boundVolumeSnapshotContentName: 'snapcontent-vs-uid', readyToUse: true };

  it('resolves a ready, bound snapshot to its backend record', () => {
    expect(resolveSnapshotSource(ref, snapshot(ready), content, record)).toEqual({
      ok: true,
      handle: 'snap-h',
      contentId: 'c-snap',
      sizeBytes: 10,
    });
  });

  it.each<
    [
      string,
      VolumeSnapshot | undefined,
      VolumeSnapshotContent | undefined,
      SnapshotRecord | undefined,
      string,
    ]
  >([
    ['missing', undefined, content, record, 'VolumeSnapshot ns1/snap does not exist'],
    ['being deleted', snapshot(ready, { deletionTimestamp: 'now' }), content, record, 'is being deleted'],
    ['unbound', snapshot({ readyToUse: false }), content, record, 'is not bound'],
    [
      'bound to another',
      snapshot(ready),
      {
        ...content,
        spec: { ...content.spec, volumeSnapshotRef: { name: 'snap', namespace: 'ns1', uid: 'x' } },
      },
      record,
      'does not point back',
    ],
    [
      'another driver',
      snapshot(ready),
      { ...content, spec: { ...content.spec, driver: 'x' } },
      record,
      'driver x',
    ],
    [
      'not ready',
      snapshot({ ...ready, readyToUse: false, error: { message: 'boom' } }),
      content,
      record,
      'is not ready to use (its error: boom)',
    ],
    ['without handle', snapshot(ready), { ...content, status: {} }, record, 'has no snapshot handle'],
    [
      'not in the backend',
      snapshot(ready),
      content,
      undefined,
      'snap-h does not exist in the simulated storage backend',
    ],
  ])('says what is missing when the snapshot is %s', (_what, vs, vsc, rec, message) => {
    const result = resolveSnapshotSource(ref, vs, vsc, rec);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.message).toContain(message);
  });
});

describe('decideVolume', () => {
  const pv = (
    phase: string,
    extra: { policy?: string; finalizers?: string[]; deleting?: boolean; provisionedBy?: string } = {},
  ): PersistentVolume => ({
    metadata: {
      name: 'pvc-1',
      annotations: { [KUBE.provisionedBy]: extra.provisionedBy ?? DRIVER },
      finalizers: extra.finalizers ?? [KUBE.provisionerFinalizer],
      ...(extra.deleting === true ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
    },
    spec: {
      persistentVolumeReclaimPolicy: extra.policy ?? 'Delete',
      csi: { driver: DRIVER, volumeHandle: 'v' },
    },
    status: { phase },
  });

  it('deletes a Released volume with the Delete policy', () => {
    expect(decideVolume(pv('Released'))).toEqual({ kind: 'delete' });
    expect(decideVolume(pv('Released', { deleting: true }))).toEqual({ kind: 'delete' });
  });

  it('keeps Bound, Retain and foreign volumes', () => {
    expect(decideVolume(pv('Bound'))).toEqual({ kind: 'none' });
    expect(decideVolume(pv('Released', { policy: 'Retain', finalizers: [] }))).toEqual({ kind: 'none' });
    expect(decideVolume(pv('Released', { provisionedBy: 'other' }))).toEqual({ kind: 'none' });
  });

  it('manages its finalizer like external-provisioner', () => {
    expect(decideVolume(pv('Bound', { finalizers: [] }))).toEqual({ kind: 'addFinalizer' });
    expect(decideVolume(pv('Bound', { policy: 'Retain' }))).toEqual({ kind: 'removeFinalizer' });
    expect(decideVolume(pv('Released', { finalizers: [], deleting: true }))).toEqual({ kind: 'none' });
  });
});
