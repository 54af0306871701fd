// The status a reconcile of a BackupSchedule writes: what the last run did, what runs now, when the
// next run is, and the Ready condition saying whether runs create Backups as scheduled. Computed
// from the schedule, its Backups and the clock alone, so an idle reconcile writes nothing.

import type { Backup, BackupSchedule, BackupScheduleStatus } from '../../api/generated/types.js';
import { setCondition } from '../shared/conditions.js';

/** The Ready condition's reasons. */
export const REASONS = {
  scheduled: 'Scheduled',
  suspended: 'Suspended',
  invalid: 'InvalidSchedule',
  skippedOverlap: 'SkippedOverlap',
  nameTaken: 'BackupNameTaken',
  missedRun: 'MissedRun',
} as const;

/** What this reconcile did about the run due now, if any. */
export type RunOutcome =
  | { kind: 'idle' }
  /** Its Backup, just created or found created by an earlier attempt of the step. */
  | { kind: 'started'; time: Date; backup: Backup }
  /** Not started: a Backup of the schedule is still running. */
  | { kind: 'skipped'; time: Date }
  /** Not started: a Backup of another owner has the run's name. */
  | { kind: 'taken'; time: Date; backup: string }
  /** Not started: later than startingDeadlineSeconds. */
  | { kind: 'missed'; time: Date; lateSeconds: number };

export interface Observed {
  outcome: RunOutcome;
  /** The schedule's Backup still running after this step (one it just started included). */
  active?: Backup;
  /** completionTime of the schedule's newest Completed Backup. */
  lastSuccessfulTime?: string;
  /** Undefined while suspended. */
  next?: Date;
}

type Ready = { status: 'True' | 'False'; reason: string; message: string };

function withReady(
  schedule: BackupSchedule,
  fields: BackupScheduleStatus,
  ready: Ready,
  now: string,
): BackupScheduleStatus {
  const generation = schedule.metadata.generation;
  return {
    ...fields,
    message: ready.message,
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    conditions: setCondition(
      schedule.status?.conditions,
      { type: 'Ready', ...ready, ...(generation === undefined ? {} : { observedGeneration: generation }) },
      now,
    ),
  };
}

/** The history fields kept from the previous status: what earlier runs did. */
function history(schedule: BackupSchedule): BackupScheduleStatus {
  const { lastScheduleTime, lastSkippedTime, lastSuccessfulTime, lastBackup } = schedule.status ?? {};
  return {
    ...(lastScheduleTime === undefined ? {} : { lastScheduleTime }),
    ...(lastSkippedTime === undefined ? {} : { lastSkippedTime }),
    ...(lastSuccessfulTime === undefined ? {} : { lastSuccessfulTime }),
    ...(lastBackup === undefined ? {} : { lastBackup }),
  };
}

/** The status of a schedule whose spec the API server accepted but that cannot run. */
export function invalidStatus(schedule: BackupSchedule, problem: string, now: string): BackupScheduleStatus {
  return withReady(
    schedule,
    history(schedule),
    {
      status: 'False',
      reason: REASONS.invalid,
      message: `${problem}. No Backup is created until it is fixed.`,
    },
    now,
  );
}

const later = (a: string | undefined, b: string | undefined): string | undefined =>
  a === undefined || (b !== undefined && Date.parse(b) > Date.parse(a)) ? b : a;

export function scheduleStatus(
  schedule: BackupSchedule,
  observed: Observed,
  now: string,
): BackupScheduleStatus {
  const { outcome, active, next } = observed;
  const fields: BackupScheduleStatus = history(schedule);
  if (outcome.kind === 'started') {
    fields.lastScheduleTime = outcome.time.toISOString();
    fields.lastBackup = outcome.backup.metadata.name ?? '';
  }
  if (outcome.kind === 'skipped') fields.lastSkippedTime = outcome.time.toISOString();
  const lastSuccessfulTime = later(fields.lastSuccessfulTime, observed.lastSuccessfulTime);
  if (lastSuccessfulTime !== undefined) fields.lastSuccessfulTime = lastSuccessfulTime;
  if (next !== undefined) fields.nextScheduleTime = next.toISOString();
  const activeName = active?.metadata.name;
  if (activeName !== undefined) fields.active = activeName;
  return withReady(schedule, fields, readiness(schedule, fields, observed), now);
}

function readiness(schedule: BackupSchedule, fields: BackupScheduleStatus, observed: Observed): Ready {
  const { outcome, active } = observed;
  const nextRun = `next run: ${fields.nextScheduleTime ?? 'none'}`;
  const running =
    active === undefined
      ? undefined
      : `Backup ${active.metadata.name ?? ''} is still ${active.status?.phase ?? 'starting'}`;
  if (schedule.spec.suspend === true) {
    const note = running === undefined ? '' : `; ${running}`;
    return {
      status: 'False',
      reason: REASONS.suspended,
      message: `suspended: no Backup is created until spec.suspend is false${note}`,
    };
  }
  if (outcome.kind === 'taken') {
    return {
      status: 'False',
      reason: REASONS.nameTaken,
      message: `the run of ${outcome.time.toISOString()} was skipped: Backup ${outcome.backup} exists and was not created by this schedule; delete or rename it. ${nextRun}`,
    };
  }
  const skipped = fields.lastSkippedTime;
  if (
    running !== undefined &&
    skipped !== undefined &&
    Date.parse(skipped) > Date.parse(fields.lastScheduleTime ?? '1970-01-01T00:00:00Z')
  ) {
    return {
      status: 'False',
      reason: REASONS.skippedOverlap,
      message: `the run of ${skipped} was skipped: ${running}, and a schedule runs one Backup at a time. ${nextRun}`,
    };
  }
  if (outcome.kind === 'missed') {
    return {
      status: 'True',
      reason: REASONS.missedRun,
      message: `the run of ${outcome.time.toISOString()} was not started: it was ${outcome.lateSeconds}s late, more than startingDeadlineSeconds (${schedule.spec.startingDeadlineSeconds ?? 0}). ${nextRun}`,
    };
  }
  const last =
    running ??
    (fields.lastBackup === undefined ? undefined : `the last run created Backup ${fields.lastBackup}`);
  return {
    status: 'True',
    reason: REASONS.scheduled,
    message: last === undefined ? nextRun : `${nextRun}; ${last}`,
  };
}
