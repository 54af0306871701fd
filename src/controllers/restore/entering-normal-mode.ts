// DataServiceDeploymentEnteringNormalMode (PDS DATA_SERVICE_DEPLOYMENT_ENTERING_NORMAL_MODE):
// switch the deployment to normal mode, then wait until it is healthy.

import type { Restore } from '../../api/generated/types.js';
import {
  deferredProvisioningFailure,
  restoredDeployment,
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
  if (plan.adapter.mode(deployment) !== 'normal') {
    await ctx.client.mergePatch(
      plan.adapter.resource,
      plan.deploymentName,
      plan.adapter.normalModePatch(plan.manifest),
      {
        namespace,
      },
    );
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
    const why = await whyUnhealthy(ctx, restore, deployment, health.message);
    return wait('WaitingForHealthy', `normal mode: ${why.message}`, undefined, why.requeueAfterMs);
  }
  return advance(
    'Successful',
    `${plan.adapter.kind} ${plan.deploymentName} restored and healthy (${health.message})`,
    volumesBoundSince(ctx, restore),
  );
}
