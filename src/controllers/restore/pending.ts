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
  const synced = plan.backup.spec.syncedFrom !== undefined;
  const queued = restore.status?.queuedAt !== undefined;
  // The credentials are read before the restore joins the queue, so that it fails at once, and
  // again when its turn comes (they may have gone meanwhile); not on each look while it waits.
  const problem = synced && !queued ? await credentialsProblem(ctx, plan.backup) : undefined;
  if (problem !== undefined) return fail('FailedBackupCredentialSync', problem);

  const slot = ctx.slots.tryAcquire(`${namespace}/${restore.metadata.name ?? ''}`);
  if (!slot.granted) {
    return wait(WAITING_FOR_SLOT, `${slot.why}; this one starts when its turn comes`, {
      queuedAt: restore.status?.queuedAt ?? ctx.now().toISOString(),
    });
  }
  const problemAtTurn = synced && queued ? await credentialsProblem(ctx, plan.backup) : undefined;
  if (problemAtTurn !== undefined) return fail('FailedBackupCredentialSync', problemAtTurn);
  return advance('RestoringCloudSnap', `restoring ${plan.volumes.length} volume(s) from snapshots`);
}
