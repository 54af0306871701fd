// The Backup reconciler: capture -> InProgress (snapshots, then, for a location that copies volume
// data, each volume's files into its bucket, then the record in the backup's location) ->
// Completed or Failed; a synced Backup goes straight to its record's Completed status
// (or Failed); and a finalizer that deletes the snapshots and the record (or, with
// snapback.dev/force-delete, leaves them). It runs in the shared status-reconciler shell.

import type { Logger } from 'winston';
import { annotations, finalizers, labels } from '../../api/constants.js';
import type { Backup, BackupStatus, Restore } from '../../api/generated/types.js';
import type { EventRecorder } from '../../observability/events.js';
import type { Reconcile } from '../../runtime/controller.js';
import { resources } from '../../runtime/resources.js';
import {
  enteredPhase,
  statusReconciler,
  type Finalized,
  type Next,
} from '../../runtime/status-reconciler.js';
import { restoresByBackup } from '../restore/indexes.js';
import { isTerminal } from '../restore/transitions.js';
import { PROGRESS_INTERVAL_MS, requeueFor, isProgressOnly } from '../shared/conditions.js';
import { capture } from './capture.js';
import { advance, fail, outcomeOfError } from '../shared/outcome.js';
import { applyBackupOutcome, type BackupContext, type BackupOutcome } from './context.js';
import { moverRunsOf, transferPacingMs } from '../shared/mover-run.js';
import { copyVolumeData, moversByBackup, removeMovers } from './copy.js';
import { removeVerifiers, verificationDue, verifyData } from './verify.js';
import { deleteRecord, importRecord, RECORD_PENDING, storeRecord } from './record.js';
import { takeSnapshots } from './snapshot.js';

/** How often a deletion waiting on snapshots or restores looks again if no event comes first. */
const DELETION_RECHECK_MS = 5_000;
/** How often a record that could not be stored or read is tried again (no event says the store is back). */
const RECORD_RETRY_MS = 5_000;

const keyOf = (backup: Backup): string => `${backup.metadata.namespace ?? ''}/${backup.metadata.name ?? ''}`;

const moverRuns = (status: BackupStatus): string =>
  [
    moverRunsOf((status.volumes ?? []).map((volume) => volume.dataCopy)),
    status.verification?.token,
    status.verification?.phase,
    moverRunsOf(status.verification?.volumes ?? []),
  ].join('/');

const readyMessage = (status: BackupStatus): string =>
  status.conditions?.find((condition) => condition.type === 'Ready')?.message ?? '';

export function backupReconciler(ctx: BackupContext, events: EventRecorder, logger: Logger): Reconcile {
  const now = (): string => ctx.now().toISOString();

  /** The backup's deadline runs from its start, or from its creation while it has not started. */
  const untilDeadline = (backup: Backup): number => {
    const started = Date.parse(backup.status?.startTime ?? backup.metadata.creationTimestamp ?? '');
    if (Number.isNaN(started)) return Infinity;
    return started + ctx.config.timeoutSeconds * 1000 - ctx.now().getTime();
  };

  const apply = (backup: Backup, outcome: BackupOutcome): BackupStatus =>
    applyBackupOutcome(backup.status ?? {}, outcome, now());

  const timedOut = (last: string, status?: BackupOutcome['status']): BackupOutcome =>
    fail(
      'PhaseTimeout',
      `the backup did not complete within ${ctx.config.timeoutSeconds}s (${last}); check the VolumeSnapshots, the CSI driver and the backup location, then create a new Backup.`,
      status,
    );

  /** A backup still waiting is judged against the deadline after the step looked at the world. */
  const judged = (backup: Backup, outcome: BackupOutcome, retryMs?: number): Next<BackupStatus> => {
    if (outcome.type !== 'wait') return { status: apply(backup, outcome) };
    const left = untilDeadline(backup);
    if (left <= 0) return { status: apply(backup, timedOut(outcome.message)) };
    return { status: apply(backup, outcome), ...requeueFor(Math.min(left, retryMs ?? Infinity)) };
  };

  /** InProgress: the snapshots, then, once all are ready, the copies of the volumes, then the record. */
  const inProgress = async (backup: Backup): Promise<Next<BackupStatus>> => {
    const snapshotted = await takeSnapshots(ctx, backup);
    const copied =
      snapshotted.type === 'advance' ? await copyVolumeData(ctx, backup, snapshotted) : snapshotted;
    const next = copied.type === 'advance' ? await storeRecord(ctx, backup, copied) : copied;
    const storing = next.type === 'wait' && next.reason === RECORD_PENDING;
    return judged(
      backup,
      next,
      storing ? RECORD_RETRY_MS : next.type === 'wait' ? next.requeueAfterMs : undefined,
    );
  };

  /**
   * A backup that ended: a verification asked for runs; mover pods left (Failed, or Completed after
   * a restart) go.
   */
  const ended = async (backup: Backup): Promise<Next<BackupStatus>> => {
    const token = verificationDue(backup);
    if (token !== undefined) return verifyData(ctx, backup, token);
    if (ctx.cache.movers.byIndex(moversByBackup, keyOf(backup)).length > 0) await removeAllMovers(backup);
    return {};
  };

  const removeAllMovers = async (backup: Backup): Promise<void> => {
    await removeMovers(ctx, backup);
    await removeVerifiers(ctx, backup);
  };

  const step = async (backup: Backup): Promise<Next<BackupStatus>> => {
    switch (backup.status?.phase) {
      case undefined: {
        const from = backup.spec.syncedFrom;
        if (from === undefined) {
          const captured = await capture(ctx, backup);
          if (captured.type !== 'advance') return { status: apply(backup, captured) };
          // The snapshots are requested in the reconcile that starts the backup, so that its one
          // status write says both (their names are deterministic: a retry finds them made).
          return inProgress({ ...backup, status: apply(backup, captured) });
        }
        const imported = await importRecord(ctx, backup, from, untilDeadline(backup) <= 0);
        return judged(backup, imported, RECORD_RETRY_MS);
      }
      case 'InProgress':
        return inProgress(backup);
      default:
        return ended(backup);
    }
  };

  /**
   * A step that threw. Refused for good: the backup fails naming the refusal. Anything else is
   * retried with backoff and shown in the Ready condition; a backup that has not started yet gets
   * its startTime here, so that the deadline bounds it (a schedule waits for it meanwhile).
   */
  const errorStatus = (backup: Backup, err: unknown, refused: boolean): BackupStatus | undefined => {
    const status = backup.status ?? {};
    if (status.phase !== undefined && status.phase !== 'InProgress') return undefined;
    const started: BackupOutcome['status'] = { startTime: status.startTime ?? now() };
    const outcome: BackupOutcome = outcomeOfError({
      err,
      refused,
      what: 'the backup',
      refusedCode: 'BackupInternalError',
      advice: '; fix the cause, then create a new Backup.',
      pastDeadline: untilDeadline(backup) <= 0,
      timedOut: (last) => timedOut(last, started),
      // A refusal records the failure only; a retried error also starts the backup's clock.
      ...(refused ? {} : { status: started }),
    });
    return apply(backup, outcome);
  };

  /** The restores, in any namespace, that still read this backup. */
  const readers = (backup: Backup): Restore[] =>
    ctx.cache.restores
      .byIndex(restoresByBackup, `${backup.metadata.namespace ?? ''}/${backup.metadata.name ?? ''}`)
      .filter(
        (restore) => !isTerminal(restore.status?.phase) && restore.metadata.deletionTimestamp === undefined,
      );

  /** Deletes the backup's own VolumeSnapshots; returns how many still exist. */
  const deleteSnapshots = async (backup: Backup): Promise<number> => {
    const namespace = backup.metadata.namespace ?? '';
    const { items } = await ctx.client.list(resources.volumeSnapshots, {
      namespace,
      labelSelector: `${labels.backup}=${backup.metadata.name ?? ''},!${labels.restore}`,
    });
    for (const snapshot of items) {
      if (snapshot.metadata.deletionTimestamp !== undefined) continue;
      await ctx.client.delete(resources.volumeSnapshots, snapshot.metadata.name ?? '', { namespace });
    }
    return items.length;
  };

  /**
   * Deletion waits for restores that read this backup, then deletes its record and VolumeSnapshots
   * (unless force-deleted), then lets the Backup go.
   */
  const finalize = async (backup: Backup): Promise<Finalized<BackupStatus>> => {
    const deleting = (reason: string, message: string): Finalized<BackupStatus> => ({
      done: false,
      status: apply(backup, advance('Deleting', message, undefined, reason)),
      requeueAfterMs: DELETION_RECHECK_MS,
    });
    const reading = readers(backup);
    if (reading.length > 0) {
      const names = reading.map((r) => `${r.metadata.namespace ?? ''}/${r.metadata.name ?? ''}`);
      return deleting(
        'WaitingForRestores',
        `deletion waits for running restore(s) ${names.join(', ')} that read this backup`,
      );
    }
    const force = backup.metadata.annotations?.[annotations.forceDelete] === 'true';
    const recordProblem = force ? undefined : await deleteRecord(ctx, backup);
    if (recordProblem !== undefined) {
      return deleting('DeletingRecord', `deleting the record failed: ${recordProblem}`);
    }
    // The movers work for this cluster's backup whatever force says: they never outlive it.
    const copied = (backup.status?.volumes ?? []).some((volume) => volume.dataCopy !== undefined);
    if (copied || ctx.cache.movers.byIndex(moversByBackup, keyOf(backup)).length > 0)
      await removeAllMovers(backup);
    const remaining = force ? 0 : await deleteSnapshots(backup);
    if (remaining > 0) return deleting('DeletingSnapshots', `deleting ${remaining} snapshot(s)`);
    logger.info(force ? 'deleted, snapshots and record kept (force-delete)' : 'deleted with its snapshots', {
      namespace: backup.metadata.namespace,
      name: backup.metadata.name,
    });
    return { done: true };
  };

  const announce = (backup: Backup, from: BackupStatus, to: BackupStatus): void => {
    if (to.phase === from.phase) return;
    const failure = to.phase === 'Failed';
    logger.info(`phase ${from.phase ?? '(new)'} -> ${to.phase ?? ''}`, {
      namespace: backup.metadata.namespace,
      name: backup.metadata.name,
      phase: to.phase,
      ...(failure ? { errorCode: to.errorCode, errorMessage: to.errorMessage } : {}),
    });
    // An import completing is told once per sync, on its location, not once per Backup.
    if (!failure && backup.spec.syncedFrom !== undefined) return;
    void events.record(
      resources.backups,
      backup,
      failure ? 'Warning' : 'Normal',
      failure ? (to.errorCode ?? 'Failed') : (to.phase ?? ''),
      failure ? (to.errorMessage ?? '') : readyMessage(to),
      to.phase ?? '',
    );
  };

  return statusReconciler<Backup, BackupStatus>({
    resource: resources.backups,
    client: ctx.client,
    cache: ctx.cache.backups,
    logger,
    finalizer: { name: finalizers.backup, finalize },
    step,
    errorStatus,
    announce,
    transition: enteredPhase,
    progressPacing: {
      intervalMs: PROGRESS_INTERVAL_MS,
      now: () => ctx.now().getTime(),
      isProgress: (from, to) => isProgressOnly(from, to) && moverRuns(from) === moverRuns(to),
      intervalFor: (to) =>
        transferPacingMs([
          ...(to.volumes ?? []).map((volume) => volume.dataCopy),
          ...(to.verification?.volumes ?? []),
        ]) ?? PROGRESS_INTERVAL_MS,
    },
  });
}
