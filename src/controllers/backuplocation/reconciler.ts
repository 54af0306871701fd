// The BackupLocation reconciler, two steps: the check of the store (when the spec changes, then
// every validationFrequencySeconds) records Available or Unavailable with the reason; the backup
// sync (when the location becomes Available, then every syncPeriodSeconds) imports other
// clusters' records. Both are due by status alone, so a restart or a resync does nothing early.

import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'winston';
import { API_VERSION } from '../../api/constants.js';
import type { BackupLocation, BackupLocationStatus } from '../../api/generated/types.js';
import type { EventRecorder } from '../../observability/events.js';
import type { ReconcileResult } from '../../runtime/controller.js';
import { resources } from '../../runtime/resources.js';
import { requeueFor, setCondition } from '../shared/conditions.js';
import { OwnWrites } from '../shared/own-writes.js';
import { checkLocation, type LocationCheck } from './check.js';
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
    conditions: setCondition(
      location.status?.conditions,
      { type: 'Ready', status: available ? 'True' : 'False', reason: check.reason, message: check.message },
      now,
    ),
  };
}

/** The status a sync's result makes. A sync that could not list the store keeps the last one's figures. */
export function statusAfterSync(
  location: BackupLocation,
  sync: SyncResult,
  now: string,
): BackupLocationStatus {
  const status = location.status ?? {};
  if ('problem' in sync) {
    return {
      ...status,
      conditions: setCondition(
        status.conditions,
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
      status.conditions,
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

export class BackupLocationReconciler {
  private readonly ownWrites = new OwnWrites();

  constructor(
    private readonly ctx: BackupSyncContext,
    private readonly events: EventRecorder,
    private readonly logger: Logger,
  ) {}

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const location = this.ctx.cache.locations.get(key);
    if (this.ownWrites.behind(key, location) || location === undefined) return undefined;
    if (location.metadata.deletionTimestamp !== undefined) return undefined;
    if (untilDue(location, this.ctx.now()) <= 0) {
      const check = await checkLocation(this.ctx, location);
      const checked = await this.write(location, statusFor(location, check, this.ctx.now().toISOString()));
      return this.next(checked);
    }
    if (untilSync(location, this.ctx.now()) <= 0) {
      const sync = await syncLocation(this.ctx, location);
      const now = this.ctx.now().toISOString();
      const synced = await this.write(location, statusAfterSync(location, sync, now));
      if ('imported' in sync && sync.imported + sync.removed > 0) {
        void this.events.record(
          { ...location, apiVersion: API_VERSION, kind: 'BackupLocation' },
          'Normal',
          'BackupsSynced',
          sync.message,
          `synced@${now}`,
        );
      }
      return this.next(synced);
    }
    return this.next(location);
  }

  /** Wakes the location for whichever step is due first. */
  private next(location: BackupLocation): ReconcileResult | undefined {
    const now = this.ctx.now();
    return requeueFor(Math.min(untilDue(location, now), untilSync(location, now)));
  }

  /** Writes the status if it changed; returns the location as it now is. */
  private async write(location: BackupLocation, status: BackupLocationStatus): Promise<BackupLocation> {
    const previous = location.status ?? {};
    if (isDeepStrictEqual(status, previous)) return location;
    const written = await this.ctx.client.replace(
      resources.backupLocations,
      { ...location, status },
      'status',
    );
    this.ownWrites.wrote(location, written);
    this.announceRefusals(location, previous, status);
    if (status.reason !== previous.reason) this.announceReason(location, status);
    return written;
  }

  private announceRefusals(
    location: BackupLocation,
    previous: BackupLocationStatus,
    status: BackupLocationStatus,
  ): void {
    const keys = (s: BackupLocationStatus): string[] => (s.corruptRecords ?? []).map((record) => record.key);
    const refused = keys(status);
    if (refused.length === 0 || isDeepStrictEqual(refused, keys(previous))) return;
    const first = status.corruptRecords?.[0];
    this.logger.warn('records refused by backup sync', { name: location.metadata.name, keys: refused });
    void this.events.record(
      { ...location, apiVersion: API_VERSION, kind: 'BackupLocation' },
      'Warning',
      'RecordsRefused',
      `${refused.length} record(s) not imported, e.g. ${first?.key ?? ''}: ${first?.message ?? ''}`,
      `RecordsRefused@${refused.join(',')}`,
    );
  }

  private announceReason(location: BackupLocation, status: BackupLocationStatus): void {
    const name = location.metadata.name ?? '';
    const available = status.phase === 'Available';
    const since = status.conditions?.find((condition) => condition.type === 'Ready')?.lastTransitionTime;
    this.logger[available ? 'info' : 'warn'](`location ${status.phase ?? ''}: ${status.reason ?? ''}`, {
      name,
      message: status.message,
    });
    void this.events.record(
      { ...location, apiVersion: API_VERSION, kind: 'BackupLocation' },
      available ? 'Normal' : 'Warning',
      status.reason ?? '',
      status.message ?? '',
      `${status.reason ?? ''}@${since ?? ''}`,
    );
  }
}
