// The Restore reconciler: one named step per phase (see the phase files beside this one), run in
// the shared status-reconciler shell. Each reconcile takes the one step the phase calls for and
// writes status once. Status is the only record of progress, so a restarted operator resumes
// exactly where the last one stopped.

import type { Logger } from 'winston';
import { finalizers, labels } from '../../api/constants.js';
import type { Restore, RestoreErrorCode, RestorePhase, RestoreStatus } from '../../api/generated/types.js';
import type { EventRecorder } from '../../observability/events.js';
import type { RestoreObserver } from '../../observability/operator-metrics.js';
import type { Reconcile } from '../../runtime/controller.js';
import { resources } from '../../runtime/resources.js';
import { enteredPhase, statusReconciler, type Next } from '../../runtime/status-reconciler.js';
import { PROGRESS_INTERVAL_MS, requeueFor, isProgressOnly } from '../shared/conditions.js';
import { moverRunsOf, transferPacingMs } from '../shared/mover-run.js';
import { outcomeOfError } from '../shared/outcome.js';
import { cleanUpAttempt, deploymentHandedOver } from './cleanup.js';
import { planRestore, type RestoreContext, type RestorePlan } from './context.js';
import { enteringNormalMode } from './entering-normal-mode.js';
import { initializing } from './initializing.js';
import { leftovers } from './name-conflicts.js';
import { fail, wait, type StepOutcome } from './outcome.js';
import { pending } from './pending.js';
import { restoringCloudSnap } from './restoring-cloudsnap.js';
import { restoringDeploymentCR } from './restoring-deployment-cr.js';
import { restoringDeployment } from './restoring-deployment.js';
import { applyOutcome, newAttempt, phaseEnteredAt } from './status.js';
import { isTerminal } from './transitions.js';

type ActivePhase = Exclude<RestorePhase, 'Successful' | 'Failed'>;
type PlannedPhase = Exclude<ActivePhase, 'Initializing'>;
type PlannedStep = (ctx: RestoreContext, restore: Restore, plan: RestorePlan) => Promise<StepOutcome>;

/** After Initializing every step works from the plan, computed once per reconcile. */
const STEPS: Record<PlannedPhase, PlannedStep> = {
  Pending: pending,
  RestoringCloudSnap: restoringCloudSnap,
  RestoringDataServiceDeploymentCR: restoringDeploymentCR,
  RestoringDataServiceDeployment: restoringDeployment,
  DataServiceDeploymentEnteringNormalMode: enteringNormalMode,
};

/** The code a phase fails with when the API server refuses its work for good (403, 422, ...). */
const REFUSED: Record<ActivePhase, RestoreErrorCode> = {
  Initializing: 'RestoreInternalError',
  Pending: 'RestoreInternalError',
  RestoringCloudSnap: 'CloudSnapRestoreFailed',
  RestoringDataServiceDeploymentCR: 'DataServiceDeploymentRestoreFailed',
  RestoringDataServiceDeployment: 'DataServiceDeploymentRestoreFailed',
  DataServiceDeploymentEnteringNormalMode: 'DataServiceDeploymentRestoreFailed',
};

/** How often a restore waiting on deletions looks again if no watch event arrives first. */
const CLEANUP_RECHECK_MS = 5_000;

const RETRY_HINT = 'Fix the cause, then change spec.recreateToken to try again.';

const moverRuns = (status: RestoreStatus): string =>
  moverRunsOf((status.volumes ?? []).map((volume) => volume.dataRestore));

const progressOf = (status: RestoreStatus): string =>
  status.conditions?.find((condition) => condition.type === 'Progressing')?.message ?? '';

export function restoreReconciler(
  ctx: RestoreContext,
  events: EventRecorder,
  logger: Logger,
  observer: RestoreObserver,
): Reconcile {
  const now = (): string => ctx.now().toISOString();

  /**
   * The cleanup scope of the bucket path, for an attempt that restored a volume from the bucket
   * (status says so once its mover ends) or has a mover pod (the cache says so before): others
   * cost no requests for it.
   */
  const moverScope = (restore: Restore): { movers?: { namespace: string } } => {
    const attempt = restore.status?.customResourceName;
    const used =
      (restore.status?.volumes ?? []).some((volume) => volume.restoredFrom === 'BackupLocation') ||
      ctx.cache.movers.list().some((pod) => pod.metadata.labels?.[labels.restoreAttempt] === attempt);
    return used ? { movers: { namespace: ctx.namespace } } : {};
  };

  const untilDeadline = (status: RestoreStatus, phase: ActivePhase): number => {
    // A restore in the queue for a slot waits its turn: running restores have deadlines of their own.
    if (phase === 'Pending' && status.queuedAt !== undefined) return Infinity;
    const enteredAt = Date.parse(phaseEnteredAt(status) ?? status.startedAt ?? '');
    if (Number.isNaN(enteredAt)) return Infinity;
    return enteredAt + ctx.config.phaseTimeoutSeconds[phase] * 1000 - ctx.now().getTime();
  };

  const timedOut = (status: RestoreStatus, phase: ActivePhase, last: string): StepOutcome =>
    fail(
      'PhaseTimeout',
      `phase ${phase} did not finish within ${ctx.config.phaseTimeoutSeconds[phase]}s${last === '' ? '' : ` (last: ${last})`}. ${RETRY_HINT}`,
    );

  const outcomeOf = async (restore: Restore, phase: ActivePhase): Promise<StepOutcome> => {
    if (phase === 'Initializing') return initializing(ctx, restore);
    const plan = planRestore(ctx, restore);
    if ('problem' in plan) return fail(plan.errorCode, `${plan.problem}; the restore cannot go on.`);
    return STEPS[phase](ctx, restore, plan);
  };

  /**
   * One step of an active phase. The world is looked at first and the deadline judged after: work
   * that finished while the operator was down is taken, not failed for the time it took.
   */
  const active = async (restore: Restore, status: RestoreStatus, phase: ActivePhase) => {
    let outcome = await outcomeOf(restore, phase);
    const left = untilDeadline(status, phase);
    if (outcome.type === 'wait' && left <= 0) outcome = timedOut(status, phase, outcome.message);
    const next = applyOutcome(status, outcome, now(), restore.metadata.generation);
    if (outcome.type !== 'wait') return { status: next };
    return { status: next, ...requeueFor(Math.min(outcome.requeueAfterMs ?? Infinity, left)) };
  };

  /**
   * Successful and Failed restores rest, unless a Failed one is asked to try again. One that failed
   * on a name someone else holds first removes what it had created, so that the conflict changed
   * nothing; the caches tell whether anything is left without a request.
   */
  const terminal = async (restore: Restore, status: RestoreStatus): Promise<Next<RestoreStatus>> => {
    if (status.errorCode === 'DataServiceDeploymentNameAlreadyExist' && leftovers(ctx, restore) > 0) {
      const remaining = await cleanUpAttempt(ctx.client, restore, {
        includeDeployment: true,
        ...moverScope(restore),
      });
      if (remaining > 0) return { requeueAfterMs: CLEANUP_RECHECK_MS };
    }
    const token = restore.spec.recreateToken;
    if (status.phase !== 'Failed' || token === undefined || token === status.observedRecreateToken) {
      // A spec change that starts nothing (a new token on a Successful restore) is still
      // acknowledged, so observedGeneration tells the user it was seen.
      const generation = restore.metadata.generation;
      return generation === undefined ? {} : { status: { ...status, observedGeneration: generation } };
    }
    const remaining = await cleanUpAttempt(ctx.client, restore, {
      includeDeployment: !deploymentHandedOver(restore),
      ...moverScope(restore),
    });
    if (remaining > 0) {
      const message = `removing ${remaining} object(s) the failed attempt created before trying again`;
      return {
        status: applyOutcome(
          status,
          wait('CleaningUpFailedAttempt', message),
          now(),
          restore.metadata.generation,
        ),
        requeueAfterMs: CLEANUP_RECHECK_MS,
      };
    }
    return { status: newAttempt(restore, (status.attempt ?? 1) + 1, now()) };
  };

  const step = async (restore: Restore): Promise<Next<RestoreStatus>> => {
    const status = restore.status ?? {};
    if (status.phase === undefined) return { status: newAttempt(restore, 1, now()) };
    if (isTerminal(status.phase)) return terminal(restore, status);
    return active(restore, status, status.phase as ActivePhase);
  };

  /**
   * A step that threw: refused for good, the phase fails naming the refusal; anything else is
   * retried with backoff, shown in the Progressing condition, until the phase's deadline.
   */
  const errorStatus = (restore: Restore, err: unknown, refused: boolean): RestoreStatus | undefined => {
    const status = restore.status ?? {};
    if (status.phase === undefined || isTerminal(status.phase)) return undefined;
    const phase = status.phase as ActivePhase;
    const outcome: StepOutcome = outcomeOfError({
      err,
      refused,
      what: `phase ${phase}`,
      refusedCode: REFUSED[phase],
      advice: `. ${RETRY_HINT}`,
      pastDeadline: untilDeadline(status, phase) <= 0,
      timedOut: (last) => timedOut(status, phase, last),
    });
    return applyOutcome(status, outcome, now(), restore.metadata.generation);
  };

  const announce = (restore: Restore, from: RestoreStatus, to: RestoreStatus): void => {
    const fields = { namespace: restore.metadata.namespace, name: restore.metadata.name };
    if (to.attempt !== from.attempt) {
      const attempt = to.attempt ?? 1;
      logger.info(`attempt ${attempt} started as ${to.customResourceName ?? ''}`, {
        ...fields,
        phase: to.phase,
        attempt,
      });
      void events.record(
        resources.restores,
        restore,
        'Normal',
        'Initializing',
        `attempt ${attempt} started; its objects are named after ${to.customResourceName ?? ''}`,
        `${to.customResourceName ?? ''}/Initializing`,
      );
      return;
    }
    if (to.phase === from.phase || from.phase === undefined || to.phase === undefined) return;
    const entered = Date.parse(phaseEnteredAt(from) ?? '');
    if (!Number.isNaN(entered)) observer.phaseFinished(from.phase, (ctx.now().getTime() - entered) / 1000);
    const failed = to.phase === 'Failed';
    logger.info(`phase ${from.phase} -> ${to.phase}`, {
      ...fields,
      phase: to.phase,
      attempt: to.attempt,
      ...(failed ? { errorCode: to.errorCode, errorMessage: to.errorMessage } : {}),
    });
    // Events tell the start and the end of an attempt; the phases between are in phaseHistory.
    // Seven Events per restore were a third of its writes, and slowed every restore on a busy
    // API server (`make bench`).
    if (!isTerminal(to.phase)) return;
    void events.record(
      resources.restores,
      restore,
      failed ? 'Warning' : 'Normal',
      failed ? (to.errorCode ?? 'Failed') : to.phase,
      failed ? (to.errorMessage ?? '') : progressOf(to),
      `${to.customResourceName ?? ''}/${to.phase}`,
    );
  };

  return statusReconciler<Restore, RestoreStatus>({
    resource: resources.restores,
    client: ctx.client,
    cache: ctx.cache.restores,
    logger,
    finalizer: {
      name: finalizers.restore,
      /**
       * A deleted Restore stops and removes what its attempt created; once the restored deployment
       * is the user's, only its own scaffolding.
       */
      finalize: async (restore) => {
        const includeDeployment = !deploymentHandedOver(restore);
        const remaining = await cleanUpAttempt(ctx.client, restore, {
          includeDeployment,
          ...moverScope(restore),
        });
        return remaining > 0 ? { done: false, requeueAfterMs: CLEANUP_RECHECK_MS } : { done: true };
      },
    },
    step,
    errorStatus,
    announce,
    transition: enteredPhase,
    progressPacing: {
      intervalMs: PROGRESS_INTERVAL_MS,
      now: () => ctx.now().getTime(),
      // Joining the queue for a slot is not progress: other restores' turns are judged from it.
      isProgress: (from, to) =>
        isProgressOnly(from, to) && to.queuedAt === from.queuedAt && moverRuns(from) === moverRuns(to),
      intervalFor: (to) =>
        transferPacingMs((to.volumes ?? []).map((volume) => volume.dataRestore)) ?? PROGRESS_INTERVAL_MS,
    },
  });
}
