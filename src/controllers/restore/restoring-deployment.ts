// RestoringDataServiceDeployment (PDS RESTORING_DATA_SERVICE_DEPLOYMENT): the new deployment runs
// in restore mode; the restore process is done when it is healthy in that mode, and the deployment
// is then switched to normal mode.

import type { Restore } from '../../api/generated/types.js';
import {
  deferredProvisioningFailure,
  restoredDeployment,
  switchToNormalMode,
  volumesBoundSince,
  whyUnhealthy,
  type RestoreContext,
  type RestorePlan,
} from './context.js';
import { advance, fail, wait, type StepOutcome } from './outcome.js';

export async function restoringDeployment(
  ctx: RestoreContext,
  restore: Restore,
  plan: RestorePlan,
): Promise<StepOutcome> {
  const name = `${restore.metadata.namespace ?? ''}/${plan.deploymentName}`;
  const deployment = await restoredDeployment(ctx, restore, plan);
  if (deployment === undefined) {
    return fail(
      'DataServiceDeploymentRestoreFailed',
      `${plan.adapter.kind} ${name} was deleted while it restored its data.`,
    );
  }
  if (deployment === 'notCachedYet')
    return wait('RestoreModeRunning', `restore mode: ${plan.adapter.kind} ${name} created`);
  // Volumes of a WaitForFirstConsumer class are provisioned now, as the restored pods are scheduled.
  const refused = deferredProvisioningFailure(ctx, restore);
  if (refused !== undefined) return fail('CloudSnapRestoreFailed', refused);
  // Switched already: this step did it, and the status write that should have followed was lost.
  if (plan.adapter.mode(deployment) === 'normal') {
    return advance(
      'DataServiceDeploymentEnteringNormalMode',
      `${plan.adapter.kind} ${plan.deploymentName} switched to normal mode`,
      volumesBoundSince(ctx, restore),
    );
  }
  const health = plan.adapter.health(deployment);
  if (plan.adapter.mode(deployment) === 'restore' && health.healthy) {
    // Switching here, not in the next phase, saves that phase a status write of its own.
    await switchToNormalMode(ctx, restore, plan);
    return advance(
      'DataServiceDeploymentEnteringNormalMode',
      `restore mode finished (${health.message}); ${plan.adapter.kind} ${plan.deploymentName} switched to normal mode`,
      volumesBoundSince(ctx, restore),
    );
  }
  const why = await whyUnhealthy(ctx, restore, health.message);
  return wait('RestoreModeRunning', `restore mode: ${why.message}`, undefined, why.requeueAfterMs);
}
