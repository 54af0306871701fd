// Completed, on request: a backup's data in the bucket read back and authenticated in full, without
// restoring anything. The annotation snapback.dev/verify holds a token; one that
// status.verification does not answer yet starts a verification. A data mover pod per volume runs
// `mover verify <manifest>` in the operator's namespace (it mounts nothing and runs as nobody); the
// result goes into status.verification, with the time and the bytes checked, and the Verified
// condition. A verification that finds damage does not fail the Backup: it says what is wrong with
// its copy, naming the object.

import { annotations } from '../../api/constants.js';
import type {
  Backup,
  BackupStatus,
  BackupVerification,
  VolumeVerification,
} from '../../api/generated/types.js';
import { boundedName, shortHash } from '../../naming.js';
import { setCondition } from '../shared/conditions.js';
import { deleteMoverPods, stepMoverRun, transferFigures } from '../shared/mover-run.js';
import { moverLabels, type BackupContext } from './context.js';

/** The condition a verification sets on the Backup. */
const VERIFIED = 'Verified';

/** The token of a verification asked for and not answered yet (or still running), if any. */
export function verificationDue(backup: Backup): string | undefined {
  const token = backup.metadata.annotations?.[annotations.verify];
  if (token === undefined || token === '' || backup.status?.phase !== 'Completed') return undefined;
  const verification = backup.status.verification;
  return verification?.token !== token || verification.phase === 'Running' ? token : undefined;
}

/** The verification mover's pod of the `index`th volume, per attempt: new names for a new token. */
const podNameOf =
  (backup: Backup, token: string, index: number) =>
  (attempt: number): string =>
    boundedName(
      'snapback-verify',
      backup.metadata.name ?? '',
      `${shortHash([backup.metadata.uid ?? '', token], 6)}-${index}-${attempt}`,
    );

/**
 * One step of the verification `token` asks for: the status with status.verification and the
 * Verified condition as far as it got, and when to look again while movers run.
 */
export async function verifyData(
  ctx: BackupContext,
  backup: Backup,
  token: string,
): Promise<{ status: BackupStatus; requeueAfterMs?: number }> {
  const status = backup.status ?? {};
  const now = ctx.now().toISOString();
  const previous = status.verification?.token === token ? status.verification : undefined;
  const started: BackupVerification = previous ?? { token, phase: 'Running', startTime: now };
  const ended = (verification: BackupVerification, verified: boolean): { status: BackupStatus } => ({
    status: {
      ...status,
      verification: { ...verification, completionTime: now },
      conditions: setCondition(
        status.conditions,
        {
          type: VERIFIED,
          status: verified ? 'True' : 'False',
          reason: verified ? 'DataVerified' : 'VerificationFailed',
          message: verification.message ?? '',
        },
        now,
      ),
    },
  });
  const locationName = backup.spec.backupLocation ?? '';
  const location = ctx.cache.locations.get(locationName);
  const copies = (status.volumes ?? []).flatMap((volume, index) =>
    volume.dataCopy?.phase === 'Completed' ? [{ volume, index, manifest: volume.dataCopy.manifest }] : [],
  );
  const refused = (message: string) => ended({ ...started, phase: 'Failed', message }, false);
  if (backup.spec.syncedFrom !== undefined) {
    return refused(
      "a synced Backup is verified on the cluster that took it, whose movers hold its location's key",
    );
  }
  if (copies.length === 0) return refused('the Backup holds no copy of its volumes in a bucket to verify');
  if (location === undefined) return refused(`BackupLocation ${locationName} does not exist`);
  if (ctx.mover.image === '') return refused('the operator has no data mover image (mover.image)');

  const volumes: VolumeVerification[] = [];
  let recheckMs = Infinity;
  for (const { volume, index, manifest } of copies) {
    const recorded = previous?.volumes?.find((entry) => entry.pvcName === volume.pvcName);
    const run: VolumeVerification = recorded ?? {
      pvcName: volume.pvcName,
      manifest,
      phase: 'Pending',
      attempts: 0,
    };
    if (run.phase === 'Completed') {
      volumes.push(run);
      continue;
    }
    const step = await stepMoverRun(ctx, {
      attempts: run.attempts ?? 0,
      podName: podNameOf(backup, token, index),
      pod: {
        labels: moverLabels(backup),
        location,
        operation: 'verify',
        manifest,
      },
      prepare: () => Promise.resolve(undefined),
    });
    if ('problem' in step) {
      await removeVerifiers(ctx, backup, token, [...volumes, run]);
      return ended(
        {
          ...started,
          phase: 'Failed',
          volumes: [...volumes, run],
          message: `${volume.pvcName}: ${step.problem}`,
        },
        false,
      );
    }
    const attempt = { attempts: step.attempts, moverPod: step.moverPod };
    if (step.phase === 'Completed') {
      // Made anew: the rate and time left of the running mover do not outlive it.
      volumes.push({
        pvcName: run.pvcName,
        manifest: run.manifest,
        ...attempt,
        phase: 'Completed',
        message: `verified in ${step.result.seconds.toFixed(1)} s`,
        ...transferFigures(step.result.progress),
        completionTime: now,
      });
      continue;
    }
    const { progress } = step;
    volumes.push({
      ...run,
      ...attempt,
      phase: step.phase,
      message: step.message,
      ...(progress === undefined ? {} : transferFigures(progress.progress, progress)),
    });
    recheckMs = Math.min(recheckMs, step.recheckMs ?? Infinity);
  }
  const total = (pick: (volume: VolumeVerification) => number | undefined): number =>
    volumes.reduce((sum, volume) => sum + (pick(volume) ?? 0), 0);
  const done = volumes.filter((volume) => volume.phase === 'Completed').length;
  const verification: BackupVerification = {
    ...started,
    volumes,
    bytesChecked: total((volume) => volume.bytesDone),
  };
  if (done < volumes.length) {
    return {
      status: {
        ...status,
        verification: { ...verification, message: `${done}/${volumes.length} volume(s) verified` },
      },
      ...(Number.isFinite(recheckMs) ? { requeueAfterMs: recheckMs } : {}),
    };
  }
  await removeVerifiers(ctx, backup, token, volumes);
  const seconds = (Date.parse(now) - Date.parse(started.startTime ?? now)) / 1000;
  return ended(
    {
      ...verification,
      phase: 'Verified',
      message: `${volumes.length} volume(s): ${verification.bytesChecked ?? 0} bytes of files read back from BackupLocation ${locationName} and authenticated in ${seconds.toFixed(0)} s`,
    },
    true,
  );
}

/** Deletes the verification movers of `token` (those already gone are skipped). */
export async function removeVerifiers(
  ctx: BackupContext,
  backup: Backup,
  token: string | undefined = backup.status?.verification?.token,
  volumes: readonly VolumeVerification[] = backup.status?.verification?.volumes ?? [],
): Promise<void> {
  if (token === undefined) return;
  for (const volume of volumes) {
    const index = (backup.status?.volumes ?? []).findIndex((entry) => entry.pvcName === volume.pvcName);
    await deleteMoverPods(ctx.client, ctx.namespace, volume.attempts ?? 0, podNameOf(backup, token, index));
  }
}
