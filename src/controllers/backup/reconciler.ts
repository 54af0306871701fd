// The Backup reconciler: capture -> InProgress (snapshots, then the record in the backup's
// location) -> Completed or Failed; a synced Backup goes straight to its record's Completed status
// (or Failed); and a finalizer that deletes the snapshots and the record (or,
// with snapback.dev/force-delete, leaves them).

import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'winston';
import { annotations, API_VERSION, finalizers, labels } from '../../api/constants.js';
import type { Backup, BackupStatus } from '../../api/generated/types.js';
import type { EventRecorder } from '../../observability/events.js';
import type { ReconcileResult } from '../../runtime/controller.js';
import { resources } from '../../runtime/resources.js';
import { isTerminal } from '../restore/transitions.js';
import { requeueFor } from '../shared/conditions.js';
import { capture } from './capture.js';
import { failed, RESTORES_BY_BACKUP, withConditions, type BackupContext } from './context.js';
import { deleteRecord, importRecord, RECORD_PENDING, storeRecord } from './record.js';
import { takeSnapshots } from './snapshot.js';
import { setFinalizer } from '../shared/objects.js';
import { OwnWrites } from '../shared/own-writes.js';

/** How often a deletion waiting on snapshots or restores looks again if no event comes first. */
const DELETION_RECHECK_MS = 5_000;
/** How often a record that could not be stored is tried again (no event says the store is back). */
const RECORD_RETRY_MS = 5_000;

export class BackupReconciler {
  private readonly ownWrites = new OwnWrites();

  constructor(
    private readonly ctx: BackupContext,
    private readonly events: EventRecorder,
    private readonly logger: Logger,
  ) {}

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const backup = this.ctx.cache.backups.get(key);
    if (this.ownWrites.behind(key, backup) || backup === undefined) return undefined;
    if (backup.metadata.deletionTimestamp !== undefined) return this.delete(backup);
    if (!(backup.metadata.finalizers ?? []).includes(finalizers.backup)) {
      this.ownWrites.wrote(
        backup,
        await setFinalizer(this.ctx.client, resources.backups, backup, finalizers.backup, true),
      );
      return undefined;
    }
    const status = backup.status ?? {};
    switch (status.phase) {
      case undefined: {
        const from = backup.spec.syncedFrom;
        if (from === undefined) {
          await this.write(backup, await capture(this.ctx, backup));
          return undefined;
        }
        const imported = await importRecord(this.ctx, backup, from);
        await this.write(backup, imported);
        return imported.phase === undefined ? requeueFor(RECORD_RETRY_MS) : undefined;
      }
      case 'InProgress': {
        let next = this.timedOut(status) ?? (await takeSnapshots(this.ctx, backup));
        if (next.phase === 'Completed') next = await storeRecord(this.ctx, backup, next);
        await this.write(backup, next);
        if (next.phase !== 'InProgress') return undefined;
        const storing = next.conditions?.some((c) => c.type === 'Ready' && c.reason === RECORD_PENDING);
        return requeueFor(
          Math.min(this.untilDeadline(status), storing === true ? RECORD_RETRY_MS : Infinity),
        );
      }
      default:
        return undefined;
    }
  }

  private untilDeadline(status: BackupStatus): number {
    const started = Date.parse(status.startTime ?? '');
    if (Number.isNaN(started)) return Infinity;
    return started + this.ctx.config.timeoutSeconds * 1000 - this.ctx.now().getTime();
  }

  private timedOut(status: BackupStatus): BackupStatus | undefined {
    if (this.untilDeadline(status) > 0) return undefined;
    const last = status.conditions?.find((condition) => condition.type === 'Ready')?.message ?? '';
    return failed(
      status,
      'PhaseTimeout',
      `the backup did not complete within ${this.ctx.config.timeoutSeconds}s (${last}); check the VolumeSnapshots, the CSI driver and the backup location, then create a new Backup.`,
      this.ctx.now().toISOString(),
    );
  }

  /**
   * Deletion waits for restores that read this backup, then deletes its VolumeSnapshots (unless
   * force-deleted), then lets the Backup go.
   */
  private async delete(backup: Backup): Promise<ReconcileResult | undefined> {
    const held = backup.metadata.finalizers ?? [];
    if (!held.includes(finalizers.backup)) return undefined;
    const now = this.ctx.now().toISOString();
    const key = `${backup.metadata.namespace ?? ''}/${backup.metadata.name ?? ''}`;
    const readers = this.ctx.cache.restores
      .byIndex(RESTORES_BY_BACKUP, key)
      .filter(
        (restore) => !isTerminal(restore.status?.phase) && restore.metadata.deletionTimestamp === undefined,
      );
    if (readers.length > 0) {
      const names = readers.map(
        (restore) => `${restore.metadata.namespace ?? ''}/${restore.metadata.name ?? ''}`,
      );
      await this.write(
        backup,
        withConditions(
          { ...backup.status, phase: 'Deleting' },
          'WaitingForRestores',
          `deletion waits for running restore(s) ${names.join(', ')} that read this backup`,
          now,
        ),
      );
      return { requeueAfterMs: DELETION_RECHECK_MS };
    }
    const force = backup.metadata.annotations?.[annotations.forceDelete] === 'true';
    const recordProblem = force ? undefined : await deleteRecord(this.ctx, backup);
    if (recordProblem !== undefined) {
      await this.write(
        backup,
        withConditions(
          { ...backup.status, phase: 'Deleting' },
          'DeletingRecord',
          `deleting the record failed: ${recordProblem}`,
          now,
        ),
      );
      return { requeueAfterMs: DELETION_RECHECK_MS };
    }
    const remaining = force ? 0 : await this.deleteSnapshots(backup);
    if (remaining > 0) {
      await this.write(
        backup,
        withConditions(
          { ...backup.status, phase: 'Deleting' },
          'DeletingSnapshots',
          `deleting ${remaining} snapshot(s)`,
          now,
        ),
      );
      return { requeueAfterMs: DELETION_RECHECK_MS };
    }
    await setFinalizer(this.ctx.client, resources.backups, backup, finalizers.backup, false);
    this.logger.info(
      force ? 'deleted, snapshots and record kept (force-delete)' : 'deleted with its snapshots',
      {
        namespace: backup.metadata.namespace,
        name: backup.metadata.name,
      },
    );
    return undefined;
  }

  /** Deletes the backup's own VolumeSnapshots; returns how many still exist. */
  private async deleteSnapshots(backup: Backup): Promise<number> {
    const namespace = backup.metadata.namespace ?? '';
    const { items } = await this.ctx.client.list(resources.volumeSnapshots, {
      namespace,
      labelSelector: `${labels.backup}=${backup.metadata.name ?? ''},!${labels.restore}`,
    });
    for (const snapshot of items) {
      if (snapshot.metadata.deletionTimestamp !== undefined) continue;
      await this.ctx.client.delete(resources.volumeSnapshots, snapshot.metadata.name ?? '', { namespace });
    }
    return items.length;
  }

  private async write(backup: Backup, status: BackupStatus): Promise<void> {
    const current = backup.status ?? {};
    if (isDeepStrictEqual(status, current)) return;
    this.ownWrites.wrote(
      backup,
      await this.ctx.client.replace(resources.backups, { ...backup, status }, 'status'),
    );
    if (status.phase !== current.phase) {
      const failure = status.phase === 'Failed';
      this.logger.info(`phase ${current.phase ?? '(new)'} -> ${status.phase ?? ''}`, {
        namespace: backup.metadata.namespace,
        name: backup.metadata.name,
        phase: status.phase,
        ...(failure ? { errorCode: status.errorCode, errorMessage: status.errorMessage } : {}),
      });
      // An import completing is told once per sync, on its location, not once per Backup.
      if (!failure && backup.spec.syncedFrom !== undefined) return;
      const message = failure
        ? (status.errorMessage ?? '')
        : (status.conditions?.find((condition) => condition.type === 'Ready')?.message ?? '');
      void this.events.record(
        { ...backup, apiVersion: API_VERSION, kind: 'Backup' },
        failure ? 'Warning' : 'Normal',
        failure ? (status.errorCode ?? 'Failed') : (status.phase ?? ''),
        message,
        status.phase ?? '',
      );
    }
  }
}
