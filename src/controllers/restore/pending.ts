// Pending (PDS PENDING): make sure a synced Backup's location credentials are in place, then wait
// for a free slot. Whether the names are free is answered by the creates that follow
// (name-conflicts.ts): nothing is read here.

import type { Restore } from '../../api/generated/types.js';
import type { RestoreContext, RestorePlan } from './context.js';
import { credentialsProblem } from './credentials.js';
import { WAITING_FOR_SLOT } from './slots.js';
import { advance, fail, wait, type StepOutcome } from './outcome.js';

export async function pending(
  ctx: RestoreContext,
  restore: Restore,
  plan: RestorePlan,
): Promise<StepOutcome> {
  const namespace = restore.metadata.namespace ?? '';
  const credentialsFailure = async (): Promise<StepOutcome | undefined> => {
    if (plan.backup.spec.syncedFrom === undefined) return undefined;
    const problem = await credentialsProblem(ctx, plan.backup);
    return problem === undefined ? undefined : fail('FailedBackupCredentialSync', problem);
  };
  // The credentials are read before the restore joins the queue, so that it fails at once, and
  // again when its turn comes (they may have gone meanwhile); not on each look while it waits.
  const queued = restore.status?.queuedAt !== undefined;
  const failedBeforeQueue = queued ? undefined : await credentialsFailure();
  if (failedBeforeQueue !== undefined) return failedBeforeQueue;

  const slot = ctx.slots.tryAcquire(`${namespace}/${restore.metadata.name ?? ''}`);
  if (!slot.granted) {
    return wait(WAITING_FOR_SLOT, `${slot.why}; this one starts when its turn comes`, {
      queuedAt: restore.status?.queuedAt ?? ctx.now().toISOString(),
    });
  }
  const failedAtTurn = queued ? await credentialsFailure() : undefined;
  if (failedAtTurn !== undefined) return failedAtTurn;
  return advance('RestoringCloudSnap', `restoring ${plan.volumes.length} volume(s) from snapshots`);
}
