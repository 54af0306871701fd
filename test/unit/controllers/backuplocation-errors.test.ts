// What a BackupLocation shows when a step of its reconcile fails on the Kubernetes API: Ready False
// ProgressingWithRetry naming the cause, what the last check and sync found kept. No store is
// reached here: every location's credentials Secret is missing or unreadable.

import { beforeEach, describe, expect, it } from '@jest/globals';
import winston from 'winston';
import type { BackupLocation, BackupLocationStatus } from '../../../src/api/generated/types.js';
import type { Condition } from '../../../src/api/kubernetes.js';
import { backupLocationReconciler } from '../../../src/controllers/backuplocation/reconciler.js';
import { retrying } from '../../../src/controllers/shared/conditions.js';
import type { EventRecorder } from '../../../src/observability/events.js';
import type { Reconcile } from '../../../src/runtime/controller.js';
import { resources } from '../../../src/runtime/resources.js';
import { apiError, FakeClient, fetchFailed } from '../../support/fake-client.js';

const OPERATOR_NS = 'snapback-system';
const T0 = Date.parse('2026-11-23T12:00:00Z');
const iso = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString();
const logger = winston.createLogger({ silent: true });

const condition = (status: BackupLocationStatus | undefined, type: string): Condition | undefined =>
  status?.conditions?.find((c) => c.type === type);

function location(status?: BackupLocationStatus): BackupLocation {
  return {
    metadata: { name: 'store', generation: 1 },
    spec: {
      s3: { bucket: 'backups', endpoint: 'http://minio.invalid:9000' },
      credentialsSecretName: 'store-key',
      validationFrequencySeconds: 60,
      syncPeriodSeconds: 60,
    },
    ...(status === undefined ? {} : { status }),
  };
}

/** A location checked 10 s ago and found Available, synced before that. */
const available = (lastSyncTime?: string): BackupLocationStatus => ({
  phase: 'Available',
  reason: 'Available',
  message: 'bucket "backups" at http://minio.invalid:9000 can be listed, written and deleted from.',
  lastValidationTime: iso(-10),
  observedGeneration: 1,
  ...(lastSyncTime === undefined ? {} : { lastSyncTime, syncedBackups: 3 }),
  conditions: [
    {
      type: 'Ready',
      status: 'True',
      reason: 'Available',
      message: 'bucket "backups" at http://minio.invalid:9000 can be listed, written and deleted from.',
      lastTransitionTime: iso(-3_600),
    },
    ...(lastSyncTime === undefined
      ? []
      : [
          {
            type: 'Synced',
            status: 'True' as const,
            reason: 'Synced',
            message: '3 Backup(s) from other clusters',
            lastTransitionTime: lastSyncTime,
          },
        ]),
  ],
});

/** The status the location's reconciler records for an error a step threw (its errorStatus). */
const statusAfterError = (l: BackupLocation, err: unknown, now: string): BackupLocationStatus =>
  retrying(l.status ?? {}, 'checking or syncing the location', err, now);

describe('the status after an error (retrying)', () => {
  it('sets Ready False ProgressingWithRetry with the cause and keeps the rest', () => {
    const before = available(iso(-120));
    const err = apiError(500, 'InternalError', 'etcdserver: leader changed');
    expect(statusAfterError(location(before), err, iso(0))).toEqual({
      ...before,
      conditions: [
        {
          type: 'Ready',
          status: 'False',
          reason: 'ProgressingWithRetry',
          message:
            'checking or syncing the location failed, retrying: 500 InternalError: etcdserver: leader changed',
          lastTransitionTime: iso(0),
        },
        before.conditions?.[1],
      ],
    });
  });

  it('makes a status for a location that has none', () => {
    expect(statusAfterError(location(), fetchFailed(), iso(0))).toEqual({
      conditions: [
        {
          type: 'Ready',
          status: 'False',
          reason: 'ProgressingWithRetry',
          message: 'checking or syncing the location failed, retrying: ECONNRESET: fetch failed',
          lastTransitionTime: iso(0),
        },
      ],
    });
  });
});

describe('backupLocationReconciler when a step fails', () => {
  let fake: FakeClient;
  let now: number;
  let reconcile: Reconcile;
  let recorded: { type: string; reason: string }[];

  beforeEach(() => {
    now = T0;
    const clock = (): Date => new Date(now);
    fake = new FakeClient({ now: clock });
    recorded = [];
    const events = {
      record: (_rt: unknown, _target: unknown, type: string, reason: string): Promise<void> => {
        recorded.push({ type, reason });
        return Promise.resolve();
      },
    };
    reconcile = backupLocationReconciler(
      {
        client: fake,
        namespace: OPERATOR_NS,
        clusterName: 'east',
        syncNamespace: 'backups',
        cache: { locations: fake.cache(resources.backupLocations), backups: fake.cache(resources.backups) },
        now: clock,
      },
      events as unknown as EventRecorder,
      logger,
    );
  });

  const stored = (): BackupLocationStatus | undefined =>
    fake.peek(resources.backupLocations, 'store')?.status;

  it('writes Ready ProgressingWithRetry when reading the credentials answers 500, then records the check on the next try', async () => {
    fake.seed(resources.backupLocations, location());
    const err = apiError(500, 'InternalError', 'etcdserver: request timed out');
    fake.failNext('get', 'secrets', err);
    await expect(reconcile('store')).rejects.toBe(err);
    expect(fake.calls).toContainEqual({
      verb: 'get',
      plural: 'secrets',
      name: 'store-key',
      namespace: OPERATOR_NS,
    });
    expect(stored()).toEqual({
      conditions: [
        {
          type: 'Ready',
          status: 'False',
          reason: 'ProgressingWithRetry',
          message:
            'checking or syncing the location failed, retrying: 500 InternalError: etcdserver: request timed out',
          lastTransitionTime: iso(0),
        },
      ],
    });
    expect(recorded).toEqual([]);

    // The check was not recorded, so it is due again: the Secret is missing.
    now = T0 + 5_000;
    await expect(reconcile('store')).resolves.toEqual({ requeueAfterMs: 60_000 });
    const checked = stored();
    expect(checked).toMatchObject({
      phase: 'Unavailable',
      reason: 'CredentialsNotFound',
      lastValidationTime: iso(5),
    });
    expect(condition(checked, 'Ready')).toMatchObject({ status: 'False', reason: 'CredentialsNotFound' });
    expect(condition(checked, 'Ready')?.message).toContain(`Secret ${OPERATOR_NS}/store-key does not exist`);
    expect(recorded).toEqual([{ type: 'Warning', reason: 'CredentialsNotFound' }]);
  });

  it('keeps what the last check found when the recheck fails', async () => {
    const before = { ...available(iso(-30)), lastValidationTime: iso(-61) };
    fake.seed(resources.backupLocations, location(before));
    const err = fetchFailed();
    fake.failNext('get', 'secrets', err);
    await expect(reconcile('store')).rejects.toBe(err);
    const status = stored();
    expect(status).toMatchObject({
      phase: 'Available',
      reason: 'Available',
      lastValidationTime: iso(-61),
      lastSyncTime: iso(-30),
      syncedBackups: 3,
    });
    expect(condition(status, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ProgressingWithRetry',
      message: 'checking or syncing the location failed, retrying: ECONNRESET: fetch failed',
    });
    expect(condition(status, 'Synced')).toEqual(before.conditions?.[1]);
  });

  it('writes it when the sync cannot read the credentials', async () => {
    // Checked 10 s ago, never synced: the sync is due, the check is not.
    fake.seed(resources.backupLocations, location(available()));
    const err = apiError(503, 'ServiceUnavailable', 'unavailable');
    fake.failNext('get', 'secrets', err);
    await expect(reconcile('store')).rejects.toBe(err);
    const status = stored();
    expect(status).toMatchObject({ phase: 'Available', lastValidationTime: iso(-10) });
    expect(status?.lastSyncTime).toBeUndefined();
    expect(condition(status, 'Ready')).toMatchObject({
      reason: 'ProgressingWithRetry',
      message: 'checking or syncing the location failed, retrying: 503 ServiceUnavailable: unavailable',
    });
  });

  it('reads a 403 on the credentials as CredentialsNotFound, not as an error', async () => {
    fake.seed(resources.backupLocations, location());
    fake.failNext('get', 'secrets', apiError(403, 'Forbidden', 'secrets "store-key" is forbidden'));
    await expect(reconcile('store')).resolves.toEqual({ requeueAfterMs: 60_000 });
    expect(stored()).toMatchObject({ phase: 'Unavailable', reason: 'CredentialsNotFound' });
    expect(stored()?.message).toContain(`the operator may not read Secret ${OPERATOR_NS}/store-key`);
  });

  // After an error of the sync, the retried sync records its result in Synced, but Ready keeps
  // saying "checking or syncing the location failed, retrying: <the old error>" until the next
  // check (validationFrequencySeconds later): statusAfterSync never touches Ready.
  it('clears ProgressingWithRetry once the sync that failed has run again', async () => {
    fake.seed(resources.backupLocations, location(available()));
    fake.failNext('get', 'secrets', apiError(503, 'ServiceUnavailable', 'unavailable'));
    await expect(reconcile('store')).rejects.toMatchObject({ statusCode: 503 });
    now = T0 + 1_000;
    await reconcile('store');
    const status = stored();
    expect(condition(status, 'Synced')).toMatchObject({ status: 'False', reason: 'SyncFailed' });
    expect(condition(status, 'Ready')?.reason).not.toBe('ProgressingWithRetry');
    expect(condition(status, 'Ready')?.message).not.toContain('503 ServiceUnavailable');
  });
});
