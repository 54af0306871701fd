// Names someone else holds. The create of each object is the authoritative check (it answers
// AlreadyExists), so the happy path reads nothing; only then is the existing object looked at, to
// tell whose it is. A restore that finds a name taken fails DataServiceDeploymentNameAlreadyExist,
// leaves the other object alone, and removes what it had created itself (see leftovers()).

import { labels } from '../../api/constants.js';
import type { Restore } from '../../api/generated/types.js';
import type { KubeObject } from '../../api/kubernetes.js';
import { byAttempt } from './indexes.js';
import type { RestoreContext, RestorePlan } from './context.js';
import { fail, type StepOutcome } from './outcome.js';

const UNDONE = 'what this restore had created for it is removed';

/** The restore fails: its deployment's name is taken (`existing` is who holds it). */
export function deploymentTaken(restore: Restore, plan: RestorePlan, existing: KubeObject): StepOutcome {
  const namespace = restore.metadata.namespace ?? '';
  const whose =
    existing.metadata.labels?.[labels.restore] === restore.metadata.name
      ? // Handed over by an earlier attempt (it was healthy in restore mode): the user's now.
        'was restored by an earlier attempt of this Restore and is left to you'
      : 'already exists and was not made by this restore';
  return fail(
    'DataServiceDeploymentNameAlreadyExist',
    `${plan.adapter.kind} ${namespace}/${plan.deploymentName} ${whose}; nothing of it was changed, and ${UNDONE}. Create a new Restore with another spec.destination.deploymentName, or remove the existing deployment and change spec.recreateToken.`,
  );
}

/**
 * The restore fails: a claim its deployment would mount exists. A deployment of the same name is
 * the likelier cause (its claims come with it), and the clearer message, so it is looked up first.
 */
export async function claimTaken(
  ctx: RestoreContext,
  restore: Restore,
  plan: RestorePlan,
  claimName: string,
): Promise<StepOutcome> {
  const namespace = restore.metadata.namespace ?? '';
  const deployment = await ctx.client.get(plan.adapter.resource, plan.deploymentName, namespace);
  if (deployment !== undefined) return deploymentTaken(restore, plan, deployment);
  return fail(
    'DataServiceDeploymentNameAlreadyExist',
    `PersistentVolumeClaim ${namespace}/${claimName}, which ${plan.adapter.kind} ${plan.deploymentName} would mount, already exists (often left behind by a deleted StatefulSet of that name); nothing of it was changed, and ${UNDONE}. Choose another deployment name or delete the claim, then change spec.recreateToken.`,
  );
}

/**
 * How many objects of the restore's attempt the caches hold: after a name conflict they are
 * removed, and the caches tell without a request whether any is left.
 */
export function leftovers(ctx: RestoreContext, restore: Restore): number {
  const attempt = restore.status?.customResourceName;
  if (attempt === undefined) return 0;
  const { claims, statefulSets, snapshots, contents } = ctx.cache;
  return [claims, statefulSets, snapshots, contents].reduce(
    (sum, cache) => sum + cache.byIndex(byAttempt, attempt).length,
    0,
  );
}
