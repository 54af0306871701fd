// Initializing (PDS INITIALIZING): resolve the Backup, check it is Completed and restorable into
// the target, and fix what the attempt restores.

import { BACKUP_FORMAT_CAPABILITIES, DEFAULT_MATRIX_NAME } from '../../api/constants.js';
import type { Restore } from '../../api/generated/types.js';
import { evaluateRestorability } from '../../dataservices/capabilities.js';
import { planRestore, type RestoreContext } from './context.js';
import { grants, missingGrant, referencePermitted } from './grants.js';
import { backupKeyOf } from './indexes.js';
import { advance, fail, wait, type StepOutcome } from './outcome.js';
import { resources } from '../../runtime/resources.js';

const retryHint = 'then change spec.recreateToken to try again';

export async function initializing(ctx: RestoreContext, restore: Restore): Promise<StepOutcome> {
  const ref = backupKeyOf(restore);
  const backupName = `${ref.namespace}/${ref.name}`;
  // Consent first: whether another namespace's Backup exists is not told to whoever is not granted it.
  if (!referencePermitted(ctx.cache.referenceGrants, restore, ref)) {
    // As with the Backup, the cache may lag behind a grant applied together with the Restore.
    const { items } = await ctx.client.list(resources.referenceGrants, { namespace: ref.namespace });
    if (!grants(items, restore.metadata.namespace ?? '', ref.name)) {
      return fail('ReferenceNotGranted', `${missingGrant(restore, ref)}.`);
    }
    return wait(
      'WaitingForGrant',
      `the ReferenceGrant in ${ref.namespace} was just created; waiting for it to be seen`,
    );
  }
  if (ctx.cache.backups.get(backupName) === undefined) {
    // The cache may not have a Backup created a moment ago (a GitOps sync applies the Backup and
    // the Restore together): only the API server can say it does not exist.
    if ((await ctx.client.get(resources.backups, ref.name, ref.namespace)) !== undefined) {
      return wait('WaitingForBackup', `Backup ${backupName} was just created; waiting for it to be seen`);
    }
  }
  return decide(ctx, restore);
}

function decide(ctx: RestoreContext, restore: Restore): StepOutcome {
  const ref = backupKeyOf(restore);
  const backupName = `${ref.namespace}/${ref.name}`;
  const backup = ctx.cache.backups.get(backupName);
  if (backup === undefined) {
    return fail(
      'BackupNotFound',
      `Backup ${backupName} does not exist. Check spec.source (a Backup in another namespace needs backupRef), ${retryHint}.`,
    );
  }
  const phase = backup.status?.phase;
  if (backup.metadata.deletionTimestamp !== undefined || phase === 'Deleting') {
    return fail('BackupNotCompleted', `Backup ${backupName} is being deleted; restore from another backup.`);
  }
  if (phase === 'Failed') {
    const why = backup.status?.errorMessage ?? backup.status?.errorCode ?? 'unknown reason';
    return fail(
      'BackupNotCompleted',
      `Backup ${backupName} failed (${why}); restore from a Completed backup.`,
    );
  }
  if (phase !== 'Completed') {
    return wait(
      'WaitingForBackup',
      `Backup ${backupName} is ${phase ?? 'not started yet'}; the restore goes on when it completes`,
    );
  }

  const plan = planRestore(ctx, restore);
  if ('problem' in plan) return fail(plan.errorCode, `${plan.problem}.`);
  const wanted = restore.spec.source.cloudSnapId;
  if (plan.volumes.length === 0) {
    const handles = (backup.status?.volumes ?? []).map((volume) => volume.cloudSnapId ?? '?').join(', ');
    return wanted === undefined
      ? fail(
          'IncompatibleBackup',
          `Backup ${backupName} records no volumes that fit its manifest's volume claim templates.`,
        )
      : fail(
          'CloudSnapNotFound',
          `Backup ${backupName} has no snapshot with handle "${wanted}"; its handles are: ${handles}. Fix spec.source.cloudSnapId in a new Restore.`,
        );
  }

  const metadata = backup.status?.dataServiceDeploymentMetaData;
  const verdict = evaluateRestorability({
    matrix: ctx.cache.matrices.get(DEFAULT_MATRIX_NAME),
    dataServiceName: metadata?.dataServiceName,
    backupCapabilities: backup.status?.backupCapability ?? BACKUP_FORMAT_CAPABILITIES,
    imageCapabilities: metadata?.imageCapabilities ?? {},
    strict: ctx.config.strictRestorability,
  });
  if (!verdict.compatible) return fail('IncompatibleBackup', `${verdict.reason}.`);

  return advance(
    'Pending',
    `Backup ${backupName} resolved: ${plan.volumes.length} volume(s) to restore into ${plan.adapter.kind} ${plan.deploymentName}`,
    {
      backup: { namespace: ref.namespace, name: ref.name, uid: backup.metadata.uid ?? '' },
      destination: { kind: plan.adapter.kind, deploymentName: plan.deploymentName },
      volumes: plan.volumes.map((volume) => ({
        pvcName: volume.pvcName,
        cloudSnapId: volume.source.cloudSnapId ?? '',
        phase: 'Pending',
      })),
    },
  );
}
