import { describe, expect, it } from '@jest/globals';
import { TerminalError } from '../../../src/runtime/errors.js';
import type {
  PersistentVolumeClaimSpec,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../../../src/api/kubernetes.js';
import {
  volumeClaim,
  parseQuantity,
  preProvisionedContent,
  snapshotOfContent,
  snapshotState,
  volumeSnapshotForClaim,
} from '../../../src/storage/snapshots.js';

const GI = 2 ** 30;
const MI = 2 ** 20;

describe('parseQuantity', () => {
  it.each([
    ['10Gi', 10 * GI],
    ['1Gi', GI],
    ['512Mi', 512 * MI],
    ['1Ki', 1024],
    ['2Ti', 2 * 2 ** 40],
    ['1G', 1e9],
    ['500M', 5e8],
    ['3k', 3000],
    ['1073741824', GI],
    ['0', 0],
    ['1.5Gi', 1.5 * GI],
    ['0.5G', 5e8],
    ['1e3', 1000],
    [' 2Gi ', 2 * GI],
  ])('%s is %d bytes', (quantity, bytes) => {
    expect(parseQuantity(quantity)).toBe(bytes);
  });

  it('rounds fractional bytes up', () => {
    expect(parseQuantity('1.0000001k')).toBe(1001);
  });

  it('takes milli quantities, which Kubernetes allows, rounded up to whole bytes', () => {
    expect(parseQuantity('1500m')).toBe(2);
    expect(parseQuantity('500m')).toBe(1);
  });

  it.each(['', 'Gi', '10GB', '10gi', '-1Gi', 'ten', '10 Gi', '.', '1.2.3Gi'])(
    '"%s" is not a storage quantity, for good (a TerminalError: retrying cannot help)',
    (quantity) => {
      expect(() => parseQuantity(quantity)).toThrow(TerminalError);
      expect(() => parseQuantity(quantity)).toThrow(/not a storage quantity/);
    },
  );
});

describe('volumeClaim', () => {
  const base = (claim: PersistentVolumeClaimSpec, minimumBytes?: number) =>
    volumeClaim({
      name: 'data-pg2-0',
      namespace: 'demo',
      snapshotName: 'snap-0',
      claim,
      labels: { 'snapback.dev/restore': 'r' },
      ...(minimumBytes === undefined ? {} : { minimumBytes }),
    });

  it('is a PVC with the snapshot as dataSource', () => {
    const pvc = base({
      accessModes: ['ReadWriteOnce'],
      storageClassName: 'fast',
      volumeMode: 'Block',
      resources: { requests: { storage: '1Gi' } },
    });
    expect(pvc).toEqual({
      metadata: { name: 'data-pg2-0', namespace: 'demo', labels: { 'snapback.dev/restore': 'r' } },
      spec: {
        accessModes: ['ReadWriteOnce'],
        storageClassName: 'fast',
        volumeMode: 'Block',
        resources: { requests: { storage: '1Gi' } },
        dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'snap-0' },
      },
    });
  });

  it('defaults to ReadWriteOnce and 1Gi, and leaves out what the template does not set', () => {
    const pvc = base({});
    expect(pvc.spec.accessModes).toEqual(['ReadWriteOnce']);
    expect(pvc.spec.resources).toEqual({ requests: { storage: '1Gi' } });
    expect(pvc.spec).not.toHaveProperty('storageClassName');
    expect(pvc.spec).not.toHaveProperty('volumeMode');
  });

  it.each([
    { requested: '1Gi', minimum: 2 * GI, expected: String(2 * GI) },
    { requested: '1Gi', minimum: GI, expected: '1Gi' },
    { requested: '10Gi', minimum: GI, expected: '10Gi' },
    { requested: '1Gi', minimum: GI + 1, expected: String(GI + 1) },
    { requested: undefined, minimum: 5 * GI, expected: String(5 * GI) },
    { requested: '3Gi', minimum: undefined, expected: '3Gi' },
  ])('requests $requested with minimum $minimum -> $expected', ({ requested, minimum, expected }) => {
    const claim: PersistentVolumeClaimSpec =
      requested === undefined ? {} : { resources: { requests: { storage: requested } } };
    expect(base(claim, minimum).spec.resources?.requests?.storage).toBe(expected);
  });
});

describe('preProvisionedContent and snapshotOfContent', () => {
  it('points a Retain content at the handle and the snapshot that will bind it', () => {
    const content = preProvisionedContent({
      name: 'content-1',
      driver: 'hostpath.csi.k8s.io',
      snapshotHandle: 'snap-handle-123',
      snapshotName: 'restore-snap-0',
      snapshotNamespace: 'copy',
      className: 'csi-snapclass',
      labels: { a: 'b' },
    });
    expect(content).toEqual({
      metadata: { name: 'content-1', labels: { a: 'b' } },
      spec: {
        deletionPolicy: 'Retain',
        driver: 'hostpath.csi.k8s.io',
        source: { snapshotHandle: 'snap-handle-123' },
        volumeSnapshotRef: { name: 'restore-snap-0', namespace: 'copy' },
        volumeSnapshotClassName: 'csi-snapclass',
      },
    });
    const snapshot = snapshotOfContent({
      name: 'restore-snap-0',
      namespace: 'copy',
      contentName: 'content-1',
      labels: {},
    });
    expect(snapshot.spec.source).toEqual({ volumeSnapshotContentName: 'content-1' });
    expect(snapshot.metadata).toMatchObject({ name: 'restore-snap-0', namespace: 'copy' });
  });

  it('leaves out the class when none is given', () => {
    const content = preProvisionedContent({
      name: 'c',
      driver: 'd',
      snapshotHandle: 'h',
      snapshotName: 's',
      snapshotNamespace: 'n',
      labels: {},
    });
    expect(content.spec).not.toHaveProperty('volumeSnapshotClassName');
  });
});

describe('volumeSnapshotForClaim', () => {
  it('snapshots the PVC with the class when given', () => {
    const snapshot = volumeSnapshotForClaim({
      name: 's',
      namespace: 'n',
      pvcName: 'data-pg-0',
      className: 'c',
      labels: {},
    });
    expect(snapshot.spec).toEqual({
      source: { persistentVolumeClaimName: 'data-pg-0' },
      volumeSnapshotClassName: 'c',
    });
    const classless = volumeSnapshotForClaim({ name: 's', namespace: 'n', pvcName: 'p', labels: {} });
    expect(classless.spec).not.toHaveProperty('volumeSnapshotClassName');
  });
});

describe('snapshotState', () => {
  const snapshot = (status?: VolumeSnapshot['status']): VolumeSnapshot => ({
    metadata: { name: 's', namespace: 'n' },
    spec: { source: { persistentVolumeClaimName: 'p' } },
    ...(status === undefined ? {} : { status }),
  });
  const content = (
    status?: VolumeSnapshotContent['status'],
    source: VolumeSnapshotContent['spec']['source'] = { volumeHandle: 'vol-1' },
  ): VolumeSnapshotContent => ({
    metadata: { name: 'c' },
    spec: { deletionPolicy: 'Delete', driver: 'd', source, volumeSnapshotRef: { name: 's', namespace: 'n' } },
    ...(status === undefined ? {} : { status }),
  });

  it.each<{
    name: string;
    snapshot: VolumeSnapshot;
    content?: VolumeSnapshotContent;
    expected: ReturnType<typeof snapshotState>;
  }>([
    { name: 'nothing known yet', snapshot: snapshot(), expected: { ready: false } },
    {
      name: 'ready with handle and size from the content',
      snapshot: snapshot({ readyToUse: true, restoreSize: '1Gi' }),
      content: content({ readyToUse: true, snapshotHandle: 'h-1', restoreSize: 2 * GI }),
      expected: { ready: true, handle: 'h-1', sizeBytes: 2 * GI },
    },
    {
      name: 'size from the snapshot when the content has none',
      snapshot: snapshot({ readyToUse: true, restoreSize: '1Gi' }),
      content: content({ snapshotHandle: 'h-1' }),
      expected: { ready: true, handle: 'h-1', sizeBytes: GI },
    },
    {
      name: 'handle from a pre-provisioned content spec',
      snapshot: snapshot({ readyToUse: true }),
      content: content(undefined, { snapshotHandle: 'h-pre' }),
      expected: { ready: true, handle: 'h-pre' },
    },
    {
      name: 'error on the snapshot',
      snapshot: snapshot({ readyToUse: false, error: { message: 'quota exceeded' } }),
      content: content({ error: { message: 'content error' } }),
      expected: { ready: false, error: 'quota exceeded' },
    },
    {
      name: 'error only on the content',
      snapshot: snapshot({ readyToUse: false }),
      content: content({ error: { message: 'driver failed' } }),
      expected: { ready: false, error: 'driver failed' },
    },
    {
      name: 'readyToUse must be true, not merely present',
      snapshot: snapshot({ readyToUse: false, restoreSize: '512Mi' }),
      expected: { ready: false, sizeBytes: 512 * MI },
    },
  ])('$name', ({ snapshot: s, content: c, expected }) => {
    expect(snapshotState(s, c)).toEqual(expected);
  });
});
