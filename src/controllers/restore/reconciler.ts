// The Restore reconciler: one named step per phase (see the phase files beside this one).
// Each reconcile reads the restore from the cache, takes the one step its phase calls for, and
// writes status once. Status is the only record of progress, so a restarted operator resumes
// exactly where the last one stopped.

import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'winston';
import { API_VERSION, finalizers } from '../../api/constants.js';
import type { Restore, RestorePhase, RestoreStatus } from '../../api/generated/types.js';
import type { EventRecorder } from '../../observability/events.js';
import type { ReconcileResult } from '../../runtime/controller.js';
import { resources } from '../../runtime/resources.js';
import { requeueFor } from '../shared/conditions.js';
import { cleanUpAttempt } from './cleanup.js';
import type { RestoreContext } from './context.js';
import { enteringNormalMode } from './entering-normal-mode.js';
import { initializing } from './initializing.js';
import { fail, wait, type StepOutcome } from './outcome.js';
import { pending } from './pending.js';
import { restoringCloudSnap } from './restoring-cloudsnap.js';
import { restoringDeploymentCR } from './restoring-deployment-cr.js';
import { restoringDeployment } from './restoring-deployment.js';
import { applyOutcome, newAttempt, phaseEnteredAt } from './status.js';
import { isTerminal } from './transitions.js';
import { setFinalizer } from '../shared/objects.js';
import { OwnWrites } from '../shared/own-writes.js';

type ActivePhase = Exclude<RestorePhase, 'Successful' | 'Failed'>;
type PhaseStep = (ctx: RestoreContext, restore: Restore) => Promise<StepOutcome>;

const STEPS: Record<ActivePhase, PhaseStep> = {
  Initializing: initializing,
  Pending: pending,
  RestoringCloudSnap: restoringCloudSnap,
  RestoringDataServiceDeploymentCR: restoringDeploymentCR,
  RestoringDataServiceDeployment: restoringDeployment,
  DataServiceDeploymentEnteringNormalMode: enteringNormalMode,
};

/** How often a restore waiting on deletions looks again if no watch event arrives first. */
const CLEANUP_RECHECK_MS = 5_000;

export interface RestoreObserver {
  /** A phase ended after `seconds` (the phase duration histogram). */
  phaseFinished(phase: RestorePhase, seconds: number): void;
}

export class RestoreReconciler {
  private readonly ownWrites = new OwnWrites();

  constructor(
    private readonly ctx: RestoreContext,
    private readonly events: EventRecorder,
    private readonly logger: Logger,
    private readonly observer: RestoreObserver,
  ) {}

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const restore = this.ctx.cache.restores.get(key);
    if (this.ownWrites.behind(key, restore) || restore === undefined) return undefined;
    if (restore.metadata.deletionTimestamp !== undefined) return this.finalize(restore);
    if (!(restore.metadata.finalizers ?? []).includes(finalizers.restore)) {
      this.ownWrites.wrote(
        restore,
        await setFinalizer(this.ctx.client, resources.restores, restore, finalizers.restore, true),
      );
      return undefined;
    }
    const status = restore.status ?? {};
    if (status.phase === undefined) {
      await this.startAttempt(restore, 1);
      return undefined;
    }
    if (isTerminal(status.phase)) return this.terminal(restore, status);

    const phase = status.phase as ActivePhase;
    const timedOut = this.timeout(status, phase);
    const outcome = timedOut ?? (await STEPS[phase](this.ctx, restore));
    await this.apply(restore, outcome);
    if (outcome.type !== 'wait') return undefined;
    return requeueFor(Math.min(outcome.requeueAfterMs ?? Infinity, this.untilDeadline(status, phase)));
  }

  private timeout(status: RestoreStatus, phase: ActivePhase): StepOutcome | undefined {
    if (this.untilDeadline(status, phase) > 0) return undefined;
    const limit = this.ctx.config.phaseTimeoutSeconds[phase];
    const progressing = status.conditions?.find((condition) => condition.type === 'Progressing')?.message;
    return fail(
      'PhaseTimeout',
      `phase ${phase} did not finish within ${limit}s${progressing === undefined || progressing === '' ? '' : ` (last: ${progressing})`}. Fix the cause, then change spec.recreateToken to try again.`,
    );
  }

  private untilDeadline(status: RestoreStatus, phase: ActivePhase): number {
    const enteredAt = Date.parse(phaseEnteredAt(status) ?? status.startedAt ?? '');
    if (Number.isNaN(enteredAt)) return Infinity;
    return enteredAt + this.ctx.config.phaseTimeoutSeconds[phase] * 1000 - this.ctx.now().getTime();
  }

  private async apply(restore: Restore, outcome: StepOutcome): Promise<void> {
    const current = restore.status ?? {};
    const now = this.ctx.now().toISOString();
    const next = applyOutcome(current, outcome, now, restore.metadata.generation);
    if (isDeepStrictEqual(next, current)) return;
    await this.writeStatus(restore, next);
    if (next.phase !== current.phase && current.phase !== undefined && next.phase !== undefined) {
      this.phaseChanged(restore, current, next);
    }
  }

  private phaseChanged(restore: Restore, from: RestoreStatus, to: RestoreStatus): void {
    const previous = from.phase ?? 'Initializing';
    const entered = Date.parse(phaseEnteredAt(from) ?? '');
    if (!Number.isNaN(entered))
      this.observer.phaseFinished(previous, (this.ctx.now().getTime() - entered) / 1000);
    const failed = to.phase === 'Failed';
    const message = failed
      ? (to.errorMessage ?? '')
      : (to.conditions?.find((c) => c.type === 'Progressing')?.message ?? '');
    this.logger.info(`phase ${previous} -> ${to.phase ?? ''}`, {
      namespace: restore.metadata.namespace,
      name: restore.metadata.name,
      phase: to.phase,
      attempt: to.attempt,
      ...(failed ? { errorCode: to.errorCode, errorMessage: to.errorMessage } : {}),
    });
    void this.events.record(
      { ...restore, apiVersion: API_VERSION, kind: 'Restore' },
      failed ? 'Warning' : 'Normal',
      failed ? (to.errorCode ?? 'Failed') : (to.phase ?? ''),
      message,
      `${to.customResourceName ?? ''}/${to.phase ?? ''}`,
    );
  }

  private async startAttempt(restore: Restore, attempt: number): Promise<void> {
    const status = newAttempt(restore, attempt, this.ctx.now().toISOString());
    await this.writeStatus(restore, status);
    this.logger.info(`attempt ${attempt} started as ${status.customResourceName ?? ''}`, {
      namespace: restore.metadata.namespace,
      name: restore.metadata.name,
      phase: status.phase,
      attempt,
    });
    void this.events.record(
      { ...restore, apiVersion: API_VERSION, kind: 'Restore' },
      'Normal',
      'Initializing',
      `attempt ${attempt} started; its objects are named after ${status.customResourceName ?? ''}`,
      `${status.customResourceName ?? ''}/Initializing`,
    );
  }

  /** Successful and Failed restores rest, unless a Failed one is asked to try again. */
  private async terminal(restore: Restore, status: RestoreStatus): Promise<ReconcileResult | undefined> {
    const token = restore.spec.recreateToken;
    if (status.phase !== 'Failed' || token === undefined || token === status.observedRecreateToken) {
      // A spec change that starts nothing (a new token on a Successful restore) is still
      // acknowledged, so observedGeneration tells the user it was seen.
      const generation = restore.metadata.generation;
      if (generation !== undefined && status.observedGeneration !== generation) {
        await this.writeStatus(restore, { ...status, observedGeneration: generation });
      }
      return undefined;
    }
    const remaining = await cleanUpAttempt(this.ctx.client, restore, { includeDeployment: true });
    if (remaining > 0) {
      await this.apply(
        restore,
        wait(
          'CleaningUpFailedAttempt',
          `removing ${remaining} object(s) the failed attempt created before trying again`,
        ),
      );
      return { requeueAfterMs: CLEANUP_RECHECK_MS };
    }
    await this.startAttempt(restore, (status.attempt ?? 1) + 1);
    return undefined;
  }

  /**
   * A deleted Restore stops and removes what its attempt created; after a success it removes only
   * its own scaffolding: the restored deployment and PVCs belong to the user.
   */
  private async finalize(restore: Restore): Promise<ReconcileResult | undefined> {
    const held = restore.metadata.finalizers ?? [];
    if (!held.includes(finalizers.restore)) return undefined;
    const includeDeployment = restore.status?.phase !== 'Successful';
    const remaining = await cleanUpAttempt(this.ctx.client, restore, { includeDeployment });
    if (remaining > 0) return { requeueAfterMs: CLEANUP_RECHECK_MS };
    await setFinalizer(this.ctx.client, resources.restores, restore, finalizers.restore, false);
    return undefined;
  }

  /** Replaces the status subresource; the resourceVersion makes a stale write fail with 409. */
  private async writeStatus(restore: Restore, status: RestoreStatus): Promise<void> {
    this.ownWrites.wrote(
      restore,
      await this.ctx.client.replace(resources.restores, { ...restore, status }, 'status'),
    );
  }
}
