// RestoringDataServiceDeployment (PDS RESTORING_DATA_SERVICE_DEPLOYMENT): the new deployment runs
// in restore mode; the restore process is done when it is healthy in that mode.

import type { Restore } from '../../api/generated/types.js';
import { planRestore, type RestoreContext } from './context.js';
import { advance, fail, wait, type StepOutcome } from './outcome.js';

export function restoringDeployment(ctx: RestoreContext, restore: Restore): Promise<StepOutcome> {
  const plan = planRestore(ctx, restore);
  if ('problem' in plan)
    return Promise.resolve(fail('DataServiceDeploymentRestoreFailed', `${plan.problem}.`));
  const key = `${restore.metadata.namespace ?? ''}/${plan.deploymentName}`;
  const deployment = ctx.cache.statefulSets.get(key);
  if (deployment === undefined) {
    return Promise.resolve(
      fail(
        'DataServiceDeploymentRestoreFailed',
        `${plan.adapter.kind} ${key} was deleted while it restored its data.`,
      ),
    );
  }
  const health = plan.adapter.health(deployment);
  if (plan.adapter.mode(deployment) === 'restore' && health.healthy) {
    return Promise.resolve(
      advance(
        'DataServiceDeploymentEnteringNormalMode',
        `restore mode finished (${health.message}); switching to normal mode`,
      ),
    );
  }
  return Promise.resolve(wait('RestoreModeRunning', `restore mode: ${health.message}`));
}
