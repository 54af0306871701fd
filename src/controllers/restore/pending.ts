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
  return advance('RestoringCloudSnap', `restoring ${plan.volumes.length} volume(s) from snapshots`);
}
