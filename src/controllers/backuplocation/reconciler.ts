// The BackupLocation reconciler, two steps: the check of the store (when the spec changes, then
// every validationFrequencySeconds) records Available or Unavailable with the reason; the backup
// sync (when the location becomes Available, then every syncPeriodSeconds) imports other
// clusters' records. Both are due by status alone, so a restart or a resync does nothing early.

import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'winston';
import type { BackupLocation, BackupLocationStatus } from '../../api/generated/types.js';
import type { EventRecorder } from '../../observability/events.js';
import type { Reconcile } from '../../runtime/controller.js';
import { resources } from '../../runtime/resources.js';
import { statusReconciler, type Next } from '../../runtime/status-reconciler.js';
import { requeueFor, RETRYING, retrying, setCondition } from '../shared/conditions.js';
import type { LocationCheck } from '../../storage/location-store.js';
import { checkLocation } from './check.js';
import { syncLocation, type BackupSyncContext, type SyncResult } from './sync.js';

const DEFAULT_FREQUENCY_SECONDS = 60;
const DEFAULT_SYNC_PERIOD_SECONDS = 60;
/** How many refused records the status lists (the Synced condition's message counts them all). */
const MAX_REPORTED_RECORDS = 100;

const frequencyMs = (location: BackupLocation): number =>
  (location.spec.validationFrequencySeconds ?? DEFAULT_FREQUENCY_SECONDS) * 1000;

const readySince = (status: BackupLocationStatus | undefined): number =>
  Date.parse(status?.conditions?.find((condition) => condition.type === 'Ready')?.lastTransitionTime ?? '');

/** Milliseconds until the location's next check; 0 or less when it is due. */
export function untilDue(location: BackupLocation, now: Date): number {
  const status = location.status;
  if (status?.observedGeneration !== location.metadata.generation) return 0;
  const last = Date.parse(status?.lastValidationTime ?? '');
  return Number.isNaN(last) ? 0 : last + frequencyMs(location) - now.getTime();
}

/**
 * Milliseconds until the location's next sync; 0 or less when it is due: never synced, became
 * Available since the last sync, or a period has passed. Infinity when unavailable or sync is off.
 */
export function untilSync(location: BackupLocation, now: Date): number {
  const period = (location.spec.syncPeriodSeconds ?? DEFAULT_SYNC_PERIOD_SECONDS) * 1000;
  if (location.status?.phase !== 'Available' || period === 0) return Infinity;
  const last = Date.parse(location.status.lastSyncTime ?? '');
  if (Number.isNaN(last) || readySince(location.status) > last) return 0;
  return last + period - now.getTime();
}

/** The Ready condition as a check's result sets it. */
const checkedReady = (
  conditions: BackupLocationStatus['conditions'],
  check: LocationCheck,
  now: string,
): NonNullable<BackupLocationStatus['conditions']> =>
  setCondition(
    conditions,
    {
      type: 'Ready',
      status: check.reason === 'Available' ? 'True' : 'False',
      reason: check.reason,
      message: check.message,
    },
    now,
  );

/** The status a check's result makes; what the last sync found is kept. */
export function statusFor(location: BackupLocation, check: LocationCheck, now: string): BackupLocationStatus {
  const available = check.reason === 'Available';
  return {
    ...location.status,
    phase: available ? 'Available' : 'Unavailable',
    reason: check.reason,
    message: check.message,
    lastValidationTime: now,
    ...(location.metadata.generation === undefined
      ? {}
      : { observedGeneration: location.metadata.generation }),
    conditions: checkedReady(location.status?.conditions, check, now),
  };
}

/** The status a sync's result makes. A sync that could not list the store keeps the last one's figures. */
export function statusAfterSync(
  location: BackupLocation,
  sync: SyncResult,
  now: string,
): BackupLocationStatus {
  const status = location.status ?? {};
  // A sync that ran after a retried error: Ready goes back to what the last check found.
  const ready = status.conditions?.find((condition) => condition.type === 'Ready');
  const conditions =
    ready?.reason === RETRYING && status.reason !== undefined
      ? checkedReady(status.conditions, { reason: status.reason, message: status.message ?? '' }, now)
      : status.conditions;
  if ('problem' in sync) {
    return {
      ...status,
      conditions: setCondition(
        conditions,
        { type: 'Synced', status: 'False', reason: 'SyncFailed', message: sync.problem },
        now,
      ),
    };
  }
  const { corruptRecords: _previous, ...rest } = status;
  const clean = sync.refused.length === 0;
  return {
    ...rest,
    lastSyncTime: now,
    syncedBackups: sync.synced,
    ...(clean ? {} : { corruptRecords: sync.refused.slice(0, MAX_REPORTED_RECORDS) }),
    conditions: setCondition(
      conditions,
      {
        type: 'Synced',
        status: clean ? 'True' : 'False',
        reason: clean ? 'Synced' : 'RecordsRefused',
        message: sync.message,
      },
      now,
    ),
  };
}

export function backupLocationReconciler(
  ctx: BackupSyncContext,
  events: EventRecorder,
  logger: Logger,
): Reconcile {
  /** Wakes the location for whichever step is due first. */
  const next = (location: BackupLocation, status: BackupLocationStatus): Next<BackupLocationStatus> => {
    const now = ctx.now();
    const after = { ...location, status };
    return { status, ...requeueFor(Math.min(untilDue(after, now), untilSync(after, now))) };
  };

  const step = async (location: BackupLocation): Promise<Next<BackupLocationStatus>> => {
    if (untilDue(location, ctx.now()) <= 0) {
      const check = await checkLocation(ctx, location);
      return next(location, statusFor(location, check, ctx.now().toISOString()));
    }
    if (untilSync(location, ctx.now()) <= 0) {
      const sync = await syncLocation(ctx, location);
      const now = ctx.now().toISOString();
      if ('imported' in sync && sync.imported + sync.removed > 0) {
        void events.record(
          resources.backupLocations,
          location,
          'Normal',
          'BackupsSynced',
          sync.message,
          `synced@${now}`,
        );
      }
      return next(location, statusAfterSync(location, sync, now));
    }
    return next(location, location.status ?? {});
  };

  const announceRefusals = (
    location: BackupLocation,
    previous: BackupLocationStatus,
    status: BackupLocationStatus,
  ): void => {
    const keys = (s: BackupLocationStatus): string[] => (s.corruptRecords ?? []).map((record) => record.key);
    const refused = keys(status);
    if (refused.length === 0 || isDeepStrictEqual(refused, keys(previous))) return;
    const first = status.corruptRecords?.[0];
    logger.warn('records refused by backup sync', { name: location.metadata.name, keys: refused });
    void events.record(
      resources.backupLocations,
      location,
      'Warning',
      'RecordsRefused',
      `${refused.length} record(s) not imported, e.g. ${first?.key ?? ''}: ${first?.message ?? ''}`,
      `RecordsRefused@${refused.join(',')}`,
    );
  };

  const announceReason = (location: BackupLocation, status: BackupLocationStatus): void => {
    const available = status.phase === 'Available';
    const since = status.conditions?.find((condition) => condition.type === 'Ready')?.lastTransitionTime;
    logger[available ? 'info' : 'warn'](`location ${status.phase ?? ''}: ${status.reason ?? ''}`, {
      name: location.metadata.name,
      message: status.message,
    });
    void events.record(
      resources.backupLocations,
      location,
      available ? 'Normal' : 'Warning',
      status.reason ?? '',
      status.message ?? '',
      `${status.reason ?? ''}@${since ?? ''}`,
    );
  };

  return statusReconciler<BackupLocation, BackupLocationStatus>({
    resource: resources.backupLocations,
    client: ctx.client,
    cache: ctx.cache.locations,
    logger,
    step,
    errorStatus: (location, err, terminal) =>
      retrying(
        location.status ?? {},
        'checking or syncing the location',
        err,
        ctx.now().toISOString(),
        terminal,
      ),
    announce: (location, previous, status) => {
      announceRefusals(location, previous, status);
      if (status.reason !== previous.reason) announceReason(location, status);
    },
  });
}
