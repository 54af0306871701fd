// The BackupLocation reconciler: checks each location's store when its spec changes and then every
// validationFrequencySeconds, and records the result as status (Available or Unavailable with the
// reason). The check is due by status alone, so a restart or a resync checks nothing early.

import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'winston';
import { API_VERSION } from '../../api/constants.js';
import type { BackupLocation, BackupLocationStatus } from '../../api/generated/types.js';
import type { EventRecorder } from '../../observability/events.js';
import type { ReconcileResult } from '../../runtime/controller.js';
import { resources } from '../../runtime/resources.js';
import { requeueFor, setCondition } from '../shared/conditions.js';
import { OwnWrites } from '../shared/own-writes.js';
import { checkLocation, type BackupLocationContext, type LocationCheck } from './check.js';

const DEFAULT_FREQUENCY_SECONDS = 60;

const frequencyMs = (location: BackupLocation): number =>
  (location.spec.validationFrequencySeconds ?? DEFAULT_FREQUENCY_SECONDS) * 1000;

/** Milliseconds until the location's next check; 0 or less when it is due. */
export function untilDue(location: BackupLocation, now: Date): number {
  const status = location.status;
  if (status?.observedGeneration !== location.metadata.generation) return 0;
  const last = Date.parse(status?.lastValidationTime ?? '');
  return Number.isNaN(last) ? 0 : last + frequencyMs(location) - now.getTime();
}

/** The status a check's result makes. */
export function statusFor(location: BackupLocation, check: LocationCheck, now: string): BackupLocationStatus {
  const available = check.reason === 'Available';
  return {
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

export class BackupLocationReconciler {
  private readonly ownWrites = new OwnWrites();

  constructor(
    private readonly ctx: BackupLocationContext,
    private readonly events: EventRecorder,
    private readonly logger: Logger,
  ) {}

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const location = this.ctx.cache.locations.get(key);
    if (this.ownWrites.behind(key, location) || location === undefined) return undefined;
    if (location.metadata.deletionTimestamp !== undefined) return undefined;
    const wait = untilDue(location, this.ctx.now());
    if (wait > 0) return requeueFor(wait);
    const check = await checkLocation(this.ctx, location);
    await this.write(location, statusFor(location, check, this.ctx.now().toISOString()));
    return requeueFor(frequencyMs(location));
  }

  private async write(location: BackupLocation, status: BackupLocationStatus): Promise<void> {
    const previous = location.status ?? {};
    if (isDeepStrictEqual(status, previous)) return;
    this.ownWrites.wrote(
      location,
      await this.ctx.client.replace(resources.backupLocations, { ...location, status }, 'status'),
    );
    if (status.reason === previous.reason) return;
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
