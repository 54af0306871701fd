import type { Condition } from '../../api/kubernetes.js';
import { describeError } from '../../runtime/errors.js';

/**
 * Sets a condition the way meta.SetStatusCondition does: lastTransitionTime moves only when the
 * status changes, so a condition tells how long it has held.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  update: Omit<Condition, 'lastTransitionTime'>,
  now: string,
): Condition[] {
  const list = [...(conditions ?? [])];
  const index = list.findIndex((condition) => condition.type === update.type);
  const previous = index >= 0 ? list[index] : undefined;
  const lastTransitionTime =
    previous !== undefined && previous.status === update.status ? previous.lastTransitionTime : now;
  const next: Condition = { ...update, lastTransitionTime };
  if (index >= 0) list[index] = next;
  else list.push(next);
  return list;
}

/** The Failed condition of a kind that can fail: True with the failure's reason, else NoFailure. */
export const failedCondition = (
  failed: boolean,
  reason: string,
  message: string,
): Omit<Condition, 'lastTransitionTime'> => ({
  type: 'Failed',
  status: failed ? 'True' : 'False',
  reason: failed ? reason : 'NoFailure',
  message: failed ? message : '',
});

/** setTimeout's ceiling is about 24.8 days; deadlines further out are looked at again within an hour. */
const MAX_REQUEUE_MS = 3_600_000;

/** A requeue delay for a deadline `ms` away, or undefined when there is none. */
export function requeueFor(ms: number): { requeueAfterMs: number } | undefined {
  if (!Number.isFinite(ms)) return undefined;
  return { requeueAfterMs: Math.min(Math.max(0, Math.ceil(ms)), MAX_REQUEUE_MS) };
}

/**
 * How often progress within one phase (a count, a message) is written per object. A restore's
 * counts change with every claim and pod; written each time, they were as many status writes as its
 * phases (`make bench`). A phase change, and a retry starting or ending, is written at once, so a
 * retry of a few seconds is still shown.
 */
export const PROGRESS_INTERVAL_MS = 15_000;

/** The reason a condition carries while an error a step threw is retried (Flux's). */
export const RETRYING = 'ProgressingWithRetry';
/** A Backup's reason while a VolumeSnapshot reports an error the snapshotter retries. */
export const SNAPSHOTS_RETRYING = 'SnapshotsRetrying';
/** A Restore's reason while a volume's provisioning or snapshot import is retried by the storage. */
export const VOLUMES_RETRYING = 'VolumesRetrying';
/** A Backup's reason while a data mover that failed on the store or was killed is started again. */
export const DATA_COPY_RETRYING = 'VolumeDataCopyRetrying';

const RETRY_REASONS: ReadonlySet<string | undefined> = new Set([
  RETRYING,
  SNAPSHOTS_RETRYING,
  VOLUMES_RETRYING,
  DATA_COPY_RETRYING,
]);

/**
 * Whether a change of status is only progress (what `PROGRESS_INTERVAL_MS` paces): the phase stays,
 * and a retry neither starts nor ends (the Ready condition's reason in or out of the retry reasons).
 */
export function isProgressOnly(
  from: { phase?: string; conditions?: readonly Condition[] },
  to: { phase?: string; conditions?: readonly Condition[] },
): boolean {
  const retried = (status: { conditions?: readonly Condition[] }): boolean =>
    RETRY_REASONS.has(status.conditions?.find((condition) => condition.type === 'Ready')?.reason);
  return to.phase === from.phase && retried(to) === retried(from);
}

/**
 * The status with its Ready condition saying that `what` failed: retried (Flux's
 * ProgressingWithRetry), or, refused for good, not retried until the object changes (Stalled). For
 * kinds with no phase to fail, an error a step throws is shown here.
 */
export function retrying<S extends { conditions?: Condition[] }>(
  status: S,
  what: string,
  err: unknown,
  now: string,
  terminal = false,
): S {
  return {
    ...status,
    conditions: setCondition(
      status.conditions,
      {
        type: 'Ready',
        status: 'False',
        reason: terminal ? 'Stalled' : RETRYING,
        message: terminal
          ? `${what} was refused, not retried until the object changes: ${describeError(err)}`
          : `${what} failed, retrying: ${describeError(err)}`,
      },
      now,
    ),
  };
}
