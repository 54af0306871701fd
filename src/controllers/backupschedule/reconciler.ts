// The BackupSchedule reconciler. Each reconcile reads the schedule, its Backups and the clock,
// deletes the Backups retention does not keep, starts the run that is due (or records why not),
// writes status once and requeues for the next run: no timer of its own. What is due follows from
// status and the clock alone and a run's Backup has a deterministic name, so a restart or a resync
// at any moment neither repeats a run nor creates a Backup twice.

import type { Logger } from 'winston';
import { annotations, API_VERSION, finalizers, labels, MANAGED_BY } from '../../api/constants.js';
import type { Backup, BackupSchedule, BackupScheduleStatus } from '../../api/generated/types.js';
import type { Event, VolumeSnapshot } from '../../api/kubernetes.js';
import type { EventRecorder } from '../../observability/events.js';
import type { Reconcile } from '../../runtime/controller.js';
import type { ObjectClient } from '../../runtime/client.js';
import { resources } from '../../runtime/resources.js';
import { defineIndex, type Cache } from '../../runtime/cache.js';
import { statusReconciler, type Next } from '../../runtime/status-reconciler.js';
import { requeueFor, retrying } from '../shared/conditions.js';
import { ensureCreated } from '../shared/objects.js';
import { labelledOwner } from '../setup.js';
import { newestFirst, retentionOf, snapshotsToRelease, toPrune } from './retention.js';
import { DEFAULT_TIME_ZONE, dueRun, parseCron, runBackupName, type Cron } from './schedule.js';
import { invalidStatus, REASONS, scheduleStatus, type RunOutcome } from './status.js';

/** The verification token a schedule sets on its Backups (verifyBackups). */
const SCHEDULED_VERIFICATION = 'schedule';

export interface BackupScheduleContext {
  client: ObjectClient;
  cache: {
    schedules: Cache<BackupSchedule>;
    backups: Cache<Backup>;
    /** VolumeSnapshots labelled with a Backup (the Backups' own, and restores' imports). */
    snapshots: Cache<VolumeSnapshot>;
  };
  now(): Date;
}

/** Backups by the "namespace/name" of the schedule their snapback.dev/schedule label names. */
export const backupsBySchedule = defineIndex<Backup>('schedule', labelledOwner(labels.schedule));

/** A Backup that has not ended: the next run waits for it (no phase yet counts as running). */
const isRunning = (backup: Backup): boolean =>
  backup.metadata.deletionTimestamp === undefined &&
  (backup.status?.phase === undefined || backup.status.phase === 'InProgress');

/** The Backup of the run `name`: the template's spec, labelled with the schedule. */
export function runBackup(schedule: BackupSchedule, name: string): Backup {
  const project = schedule.metadata.labels?.[labels.project];
  return {
    apiVersion: API_VERSION,
    kind: 'Backup',
    metadata: {
      name,
      namespace: schedule.metadata.namespace ?? '',
      // Born with the Backup controller's finalizer, which would otherwise be one more write.
      finalizers: [finalizers.backup],
      labels: {
        [labels.schedule]: schedule.metadata.name ?? '',
        [labels.deployment]: schedule.spec.template.deployment.name,
        [labels.managedBy]: MANAGED_BY,
        ...(project === undefined ? {} : { [labels.project]: project }),
      },
    },
    spec: { ...schedule.spec.template },
  };
}

/** The latest of the times the next run must come after. */
function lastHandled(schedule: BackupSchedule): Date {
  const times = [
    schedule.metadata.creationTimestamp,
    schedule.status?.lastScheduleTime,
    schedule.status?.lastSkippedTime,
  ].map((time) => Date.parse(time ?? '') || 0);
  return new Date(Math.max(...times));
}

class ScheduleSteps {
  constructor(
    private readonly ctx: BackupScheduleContext,
    private readonly events: EventRecorder,
    private readonly logger: Logger,
  ) {}

  async step(schedule: BackupSchedule): Promise<Next<BackupScheduleStatus>> {
    const key = `${schedule.metadata.namespace ?? ''}/${schedule.metadata.name ?? ''}`;
    const now = this.ctx.now();
    const timeZone = schedule.spec.timeZone ?? DEFAULT_TIME_ZONE;
    const cron = parseCron(schedule.spec.schedule, timeZone, key);
    // A spec change wakes an invalid schedule: nothing to requeue for.
    if ('problem' in cron) return { status: invalidStatus(schedule, cron.problem, now.toISOString()) };
    const next = schedule.spec.suspend === true ? undefined : cron.after(now);
    if (schedule.spec.suspend !== true && next === undefined) {
      const problem = `spec.schedule "${schedule.spec.schedule}" has no run after ${now.toISOString()}`;
      return { status: invalidStatus(schedule, problem, now.toISOString()) };
    }
    const backups = this.ctx.cache.backups.byIndex(backupsBySchedule, key);
    await this.prune(schedule, backups, timeZone);
    await this.askVerification(schedule, backups);
    const running = await this.running(schedule, backups);
    const outcome = await this.run(schedule, cron, backups, running, now);
    const active = outcome.kind === 'started' && isRunning(outcome.backup) ? outcome.backup : running;
    const completed = newestFirst(backups.filter((backup) => backup.status?.phase === 'Completed'))[0];
    const lastSuccessfulTime = completed?.status?.completionTime;
    const status = scheduleStatus(
      schedule,
      {
        outcome,
        ...(active === undefined ? {} : { active }),
        ...(lastSuccessfulTime === undefined ? {} : { lastSuccessfulTime }),
        ...(next === undefined ? {} : { next }),
      },
      now.toISOString(),
    );
    return { status, ...(next === undefined ? {} : requeueFor(next.getTime() - now.getTime())) };
  }

  /**
   * The schedule's running Backup. The one its last run created may not be in the cache yet (the
   * schedule's own write can come back first): then the API server is asked, once.
   */
  private async running(schedule: BackupSchedule, backups: readonly Backup[]): Promise<Backup | undefined> {
    const cached = newestFirst(backups.filter(isRunning))[0];
    if (cached !== undefined) return cached;
    const named = schedule.status?.active;
    if (named === undefined || backups.some((backup) => backup.metadata.name === named)) return undefined;
    const fresh = await this.ctx.client.get(resources.backups, named, schedule.metadata.namespace);
    return fresh !== undefined && isRunning(fresh) ? fresh : undefined;
  }

  private async run(
    schedule: BackupSchedule,
    cron: Cron,
    backups: readonly Backup[],
    active: Backup | undefined,
    now: Date,
  ): Promise<RunOutcome> {
    if (schedule.spec.suspend === true) return { kind: 'idle' };
    const due = dueRun(cron, lastHandled(schedule), now, schedule.spec.startingDeadlineSeconds);
    if (due.kind === 'none') return { kind: 'idle' };
    const when = due.time.toISOString();
    if (due.kind === 'missed') {
      this.record(
        schedule,
        'Warning',
        REASONS.missedRun,
        `the run of ${when} was not started: it was ${due.lateSeconds}s late, more than startingDeadlineSeconds`,
        `missed@${when}`,
      );
      return { kind: 'missed', time: due.time, lateSeconds: due.lateSeconds };
    }
    const name = runBackupName(schedule.metadata.name ?? '', due.time);
    // Created by an earlier attempt of this step whose status write did not happen.
    const earlier = backups.find((backup) => backup.metadata.name === name);
    if (earlier !== undefined) return { kind: 'started', time: due.time, backup: earlier };
    if (active !== undefined) {
      const phase = active.status?.phase ?? 'starting';
      this.record(
        schedule,
        'Warning',
        REASONS.skippedOverlap,
        `the run of ${when} was skipped: Backup ${active.metadata.name ?? ''} is still ${phase}`,
        `skipped@${when}`,
      );
      return { kind: 'skipped', time: due.time };
    }
    const created = await ensureCreated(
      this.ctx.client,
      resources.backups,
      runBackup(schedule, name),
      labels.schedule,
    );
    if (created.outcome === 'taken') {
      this.record(
        schedule,
        'Warning',
        REASONS.nameTaken,
        `the run of ${when} was skipped: Backup ${name} exists and was not created by this schedule`,
        `taken@${when}`,
      );
      return { kind: 'taken', time: due.time, backup: name };
    }
    if (created.outcome === 'created') {
      this.logger.info('run started', {
        namespace: schedule.metadata.namespace,
        name: schedule.metadata.name,
        backup: name,
        run: when,
      });
      this.record(
        schedule,
        'Normal',
        'BackupCreated',
        `created Backup ${name} for the run of ${when}`,
        `run@${when}`,
      );
    }
    return { kind: 'started', time: due.time, backup: created.object };
  }

  /**
   * Deletes, through the Backup's own finalizer (snapshots, record, manifests), what retention does
   * not keep; then the CSI snapshots of kept Backups past keepLocalSnapshots.
   */
  private async prune(schedule: BackupSchedule, backups: readonly Backup[], timeZone: string): Promise<void> {
    const retention = retentionOf(schedule.spec.retention);
    const doomed = toPrune(backups, retention, timeZone);
    await this.releaseSnapshots(
      schedule,
      snapshotsToRelease(
        backups.filter((backup) => !doomed.includes(backup)),
        retention,
      ),
    );
    if (doomed.length === 0) return;
    const namespace = schedule.metadata.namespace ?? '';
    for (const backup of doomed) {
      // The uid precondition: never a Backup recreated under the name since the cache saw it.
      await this.ctx.client.delete(resources.backups, backup.metadata.name ?? '', {
        namespace,
        preconditions: { uid: backup.metadata.uid ?? '' },
      });
    }
    const names = doomed.map((backup) => backup.metadata.name ?? '');
    this.logger.info('pruned by retention', { namespace, name: schedule.metadata.name, backups: names });
    this.record(
      schedule,
      'Normal',
      'Pruned',
      `deleted Backup(s) ${names.join(', ')}: retention does not keep them`,
      `pruned@${names.join(',')}`,
    );
  }

  /**
   * With verifyBackups, each Completed Backup copied into a bucket that no verification was asked
   * of gets the annotation that asks for one (its own controller runs it); one patch, once.
   */
  private async askVerification(schedule: BackupSchedule, backups: readonly Backup[]): Promise<void> {
    if (schedule.spec.verifyBackups !== true) return;
    for (const backup of backups) {
      const copied = (backup.status?.volumes ?? []).some((volume) => volume.dataCopy?.phase === 'Completed');
      if (
        backup.status?.phase !== 'Completed' ||
        !copied ||
        backup.metadata.deletionTimestamp !== undefined ||
        backup.metadata.annotations?.[annotations.verify] !== undefined
      )
        continue;
      await this.ctx.client.mergePatch(
        resources.backups,
        backup.metadata.name ?? '',
        { metadata: { annotations: { [annotations.verify]: SCHEDULED_VERIFICATION } } },
        { namespace: backup.metadata.namespace ?? '' },
      );
    }
  }

  /** Deletes the Backups' own VolumeSnapshots that are left (the cache says which). */
  private async releaseSnapshots(schedule: BackupSchedule, backups: readonly Backup[]): Promise<void> {
    const namespace = schedule.metadata.namespace ?? '';
    const released: string[] = [];
    for (const backup of backups) {
      const own = (backup.status?.volumes ?? []).flatMap((volume) => {
        const snapshot = this.ctx.cache.snapshots.get(`${namespace}/${volume.volumeSnapshotName}`);
        return snapshot === undefined ||
          snapshot.metadata.deletionTimestamp !== undefined ||
          snapshot.metadata.labels?.[labels.backup] !== backup.metadata.name
          ? []
          : [snapshot];
      });
      for (const snapshot of own) {
        await this.ctx.client.delete(resources.volumeSnapshots, snapshot.metadata.name ?? '', {
          namespace,
          preconditions: { uid: snapshot.metadata.uid ?? '' },
        });
      }
      if (own.length > 0) released.push(backup.metadata.name ?? '');
    }
    if (released.length === 0) return;
    const keep = schedule.spec.retention?.keepLocalSnapshots ?? 0;
    this.logger.info('released snapshots', { namespace, name: schedule.metadata.name, backups: released });
    this.record(
      schedule,
      'Normal',
      'SnapshotsReleased',
      `deleted the CSI snapshots of Backup(s) ${released.join(', ')}: their data is in the bucket, and retention keeps the snapshots of the newest ${keep} only`,
      `released@${released.join(',')}`,
    );
  }

  private record(
    schedule: BackupSchedule,
    type: Event['type'],
    reason: string,
    message: string,
    occurrence: string,
  ): void {
    void this.events.record(resources.backupSchedules, schedule, type, reason, message, occurrence);
  }

  /** Per-run events are recorded where the run is decided; these two states have no run to tell. */
  announce(schedule: BackupSchedule, previous: BackupScheduleStatus, status: BackupScheduleStatus): void {
    const reason = status.conditions?.find((condition) => condition.type === 'Ready')?.reason;
    const before = previous.conditions?.find((condition) => condition.type === 'Ready')?.reason;
    if (reason === before || (reason !== REASONS.invalid && reason !== REASONS.suspended)) return;
    this.logger.info(`schedule ${reason}`, {
      namespace: schedule.metadata.namespace,
      name: schedule.metadata.name,
      message: status.message,
    });
    this.record(
      schedule,
      reason === REASONS.invalid ? 'Warning' : 'Normal',
      reason,
      status.message ?? '',
      `${reason}@${String(schedule.metadata.generation ?? 0)}`,
    );
  }
}

export function backupScheduleReconciler(
  ctx: BackupScheduleContext,
  events: EventRecorder,
  logger: Logger,
): Reconcile {
  const steps = new ScheduleSteps(ctx, events, logger);
  return statusReconciler<BackupSchedule, BackupScheduleStatus>({
    resource: resources.backupSchedules,
    client: ctx.client,
    cache: ctx.cache.schedules,
    logger,
    step: (schedule) => steps.step(schedule),
    errorStatus: (schedule, err, terminal) =>
      retrying(schedule.status ?? {}, 'running the schedule', err, ctx.now().toISOString(), terminal),
    announce: (schedule, previous, status) => {
      steps.announce(schedule, previous, status);
    },
  });
}
