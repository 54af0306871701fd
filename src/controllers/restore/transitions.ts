// The restore's phase machine (PDS Restore.Status.Phase). Phases only ever move forward along
// the happy path, or to Failed; a new attempt starts over at Initializing.

import { RESTORE_PHASES } from '../../api/crds.js';
import type { RestorePhase } from '../../api/generated/types.js';

export const HAPPY_PATH: readonly RestorePhase[] = RESTORE_PHASES.filter((phase) => phase !== 'Failed');

export const TERMINAL_PHASES: readonly RestorePhase[] = ['Successful', 'Failed'];

/** Phases in which a restore holds one of the operator's concurrency slots. */
export const ACTIVE_PHASES: readonly RestorePhase[] = [
  'RestoringCloudSnap',
  'RestoringDataServiceDeploymentCR',
  'RestoringDataServiceDeployment',
  'DataServiceDeploymentEnteringNormalMode',
];

export const isTerminal = (phase: RestorePhase | undefined): boolean =>
  phase !== undefined && TERMINAL_PHASES.includes(phase);

export const isActive = (phase: RestorePhase | undefined): boolean =>
  phase !== undefined && ACTIVE_PHASES.includes(phase);

/** The phase after `phase` on the happy path; undefined for terminal phases. */
export function nextPhase(phase: RestorePhase): RestorePhase | undefined {
  if (isTerminal(phase)) return undefined;
  return HAPPY_PATH[HAPPY_PATH.indexOf(phase) + 1];
}

/** Whether a restore may go from `from` to `to` within one attempt. */
export function canTransition(from: RestorePhase, to: RestorePhase): boolean {
  if (isTerminal(from)) return false;
  return to === 'Failed' || nextPhase(from) === to;
}
