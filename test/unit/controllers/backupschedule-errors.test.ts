// What a BackupSchedule shows when a step of its reconcile fails: Ready False ProgressingWithRetry
// naming the cause, everything else its status says kept, and the run started on the next try.

import { beforeEach, describe, expect, it } from '@jest/globals';
import winston from 'winston';
import { annotations, labels } from '../../../src/api/constants.js';
import type { Backup, BackupSchedule, BackupScheduleStatus } from '../../../src/api/generated/types.js';
import type { Condition } from '../../../src/api/kubernetes.js';
import {
  backupsBySchedule,
  backupScheduleReconciler,
} from '../../../src/controllers/backupschedule/reconciler.js';
import { retrying } from '../../../src/controllers/shared/conditions.js';
import type { EventRecorder } from '../../../src/observability/events.js';
import type { Reconcile } from '../../../src/runtime/controller.js';
import { TerminalError } from '../../../src/runtime/errors.js';
import { resources } from '../../../src/runtime/resources.js';
import { apiError, connectionReset, FakeClient } from '../../support/fake-client.js';

const NS = 'prod';
const KEY = `${NS}/nightly`;
const CREATED = '2026-01-05T10:00:00Z';
/** Every five minutes: the run of 10:05 is due at 10:05:30. */
const EVERY_FIVE_MINUTES = '*/5 * * * *';
const RUN = '2026-01-05T10:05:00.000Z';
const RUN_BACKUP = 'nightly-20260105100500';
const logger = winston.createLogger({ silent: true });

const ready = (status: BackupScheduleStatus | undefined): Condition | undefined =>
  status?.conditions?.find((c) => c.type === 'Ready');

function schedule(status?: BackupScheduleStatus): BackupSchedule {
  return {
    metadata: { name: 'nightly', namespace: NS, generation: 2, creationTimestamp: CREATED },
    spec: { schedule: EVERY_FIVE_MINUTES, template: { deployment: { name: 'pg' } } },
    ...(status === undefined ? {} : { status }),
  };
}

const earlier: BackupScheduleStatus = {
  lastScheduleTime: '2026-01-05T10:00:00.000Z',
  lastBackup: 'nightly-20260105100000',
  lastSuccessfulTime: '2026-01-05T10:01:10Z',
  nextScheduleTime: RUN,
  message: `next run: ${RUN}`,
  observedGeneration: 2,
  conditions: [
    {
      type: 'Ready',
      status: 'True',
      reason: 'Scheduled',
      message: `next run: ${RUN}`,
      lastTransitionTime: '2026-01-05T10:00:00.000Z',
      observedGeneration: 2,
    },
    { type: 'Other', status: 'True', reason: 'Kept', message: 'untouched', lastTransitionTime: CREATED },
  ],
};

/** The status the schedule's reconciler records for an error a step threw (its errorStatus). */
const statusAfterError = (s: BackupSchedule, err: unknown, now: string): BackupScheduleStatus =>
  retrying(s.status ?? {}, 'running the schedule', err, now);

describe('the status after an error (retrying)', () => {
  it('sets Ready False ProgressingWithRetry with the cause and keeps everything else', () => {
    const now = '2026-01-05T10:05:30.000Z';
    const err = apiError(503, 'ServiceUnavailable', 'the server is currently unable to handle the request');
    expect(statusAfterError(schedule(earlier), err, now)).toEqual({
      ...earlier,
      conditions: [
        {
          type: 'Ready',
          status: 'False',
          reason: 'ProgressingWithRetry',
          message:
            'running the schedule failed, retrying: 503 ServiceUnavailable: the server is currently unable to handle the request',
          lastTransitionTime: now,
        },
        earlier.conditions?.[1],
      ],
    });
  });

  it('keeps the transition time of a Ready that was False already', () => {
    const skipped: BackupScheduleStatus = {
      conditions: [
        {
          type: 'Ready',
          status: 'False',
          reason: 'SkippedOverlap',
          message: 'm',
          lastTransitionTime: CREATED,
        },
      ],
    };
    const status = statusAfterError(schedule(skipped), connectionReset(), '2026-01-05T11:00:00.000Z');
    expect(ready(status)).toEqual({
      type: 'Ready',
      status: 'False',
      reason: 'ProgressingWithRetry',
      message: 'running the schedule failed, retrying: read ECONNRESET',
      lastTransitionTime: CREATED,
    });
  });

  it('makes a status for a schedule that has none', () => {
    expect(statusAfterError(schedule(), new Error('odd'), CREATED)).toEqual({
      conditions: [
        {
          type: 'Ready',
          status: 'False',
          reason: 'ProgressingWithRetry',
          message: 'running the schedule failed, retrying: odd',
          lastTransitionTime: CREATED,
        },
      ],
    });
  });
});

describe('backupScheduleReconciler when a step fails', () => {
  let fake: FakeClient;
  let now: Date;
  let reconcile: Reconcile;
  let recorded: { reason: string; type: string }[];

  beforeEach(() => {
    now = new Date('2026-01-05T10:05:30Z');
    fake = new FakeClient({ now: () => now });
    recorded = [];
    const events = {
      record: (_rt: unknown, _target: unknown, type: string, reason: string): Promise<void> => {
        recorded.push({ type, reason });
        return Promise.resolve();
      },
    };
    reconcile = backupScheduleReconciler(
      {
        client: fake,
        cache: {
          schedules: fake.cache(resources.backupSchedules),
          // The index the schedule controller's wiring registers (backupschedule/setup.ts).
          backups: fake.cache(resources.backups, {
            indexes: [backupsBySchedule],
          }),
          snapshots: fake.cache(resources.volumeSnapshots, { labelSelector: labels.backup }),
        },
        now: () => now,
      },
      events as unknown as EventRecorder,
      logger,
    );
  });

  const stored = (): BackupScheduleStatus | undefined =>
    fake.peek(resources.backupSchedules, 'nightly', NS)?.status;

  it('writes Ready ProgressingWithRetry when creating the due run’s Backup answers 503, then starts it on the next try', async () => {
    fake.seed(resources.backupSchedules, schedule(earlier));
    const err = apiError(503, 'ServiceUnavailable', 'etcdserver: request timed out');
    fake.failNext('create', 'backups', err);
    await expect(reconcile(KEY)).rejects.toBe(err);
    expect(fake.calls).toContainEqual({ verb: 'create', plural: 'backups', name: RUN_BACKUP, namespace: NS });
    expect(fake.objects(resources.backups)).toEqual([]);
    const failed = stored();
    // The run is not recorded as started, so the next attempt starts it.
    expect(failed).toMatchObject({
      lastScheduleTime: earlier.lastScheduleTime,
      lastBackup: earlier.lastBackup,
    });
    expect(ready(failed)).toEqual({
      type: 'Ready',
      status: 'False',
      reason: 'ProgressingWithRetry',
      message: 'running the schedule failed, retrying: 503 ServiceUnavailable: etcdserver: request timed out',
      lastTransitionTime: '2026-01-05T10:05:30.000Z',
    });

    now = new Date('2026-01-05T10:05:31Z');
    await expect(reconcile(KEY)).resolves.toEqual({ requeueAfterMs: 269_000 });
    expect(fake.peek(resources.backups, RUN_BACKUP, NS)?.metadata.labels?.[labels.schedule]).toBe('nightly');
    const started = stored();
    expect(started).toMatchObject({ lastScheduleTime: RUN, lastBackup: RUN_BACKUP, active: RUN_BACKUP });
    expect(ready(started)).toMatchObject({ status: 'True', reason: 'Scheduled' });
    expect(recorded).toContainEqual({ type: 'Normal', reason: 'BackupCreated' });
  });

  it('writes it when reading the Backup its last run created fails', async () => {
    // The status names a running Backup the cache does not hold: the API server is asked.
    fake.seed(resources.backupSchedules, schedule({ ...earlier, active: 'nightly-20260105100000' }));
    const err = connectionReset();
    fake.failNext('get', 'backups', err);
    await expect(reconcile(KEY)).rejects.toBe(err);
    expect(ready(stored())).toMatchObject({
      reason: 'ProgressingWithRetry',
      message: 'running the schedule failed, retrying: read ECONNRESET',
    });
    expect(fake.objects(resources.backups)).toEqual([]);
  });

  it('writes it when retention cannot delete a Backup', async () => {
    const completed = (name: string, at: string): Backup => ({
      metadata: { name, namespace: NS, labels: { [labels.schedule]: 'nightly' }, creationTimestamp: at },
      spec: { deployment: { name: 'pg' } },
      status: { phase: 'Completed', completionTime: at },
    });
    fake.seed(resources.backups, completed('nightly-a', '2026-01-05T09:00:00Z'));
    fake.seed(resources.backups, completed('nightly-b', '2026-01-05T10:00:00Z'));
    fake.seed(resources.backupSchedules, {
      ...schedule(earlier),
      spec: { ...schedule().spec, retention: { keepLast: 1 } },
    });
    const err = apiError(500, 'InternalError', 'etcd leader changed');
    fake.failNext('delete', 'backups', err);
    await expect(reconcile(KEY)).rejects.toBe(err);
    expect(ready(stored())?.message).toBe(
      'running the schedule failed, retrying: 500 InternalError: etcd leader changed',
    );
    expect(fake.objects(resources.backups).map((b) => b.metadata.name)).toEqual(['nightly-a', 'nightly-b']);
  });

  it('deletes the snapshots of copied Backups past keepLocalSnapshots, keeping the Backups', async () => {
    const copied = (name: string, at: string): Backup => ({
      metadata: { name, namespace: NS, labels: { [labels.schedule]: 'nightly' }, creationTimestamp: at },
      spec: { deployment: { name: 'pg' } },
      status: {
        phase: 'Completed',
        completionTime: at,
        volumes: [
          {
            pvcName: 'data-pg-0',
            volumeSnapshotName: `${name}-snap`,
            dataCopy: { manifest: `m/${name}`, phase: 'Completed' },
          },
        ],
      },
    });
    for (const [name, at] of [
      ['nightly-a', '2026-01-05T08:00:00Z'],
      ['nightly-b', '2026-01-05T09:00:00Z'],
    ] as const) {
      fake.seed(resources.backups, copied(name, at));
      fake.seed(resources.volumeSnapshots, {
        metadata: { name: `${name}-snap`, namespace: NS, labels: { [labels.backup]: name } },
        spec: { source: { persistentVolumeClaimName: 'data-pg-0' } },
      });
    }
    fake.seed(resources.backupSchedules, {
      ...schedule(earlier),
      spec: { ...schedule().spec, retention: { keepLast: 7, keepLocalSnapshots: 1 } },
    });
    await reconcile(KEY);
    expect(fake.objects(resources.volumeSnapshots).map((s) => s.metadata.name)).toEqual(['nightly-b-snap']);
    expect(fake.objects(resources.backups).map((b) => b.metadata.name)).toEqual(
      expect.arrayContaining(['nightly-a', 'nightly-b']),
    );
    expect(recorded).toContainEqual({ type: 'Normal', reason: 'SnapshotsReleased' });
  });

  it('with verifyBackups asks each completed copied Backup for a verification, once', async () => {
    const copiedBackup: Backup = {
      metadata: {
        name: 'nightly-a',
        namespace: NS,
        labels: { [labels.schedule]: 'nightly' },
        creationTimestamp: '2026-01-05T09:00:00Z',
      },
      spec: { deployment: { name: 'pg' } },
      status: {
        phase: 'Completed',
        completionTime: '2026-01-05T09:00:00Z',
        volumes: [
          { pvcName: 'data-pg-0', volumeSnapshotName: 's', dataCopy: { manifest: 'm', phase: 'Completed' } },
        ],
      },
    };
    fake.seed(resources.backups, copiedBackup);
    fake.seed(resources.backupSchedules, {
      ...schedule(earlier),
      spec: { ...schedule().spec, verifyBackups: true },
    });
    await reconcile(KEY);
    expect(fake.peek(resources.backups, 'nightly-a', NS)?.metadata.annotations?.[annotations.verify]).toBe(
      'schedule',
    );
    fake.clearCalls();
    await reconcile(KEY);
    expect(fake.calls.filter((call) => call.verb === 'patch' && call.plural === 'backups')).toEqual([]);
  });

  it('rejects with a TerminalError for a 403, having written the cause', async () => {
    fake.seed(resources.backupSchedules, schedule(earlier));
    const forbidden = apiError(403, 'Forbidden', 'backups.snapback.dev is forbidden');
    fake.failNext('create', 'backups', forbidden);
    const err = await reconcile(KEY).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TerminalError);
    expect((err as TerminalError).cause).toBe(forbidden);
    expect(ready(stored())?.message).toContain('403 Forbidden: backups.snapback.dev is forbidden');
  });
});
