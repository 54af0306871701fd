// The restore's claim of a volume, made one way whatever fills it: from a snapshot, or bound by name
// to a volume the bucket filled. Labelled with the attempt, named as the deployment's pods expect;
// a name someone else holds fails the restore as a conflict, changing nothing of theirs.

import type { Restore } from '../../api/generated/types.js';
import type { PersistentVolumeClaim } from '../../api/kubernetes.js';
import { resources } from '../../runtime/resources.js';
import { volumeClaim } from '../../storage/snapshots.js';
import { ensureCreated } from '../shared/objects.js';
import { attemptLabels, type PlannedVolume, type RestoreContext, type RestorePlan } from './context.js';
import { claimTaken } from './name-conflicts.js';
import type { StepOutcome } from './outcome.js';

/** Creates the claim (found, if a restart repeats this), or says whose the name is. */
export async function createRestoredClaim(
  ctx: RestoreContext,
  restore: Restore,
  plan: RestorePlan,
  volume: PlannedVolume,
  from: { snapshotName: string } | { volumeName: string; storageClassName?: string },
): Promise<{ claim: PersistentVolumeClaim } | { conflict: StepOutcome }> {
  const { storageClassName, ...source } =
    'volumeName' in from ? from : { ...from, storageClassName: undefined };
  const created = await ensureCreated(
    ctx.client,
    resources.persistentVolumeClaims,
    volumeClaim({
      name: volume.pvcName,
      namespace: restore.metadata.namespace ?? '',
      ...source,
      claim: { ...volume.claim, ...(storageClassName === undefined ? {} : { storageClassName }) },
      ...(volume.source.sizeBytes === undefined ? {} : { minimumBytes: volume.source.sizeBytes }),
      labels: attemptLabels(restore, plan.backup, plan.deploymentName),
    }),
  );
  if (created.outcome === 'taken') return { conflict: await claimTaken(ctx, restore, plan, volume.pvcName) };
  return { claim: created.object };
}
