// The Backup reconciler against the in-memory API server: capture, snapshots, the deadline, what
// an error of the API server does to a backup, and deletion. The snapshotter is the test: it
// writes the VolumeSnapshots' status and their contents as the CSI snapshot controller would.
// Backups here have no backupLocation (records need S3).

import { clusterUid } from '../../../../src/runtime/cluster-identity.js';
import { beforeEach, describe, expect, it } from '@jest/globals';
import winston from 'winston';
import { annotations, finalizers, labels } from '../../../../src/api/constants.js';
import type { Backup, BackupStatus, Restore, RestorePhase } from '../../../../src/api/generated/types.js';
import type {
  Condition,
  PersistentVolumeClaim,
  StatefulSet,
  VolumeSnapshot,
  VolumeSnapshotClass,
  VolumeSnapshotContent,
} from '../../../../src/api/kubernetes.js';
import type { BackupContext } from '../../../../src/controllers/backup/context.js';
import { moversByBackup } from '../../../../src/controllers/backup/copy.js';
import { backupReconciler } from '../../../../src/controllers/backup/reconciler.js';
import { PROGRESS_INTERVAL_MS } from '../../../../src/controllers/shared/conditions.js';
import { restoresByBackup } from '../../../../src/controllers/restore/indexes.js';
import { boundedName, shortHash } from '../../../../src/naming.js';
import type { EventRecorder } from '../../../../src/observability/events.js';
import type { Reconcile } from '../../../../src/runtime/controller.js';
import { TerminalError } from '../../../../src/runtime/errors.js';
import { resources } from '../../../../src/runtime/resources.js';
import {
  apiError,
  connectionReset,
  FakeClient,
  fetchFailed,
  type FakeCache,
} from '../../../support/fake-client.js';
import { moverPodEnded } from '../../../support/builders.js';

const NS = 'db';
const KEY = `${NS}/b1`;
const DRIVER = 'csi.example.com';
const TIMEOUT_SECONDS = 600;
const T0 = Date.parse('2026-04-01T10:00:00Z');
const iso = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString();
/** As the fake API server writes timestamps: whole seconds. */
const stamp = (seconds: number): string => iso(seconds).replace(/\.\d{3}Z$/, 'Z');
const logger = winston.createLogger({ silent: true });

interface Recorded {
  kind: string;
  name: string;
  type: string;
  reason: string;
  message: string;
}

/** The EventRecorder's one method, keeping what it was asked to record. */
class RecordingEvents {
  readonly recorded: Recorded[] = [];

  record(
    rt: { kind: string },
    target: { metadata: { name?: string } },
    type: string,
    reason: string,
    message: string,
  ): Promise<void> {
    this.recorded.push({ kind: rt.kind, name: target.metadata.name ?? '', type, reason, message });
    return Promise.resolve();
  }
}

interface World {
  fake: FakeClient;
  snapshots: FakeCache<VolumeSnapshot>;
  events: RecordingEvents;
  reconcile: Reconcile;
  /** Moves the clock to `seconds` after T0. */
  at(seconds: number): void;
}

let w: World;

function world(moverImage = 'snapback:1.0'): World {
  let now = T0;
  const clock = (): Date => new Date(now);
  const fake = new FakeClient({ now: clock });
  const snapshots = fake.cache(resources.volumeSnapshots);
  fake.seed(resources.namespaces, { metadata: { name: 'kube-system', uid: 'uid-east' } });
  const ctx: BackupContext = {
    client: fake,
    cache: {
      backups: fake.cache(resources.backups),
      snapshots,
      // The index the Restore controller's wiring registers (restore/setup.ts).
      restores: fake.cache(resources.restores, {
        indexes: [restoresByBackup],
      }),
      locations: fake.cache(resources.backupLocations),
      movers: fake.cache(resources.pods, { indexes: [moversByBackup] }),
    },
    config: { clusterName: 'east', timeoutSeconds: TIMEOUT_SECONDS },
    mover: {
      image: moverImage,
      imagePullPolicy: 'IfNotPresent',
      nodeSelector: { pool: 'storage' },
      tolerations: [],
      resources: {},
      workers: 0,
    },
    namespace: 'snapback-system',
    clusterUid: clusterUid(fake),
    now: clock,
  };
  const events = new RecordingEvents();
  const reconcile = backupReconciler(ctx, events as unknown as EventRecorder, logger);
  return {
    fake,
    snapshots,
    events,
    reconcile,
    at: (seconds) => {
      now = T0 + seconds * 1000;
    },
  };
}

// --- fixtures ---------------------------------------------------------------------------------

/** `storageClassName` undefined: the template names no class. */
function statefulSet(storageClassName: string | undefined): StatefulSet {
  return {
    metadata: {
      name: 'pg',
      namespace: NS,
      labels: { [labels.dataServiceName]: 'postgresql' },
      annotations: { [annotations.tlsEnabled]: 'true' },
    },
    spec: {
      replicas: 1,
      serviceName: 'pg',
      selector: { matchLabels: { app: 'pg' } },
      template: {
        metadata: { labels: { app: 'pg' } },
        spec: { containers: [{ name: 'pg', image: 'postgres:16' }] },
      },
      volumeClaimTemplates: [
        {
          metadata: { name: 'data' },
          spec: {
            accessModes: ['ReadWriteOnce'],
            ...(storageClassName === undefined ? {} : { storageClassName }),
            resources: { requests: { storage: '1Gi' } },
          },
        },
      ],
    },
    status: { replicas: 1, readyReplicas: 1 },
  };
}

function claim(storageClassName: string | undefined): PersistentVolumeClaim {
  return {
    metadata: { name: 'data-pg-0', namespace: NS },
    spec: {
      accessModes: ['ReadWriteOnce'],
      ...(storageClassName === undefined ? {} : { storageClassName }),
      volumeName: 'pv-1',
      resources: { requests: { storage: '1Gi' } },
    },
    status: { phase: 'Bound' },
  };
}

const snapshotClass = (name: string, isDefault: boolean): VolumeSnapshotClass => ({
  metadata: {
    name,
    ...(isDefault ? { annotations: { 'snapshot.storage.kubernetes.io/is-default-class': 'true' } } : {}),
  },
  driver: DRIVER,
  deletionPolicy: 'Delete',
});

function backup(spec: Partial<Backup['spec']> = {}, status?: BackupStatus): Backup {
  return {
    metadata: {
      name: 'b1',
      namespace: NS,
      uid: 'backup-uid-1',
      creationTimestamp: stamp(0),
      finalizers: [finalizers.backup],
    },
    spec: { deployment: { name: 'pg' }, ...spec },
    ...(status === undefined ? {} : { status }),
  };
}

/** A deployment with one Bound volume of class "fast", whose driver has a default snapshot class. */
function seedDeployment(
  options: { storageClassName?: string | undefined; defaultClass?: boolean } = {},
): void {
  const className = 'storageClassName' in options ? options.storageClassName : 'fast';
  w.fake.seed(resources.statefulSets, statefulSet(className));
  w.fake.seed(resources.persistentVolumeClaims, claim(className));
  w.fake.seed(resources.storageClasses, { metadata: { name: 'fast' }, provisioner: DRIVER });
  w.fake.seed(resources.volumeSnapshotClasses, snapshotClass('csi-snap', options.defaultClass ?? true));
}

const current = (): Backup => {
  const found = w.fake.peek(resources.backups, 'b1', NS);
  if (found === undefined) throw new Error('the Backup is gone');
  return found;
};
const statusOf = (): BackupStatus => current().status ?? {};
const condition = (type: string, status: BackupStatus = statusOf()): Condition | undefined =>
  status.conditions?.find((c) => c.type === type);
/** The VolumeSnapshot of the claim data-pg-0 (as capture names it, before the status says so). */
const snapshotName = (): string =>
  boundedName('b1', 'data-pg-0', shortHash(['backup-uid-1', 'data-pg-0'], 5));

/** Captures and creates the VolumeSnapshot: the backup is InProgress, waiting for the snapshotter. */
async function untilSnapshotRequested(): Promise<string> {
  await w.reconcile(KEY);
  expect(statusOf().phase).toBe('InProgress');
  const name = snapshotName();
  expect(w.fake.peek(resources.volumeSnapshots, name, NS)).toBeDefined();
  return name;
}

/** What the CSI snapshot controller writes on the VolumeSnapshot. */
async function snapshotterReports(
  name: string,
  status: NonNullable<VolumeSnapshot['status']>,
): Promise<void> {
  await w.fake.mergePatch(
    resources.volumeSnapshots,
    name,
    { status },
    { namespace: NS, subresource: 'status' },
  );
}

/** The snapshot is cut: its content holds the handle, the VolumeSnapshot is ready. */
async function snapshotReady(name: string): Promise<void> {
  const content: VolumeSnapshotContent = {
    metadata: { name: 'snapcontent-1' },
    spec: {
      deletionPolicy: 'Delete',
      driver: DRIVER,
      source: { volumeHandle: 'vol-1' },
      volumeSnapshotRef: { name, namespace: NS },
      volumeSnapshotClassName: 'csi-snap',
    },
    status: { snapshotHandle: 'snap-handle-1', readyToUse: true, restoreSize: 1_073_741_824 },
  };
  w.fake.seed(resources.volumeSnapshotContents, content);
  await w.fake.mergePatch(
    resources.volumeSnapshots,
    name,
    {
      status: {
        boundVolumeSnapshotContentName: 'snapcontent-1',
        readyToUse: true,
        restoreSize: '1Gi',
        error: null,
      },
    },
    { namespace: NS, subresource: 'status' },
  );
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the reconcile to reject');
}

beforeEach(() => {
  w = world();
});

// --- the defects just fixed ---------------------------------------------------------------------

describe('a VolumeSnapshot reporting an error', () => {
  it('keeps the Backup InProgress, saying the snapshotter retries, and Completes once it is ready', async () => {
    seedDeployment();
    w.fake.seed(resources.backups, backup());
    const name = await untilSnapshotRequested();

    w.at(20);
    const error = 'Failed to create snapshot: rpc error: code = Internal desc = pool p1 is busy';
    await snapshotterReports(name, { readyToUse: false, error: { message: error, time: iso(15) } });
    await expect(w.reconcile(KEY)).resolves.toEqual({ requeueAfterMs: (TIMEOUT_SECONDS - 20) * 1000 });
    const retrying = statusOf();
    expect(retrying.phase).toBe('InProgress');
    expect(retrying.errorCode).toBeUndefined();
    expect(condition('Ready', retrying)).toMatchObject({
      status: 'False',
      reason: 'SnapshotsRetrying',
      message: `0/1 snapshot(s) of StatefulSet pg ready; the snapshotter retries after: data-pg-0: ${error}`,
    });
    expect(condition('Failed', retrying)).toMatchObject({ status: 'False', reason: 'NoFailure' });

    w.at(40);
    await snapshotReady(name);
    await expect(w.reconcile(KEY)).resolves.toBeUndefined();
    expect(statusOf()).toMatchObject({
      phase: 'Completed',
      cloudSnapId: 'snap-handle-1',
      completionTime: iso(40),
    });
    expect(statusOf().errorCode).toBeUndefined();
  });

  it('writes the error at once, however soon after the last write (a retry starting is not paced)', async () => {
    seedDeployment();
    w.fake.seed(resources.backups, backup());
    const name = await untilSnapshotRequested();

    w.at(1);
    await snapshotterReports(name, { readyToUse: false, error: { message: 'array busy', time: iso(1) } });
    w.fake.clearCalls();
    await w.reconcile(KEY);
    expect(w.fake.calls).toEqual([
      { verb: 'update', plural: 'backups', name: 'b1', namespace: NS, subresource: 'status' },
    ]);
    expect(condition('Ready', statusOf())).toMatchObject({ reason: 'SnapshotsRetrying' });
  });
});

describe('a capture that fails transiently', () => {
  it.each([
    ['a connection reset', connectionReset(), 'read ECONNRESET'],
    ['fetch failed', fetchFailed(), 'ECONNRESET: fetch failed'],
    ['a 503', apiError(503, 'ServiceUnavailable', 'unavailable'), '503 ServiceUnavailable: unavailable'],
  ])(
    'records startTime and Ready ProgressingWithRetry on %s, and rejects with the error',
    async (_what, err, cause) => {
      seedDeployment();
      w.fake.seed(resources.backups, backup());
      w.at(5);
      w.fake.failNext('get', 'statefulsets', err);
      expect(await rejection(w.reconcile(KEY))).toBe(err);
      const status = statusOf();
      expect(status.phase).toBeUndefined();
      expect(status.startTime).toBe(iso(5));
      expect(condition('Ready', status)).toEqual({
        type: 'Ready',
        status: 'False',
        reason: 'ProgressingWithRetry',
        message: `retrying after an error: ${cause}`,
        lastTransitionTime: iso(5),
      });
    },
  );

  it('fails with PhaseTimeout once it is still failing past startTime + timeoutSeconds', async () => {
    seedDeployment();
    w.fake.seed(resources.backups, backup());
    w.at(5);
    w.fake.failNext('get', 'statefulsets', connectionReset());
    await rejection(w.reconcile(KEY));
    const startTime = statusOf().startTime;

    // Still within the deadline: retrying, not failed.
    w.at(5 + TIMEOUT_SECONDS - 1);
    w.fake.failNext('get', 'statefulsets', connectionReset());
    await rejection(w.reconcile(KEY));
    expect(statusOf().phase).toBeUndefined();
    expect(condition('Ready')?.reason).toBe('ProgressingWithRetry');

    w.at(5 + TIMEOUT_SECONDS + 1);
    const err = connectionReset();
    w.fake.failNext('get', 'statefulsets', err);
    expect(await rejection(w.reconcile(KEY))).toBe(err);
    const status = statusOf();
    expect(status).toMatchObject({
      phase: 'Failed',
      errorCode: 'PhaseTimeout',
      startTime,
      completionTime: iso(5 + TIMEOUT_SECONDS + 1),
    });
    expect(status.errorMessage).toBe(
      `the backup did not complete within ${TIMEOUT_SECONDS}s (retrying after read ECONNRESET); check the VolumeSnapshots, the CSI driver and the backup location, then create a new Backup.`,
    );
    expect(condition('Failed', status)).toMatchObject({ status: 'True', reason: 'PhaseTimeout' });
    expect(w.events.recorded.at(-1)).toMatchObject({ type: 'Warning', reason: 'PhaseTimeout', name: 'b1' });

    // A failed backup is left alone: no capture is tried again.
    w.fake.clearCalls();
    await expect(w.reconcile(KEY)).resolves.toBeUndefined();
    expect(w.fake.calls).toEqual([]);
  });

  // README, Backup error codes: "a Backup that has not started gets its startTime at the first such
  // error, so backup.timeoutSeconds bounds it". capture() always writes startTime: now, so a capture
  // that succeeds after retries restarts the clock: a backup that retried for almost the whole
  // timeout gets a second full timeout for its snapshots (src/controllers/backup/capture.ts, the
  // `start` status).
  it('keeps the startTime of the first error when the capture then succeeds, so the deadline still bounds it', async () => {
    seedDeployment();
    w.fake.seed(resources.backups, backup());
    w.at(5);
    w.fake.failNext('get', 'statefulsets', connectionReset());
    await rejection(w.reconcile(KEY));
    w.at(5 + TIMEOUT_SECONDS - 10);
    await w.reconcile(KEY);
    expect(statusOf()).toMatchObject({ phase: 'InProgress', startTime: iso(5) });
    await w.reconcile(KEY);
    w.at(5 + TIMEOUT_SECONDS + 1);
    await w.reconcile(KEY);
    expect(statusOf()).toMatchObject({ phase: 'Failed', errorCode: 'PhaseTimeout' });
  });

  it('captures once the API server answers again', async () => {
    seedDeployment();
    w.fake.seed(resources.backups, backup());
    w.fake.failNext('get', 'statefulsets', connectionReset());
    await rejection(w.reconcile(KEY));
    w.at(10);
    await w.reconcile(KEY);
    expect(statusOf().phase).toBe('InProgress');
    expect(condition('Ready')).toMatchObject({ status: 'False', reason: 'SnapshotsInProgress' });
  });
});

describe('a Bound PVC without storageClassName', () => {
  it('fails VolumeSnapshotClassNotFound, saying to set spec.volumeSnapshotClassName, asking for no StorageClass', async () => {
    seedDeployment({ storageClassName: undefined });
    w.fake.seed(resources.backups, backup());
    await expect(w.reconcile(KEY)).resolves.toBeUndefined();
    const status = statusOf();
    expect(status).toMatchObject({ phase: 'Failed', errorCode: 'VolumeSnapshotClassNotFound' });
    expect(status.errorMessage).toBe(
      'PersistentVolumeClaim data-pg-0 names no storageClassName, so its CSI driver and default VolumeSnapshotClass cannot be told; set spec.volumeSnapshotClassName on the Backup.',
    );
    expect(w.fake.calls.filter((call) => call.plural === 'storageclasses')).toEqual([]);
    expect(w.fake.calls).not.toContainEqual({ verb: 'get', plural: 'storageclasses', name: '' });
    expect(w.events.recorded).toEqual([
      expect.objectContaining({ type: 'Warning', reason: 'VolumeSnapshotClassNotFound' }),
    ]);
  });

  it('goes InProgress with spec.volumeSnapshotClassName naming an existing class', async () => {
    seedDeployment({ storageClassName: undefined, defaultClass: false });
    w.fake.seed(resources.backups, backup({ volumeSnapshotClassName: 'csi-snap' }));
    await w.reconcile(KEY);
    const status = statusOf();
    expect(status.phase).toBe('InProgress');
    expect(status.volumes).toEqual([
      {
        pvcName: 'data-pg-0',
        volumeSnapshotName: expect.stringMatching(/^b1-data-pg-0-/),
        driver: DRIVER,
        volumeSnapshotClassName: 'csi-snap',
      },
    ]);
    expect(w.fake.calls.filter((call) => call.plural === 'storageclasses')).toEqual([]);

    await w.reconcile(KEY);
    expect(w.fake.peek(resources.volumeSnapshots, snapshotName(), NS)?.spec).toEqual({
      source: { persistentVolumeClaimName: 'data-pg-0' },
      volumeSnapshotClassName: 'csi-snap',
    });
  });

  it('fails VolumeSnapshotClassNotFound when the named class does not exist', async () => {
    seedDeployment({ storageClassName: undefined });
    w.fake.seed(resources.backups, backup({ volumeSnapshotClassName: 'nope' }));
    await w.reconcile(KEY);
    expect(statusOf()).toMatchObject({
      phase: 'Failed',
      errorCode: 'VolumeSnapshotClassNotFound',
      errorMessage:
        'VolumeSnapshotClass "nope" does not exist; create it or fix spec.volumeSnapshotClassName.',
    });
  });
});

describe('a class-less volume among others', () => {
  it('with a named class, asks for each StorageClass once and never for one with an empty name', async () => {
    seedDeployment();
    w.fake.seed(resources.statefulSets, {
      ...statefulSet('fast'),
      spec: { ...statefulSet('fast').spec, replicas: 3 },
    });
    w.fake.seed(resources.persistentVolumeClaims, {
      ...claim(undefined),
      metadata: { name: 'data-pg-1', namespace: NS },
    });
    w.fake.seed(resources.persistentVolumeClaims, {
      ...claim('fast'),
      metadata: { name: 'data-pg-2', namespace: NS },
    });
    w.fake.seed(resources.backups, backup({ volumeSnapshotClassName: 'csi-snap' }));
    await w.reconcile(KEY);
    expect(statusOf().phase).toBe('InProgress');
    expect(statusOf().volumes?.map((v) => [v.pvcName, v.volumeSnapshotClassName, v.driver])).toEqual([
      ['data-pg-0', 'csi-snap', DRIVER],
      ['data-pg-1', 'csi-snap', DRIVER],
      ['data-pg-2', 'csi-snap', DRIVER],
    ]);
    expect(w.fake.calls.filter((call) => call.plural === 'storageclasses')).toEqual([
      { verb: 'get', plural: 'storageclasses', name: 'fast' },
    ]);
  });

  it('without a named class, fails naming the class-less claim', async () => {
    seedDeployment();
    w.fake.seed(resources.statefulSets, {
      ...statefulSet('fast'),
      spec: { ...statefulSet('fast').spec, replicas: 2 },
    });
    w.fake.seed(resources.persistentVolumeClaims, {
      ...claim(undefined),
      metadata: { name: 'data-pg-1', namespace: NS },
    });
    w.fake.seed(resources.backups, backup());
    await w.reconcile(KEY);
    expect(statusOf()).toMatchObject({ phase: 'Failed', errorCode: 'VolumeSnapshotClassNotFound' });
    expect(statusOf().errorMessage).toContain('PersistentVolumeClaim data-pg-1 names no storageClassName');
    expect(w.fake.calls).not.toContainEqual({ verb: 'get', plural: 'storageclasses', name: '' });
  });

  it('fails when the driver has no default snapshot class, naming the driver', async () => {
    seedDeployment({ defaultClass: false });
    w.fake.seed(resources.backups, backup());
    await w.reconcile(KEY);
    expect(statusOf()).toMatchObject({ phase: 'Failed', errorCode: 'VolumeSnapshotClassNotFound' });
    expect(statusOf().errorMessage).toContain(`no default VolumeSnapshotClass for CSI driver "${DRIVER}"`);
  });
});

describe('the deadline', () => {
  it('is judged after the step: past it, snapshots now all ready Complete the backup', async () => {
    seedDeployment();
    w.fake.seed(resources.backups, backup());
    const name = await untilSnapshotRequested();
    w.at(TIMEOUT_SECONDS + 60);
    await snapshotReady(name);
    await expect(w.reconcile(KEY)).resolves.toBeUndefined();
    expect(statusOf()).toMatchObject({ phase: 'Completed', cloudSnapId: 'snap-handle-1' });
    expect(statusOf().errorCode).toBeUndefined();
  });

  it('fails PhaseTimeout past it while snapshots are not ready, saying what they were doing', async () => {
    seedDeployment();
    w.fake.seed(resources.backups, backup());
    await untilSnapshotRequested();
    w.at(TIMEOUT_SECONDS + 60);
    await expect(w.reconcile(KEY)).resolves.toBeUndefined();
    expect(statusOf()).toMatchObject({
      phase: 'Failed',
      errorCode: 'PhaseTimeout',
      completionTime: iso(TIMEOUT_SECONDS + 60),
    });
    expect(statusOf().errorMessage).toContain(
      `did not complete within ${TIMEOUT_SECONDS}s (0/1 snapshot(s) of StatefulSet pg ready)`,
    );
  });

  it('names the snapshotter error in the timeout', async () => {
    seedDeployment();
    w.fake.seed(resources.backups, backup());
    const name = await untilSnapshotRequested();
    await snapshotterReports(name, { readyToUse: false, error: { message: 'quota exceeded' } });
    w.at(TIMEOUT_SECONDS + 1);
    await w.reconcile(KEY);
    expect(statusOf().errorMessage).toContain('the snapshotter retries after: data-pg-0: quota exceeded');
  });

  it('requeues for the deadline while waiting', async () => {
    seedDeployment();
    w.fake.seed(resources.backups, backup());
    await w.reconcile(KEY);
    w.at(30);
    await expect(w.reconcile(KEY)).resolves.toEqual({ requeueAfterMs: (TIMEOUT_SECONDS - 30) * 1000 });
  });
});

describe('an API server refusing a request of the backup', () => {
  it('fails BackupInternalError naming the 403 of creating a VolumeSnapshot, and rejects with TerminalError', async () => {
    seedDeployment();
    w.fake.seed(resources.backups, backup());
    const forbidden = apiError(
      403,
      'Forbidden',
      'volumesnapshots.snapshot.storage.k8s.io is forbidden: User "system:serviceaccount:snapback-system:snapback" cannot create resource "volumesnapshots"',
    );
    w.fake.failNext('create', 'volumesnapshots', forbidden);
    w.at(3);
    const err = await rejection(w.reconcile(KEY));
    expect(err).toBeInstanceOf(TerminalError);
    expect((err as TerminalError).cause).toBe(forbidden);
    const status = statusOf();
    expect(status).toMatchObject({
      phase: 'Failed',
      errorCode: 'BackupInternalError',
      completionTime: iso(3),
    });
    expect(status.errorMessage).toBe(
      `the API server refused a request of the backup: 403 Forbidden: ${forbidden.message}; fix the cause, then create a new Backup.`,
    );
    expect(condition('Ready', status)).toMatchObject({ status: 'False', reason: 'BackupInternalError' });
    expect(w.events.recorded.at(-1)).toMatchObject({ type: 'Warning', reason: 'BackupInternalError' });
    expect(w.fake.objects(resources.volumeSnapshots)).toEqual([]);
  });

  it('retries a 503 of creating a VolumeSnapshot, InProgress, and creates it on the next attempt', async () => {
    seedDeployment();
    w.fake.seed(resources.backups, backup());
    const unavailable = apiError(503, 'ServiceUnavailable', 'etcd is unavailable');
    w.fake.failNext('create', 'volumesnapshots', unavailable);
    expect(await rejection(w.reconcile(KEY))).toBe(unavailable);
    // Not started, the clock running: the next attempt captures again, with the same names.
    expect(statusOf()).toMatchObject({ startTime: iso(0) });
    expect(statusOf().phase).toBeUndefined();
    expect(condition('Ready')).toMatchObject({
      reason: 'ProgressingWithRetry',
      message: 'retrying after an error: 503 ServiceUnavailable: etcd is unavailable',
    });
    w.at(3);
    await w.reconcile(KEY);
    expect(w.fake.objects(resources.volumeSnapshots)).toHaveLength(1);
    expect(statusOf()).toMatchObject({ phase: 'InProgress', startTime: iso(0) });
    expect(condition('Ready')?.reason).toBe('SnapshotsInProgress');
  });
});

describe("a VolumeSnapshot of the backup's name that belongs to something else", () => {
  const foreign = (name: string): VolumeSnapshot => ({
    metadata: { name, namespace: NS, labels: { [labels.backup]: 'someone-else' } },
    spec: { source: { persistentVolumeClaimName: 'data-pg-0' } },
    status: { readyToUse: true, boundVolumeSnapshotContentName: 'snapcontent-1' },
  });

  it('fails SnapshotFailed when creating it finds the name taken (the cache had not seen it)', async () => {
    seedDeployment();
    w.fake.seed(resources.backups, backup());
    w.snapshots.freeze();
    w.fake.seed(resources.volumeSnapshots, foreign(snapshotName()));
    await w.reconcile(KEY);
    expect(statusOf()).toMatchObject({ phase: 'Failed', errorCode: 'SnapshotFailed' });
    expect(statusOf().errorMessage).toBe(
      `VolumeSnapshot ${NS}/${snapshotName()} already exists and belongs to something else.`,
    );
  });

  // README, Backup error codes: SnapshotFailed when "a VolumeSnapshot of the Backup's name belongs
  // to something else". takeSnapshots checks the owner only when it creates the snapshot; one
  // the cache already holds is taken as the backup's own whatever its snapshot.dev/backup label
  // says, so the backup Completes with another snapshot's handle
  // (src/controllers/backup/snapshot.ts, the `snapshot !== undefined` path).
  it('fails SnapshotFailed too when the cache already holds it', async () => {
    seedDeployment();
    w.fake.seed(resources.backups, backup());
    const name = snapshotName();
    w.fake.seed(resources.volumeSnapshots, foreign(name));
    w.fake.seed(resources.volumeSnapshotContents, {
      metadata: { name: 'snapcontent-1' },
      spec: {
        deletionPolicy: 'Delete',
        driver: DRIVER,
        source: {},
        volumeSnapshotRef: { name, namespace: NS },
      },
      status: { snapshotHandle: 'not-ours', readyToUse: true },
    });
    await w.reconcile(KEY);
    expect(statusOf()).toMatchObject({ phase: 'Failed', errorCode: 'SnapshotFailed' });
  });
});

// --- the happy path -------------------------------------------------------------------------------

describe('the happy path', () => {
  it('captures, snapshots and Completes with the handle of the VolumeSnapshotContent', async () => {
    seedDeployment();
    w.fake.seed(resources.backups, backup());

    // One reconcile captures and requests the snapshot; it looks again at the deadline.
    await expect(w.reconcile(KEY)).resolves.toEqual({ requeueAfterMs: TIMEOUT_SECONDS * 1000 });
    const captured = statusOf();
    expect(captured).toMatchObject({
      phase: 'InProgress',
      startTime: iso(0),
      backupCapability: { backup: 'v1' },
      dataServiceDeploymentMetaData: {
        name: 'pg',
        customResourceName: 'pg',
        targetClusterName: 'east',
        namespaceName: NS,
        tlsEnabled: true,
        dataServiceName: 'postgresql',
        image: 'postgres:16',
        replicas: 1,
        imageCapabilities: {},
      },
    });
    expect(captured.volumes).toEqual([
      {
        pvcName: 'data-pg-0',
        volumeSnapshotName: expect.stringMatching(/^b1-data-pg-0-[a-z2-7]{5}$/),
        driver: DRIVER,
        volumeSnapshotClassName: 'csi-snap',
      },
    ]);
    // The manifest is sanitized: nothing the server owns, no status.
    expect(captured.manifest).toMatchObject({ kind: 'StatefulSet', metadata: { name: 'pg' } });
    expect(captured.manifest).not.toHaveProperty('status');
    expect(captured.manifest).not.toHaveProperty('metadata.resourceVersion');
    expect(condition('Ready', captured)).toMatchObject({
      status: 'False',
      reason: 'SnapshotsInProgress',
      message: '0/1 snapshot(s) of StatefulSet pg ready',
    });
    expect(w.events.recorded).toEqual([
      {
        kind: 'Backup',
        name: 'b1',
        type: 'Normal',
        reason: 'InProgress',
        message: '0/1 snapshot(s) of StatefulSet pg ready',
      },
    ]);

    const name = snapshotName();
    const snapshot = w.fake.peek(resources.volumeSnapshots, name, NS);
    expect(snapshot?.metadata.labels).toEqual({
      [labels.backup]: 'b1',
      [labels.deployment]: 'pg',
      [labels.managedBy]: 'snapback',
    });
    expect(snapshot?.spec).toEqual({
      source: { persistentVolumeClaimName: 'data-pg-0' },
      volumeSnapshotClassName: 'csi-snap',
    });

    // Nothing changed: nothing is written, the snapshot is not created again.
    w.fake.clearCalls();
    await w.reconcile(KEY);
    expect(w.fake.calls.filter((call) => call.verb !== 'get' && call.verb !== 'list')).toEqual([]);

    w.at(30);
    await snapshotReady(name);
    await expect(w.reconcile(KEY)).resolves.toBeUndefined();
    const done = statusOf();
    expect(done).toMatchObject({
      phase: 'Completed',
      cloudSnapId: 'snap-handle-1',
      fileSize: 1_073_741_824,
      startTime: iso(0),
      completionTime: iso(30),
    });
    expect(done.volumes).toEqual([
      {
        pvcName: 'data-pg-0',
        volumeSnapshotName: name,
        driver: DRIVER,
        volumeSnapshotClassName: 'csi-snap',
        cloudSnapId: 'snap-handle-1',
        sizeBytes: 1_073_741_824,
      },
    ]);
    expect(condition('Ready', done)).toMatchObject({
      status: 'True',
      reason: 'Completed',
      message: '1 snapshot(s) ready, 1073741824 bytes',
      lastTransitionTime: iso(30),
    });
    expect(condition('Failed', done)).toMatchObject({ status: 'False', reason: 'NoFailure' });
    expect(w.events.recorded.map((e) => [e.type, e.reason])).toEqual([
      ['Normal', 'InProgress'],
      ['Normal', 'Completed'],
    ]);

    // A Completed backup is left alone.
    w.fake.clearCalls();
    await expect(w.reconcile(KEY)).resolves.toBeUndefined();
    expect(w.fake.calls).toEqual([]);
  });

  it('adds its finalizer first to a Backup created without it', async () => {
    seedDeployment();
    w.fake.seed(resources.backups, { ...backup(), metadata: { ...backup().metadata, finalizers: [] } });
    await w.reconcile(KEY);
    expect(current().metadata.finalizers).toEqual([finalizers.backup]);
    expect(current().status).toBeUndefined();
    await w.reconcile(KEY);
    expect(statusOf().phase).toBe('InProgress');
  });

  it.each([
    ['a missing StatefulSet', 'DeploymentNotFound', false],
    ['a claim that is not Bound', 'DeploymentHasNoVolumes', true],
  ] as const)('fails on %s with %s', async (_what, code, withDeployment) => {
    if (withDeployment) {
      seedDeployment();
      w.fake.seed(resources.persistentVolumeClaims, { ...claim('fast'), status: { phase: 'Pending' } });
    }
    w.fake.seed(resources.backups, backup());
    await w.reconcile(KEY);
    expect(statusOf()).toMatchObject({ phase: 'Failed', errorCode: code });
  });
});

// --- the copy of volume data ------------------------------------------------------------------

describe('a backup stored in a location that copies volume data', () => {
  const OPERATOR_NS = 'snapback-system';
  const MANIFEST = `east/${NS}/b1-${shortHash(['backup-uid-1'], 6)}/data-pg-0`;
  const scaffold = `snapback-mover-b1-${shortHash(['backup-uid-1'], 6)}-0`;
  const podOf = (attempt: number): string => `${scaffold}-${attempt}`;
  const dataCopy = () => statusOf().volumes?.[0]?.dataCopy;

  function seedLocation(copyVolumeData?: boolean): void {
    w.fake.seed(resources.backupLocations, {
      metadata: { name: 'vault' },
      spec: {
        s3: { bucket: 'backups', endpoint: 'http://s3.example:9000', forcePathStyle: true },
        credentialsSecretName: 'vault-key',
        ...(copyVolumeData === undefined ? {} : { copyVolumeData }),
      },
    });
  }

  /** Capture, snapshot ready, the reconcile that starts the mover. */
  async function untilMoverStarted(): Promise<void> {
    seedDeployment();
    seedLocation();
    w.fake.seed(resources.backups, backup({ backupLocation: 'vault' }));
    const name = await untilSnapshotRequested();
    w.at(10);
    await snapshotReady(name);
    await w.reconcile(KEY);
  }

  const moverEnds = (attempt: number, phase: 'Succeeded' | 'Failed', result: unknown, at: number) =>
    moverPodEnded(w.fake, OPERATOR_NS, podOf(attempt), phase, result, stamp(at));

  const copied = {
    operation: 'backup',
    manifest: MANIFEST,
    seconds: 12.5,
    progress: {
      bytesDone: 5000,
      bytesTotal: 5000,
      files: 12,
      chunksNew: 3,
      chunksReused: 1,
      bytesTransferred: 2100,
    },
  };

  it("mounts the snapshot in the operator's namespace through a Retain content and runs a mover pod there", async () => {
    await untilMoverStarted();
    expect(statusOf().phase).toBe('InProgress');
    expect(dataCopy()).toEqual({
      manifest: MANIFEST,
      phase: 'Pending',
      attempts: 1,
      moverPod: podOf(1),
      message: 'mover pod created',
    });
    expect(condition('Ready')).toMatchObject({
      reason: 'CopyingVolumeData',
      message: expect.stringContaining('0/1 volume(s) copied into BackupLocation vault') as unknown,
    });
    const content = w.fake.peek(resources.volumeSnapshotContents, scaffold);
    expect(content?.spec).toMatchObject({
      deletionPolicy: 'Retain',
      driver: DRIVER,
      source: { snapshotHandle: 'snap-handle-1' },
      volumeSnapshotRef: { name: scaffold, namespace: OPERATOR_NS },
    });
    expect(w.fake.peek(resources.volumeSnapshots, scaffold, OPERATOR_NS)?.spec).toEqual({
      source: { volumeSnapshotContentName: scaffold },
    });
    const claimed = w.fake.peek(resources.persistentVolumeClaims, scaffold, OPERATOR_NS);
    expect(claimed?.spec).toMatchObject({
      storageClassName: 'fast',
      dataSource: { kind: 'VolumeSnapshot', name: scaffold },
    });
    const pod = w.fake.peek(resources.pods, podOf(1), OPERATOR_NS);
    expect(pod?.metadata.labels).toMatchObject({
      [labels.moverFor]: 'backup-uid-1',
      [labels.backup]: 'b1',
      [labels.backupNamespace]: NS,
    });
    expect(pod?.spec).toMatchObject({
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      nodeSelector: { pool: 'storage' },
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: scaffold, readOnly: true } }],
    });
    const [container] = pod?.spec.containers ?? [];
    expect(container).toMatchObject({
      image: 'snapback:1.0',
      args: ['mover', 'backup', '/data', MANIFEST],
      terminationMessagePath: '/dev/termination-log',
      securityContext: {
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'], add: ['DAC_OVERRIDE'] },
      },
    });
    // The credentials are referenced where they are, never copied: no Secret is written anywhere.
    const env = container?.env as { name: string; value?: string; valueFrom?: unknown }[];
    expect(env.find((e) => e.name === 'SNAPBACK_MOVER_SECRET_ACCESS_KEY')).toEqual({
      name: 'SNAPBACK_MOVER_SECRET_ACCESS_KEY',
      valueFrom: { secretKeyRef: { name: 'vault-key', key: 'secretAccessKey' } },
    });
    expect(w.fake.calls.filter((call) => call.plural === 'secrets' && call.verb !== 'get')).toEqual([]);
  });

  it('records the copy, removes the mover and what it mounted, then stores the record', async () => {
    await untilMoverStarted();
    await moverEnds(1, 'Succeeded', copied, 30);
    w.at(31);
    await w.reconcile(KEY);
    expect(dataCopy()).toEqual({
      manifest: MANIFEST,
      phase: 'Completed',
      attempts: 1,
      moverPod: podOf(1),
      message: 'copied in 12.5 s',
      bytesTotal: 5000,
      bytesDone: 5000,
      bytesUploaded: 2100,
      files: 12,
      chunksNew: 3,
      chunksReused: 1,
      completionTime: iso(31),
    });
    expect(w.fake.peek(resources.pods, podOf(1), OPERATOR_NS)).toBeUndefined();
    expect(w.fake.peek(resources.persistentVolumeClaims, scaffold, OPERATOR_NS)).toBeUndefined();
    expect(w.fake.peek(resources.volumeSnapshots, scaffold, OPERATOR_NS)).toBeUndefined();
    expect(w.fake.peek(resources.volumeSnapshotContents, scaffold)).toBeUndefined();
    // The record comes last; its store has no credentials in this test, which it says.
    expect(statusOf().phase).toBe('InProgress');
    expect(condition('Ready')).toMatchObject({
      reason: 'StoringRecord',
      message: expect.stringContaining('Secret snapback-system/vault-key does not exist') as unknown,
    });
  });

  it('starts a new mover after a store failure, with backoff, and fails at once on a wrong key', async () => {
    await untilMoverStarted();
    const unreachable = {
      error: { code: 'StoreUnreachable', message: 'connect ECONNREFUSED 10.0.0.9:9000' },
    };
    await moverEnds(1, 'Failed', unreachable, 20);
    w.at(21);
    await expect(w.reconcile(KEY)).resolves.toEqual({ requeueAfterMs: 4000 });
    expect(statusOf().phase).toBe('InProgress');
    expect(condition('Ready')).toMatchObject({ reason: 'VolumeDataCopyRetrying' });
    expect(dataCopy()?.message).toBe(
      'attempt 1 failed: StoreUnreachable: connect ECONNREFUSED 10.0.0.9:9000; retrying in 4 s',
    );
    expect(w.fake.peek(resources.pods, podOf(1), OPERATOR_NS)).toBeDefined();

    w.at(25);
    await w.reconcile(KEY);
    expect(w.fake.peek(resources.pods, podOf(1), OPERATOR_NS)).toBeUndefined();
    expect(w.fake.peek(resources.pods, podOf(2), OPERATOR_NS)).toBeDefined();
    expect(dataCopy()).toMatchObject({ attempts: 2, moverPod: podOf(2), phase: 'Pending' });

    const wrongKey = {
      error: { code: 'WrongKey', message: "the repository was made with another location's key" },
    };
    await moverEnds(2, 'Failed', wrongKey, 40);
    w.at(41);
    await w.reconcile(KEY);
    expect(statusOf()).toMatchObject({ phase: 'Failed', errorCode: 'VolumeDataCopyFailed' });
    expect(statusOf().errorMessage).toBe(
      "copying data-pg-0 into BackupLocation vault failed: WrongKey: the repository was made with another location's key",
    );
    // Failed: the next reconcile removes the mover and what it mounted.
    await w.reconcile(KEY);
    expect(w.fake.peek(resources.pods, podOf(2), OPERATOR_NS)).toBeUndefined();
    expect(w.fake.peek(resources.volumeSnapshotContents, scaffold)).toBeUndefined();
  });

  it('fails saying so when the operator has no mover image', async () => {
    w = world('');
    await untilMoverStarted();
    expect(statusOf()).toMatchObject({ phase: 'Failed', errorCode: 'VolumeDataCopyFailed' });
    expect(statusOf().errorMessage).toContain('the operator has no data mover image (mover.image');
    expect(w.fake.calls.filter((call) => call.plural === 'pods')).toEqual([]);
  });

  it("shows a running mover's progress from its log in the volume's status", async () => {
    await untilMoverStarted();
    await w.fake.mergePatch(
      resources.pods,
      podOf(1),
      { status: { phase: 'Running' } },
      { namespace: OPERATOR_NS, subresource: 'status' },
    );
    const progress = {
      bytesTotal: 4 * 2 ** 20,
      bytesDone: 3 * 2 ** 20,
      bytesTransferred: 2 ** 20,
      files: 7,
      chunksNew: 20,
      chunksReused: 28,
    };
    w.fake.setLog(
      OPERATOR_NS,
      podOf(1),
      `${JSON.stringify({ progress, bytesPerSecond: 2 ** 20, etaSeconds: 1 })}\n`,
    );
    w.at(20);
    await w.reconcile(KEY);
    expect(dataCopy()).toMatchObject({
      phase: 'Running',
      bytesDone: 3 * 2 ** 20,
      bytesUploaded: 2 ** 20,
      chunksNew: 20,
      chunksReused: 28,
      bytesPerSecond: 2 ** 20,
      secondsLeft: 1,
    });
    expect(dataCopy()?.message).toContain('3.0 of 4.0 MiB, 1.0 MiB/s, 1 s left');
  });

  describe('verified on request (snapback.dev/verify)', () => {
    const verifierOf = (token: string, attempt = 1): string =>
      `snapback-verify-b1-${shortHash(['backup-uid-1', token], 6)}-0-${attempt}`;
    const verification = () => statusOf().verification;

    /** A Completed Backup whose volume was copied, annotated with `token`. */
    function completedCopy(token: string): void {
      seedLocation();
      const done = backup(
        { backupLocation: 'vault' },
        {
          phase: 'Completed',
          volumes: [
            {
              pvcName: 'data-pg-0',
              volumeSnapshotName: 'b1-data-pg-0',
              dataCopy: { manifest: MANIFEST, phase: 'Completed', attempts: 1 },
            },
          ],
        },
      );
      w.fake.seed(resources.backups, {
        ...done,
        metadata: { ...done.metadata, annotations: { [annotations.verify]: token } },
      });
    }

    const verifierEnds = (token: string, phase: 'Succeeded' | 'Failed', result: unknown, at: number) =>
      moverPodEnded(w.fake, OPERATOR_NS, verifierOf(token), phase, result, stamp(at));

    it('reads every chunk back with a mover that mounts nothing, and says so with the bytes and the time', async () => {
      completedCopy('t1');
      w.at(100);
      await w.reconcile(KEY);
      const pod = w.fake.peek(resources.pods, verifierOf('t1'), OPERATOR_NS);
      expect(pod?.spec.volumes).toBeUndefined();
      expect(pod?.spec.securityContext).toMatchObject({ runAsNonRoot: true });
      expect(pod?.spec.containers[0]).toMatchObject({ args: ['mover', 'verify', MANIFEST] });
      expect(verification()).toMatchObject({ token: 't1', phase: 'Running', startTime: iso(100) });

      await verifierEnds('t1', 'Succeeded', { ...copied, operation: 'verify' }, 130);
      w.at(131);
      await w.reconcile(KEY);
      expect(statusOf().phase).toBe('Completed');
      expect(verification()).toMatchObject({
        token: 't1',
        phase: 'Verified',
        bytesChecked: 5000,
        completionTime: iso(131),
        volumes: [{ pvcName: 'data-pg-0', phase: 'Completed', bytesDone: 5000, files: 12 }],
      });
      expect(verification()?.volumes?.[0]?.bytesPerSecond).toBeUndefined();
      expect(condition('Verified')).toMatchObject({ status: 'True', reason: 'DataVerified' });
      expect(w.fake.peek(resources.pods, verifierOf('t1'), OPERATOR_NS)).toBeUndefined();

      // The same token is answered: nothing runs again.
      w.fake.clearCalls();
      await w.reconcile(KEY);
      expect(w.fake.calls.filter((call) => call.verb === 'create')).toEqual([]);
    });

    it('says which object is damaged, leaving the Backup Completed', async () => {
      completedCopy('t2');
      await w.reconcile(KEY);
      const corrupt = {
        error: {
          code: 'ObjectCorrupt',
          message: 'repository/packs/3f/3fa9: chunk 81c2 fails authentication',
          object: 'repository/packs/3f/3fa9',
        },
      };
      await verifierEnds('t2', 'Failed', corrupt, 20);
      await w.reconcile(KEY);
      expect(statusOf()).toMatchObject({ phase: 'Completed' });
      expect(verification()).toMatchObject({ phase: 'Failed' });
      expect(verification()?.message).toContain('data-pg-0: ObjectCorrupt: repository/packs/3f/3fa9');
      expect(condition('Verified')).toMatchObject({ status: 'False', reason: 'VerificationFailed' });
      expect(w.fake.peek(resources.pods, verifierOf('t2'), OPERATOR_NS)).toBeUndefined();
    });
  });

  it('copies nothing for a location with copyVolumeData: false', async () => {
    seedDeployment();
    seedLocation(false);
    w.fake.seed(resources.backups, backup({ backupLocation: 'vault' }));
    const name = await untilSnapshotRequested();
    await snapshotReady(name);
    w.at(20);
    await w.reconcile(KEY);
    expect(statusOf().volumes?.[0]?.dataCopy).toBeUndefined();
    expect(w.fake.calls.filter((call) => call.plural === 'pods')).toEqual([]);
    expect(condition('Ready')).toMatchObject({ reason: 'StoringRecord' });
  });
});

// --- deletion ---------------------------------------------------------------------------------

describe('deletion', () => {
  async function completedBackup(): Promise<string> {
    seedDeployment();
    w.fake.seed(resources.backups, backup());
    const name = await untilSnapshotRequested();
    await snapshotReady(name);
    await w.reconcile(KEY);
    expect(statusOf().phase).toBe('Completed');
    return name;
  }

  function seedRestore(
    name: string,
    namespace: string,
    phase: RestorePhase | undefined,
    source: Restore['spec']['source'],
  ): void {
    w.fake.seed(resources.restores, {
      metadata: { name, namespace },
      spec: { source },
      ...(phase === undefined ? {} : { status: { phase } }),
    });
  }

  it('waits for a running Restore that reads the backup, then deletes its snapshots, then lets it go', async () => {
    const name = await completedBackup();
    seedRestore('r1', 'other', 'RestoringCloudSnap', { backupRef: { namespace: NS, name: 'b1' } });
    // Not readers: ended, being deleted, or of another backup.
    seedRestore('r2', NS, 'Successful', { backupName: 'b1' });
    seedRestore('r3', NS, 'Pending', { backupName: 'b2' });
    w.fake.seed(resources.restores, {
      metadata: { name: 'r4', namespace: NS, deletionTimestamp: stamp(0), finalizers: ['x/y'] },
      spec: { source: { backupName: 'b1' } },
      status: { phase: 'RestoringCloudSnap' },
    });
    await w.fake.delete(resources.backups, 'b1', { namespace: NS });

    w.at(100);
    await expect(w.reconcile(KEY)).resolves.toEqual({ requeueAfterMs: 5_000 });
    expect(statusOf().phase).toBe('Deleting');
    expect(condition('Ready')).toMatchObject({
      reason: 'WaitingForRestores',
      message: 'deletion waits for running restore(s) other/r1 that read this backup',
    });
    expect(current().metadata.finalizers).toEqual([finalizers.backup]);
    expect(w.fake.peek(resources.volumeSnapshots, name, NS)).toBeDefined();
    // The backup's data stays as it was while it waits.
    expect(statusOf().cloudSnapId).toBe('snap-handle-1');

    await w.fake.mergePatch(
      resources.restores,
      'r1',
      { status: { phase: 'Successful' } },
      { namespace: 'other', subresource: 'status' },
    );
    w.at(100 + PROGRESS_INTERVAL_MS / 1000);
    await expect(w.reconcile(KEY)).resolves.toEqual({ requeueAfterMs: 5_000 });
    expect(condition('Ready')).toMatchObject({
      reason: 'DeletingSnapshots',
      message: 'deleting 1 snapshot(s)',
    });
    expect(w.fake.peek(resources.volumeSnapshots, name, NS)).toBeUndefined();

    await expect(w.reconcile(KEY)).resolves.toBeUndefined();
    expect(w.fake.peek(resources.backups, 'b1', NS)).toBeUndefined();
  });

  it('a restore with no phase yet counts as running', async () => {
    await completedBackup();
    seedRestore('r1', NS, undefined, { backupName: 'b1' });
    await w.fake.delete(resources.backups, 'b1', { namespace: NS });
    await w.reconcile(KEY);
    expect(condition('Ready')?.reason).toBe('WaitingForRestores');
  });

  it('leaves snapshots of restores alone and keeps a snapshot being deleted counted', async () => {
    const name = await completedBackup();
    // A snapshot a restore made from this backup carries both labels: not the backup's to delete.
    w.fake.seed(resources.volumeSnapshots, {
      metadata: {
        name: 'restored',
        namespace: NS,
        labels: { [labels.backup]: 'b1', [labels.restore]: 'r1' },
      },
      spec: { source: { volumeSnapshotContentName: 'c' } },
    });
    // The backup's own snapshot has a finalizer: the delete only marks it.
    await w.fake.mergePatch(
      resources.volumeSnapshots,
      name,
      { metadata: { finalizers: ['snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection'] } },
      { namespace: NS },
    );
    await w.fake.delete(resources.backups, 'b1', { namespace: NS });
    await expect(w.reconcile(KEY)).resolves.toEqual({ requeueAfterMs: 5_000 });
    expect(w.fake.peek(resources.volumeSnapshots, name, NS)?.metadata.deletionTimestamp).toBeDefined();
    w.fake.clearCalls();
    await expect(w.reconcile(KEY)).resolves.toEqual({ requeueAfterMs: 5_000 });
    // Marked already: not deleted again.
    expect(w.fake.calls.filter((call) => call.verb === 'delete')).toEqual([]);
    expect(w.fake.peek(resources.volumeSnapshots, 'restored', NS)).toBeDefined();
    expect(w.fake.peek(resources.backups, 'b1', NS)).toBeDefined();
  });

  it('with snapback.dev/force-delete keeps the snapshots and lets the Backup go at once', async () => {
    const name = await completedBackup();
    await w.fake.mergePatch(
      resources.backups,
      'b1',
      { metadata: { annotations: { [annotations.forceDelete]: 'true' } } },
      { namespace: NS },
    );
    await w.fake.delete(resources.backups, 'b1', { namespace: NS });
    await expect(w.reconcile(KEY)).resolves.toBeUndefined();
    expect(w.fake.peek(resources.backups, 'b1', NS)).toBeUndefined();
    expect(w.fake.peek(resources.volumeSnapshots, name, NS)).toBeDefined();
  });

  it('lets a Backup deleted before its capture go at once', async () => {
    w.fake.seed(resources.backups, backup());
    await w.fake.delete(resources.backups, 'b1', { namespace: NS });
    await expect(w.reconcile(KEY)).resolves.toBeUndefined();
    expect(w.fake.peek(resources.backups, 'b1', NS)).toBeUndefined();
  });
});
