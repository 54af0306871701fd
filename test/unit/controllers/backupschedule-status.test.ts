// The status a BackupSchedule reconcile writes: the run's outcome in the history fields, and a
// Ready condition that says whether runs create Backups as scheduled, and why not.

import { describe, expect, it } from '@jest/globals';
import type { Backup, BackupSchedule, BackupScheduleStatus } from '../../../src/api/generated/types.js';
import { runBackup } from '../../../src/controllers/backupschedule/reconciler.js';
import {
  invalidStatus,
  scheduleStatus,
  type Observed,
} from '../../../src/controllers/backupschedule/status.js';

const NOW = '2026-01-05T10:00:05.000Z';
const NEXT = new Date('2026-01-05T10:00:06Z');

function schedule(spec: Partial<BackupSchedule['spec']> = {}, status?: BackupScheduleStatus): BackupSchedule {
  return {
    metadata: {
      name: 'nightly',
      namespace: 'prod',
      generation: 3,
      creationTimestamp: '2026-01-01T00:00:00Z',
      labels: { 'snapback.dev/project': 'payments' },
    },
    spec: { schedule: '*/2 * * * * *', template: { deployment: { name: 'pg' } }, ...spec },
    ...(status === undefined ? {} : { status }),
  };
}

const running = (name: string): Backup => ({
  metadata: { name, namespace: 'prod' },
  spec: { deployment: { name: 'pg' } },
  status: { phase: 'InProgress' },
});

const ready = (status: BackupScheduleStatus) => status.conditions?.find((c) => c.type === 'Ready');

describe('scheduleStatus', () => {
  it('records a started run and is Ready, naming the next run and the running Backup', () => {
    const backup = running('nightly-20260105100004');
    const observed: Observed = {
      outcome: { kind: 'started', time: new Date('2026-01-05T10:00:04Z'), backup },
      active: backup,
      next: NEXT,
    };
    const status = scheduleStatus(schedule(), observed, NOW);
    expect(status).toMatchObject({
      lastScheduleTime: '2026-01-05T10:00:04.000Z',
      lastBackup: 'nightly-20260105100004',
      active: 'nightly-20260105100004',
      nextScheduleTime: '2026-01-05T10:00:06.000Z',
      observedGeneration: 3,
    });
    expect(ready(status)).toMatchObject({ status: 'True', reason: 'Scheduled', observedGeneration: 3 });
    expect(status.message).toBe(
      'next run: 2026-01-05T10:00:06.000Z; Backup nightly-20260105100004 is still InProgress',
    );
  });

  it('writes nothing new when nothing happened: the same inputs give the same status', () => {
    const first = scheduleStatus(schedule(), { outcome: { kind: 'idle' }, next: NEXT }, NOW);
    const again = scheduleStatus(
      schedule({}, first),
      { outcome: { kind: 'idle' }, next: NEXT },
      '2026-01-05T10:00:05.500Z',
    );
    expect(again).toEqual(first);
  });

  it('is SkippedOverlap while the Backup that made a run skip still runs, then Scheduled again', () => {
    const previous = { lastScheduleTime: '2026-01-05T10:00:00Z', lastBackup: 'nightly-20260105100000' };
    const skipped = scheduleStatus(
      schedule({}, previous),
      {
        outcome: { kind: 'skipped', time: new Date('2026-01-05T10:00:04Z') },
        active: running('nightly-20260105100000'),
        next: NEXT,
      },
      NOW,
    );
    expect(skipped.lastSkippedTime).toBe('2026-01-05T10:00:04.000Z');
    expect(skipped.lastScheduleTime).toBe('2026-01-05T10:00:00Z');
    expect(ready(skipped)).toMatchObject({ status: 'False', reason: 'SkippedOverlap' });
    expect(skipped.message).toMatch(
      /run of 2026-01-05T10:00:04.000Z was skipped: Backup nightly-20260105100000 is still InProgress, and a schedule runs one Backup at a time/,
    );

    const stillRunning = scheduleStatus(
      schedule({}, skipped),
      { outcome: { kind: 'idle' }, active: running('nightly-20260105100000'), next: NEXT },
      NOW,
    );
    expect(ready(stillRunning)?.reason).toBe('SkippedOverlap');

    const ended = scheduleStatus(schedule({}, skipped), { outcome: { kind: 'idle' }, next: NEXT }, NOW);
    expect(ended.lastSkippedTime).toBe('2026-01-05T10:00:04.000Z');
    expect(ended.active).toBeUndefined();
    expect(ready(ended)).toMatchObject({ status: 'True', reason: 'Scheduled' });
    expect(ended.message).toBe(
      'next run: 2026-01-05T10:00:06.000Z; the last run created Backup nightly-20260105100000',
    );
  });

  it('is Suspended, without a next run, while spec.suspend is true', () => {
    const status = scheduleStatus(schedule({ suspend: true }), { outcome: { kind: 'idle' } }, NOW);
    expect(status.nextScheduleTime).toBeUndefined();
    expect(ready(status)).toMatchObject({ status: 'False', reason: 'Suspended' });
    expect(status.message).toMatch(/no Backup is created until spec.suspend is false/);
  });

  it('says how late a missed run was', () => {
    const status = scheduleStatus(
      schedule({ startingDeadlineSeconds: 60 }),
      {
        outcome: { kind: 'missed', time: new Date('2026-01-05T02:00:00Z'), lateSeconds: 28_805 },
        next: NEXT,
      },
      NOW,
    );
    expect(status.lastScheduleTime).toBeUndefined();
    expect(ready(status)).toMatchObject({ status: 'True', reason: 'MissedRun' });
    expect(status.message).toMatch(/28805s late, more than startingDeadlineSeconds \(60\)/);
  });

  it('is BackupNameTaken when another owner has the Backup name of a run', () => {
    const status = scheduleStatus(
      schedule(),
      {
        outcome: { kind: 'taken', time: new Date('2026-01-05T10:00:04Z'), backup: 'nightly-20260105100004' },
        next: NEXT,
      },
      NOW,
    );
    expect(ready(status)).toMatchObject({ status: 'False', reason: 'BackupNameTaken' });
    expect(status.message).toMatch(
      /Backup nightly-20260105100004 exists and was not created by this schedule/,
    );
  });

  it('keeps the newest success time it has seen', () => {
    const previous = { lastSuccessfulTime: '2026-01-05T09:00:00Z' };
    const observed = (lastSuccessfulTime: string): Observed => ({
      outcome: { kind: 'idle' },
      lastSuccessfulTime,
      next: NEXT,
    });
    expect(
      scheduleStatus(schedule({}, previous), observed('2026-01-05T08:00:00Z'), NOW).lastSuccessfulTime,
    ).toBe('2026-01-05T09:00:00Z');
    expect(
      scheduleStatus(schedule({}, previous), observed('2026-01-05T10:00:01Z'), NOW).lastSuccessfulTime,
    ).toBe('2026-01-05T10:00:01Z');
  });
});

describe('invalidStatus', () => {
  it('is InvalidSchedule with the problem, keeping the history and dropping the next run', () => {
    const previous = {
      lastScheduleTime: '2026-01-05T10:00:00Z',
      lastBackup: 'nightly-20260105100000',
      nextScheduleTime: '2026-01-05T10:00:02Z',
    };
    const status = invalidStatus(
      schedule({}, previous),
      'spec.timeZone "Mars/Base" is not an IANA time zone',
      NOW,
    );
    expect(status).toMatchObject({
      lastScheduleTime: previous.lastScheduleTime,
      lastBackup: previous.lastBackup,
    });
    expect(status.nextScheduleTime).toBeUndefined();
    expect(ready(status)).toMatchObject({ status: 'False', reason: 'InvalidSchedule' });
    expect(status.message).toBe(
      'spec.timeZone "Mars/Base" is not an IANA time zone. No Backup is created until it is fixed.',
    );
  });
});

describe('runBackup', () => {
  it("is the template's spec, in the schedule's namespace, labelled with the schedule and the deployment, born with the Backup finalizer", () => {
    const backup = runBackup(
      schedule({ template: { deployment: { name: 'pg' }, volumeSnapshotClassName: 'fast' } }),
      'nightly-20260105100004',
    );
    expect(backup.metadata).toEqual({
      name: 'nightly-20260105100004',
      namespace: 'prod',
      finalizers: ['snapback.dev/backup-protection'],
      labels: {
        'snapback.dev/schedule': 'nightly',
        'snapback.dev/deployment': 'pg',
        'app.kubernetes.io/managed-by': 'snapback',
        'snapback.dev/project': 'payments',
      },
    });
    expect(backup.metadata.ownerReferences).toBeUndefined();
    expect(backup.spec).toEqual({ deployment: { name: 'pg' }, volumeSnapshotClassName: 'fast' });
  });
});
