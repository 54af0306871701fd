// Pending (PDS PENDING): make sure nothing would be overwritten and a synced Backup's location
// credentials are in place, then wait for a free slot.

import { labels } from '../../api/constants.js';
import type { Restore } from '../../api/generated/types.js';
import type { KubeObject } from '../../api/kubernetes.js';
import { resources } from '../../runtime/resources.js';
import type { RestoreContext, RestorePlan } from './context.js';
import { credentialsProblem } from './credentials.js';
import { WAITING_FOR_SLOT } from './slots.js';
import { advance, fail, wait, type StepOutcome } from './outcome.js';

const ownedByAttempt = (object: KubeObject, attempt: string | undefined): boolean =>
  object.metadata.labels?.[labels.restoreAttempt] === attempt;

export async function pending(
  ctx: RestoreContext,
  restore: Restore,
  plan: RestorePlan,
): Promise<StepOutcome> {
  const namespace = restore.metadata.namespace ?? '';
  const attempt = restore.status?.customResourceName;

  // Authoritative reads: the caches hold only Snapback's own objects, a conflict is someone else's.
  const existing = await ctx.client.get(plan.adapter.resource, plan.deploymentName, namespace);
  if (existing !== undefined && !ownedByAttempt(existing, attempt)) {
    const whose =
      existing.metadata.labels?.[labels.restore] === restore.metadata.name
        ? // Handed over by an earlier attempt (it was healthy in restore mode): the user's now.
          'was restored by an earlier attempt of this Restore and is left to you'
        : 'already exists and was not made by this restore';
    return fail(
      'DataServiceDeploymentNameAlreadyExist',
      `${plan.adapter.kind} ${namespace}/${plan.deploymentName} ${whose}; nothing was changed. Create a new Restore with another spec.destination.deploymentName, or remove the existing deployment and change spec.recreateToken.`,
    );
  }
  for (const volume of plan.volumes) {
    const claim = await ctx.client.get(resources.persistentVolumeClaims, volume.pvcName, namespace);
    if (claim !== undefined && !ownedByAttempt(claim, attempt)) {
      return fail(
        'DataServiceDeploymentNameAlreadyExist',
        `PersistentVolumeClaim ${namespace}/${volume.pvcName}, which ${plan.adapter.kind} ${plan.deploymentName} would mount, already exists (often left behind by a deleted StatefulSet of that name); nothing was changed. Choose another deployment name or delete the claim, then change spec.recreateToken.`,
      );
    }
  }

  if (plan.backup.spec.syncedFrom !== undefined) {
    const problem = await credentialsProblem(ctx, plan.backup);
    if (problem !== undefined) return fail('FailedBackupCredentialSync', problem);
  }

  const slot = ctx.slots.tryAcquire(`${namespace}/${restore.metadata.name ?? ''}`);
  if (!slot.granted) {
    return wait(WAITING_FOR_SLOT, `${slot.why}; this one starts when its turn comes`, {
      queuedAt: restore.status?.queuedAt ?? ctx.now().toISOString(),
    });
  }
  return advance(
    'RestoringCloudSnap',
    `no name conflicts; restoring ${plan.volumes.length} volume(s) from snapshots`,
  );
}
