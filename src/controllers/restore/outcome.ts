// What one reconcile step decided. The reconciler turns it into exactly one status write.

import type { RestoreErrorCode, RestorePhase, RestoreStatus } from '../../api/generated/types.js';

export type StatusUpdate = Partial<Omit<RestoreStatus, 'phase' | 'conditions' | 'phaseHistory'>>;

export type StepOutcome =
  /** The phase's work is done: move on. */
  | { type: 'advance'; to: RestorePhase; message: string; status?: StatusUpdate }
  /** Not done yet; a watch event (or requeueAfterMs) brings the restore back. */
  | { type: 'wait'; reason: string; message: string; status?: StatusUpdate; requeueAfterMs?: number }
  /** The attempt cannot succeed. */
  | { type: 'fail'; errorCode: RestoreErrorCode; message: string; status?: StatusUpdate };

export const advance = (to: RestorePhase, message: string, status?: StatusUpdate): StepOutcome => ({
  type: 'advance',
  to,
  message,
  ...(status === undefined ? {} : { status }),
});

export const wait = (
  reason: string,
  message: string,
  status?: StatusUpdate,
  requeueAfterMs?: number,
): StepOutcome => ({
  type: 'wait',
  reason,
  message,
  ...(status === undefined ? {} : { status }),
  ...(requeueAfterMs === undefined ? {} : { requeueAfterMs }),
});

export const fail = (errorCode: RestoreErrorCode, message: string, status?: StatusUpdate): StepOutcome => ({
  type: 'fail',
  errorCode,
  message,
  ...(status === undefined ? {} : { status }),
});
