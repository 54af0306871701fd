// The Restore reconciler as the controller runs it: Reconcile("ns/name") over the fake API server,
// in the shared status-reconciler shell (finalizer, one status write, errors a step throws shown
// in status, terminal ones failing the phase). First the cases of the defects just fixed: the
// deadline judged after the step looked at the world, transient errors retried (not failed), and
// one error code per plan problem whatever the phase.

import { describe, expect, it } from '@jest/globals';
import winston from 'winston';
import { finalizers } from '../../../../src/api/constants.js';
import type { Backup, Restore, RestorePhase, RestoreStatus } from '../../../../src/api/generated/types.js';
import type { Condition, KubeObject } from '../../../../src/api/kubernetes.js';
import { restoreReconciler } from '../../../../src/controllers/restore/reconciler.js';
import { PROGRESS_INTERVAL_MS } from '../../../../src/controllers/shared/conditions.js';
import { customResourceName } from '../../../../src/naming.js';
import type { EventRecorder } from '../../../../src/observability/events.js';
import { TerminalError } from '../../../../src/runtime/errors.js';
import { resources, type ResourceType } from '../../../../src/runtime/resources.js';
import {
  attemptLabelsOf,
  backupLocation,
  claim,
  completedBackup,
  destinationClaim,
  firstConsumerVolume,
  NAMESPACE,
  OPERATOR_NAMESPACE,
  restore as restoreObject,
  restoredStatefulSet,
  restoreIn,
  restoreWorld,
  RESTORE_NAME,
  RESTORE_UID,
  scaffoldingLabelsOf,
  secret,
  setStatus,
  storageClass,
  syncedBackup,
  T0,
  unschedulablePod,
  volumeSnapshot,
  volumeSnapshotContent,
  type RestoreContextOverrides,
  type RestoreInOptions,
} from '../../../support/builders.js';
import { apiError, connectionReset, type FakeCall, type FakeClient } from '../../../support/fake-client.js';

const KEY = `${NAMESPACE}/${RESTORE_NAME}`;
const DEPLOYMENT_UID = '7d0c9e55-3333-4333-8333-333333333333';
const RETRY_HINT = 'Fix the cause, then change spec.recreateToken to try again.';

interface RecordedEvent {
  type: string;
  reason: string;
  message: string;
  occurrence: string;
}

function setup(options: { context?: Omit<RestoreContextOverrides, 'now'> } = {}) {
  const world = restoreWorld(options.context);
  const { fake, ctx } = world;
  const events: RecordedEvent[] = [];
  const recorder = {
    record: (
      _rt: ResourceType,
      _target: KubeObject,
      type: string,
      reason: string,
      message: string,
      occurrence: string,
    ): Promise<void> => {
      events.push({ type, reason, message, occurrence });
      return Promise.resolve();
    },
  } as unknown as EventRecorder;
  const finished: [RestorePhase, number][] = [];
  const observer = {
    phaseFinished: (phase: RestorePhase, seconds: number): void => {
      finished.push([phase, seconds]);
    },
  };
  const reconcile = restoreReconciler(ctx, recorder, winston.createLogger({ silent: true }), observer);
  const current = (): Restore => {
    const found = fake.peek(resources.restores, RESTORE_NAME, NAMESPACE);
    if (found === undefined) throw new Error('the restore is gone');
    return found;
  };
  const status = (): RestoreStatus => current().status ?? {};
  return { ...world, events, finished, reconcile: () => reconcile(KEY), current, status };
}

/** A world with a Completed Backup and a Restore in `phase`. */
function inPhase(
  phase: RestorePhase,
  options: {
    restore?: RestoreInOptions;
    backup?: Backup | null;
    context?: Omit<RestoreContextOverrides, 'now'>;
  } = {},
) {
  const world = setup(options);
  const backup =
    options.backup === null
      ? undefined
      : world.fake.seed(resources.backups, options.backup ?? completedBackup());
  const seeded = world.fake.seed(
    resources.restores,
    restoreIn(phase, { backup, deploymentUid: DEPLOYMENT_UID, ...options.restore }),
  );
  return { ...world, backup, restore: seeded };
}

/** A Restore in Pending of a synced Backup: its one request there is the credentials' read. */
function syncedPending(options: Omit<Parameters<typeof inPhase>[1] & object, 'backup'> = {}) {
  const world = inPhase('Pending', { ...options, backup: syncedBackup() });
  world.fake.seed(resources.backupLocations, backupLocation());
  world.fake.seed(
    resources.secrets,
    secret('store-credentials', OPERATOR_NAMESPACE, {
      accessKeyId: 'QQ==',
      secretAccessKey: 'Qg==',
      locationKey: 'Qw==',
    }),
  );
  return world;
}

const condition = (status: RestoreStatus, type: string): Condition | undefined =>
  status.conditions?.find((entry) => entry.type === type);

const restoreWrites = (fake: FakeClient): FakeCall[] =>
  fake.calls.filter((call) => call.plural === 'restores' && call.verb !== 'get' && call.verb !== 'list');

const statusWrite: FakeCall = {
  verb: 'update',
  plural: 'restores',
  name: RESTORE_NAME,
  namespace: NAMESPACE,
  subresource: 'status',
};

const ago = (seconds: number): string => new Date(T0.getTime() - seconds * 1000).toISOString();

describe('the deadline is judged after the step looked at the world', () => {
  it('advances a restore past its phase deadline whose work is done (the operator was down)', async () => {
    // RestoringDataServiceDeployment may take 7200s; it was entered 3h ago.
    const { fake, reconcile, status, restore } = inPhase('RestoringDataServiceDeployment', {
      restore: { enteredAt: ago(3 * 3600) },
    });
    fake.seed(resources.statefulSets, restoredStatefulSet(restore, { uid: DEPLOYMENT_UID }));

    expect(await reconcile()).toBeUndefined();

    expect(status().phase).toBe('DataServiceDeploymentEnteringNormalMode');
    expect(status().errorCode).toBeUndefined();
    expect(condition(status(), 'Progressing')).toMatchObject({
      status: 'True',
      reason: 'DataServiceDeploymentEnteringNormalMode',
      message: 'restore mode finished (1/1 replicas ready); StatefulSet pg-restored switched to normal mode',
    });
  });

  it('fails PhaseTimeout, with the last progress message, past the deadline and still waiting', async () => {
    const { fake, reconcile, status, restore, events } = inPhase('RestoringDataServiceDeployment', {
      restore: { enteredAt: ago(7200) },
    });
    fake.seed(
      resources.statefulSets,
      restoredStatefulSet(restore, { uid: DEPLOYMENT_UID, readyReplicas: 0, updatedReplicas: 0 }),
    );
    fake.seed(
      resources.pods,
      unschedulablePod(restore, 'pg-restored-0', '0/3 nodes are available: 3 Insufficient memory.'),
    );

    expect(await reconcile()).toBeUndefined();

    expect(status()).toMatchObject({
      phase: 'Failed',
      errorCode: 'PhaseTimeout',
      completedAt: T0.toISOString(),
    });
    expect(status().errorMessage).toBe(
      'phase RestoringDataServiceDeployment did not finish within 7200s (last: restore mode: 0/1 replicas ready, 0/1 updated; ' +
        `pod pg-restored-0 cannot be scheduled: 0/3 nodes are available: 3 Insufficient memory.). ${RETRY_HINT}`,
    );
    expect(condition(status(), 'Failed')).toMatchObject({ status: 'True', reason: 'PhaseTimeout' });
    expect(events.at(-1)).toMatchObject({
      type: 'Warning',
      reason: 'PhaseTimeout',
      message: status().errorMessage,
    });
  });

  it('looks again when the deadline comes, if nothing else wakes it first', async () => {
    // Pending may take 3600s; entered 3000s ago, it waits for a slot: 600s left.
    const { fake, reconcile, status } = inPhase('Pending', {
      restore: { enteredAt: ago(3000) },
      context: { config: { maxConcurrentRestores: 1 } },
    });
    fake.seed(resources.restores, restoreIn('RestoringCloudSnap', { name: 'other', uid: 'uid-other' }));

    expect(await reconcile()).toEqual({ requeueAfterMs: 600_000 });
    expect(status().phase).toBe('Pending');
    expect(condition(status(), 'Progressing')?.reason).toBe('WaitingForSlot');
  });
});

describe('errors a step throws', () => {
  it('a transient one (503 creating the StatefulSet) rejects, shows ProgressingWithRetry, keeps the phase', async () => {
    const { fake, reconcile, status } = inPhase('RestoringDataServiceDeploymentCR');
    const err = apiError(503);
    fake.failNext('create', 'statefulsets', err);

    await expect(reconcile()).rejects.toBe(err);

    expect(status().phase).toBe('RestoringDataServiceDeploymentCR');
    expect(status().errorCode).toBeUndefined();
    expect(condition(status(), 'Progressing')).toMatchObject({
      status: 'True',
      reason: 'ProgressingWithRetry',
      message: 'retrying after an error: 503 ServiceUnavailable: ServiceUnavailable (HTTP 503)',
    });
    expect(condition(status(), 'Failed')?.status).toBe('False');

    // The retry finds the API server back.
    expect(await reconcile()).toBeUndefined();
    expect(status().phase).toBe('RestoringDataServiceDeployment');
    expect(condition(status(), 'Progressing')?.reason).toBe('RestoringDataServiceDeployment');
  });

  it('a reset connection creating a claim rejects with the error itself, not a TerminalError', async () => {
    const { fake, reconcile, status } = inPhase('RestoringCloudSnap');
    const err = connectionReset();
    fake.failNext('create', 'persistentvolumeclaims', err);

    const rejection = await reconcile().then(
      () => undefined,
      (caught: unknown) => caught,
    );

    expect(rejection).toBe(err);
    expect(rejection).not.toBeInstanceOf(TerminalError);
    expect(status().phase).toBe('RestoringCloudSnap');
    expect(condition(status(), 'Progressing')).toMatchObject({
      reason: 'ProgressingWithRetry',
      message: 'retrying after an error: read ECONNRESET',
    });
  });

  it('a throttled credential read (429) of a synced Backup is retried, not failed', async () => {
    const { fake, reconcile, status } = syncedPending();
    const err = apiError(429);
    fake.failNext('get', 'secrets', err);

    await expect(reconcile()).rejects.toBe(err);
    expect(status().phase).toBe('Pending');
    expect(condition(status(), 'Progressing')?.message).toBe(
      'retrying after an error: 429 TooManyRequests: TooManyRequests (HTTP 429)',
    );

    // The retry reads them and goes on.
    await reconcile();
    expect(status().phase).toBe('RestoringCloudSnap');
  });

  it('a forbidden credential read (403) fails FailedBackupCredentialSync and resolves', async () => {
    const { fake, reconcile, status } = inPhase('Pending', { backup: syncedBackup() });
    fake.seed(resources.backupLocations, backupLocation());
    fake.failNext('get', 'secrets', apiError(403, 'Forbidden', 'secrets "store-credentials" is forbidden'));

    expect(await reconcile()).toBeUndefined();
    expect(status()).toMatchObject({ phase: 'Failed', errorCode: 'FailedBackupCredentialSync' });
    expect(status().errorMessage).toMatch(/could not read Secret snapback-system\/store-credentials/);
  });

  it('a restore queued for a slot past the Pending deadline keeps waiting, its errors retried', async () => {
    const { fake, reconcile, status } = syncedPending({
      restore: { enteredAt: ago(7200), status: { queuedAt: ago(7000) } },
      context: { config: { maxConcurrentRestores: 1 } },
    });
    fake.seed(
      resources.restores,
      restoreIn('RestoringCloudSnap', { name: 'busy', uid: 'uid-busy', deploymentName: 'busy-db' }),
    );

    expect(await reconcile()).toBeUndefined();
    expect(status().phase).toBe('Pending');
    expect(condition(status(), 'Progressing')?.reason).toBe('WaitingForSlot');

    // Its turn comes; the credentials' read then is reset.
    await fake.mergePatch(
      resources.restores,
      'busy',
      { status: { phase: 'Successful' } },
      { namespace: NAMESPACE, subresource: 'status' },
    );
    const err = connectionReset();
    fake.failNext('get', 'secrets', err);
    await expect(reconcile()).rejects.toBe(err);
    expect(status().phase).toBe('Pending');
  });

  it('a transient one past the deadline fails PhaseTimeout naming the cause, and still rejects', async () => {
    const { fake, reconcile, status } = syncedPending({ restore: { enteredAt: ago(3600) } });
    const err = connectionReset();
    fake.failNext('get', 'secrets', err);

    await expect(reconcile()).rejects.toBe(err);
    expect(status()).toMatchObject({ phase: 'Failed', errorCode: 'PhaseTimeout' });
    expect(status().errorMessage).toBe(
      `phase Pending did not finish within 3600s (last: retrying after read ECONNRESET). ${RETRY_HINT}`,
    );
  });

  it('a 422 creating the StatefulSet fails DataServiceDeploymentRestoreFailed (the step decides)', async () => {
    const { fake, reconcile, status, events } = inPhase('RestoringDataServiceDeploymentCR');
    fake.failNext(
      'create',
      'statefulsets',
      apiError(
        422,
        'Invalid',
        'StatefulSet.apps "pg-restored" is invalid: spec.template.spec.affinity: Invalid value',
      ),
    );

    expect(await reconcile()).toBeUndefined();

    expect(status()).toMatchObject({ phase: 'Failed', errorCode: 'DataServiceDeploymentRestoreFailed' });
    expect(status().errorMessage).toMatch(
      /^the API server rejected the restored StatefulSet: StatefulSet\.apps "pg-restored" is invalid: spec\.template\.spec\.affinity: Invalid value\./,
    );
    expect(fake.objects(resources.statefulSets)).toEqual([]);
    expect(events.at(-1)).toMatchObject({ type: 'Warning', reason: 'DataServiceDeploymentRestoreFailed' });
  });

  it('a 403 creating the StatefulSet rejects with a TerminalError and fails the phase naming the 403', async () => {
    const { fake, reconcile, status } = inPhase('RestoringDataServiceDeploymentCR');
    const forbidden = apiError(
      403,
      'Forbidden',
      'statefulsets.apps "pg-restored" is forbidden: User "system:serviceaccount:snapback-system:snapback" cannot create resource "statefulsets"',
    );
    fake.failNext('create', 'statefulsets', forbidden);

    const rejection = await reconcile().then(
      () => undefined,
      (caught: unknown) => caught,
    );

    expect(rejection).toBeInstanceOf(TerminalError);
    expect((rejection as TerminalError).cause).toBe(forbidden);
    expect((rejection as TerminalError).message).toMatch(
      /^403 Forbidden: statefulsets\.apps "pg-restored" is forbidden/,
    );
    expect(status()).toMatchObject({ phase: 'Failed', errorCode: 'DataServiceDeploymentRestoreFailed' });
    expect(status().errorMessage).toBe(
      `the API server refused a request of phase RestoringDataServiceDeploymentCR: 403 Forbidden: ${forbidden.message}. ${RETRY_HINT}`,
    );
  });

  it.each<[RestorePhase, 'get' | 'create' | 'patch', string, string]>([
    ['Initializing', 'get', 'backups', 'RestoreInternalError'],
    ['RestoringCloudSnap', 'create', 'persistentvolumeclaims', 'CloudSnapRestoreFailed'],
    ['RestoringDataServiceDeploymentCR', 'create', 'statefulsets', 'DataServiceDeploymentRestoreFailed'],
    ['RestoringDataServiceDeployment', 'get', 'statefulsets', 'DataServiceDeploymentRestoreFailed'],
    [
      'DataServiceDeploymentEnteringNormalMode',
      'patch',
      'statefulsets',
      'DataServiceDeploymentRestoreFailed',
    ],
  ])('a 403 in %s (%s %s) fails the phase with %s', async (phase, verb, plural, errorCode) => {
    const world = inPhase(phase, { backup: phase === 'Initializing' ? null : undefined });
    const { fake, ctx, reconcile, status, restore } = world;
    if (phase === 'Initializing') {
      // The Backup exists but the cache has not seen it: the step asks the API server.
      ctx.cache.backups.freeze();
      fake.seed(resources.backups, completedBackup());
    }
    if (phase === 'RestoringDataServiceDeployment') ctx.cache.statefulSets.freeze();
    if (phase === 'DataServiceDeploymentEnteringNormalMode')
      fake.seed(resources.statefulSets, restoredStatefulSet(restore, { uid: DEPLOYMENT_UID }));
    fake.failNext(verb, plural, apiError(403));

    await expect(reconcile()).rejects.toBeInstanceOf(TerminalError);
    expect(status()).toMatchObject({ phase: 'Failed', errorCode });
    expect(status().errorMessage).toMatch(
      new RegExp(`^the API server refused a request of phase ${phase}: 403 Forbidden`),
    );
  });
});

describe('a plan problem fails with one code whatever the phase', () => {
  const phases: RestorePhase[] = [
    'Pending',
    'RestoringCloudSnap',
    'RestoringDataServiceDeploymentCR',
    'RestoringDataServiceDeployment',
    'DataServiceDeploymentEnteringNormalMode',
  ];

  it.each(phases)('the Backup deleted: BackupNotFound in %s', async (phase) => {
    const { reconcile, status } = inPhase(phase, { backup: null });

    expect(await reconcile()).toBeUndefined();

    expect(status()).toMatchObject({ phase: 'Failed', errorCode: 'BackupNotFound' });
    expect(status().errorMessage).toBe('Backup demo/pg-backup no longer exists; the restore cannot go on.');
    expect(
      status()
        .phaseHistory?.map((entry) => entry.phase)
        .slice(-2),
    ).toEqual([phase, 'Failed']);
  });

  it('the Backup deleted: BackupNotFound in Initializing too', async () => {
    const { reconcile, status } = inPhase('Initializing', { backup: null });
    await reconcile();
    expect(status()).toMatchObject({ phase: 'Failed', errorCode: 'BackupNotFound' });
  });

  it.each(['Initializing', ...phases] as RestorePhase[])(
    'a Backup without a manifest: IncompatibleBackup in %s',
    async (phase) => {
      const { reconcile, status } = inPhase(phase, { backup: completedBackup({ manifest: null }) });
      await reconcile();
      expect(status()).toMatchObject({ phase: 'Failed', errorCode: 'IncompatibleBackup' });
      expect(status().errorMessage).toMatch(/^Backup pg-backup records no deployment manifest/);
    },
  );
});

describe('the shell: finalizer, one status write, no write for no change', () => {
  it('gives a new Restore the finalizer with one patch, then starts attempt 1 in Initializing', async () => {
    const { fake, reconcile, current, status, events } = setup();
    fake.seed(resources.backups, completedBackup());
    fake.seed(resources.restores, restoreObject({ finalizer: false }));

    expect(await reconcile()).toBeUndefined();
    expect(fake.calls).toEqual([
      { verb: 'patch', plural: 'restores', name: RESTORE_NAME, namespace: NAMESPACE },
    ]);
    expect(current().metadata.finalizers).toEqual([finalizers.restore]);
    expect(current().status).toBeUndefined();

    fake.clearCalls();
    expect(await reconcile()).toBeUndefined();
    expect(fake.calls).toEqual([statusWrite]);
    expect(status()).toMatchObject({
      phase: 'Initializing',
      attempt: 1,
      customResourceName: customResourceName(RESTORE_NAME, RESTORE_UID, 1),
      startedAt: T0.toISOString(),
      observedGeneration: 1,
      phaseHistory: [{ phase: 'Initializing', enteredAt: T0.toISOString() }],
    });
    expect(events).toEqual([
      {
        type: 'Normal',
        reason: 'Initializing',
        message: `attempt 1 started; its objects are named after ${customResourceName(RESTORE_NAME, RESTORE_UID, 1)}`,
        occurrence: `${customResourceName(RESTORE_NAME, RESTORE_UID, 1)}/Initializing`,
      },
    ]);
  });

  it('walks the happy path to Successful, one status write per step, reading nothing', async () => {
    const { fake, clock, reconcile, status, events, finished } = setup();
    fake.seed(resources.backups, completedBackup());
    fake.seed(resources.restores, restoreObject({ finalizer: false }));
    const reads: FakeCall[] = [];
    const writes: FakeCall[] = [];
    const step = async (): Promise<void> => {
      // Past the progress interval, so that progress within a phase is written too.
      clock.advance(PROGRESS_INTERVAL_MS / 1000);
      fake.clearCalls();
      await reconcile();
      reads.push(...fake.calls.filter((call) => call.verb === 'get' || call.verb === 'list'));
      writes.push(...fake.calls.filter((call) => call.verb !== 'get' && call.verb !== 'list'));
    };

    await step(); // finalizer
    await step(); // Initializing
    await step();
    expect(status().phase).toBe('Pending');
    await step();
    expect(status().phase).toBe('RestoringCloudSnap');
    await step();
    expect(status().volumes).toEqual([
      {
        pvcName: 'data-pg-restored-0',
        cloudSnapId: 'snap-handle-0',
        restoredFrom: 'Snapshot',
        phase: 'Restoring',
        reason: 'volume requested from the snapshot',
      },
    ]);
    setStatus(fake, resources.persistentVolumeClaims, 'data-pg-restored-0', NAMESPACE, { phase: 'Bound' });
    await step();
    expect(status().phase).toBe('RestoringDataServiceDeploymentCR');
    await step();
    expect(status().phase).toBe('RestoringDataServiceDeployment');
    const made = fake.peek(resources.statefulSets, 'pg-restored', NAMESPACE);
    expect(status().destination).toEqual({
      kind: 'StatefulSet',
      deploymentName: 'pg-restored',
      deploymentUid: made?.metadata.uid,
    });
    setStatus(fake, resources.statefulSets, 'pg-restored', NAMESPACE, {
      observedGeneration: 1,
      replicas: 1,
      readyReplicas: 1,
      updatedReplicas: 1,
    });
    await step();
    expect(status().phase).toBe('DataServiceDeploymentEnteringNormalMode');
    // Switched in the reconcile that saw restore mode finish, and told in that phase write.
    expect(fake.peek(resources.statefulSets, 'pg-restored', NAMESPACE)?.spec.replicas).toBe(3);
    setStatus(fake, resources.statefulSets, 'pg-restored', NAMESPACE, {
      observedGeneration: 2,
      replicas: 3,
      readyReplicas: 3,
      updatedReplicas: 3,
    });
    await step();
    expect(restoreWrites(fake)).toEqual([statusWrite]);

    expect(status()).toMatchObject({ phase: 'Successful', completedAt: clock.now().toISOString() });
    expect(status().errorCode).toBeUndefined();
    expect(status().phaseHistory?.map((entry) => entry.phase)).toEqual([
      'Initializing',
      'Pending',
      'RestoringCloudSnap',
      'RestoringDataServiceDeploymentCR',
      'RestoringDataServiceDeployment',
      'DataServiceDeploymentEnteringNormalMode',
      'Successful',
    ]);
    expect(condition(status(), 'Ready')).toMatchObject({ status: 'True', reason: 'RestoreSucceeded' });
    expect(condition(status(), 'Progressing')?.status).toBe('False');
    // The start and the end of the attempt; the phases between are in phaseHistory.
    expect(events.map((event) => event.reason)).toEqual(['Initializing', 'Successful']);
    const stepSeconds = PROGRESS_INTERVAL_MS / 1000;
    expect(finished).toEqual([
      ['Initializing', stepSeconds],
      ['Pending', stepSeconds],
      ['RestoringCloudSnap', 2 * stepSeconds],
      ['RestoringDataServiceDeploymentCR', stepSeconds],
      ['RestoringDataServiceDeployment', stepSeconds],
      ['DataServiceDeploymentEnteringNormalMode', stepSeconds],
    ]);
    // Every read came from the caches: creates answer whether a name is free.
    expect(reads).toEqual([]);
    // The design's minimum (the finalizer, a status per phase, the claim, the StatefulSet and its
    // switch to normal mode) and one progress write: the claim requested. The Events are above.
    const count = (plural: string, subresource?: string): number =>
      writes.filter((call) => call.plural === plural && call.subresource === subresource).length;
    expect({
      finalizer: count('restores'),
      status: count('restores', 'status'),
      claims: count('persistentvolumeclaims'),
      statefulSets: count('statefulsets'),
      all: writes.length,
    }).toEqual({ finalizer: 1, status: 8, claims: 1, statefulSets: 2, all: 12 });
  });

  it('goes on past a claim a WaitForFirstConsumer class leaves Pending, and marks it Bound once the pod is scheduled', async () => {
    const { fake, clock, reconcile, status, restore } = inPhase('RestoringCloudSnap');
    fake.seed(resources.storageClasses, storageClass('fast', { volumeBindingMode: 'WaitForFirstConsumer' }));
    fake.seed(
      resources.persistentVolumeClaims,
      claim(destinationClaim(0), {
        labels: attemptLabelsOf(restore),
        phase: 'Pending',
        storageClassName: 'fast',
      }),
    );

    await reconcile();
    expect(status()).toMatchObject({
      phase: 'RestoringDataServiceDeploymentCR',
      volumes: [firstConsumerVolume(0)],
    });
    await reconcile();
    expect(status().phase).toBe('RestoringDataServiceDeployment');

    // The scheduler placed the restored pod: the claim was provisioned on its node and bound.
    setStatus(fake, resources.persistentVolumeClaims, destinationClaim(0), NAMESPACE, { phase: 'Bound' });
    setStatus(fake, resources.statefulSets, 'pg-restored', NAMESPACE, {
      observedGeneration: 1,
      replicas: 1,
      readyReplicas: 1,
      updatedReplicas: 1,
    });
    clock.advance(5);
    fake.clearCalls();
    await reconcile();

    expect(restoreWrites(fake)).toEqual([statusWrite]);
    expect(status()).toMatchObject({
      phase: 'DataServiceDeploymentEnteringNormalMode',
      volumes: [{ pvcName: 'data-pg-restored-0', cloudSnapId: 'snap-handle-0', phase: 'Bound' }],
    });
    expect(status().volumes?.[0]?.reason).toBeUndefined();
  });

  it('writes nothing when the step finds nothing new', async () => {
    const { fake, clock, reconcile, restore } = inPhase('RestoringDataServiceDeployment');
    fake.seed(
      resources.statefulSets,
      restoredStatefulSet(restore, { uid: DEPLOYMENT_UID, readyReplicas: 0, updatedReplicas: 0 }),
    );
    await reconcile();
    expect(restoreWrites(fake)).toEqual([statusWrite]);

    clock.advance(5);
    fake.clearCalls();
    await reconcile();
    expect(fake.calls).toEqual([]);
  });

  it.each<[string, RestorePhase, Partial<RestoreStatus>]>([
    ['a Successful restore', 'Successful', {}],
    [
      'a Failed restore whose token was seen',
      'Failed',
      { errorCode: 'BackupNotFound', observedRecreateToken: 'one' },
    ],
  ])('lets %s rest: no request at all', async (_what, phase, extra) => {
    const { fake, reconcile } = inPhase(phase, { restore: { recreateToken: 'one', status: extra } });
    fake.clearCalls();
    expect(await reconcile()).toBeUndefined();
    expect(fake.calls).toEqual([]);
  });

  it('acknowledges a new token on a Successful restore without starting anything', async () => {
    const { fake, reconcile, status } = inPhase('Successful', {
      restore: { generation: 2, recreateToken: 'two', status: { observedGeneration: 1 } },
    });
    fake.clearCalls();
    await reconcile();
    expect(fake.calls).toEqual([statusWrite]);
    expect(status()).toMatchObject({ phase: 'Successful', attempt: 1, observedGeneration: 2 });
  });

  it('skips a cache that has not caught up with its own write', async () => {
    const { fake, ctx, clock, reconcile, status } = inPhase('RestoringDataServiceDeploymentCR');
    ctx.cache.restores.freeze();
    await reconcile();
    expect(status().phase).toBe('RestoringDataServiceDeployment');

    fake.clearCalls();
    expect(await reconcile()).toBeUndefined();
    expect(fake.calls).toEqual([]);

    ctx.cache.restores.thaw();
    // The progress it writes next is paced: due one interval after the phase's own write.
    clock.advance(PROGRESS_INTERVAL_MS / 1000);
    await reconcile();
    expect(fake.calls.length).toBeGreaterThan(0);
  });
});

describe('progress is written at most once per interval; what others act on, at once', () => {
  const progressOf = (restore: RestoreStatus): string | undefined =>
    condition(restore, 'Progressing')?.message;

  it('holds a progress message made right after the phase write, and writes it when due', async () => {
    const { fake, clock, reconcile, status } = inPhase('RestoringDataServiceDeploymentCR');
    await reconcile();
    expect(status().phase).toBe('RestoringDataServiceDeployment');
    const entered = progressOf(status());

    fake.clearCalls();
    clock.advance(1);
    expect(await reconcile()).toEqual({ requeueAfterMs: PROGRESS_INTERVAL_MS - 1_000 });
    expect(fake.calls).toEqual([]);
    expect(progressOf(status())).toBe(entered);

    clock.advance(PROGRESS_INTERVAL_MS / 1000 - 1);
    await reconcile();
    expect(fake.calls).toEqual([statusWrite]);
    expect(progressOf(status())).not.toBe(entered);
  });

  it('writes joining the queue for a slot at once: the turns of other restores are judged from it', async () => {
    const { fake, reconcile, status } = inPhase('Initializing', {
      context: { config: { maxConcurrentRestores: 1 } },
    });
    fake.seed(resources.restores, restoreIn('RestoringCloudSnap', { name: 'other', uid: 'uid-other' }));
    await reconcile();
    expect(status().phase).toBe('Pending');
    await reconcile();
    expect(condition(status(), 'Progressing')?.reason).toBe('WaitingForSlot');
    expect(status().queuedAt).toBeDefined();
  });
});

describe('a new attempt and deletion', () => {
  /** What a failed attempt left behind, and an object of another attempt that must survive. */
  function leftovers(fake: FakeClient, restore: Restore): void {
    fake.seed(resources.statefulSets, restoredStatefulSet(restore, { uid: DEPLOYMENT_UID }));
    fake.seed(
      resources.persistentVolumeClaims,
      claim('data-pg-restored-0', { labels: attemptLabelsOf(restore) }),
    );
    fake.seed(
      resources.volumeSnapshots,
      volumeSnapshot('imported-0', { labels: scaffoldingLabelsOf(restore) }),
    );
    fake.seed(
      resources.volumeSnapshotContents,
      volumeSnapshotContent('imported-0', { labels: scaffoldingLabelsOf(restore) }),
    );
    fake.seed(
      resources.persistentVolumeClaims,
      claim('data-other-0', {
        labels: attemptLabelsOf(restoreIn('Pending', { name: 'other', uid: 'uid-other' })),
      }),
    );
  }

  const names = (fake: FakeClient): string[] =>
    [
      ...fake.objects(resources.statefulSets),
      ...fake.objects(resources.persistentVolumeClaims),
      ...fake.objects(resources.volumeSnapshots),
      ...fake.objects(resources.volumeSnapshotContents),
    ].map((object) => `${object.kind ?? ''}/${object.metadata.name ?? ''}`);

  it("Failed + a new recreateToken: removes the attempt's objects, then starts attempt 2", async () => {
    const { fake, reconcile, status, restore, events } = inPhase('Failed', {
      restore: {
        recreateToken: 'two',
        status: {
          observedRecreateToken: 'one',
          errorCode: 'CloudSnapRestoreFailed',
          errorMessage: 'it broke',
        },
      },
    });
    leftovers(fake, restore);

    expect(await reconcile()).toEqual({ requeueAfterMs: 5000 });
    expect(names(fake)).toEqual(['PersistentVolumeClaim/data-other-0']);
    expect(status()).toMatchObject({ phase: 'Failed', attempt: 1 });
    expect(condition(status(), 'Progressing')).toMatchObject({
      reason: 'CleaningUpFailedAttempt',
      message: 'removing 4 object(s) the failed attempt created before trying again',
    });

    expect(await reconcile()).toBeUndefined();
    const second = customResourceName(RESTORE_NAME, RESTORE_UID, 2);
    expect(status()).toMatchObject({
      phase: 'Initializing',
      attempt: 2,
      customResourceName: second,
      observedRecreateToken: 'two',
      phaseHistory: [{ phase: 'Initializing', enteredAt: T0.toISOString() }],
    });
    expect(second).not.toBe(restore.status?.customResourceName);
    expect(status().errorCode).toBeUndefined();
    expect(status().volumes).toBeUndefined();
    expect(events.at(-1)).toMatchObject({
      type: 'Normal',
      reason: 'Initializing',
      occurrence: `${second}/Initializing`,
    });

    // And the new attempt goes on.
    await reconcile();
    expect(status().phase).toBe('Pending');
  });

  it('Failed on a name someone else holds: removes what the attempt created, leaves theirs, then rests', async () => {
    const { fake, reconcile, status, restore } = inPhase('Failed', {
      restore: {
        status: { errorCode: 'DataServiceDeploymentNameAlreadyExist', errorMessage: 'taken' },
      },
    });
    leftovers(fake, restore);
    fake.seed(resources.persistentVolumeClaims, claim('data-theirs-0'));

    expect(await reconcile()).toEqual({ requeueAfterMs: 5000 });
    expect(names(fake).sort()).toEqual([
      'PersistentVolumeClaim/data-other-0',
      'PersistentVolumeClaim/data-theirs-0',
    ]);
    expect(status()).toMatchObject({ phase: 'Failed', errorCode: 'DataServiceDeploymentNameAlreadyExist' });

    // Once the caches show nothing of the attempt, a reconcile makes no request at all.
    fake.clearCalls();
    expect(await reconcile()).toBeUndefined();
    expect(fake.calls).toEqual([]);
  });

  it('waits while a leftover is still being deleted (it has a finalizer)', async () => {
    const { fake, reconcile, status, restore } = inPhase('Failed', {
      restore: { recreateToken: 'two', status: { observedRecreateToken: 'one', errorCode: 'PhaseTimeout' } },
    });
    fake.seed(resources.persistentVolumeClaims, {
      ...claim('data-pg-restored-0', { labels: attemptLabelsOf(restore) }),
      metadata: {
        ...claim('data-pg-restored-0', { labels: attemptLabelsOf(restore) }).metadata,
        finalizers: ['kubernetes.io/pvc-protection'],
      },
    });

    expect(await reconcile()).toEqual({ requeueAfterMs: 5000 });
    expect(await reconcile()).toEqual({ requeueAfterMs: 5000 });
    expect(status()).toMatchObject({ phase: 'Failed', attempt: 1 });
    expect(
      fake.peek(resources.persistentVolumeClaims, 'data-pg-restored-0', NAMESPACE)?.metadata
        .deletionTimestamp,
    ).toBeDefined();
  });

  it('a deleted Restore in progress removes everything of its attempt, then lets go', async () => {
    const { fake, reconcile, restore } = inPhase('RestoringDataServiceDeployment');
    leftovers(fake, restore);
    await fake.delete(resources.restores, RESTORE_NAME, { namespace: NAMESPACE });

    expect(await reconcile()).toEqual({ requeueAfterMs: 5000 });
    expect(names(fake)).toEqual(['PersistentVolumeClaim/data-other-0']);
    expect(fake.peek(resources.restores, RESTORE_NAME, NAMESPACE)?.metadata.finalizers).toEqual([
      finalizers.restore,
    ]);

    expect(await reconcile()).toBeUndefined();
    expect(fake.peek(resources.restores, RESTORE_NAME, NAMESPACE)).toBeUndefined();
  });

  // A PhaseTimeout in normal mode leaves a StatefulSet that may serve already: it is the user's.
  const failedInNormalMode = {
    recreateToken: 'two',
    status: {
      observedRecreateToken: 'one',
      errorCode: 'PhaseTimeout' as const,
      phaseHistory: [
        { phase: 'Initializing' as const, enteredAt: T0.toISOString() },
        { phase: 'RestoringDataServiceDeployment' as const, enteredAt: T0.toISOString() },
        { phase: 'DataServiceDeploymentEnteringNormalMode' as const, enteredAt: T0.toISOString() },
        { phase: 'Failed' as const, enteredAt: T0.toISOString() },
      ],
    },
  };
  const handedOver = [
    'StatefulSet/pg-restored',
    'PersistentVolumeClaim/data-other-0',
    'PersistentVolumeClaim/data-pg-restored-0',
  ];

  it('a deleted Restore that failed after restore mode was healthy leaves the StatefulSet and claims', async () => {
    const { fake, reconcile, restore } = inPhase('Failed', { restore: failedInNormalMode });
    leftovers(fake, restore);
    await fake.delete(resources.restores, RESTORE_NAME, { namespace: NAMESPACE });

    await reconcile();
    await reconcile();

    expect(names(fake)).toEqual(handedOver);
    expect(fake.peek(resources.restores, RESTORE_NAME, NAMESPACE)).toBeUndefined();
  });

  it('recreating a Restore that failed after restore mode was healthy removes only the scaffolding', async () => {
    const { fake, reconcile, restore, status } = inPhase('Failed', { restore: failedInNormalMode });
    leftovers(fake, restore);

    await reconcile();
    await reconcile();

    expect(names(fake)).toEqual(handedOver);
    expect(status()).toMatchObject({ attempt: 2 });
  });

  it('a deleted Successful Restore leaves the restored StatefulSet and claims to the user', async () => {
    const { fake, reconcile, restore } = inPhase('Successful');
    leftovers(fake, restore);
    await fake.delete(resources.restores, RESTORE_NAME, { namespace: NAMESPACE });

    await reconcile();
    await reconcile();

    expect(names(fake)).toEqual([
      'StatefulSet/pg-restored',
      'PersistentVolumeClaim/data-other-0',
      'PersistentVolumeClaim/data-pg-restored-0',
    ]);
    expect(fake.peek(resources.restores, RESTORE_NAME, NAMESPACE)).toBeUndefined();
  });
});
