// DataServiceDeploymentEnteringNormalMode (PDS DATA_SERVICE_DEPLOYMENT_ENTERING_NORMAL_MODE):
// the deployment, switched to normal mode, is waited for until it is healthy.

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

export async function enteringNormalMode(
  ctx: RestoreContext,
  restore: Restore,
  plan: RestorePlan,
): Promise<StepOutcome> {
  const namespace = restore.metadata.namespace ?? '';
  const deployment = await restoredDeployment(ctx, restore, plan);
  if (deployment === undefined) {
    return fail(
      'DataServiceDeploymentRestoreFailed',
      `${plan.adapter.kind} ${namespace}/${plan.deploymentName} was deleted before it reached normal mode.`,
    );
  }
  if (deployment === 'notCachedYet') {
    return wait('SwitchingToNormalMode', `waiting to see ${plan.adapter.kind} ${plan.deploymentName}`);
  }
  // RestoringDataServiceDeployment switched it; a restore that entered this phase before it did
  // (an operator of an earlier version), or a cache that has not seen the switch yet, sends the
  // same patch again.
  if (plan.adapter.mode(deployment) !== 'normal') {
    await switchToNormalMode(ctx, restore, plan);
    return wait(
      'SwitchingToNormalMode',
      `${plan.adapter.kind} ${plan.deploymentName} switched to normal mode`,
    );
  }
  // The replicas normal mode adds have their volumes provisioned now (WaitForFirstConsumer).
  const refused = deferredProvisioningFailure(ctx, restore);
  if (refused !== undefined) return fail('CloudSnapRestoreFailed', refused);
  const health = plan.adapter.health(deployment);
  if (!health.healthy) {
    const why = await whyUnhealthy(ctx, restore, health.message);
    return wait('WaitingForHealthy', `normal mode: ${why.message}`, undefined, why.requeueAfterMs);
  }
  return advance(
    'Successful',
    `${plan.adapter.kind} ${plan.deploymentName} restored and healthy (${health.message})`,
    volumesBoundSince(ctx, restore),
  );
}
