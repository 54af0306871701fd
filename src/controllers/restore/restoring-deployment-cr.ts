// RestoringDataServiceDeploymentCR (PDS RESTORING_DATA_SERVICE_DEPLOYMENT_CR): the manifest
// from the backup, rewritten (name, namespace, scheduling, restore mode), is created; a name
// someone else holds fails the restore (name-conflicts.ts).

import type { Restore } from '../../api/generated/types.js';
import { errorMessage, isInvalid } from '../../runtime/errors.js';
import { ensureCreated } from '../shared/objects.js';
import { attemptLabels, type RestoreContext, type RestorePlan } from './context.js';
import { deploymentTaken } from './name-conflicts.js';
import { advance, fail, type StepOutcome } from './outcome.js';

export async function restoringDeploymentCR(
  ctx: RestoreContext,
  restore: Restore,
  plan: RestorePlan,
): Promise<StepOutcome> {
  const namespace = restore.metadata.namespace ?? '';
  const scheduling = restore.spec.podSchedulingConfig;
  const deployment = plan.adapter.render(plan.manifest, {
    name: plan.deploymentName,
    namespace,
    labels: attemptLabels(restore, plan.backup, plan.deploymentName),
    ...(scheduling === undefined ? {} : { scheduling }),
  });
  const destination = { kind: plan.adapter.kind, deploymentName: plan.deploymentName };
  try {
    const result = await ensureCreated(ctx.client, plan.adapter.resource, deployment);
    if (result.outcome === 'taken') return deploymentTaken(restore, plan, result.object);
    return advance(
      'RestoringDataServiceDeployment',
      `${plan.adapter.kind} ${plan.deploymentName} created in restore mode`,
      { destination: { ...destination, deploymentUid: result.object.metadata.uid ?? '' } },
    );
  } catch (err) {
    if (isInvalid(err)) {
      return fail(
        'DataServiceDeploymentRestoreFailed',
        `the API server rejected the restored ${plan.adapter.kind}: ${errorMessage(err)}. Fix spec.podSchedulingConfig (or the backed-up manifest's problem) in a new Restore.`,
      );
    }
    throw err;
  }
}
