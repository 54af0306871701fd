// Pure status arithmetic for a Restore: a new attempt, and the effect of one step's outcome.
// Status is the single record of progress: everything the reconciler needs to resume is here.

import type { Restore, RestorePhase, RestoreStatus } from '../../api/generated/types.js';
import type { Condition } from '../../api/kubernetes.js';
import { customResourceName } from '../../naming.js';
import { failedCondition, setCondition } from '../shared/conditions.js';
import type { StepOutcome } from './outcome.js';
import { isTerminal } from './transitions.js';

function restoreConditions(
  previous: readonly Condition[] | undefined,
  phase: RestorePhase,
  reason: string,
  message: string,
  now: string,
  generation: number | undefined,
): Condition[] {
  const observed = generation === undefined ? {} : { observedGeneration: generation };
  let conditions = setCondition(
    previous,
    {
      type: 'Ready',
      status: phase === 'Successful' ? 'True' : 'False',
      reason: phase === 'Successful' ? 'RestoreSucceeded' : reason,
      message,
      ...observed,
    },
    now,
  );
  conditions = setCondition(
    conditions,
    { type: 'Progressing', status: isTerminal(phase) ? 'False' : 'True', reason, message, ...observed },
    now,
  );
  return setCondition(
    conditions,
    { ...failedCondition(phase === 'Failed', reason, message), ...observed },
    now,
  );
}

/** The status that starts attempt number `attempt` of a restore. */
export function newAttempt(restore: Restore, attempt: number, now: string): RestoreStatus {
  const name = customResourceName(restore.metadata.name ?? '', restore.metadata.uid ?? '', attempt);
  const message = `attempt ${attempt} started; objects it creates are named after ${name}`;
  return {
    phase: 'Initializing',
    attempt,
    customResourceName: name,
    startedAt: now,
    ...(restore.metadata.generation === undefined ? {} : { observedGeneration: restore.metadata.generation }),
    ...(restore.spec.recreateToken === undefined
      ? {}
      : { observedRecreateToken: restore.spec.recreateToken }),
    phaseHistory: [{ phase: 'Initializing', enteredAt: now }],
    conditions: restoreConditions(
      undefined,
      'Initializing',
      'Initializing',
      message,
      now,
      restore.metadata.generation,
    ),
  };
}

/** The status after a step's outcome. Equal to `current` (deeply) when nothing changed. */
export function applyOutcome(
  current: RestoreStatus,
  outcome: StepOutcome,
  now: string,
  generation: number | undefined,
): RestoreStatus {
  const from = current.phase ?? 'Initializing';
  const phase: RestorePhase =
    outcome.type === 'advance' ? outcome.to : outcome.type === 'fail' ? 'Failed' : from;
  const next: RestoreStatus = { ...current, ...outcome.status, phase };
  if (generation !== undefined) next.observedGeneration = generation;
  if (phase !== from) next.phaseHistory = [...(current.phaseHistory ?? []), { phase, enteredAt: now }];
  if (outcome.type === 'fail') {
    next.errorCode = outcome.errorCode;
    next.errorMessage = outcome.message;
  }
  if (isTerminal(phase) && !isTerminal(from)) next.completedAt = now;
  const reason =
    outcome.type === 'wait'
      ? outcome.reason
      : outcome.type === 'fail'
        ? outcome.errorCode
        : (outcome.reason ?? phase);
  next.conditions = restoreConditions(current.conditions, phase, reason, outcome.message, now, generation);
  return next;
}

/** When the current phase was entered, from the phase history. */
export function phaseEnteredAt(status: RestoreStatus): string | undefined {
  const history = status.phaseHistory ?? [];
  return history.findLast((entry) => entry.phase === status.phase)?.enteredAt;
}
