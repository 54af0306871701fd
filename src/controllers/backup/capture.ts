// The first step of a backup: find the deployment and its volumes, choose the snapshot class,
// and gather everything a restore will need. The reconcile that captures also requests the
// snapshots (snapshot.ts) and writes both at once.

import { annotations, BACKUP_FORMAT_CAPABILITIES, labels } from '../../api/constants.js';
import type { Backup, BackupStatus, BackupVolume } from '../../api/generated/types.js';
import type { PersistentVolumeClaim, VolumeSnapshotClass } from '../../api/kubernetes.js';
import { imageCapabilitiesOf } from '../../dataservices/capabilities.js';
import { adapterFor } from '../../dataservices/index.js';
import { boundedName, shortHash } from '../../naming.js';
import { resources } from '../../runtime/resources.js';
import { advance, fail } from '../shared/outcome.js';
import type { BackupContext, BackupOutcome } from './context.js';

const DEFAULT_CLASS_ANNOTATION = 'snapshot.storage.kubernetes.io/is-default-class';

/** The backup started (InProgress, with all a restore will need), or failed saying what is missing. */
export async function capture(ctx: BackupContext, backup: Backup): Promise<BackupOutcome> {
  const namespace = backup.metadata.namespace ?? '';
  const start: BackupStatus = {
    // Set at the first retried error, if there was one: the deadline runs from then.
    startTime: backup.status?.startTime ?? ctx.now().toISOString(),
    ...(backup.metadata.generation === undefined ? {} : { observedGeneration: backup.metadata.generation }),
  };
  const ref = backup.spec.deployment;
  const adapter = adapterFor(ref.kind);
  if (adapter === undefined) {
    return fail('BackupInternalError', `deployments of kind ${ref.kind ?? ''} are not supported`, start);
  }
  const deployment = await ctx.client.get(adapter.resource, ref.name, namespace);
  if (deployment === undefined) {
    return fail(
      'DeploymentNotFound',
      `${adapter.kind} ${namespace}/${ref.name} does not exist; a Backup must live in the namespace of the deployment it backs up.`,
      start,
    );
  }
  const claimNames = adapter.volumeClaimNames(deployment);
  if (claimNames.length === 0) {
    return fail(
      'DeploymentHasNoVolumes',
      `${adapter.kind} ${ref.name} has no volume claim templates, so there is nothing to snapshot.`,
      start,
    );
  }
  const claims: PersistentVolumeClaim[] = [];
  for (const name of claimNames) {
    const claim = await ctx.client.get(resources.persistentVolumeClaims, name, namespace);
    if (claim?.status?.phase !== 'Bound') {
      return fail(
        'DeploymentHasNoVolumes',
        `PersistentVolumeClaim ${namespace}/${name} of ${adapter.kind} ${ref.name} is ${claim === undefined ? 'missing' : 'not Bound'}; back up once every replica has its volume.`,
        start,
      );
    }
    claims.push(claim);
  }

  const classes = await snapshotClasses(ctx, backup, claims);
  if ('problem' in classes) return fail('VolumeSnapshotClassNotFound', classes.problem, start);

  const uid = backup.metadata.uid ?? '';
  const volumes: BackupVolume[] = claims.map((claim) => {
    const pvcName = claim.metadata.name ?? '';
    const chosen = classes.byClaim.get(pvcName);
    return {
      pvcName,
      volumeSnapshotName: boundedName(backup.metadata.name ?? '', pvcName, shortHash([uid, pvcName], 5)),
      ...(chosen === undefined
        ? {}
        : { driver: chosen.driver, volumeSnapshotClassName: chosen.metadata.name ?? '' }),
    };
  });
  const manifest = adapter.capture(deployment);
  const message = `snapshotting ${volumes.length} volume(s) of ${adapter.kind} ${ref.name}`;
  return advance('InProgress', message, {
    ...start,
    volumes,
    backupCapability: { ...BACKUP_FORMAT_CAPABILITIES },
    dataServiceDeploymentMetaData: {
      name: ref.name,
      customResourceName: deployment.metadata.name ?? ref.name,
      targetClusterName: ctx.config.clusterName,
      namespaceName: namespace,
      tlsEnabled: deployment.metadata.annotations?.[annotations.tlsEnabled] === 'true',
      dataServiceName: deployment.metadata.labels?.[labels.dataServiceName] ?? '',
      image: adapter.image(manifest) ?? '',
      replicas: adapter.replicas(manifest),
      imageCapabilities: imageCapabilitiesOf(deployment),
    },
    manifest,
  });
}

/**
 * The snapshot class for each claim: the one the spec names, else the one its backup location
 * names, else the default of its CSI driver.
 */
async function snapshotClasses(
  ctx: BackupContext,
  backup: Backup,
  claims: PersistentVolumeClaim[],
): Promise<{ byClaim: Map<string, VolumeSnapshotClass> } | { problem: string }> {
  const { items } = await ctx.client.list(resources.volumeSnapshotClasses);
  const location =
    backup.spec.backupLocation === undefined
      ? undefined
      : ctx.cache.locations.get(backup.spec.backupLocation);
  const fromLocation = backup.spec.volumeSnapshotClassName === undefined;
  const named = backup.spec.volumeSnapshotClassName ?? location?.spec.volumeSnapshotClassName;
  const byClaim = new Map<string, VolumeSnapshotClass>();
  const drivers = new Map<string, string>();
  for (const claim of claims) {
    const className = claim.spec.storageClassName ?? '';
    if (className === '' && named === undefined) {
      // Without a class there is no provisioner to find the default snapshot class by.
      return {
        problem: `PersistentVolumeClaim ${claim.metadata.name ?? ''} names no storageClassName, so its CSI driver and default VolumeSnapshotClass cannot be told; set spec.volumeSnapshotClassName on the Backup.`,
      };
    }
    let driver = drivers.get(className);
    if (driver === undefined) {
      driver =
        className === ''
          ? ''
          : ((await ctx.client.get(resources.storageClasses, className))?.provisioner ?? '');
      drivers.set(className, driver);
    }
    const chosen =
      named === undefined
        ? items.find(
            (c) => c.driver === driver && c.metadata.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true',
          )
        : items.find((c) => c.metadata.name === named);
    if (chosen === undefined) {
      return {
        problem:
          named === undefined
            ? `no default VolumeSnapshotClass for CSI driver "${driver}" (volume ${claim.metadata.name ?? ''}); set spec.volumeSnapshotClassName or mark a class with ${DEFAULT_CLASS_ANNOTATION}: "true".`
            : fromLocation
              ? `VolumeSnapshotClass "${named}" named by BackupLocation ${location?.metadata.name ?? ''} does not exist; create it or fix the location's spec.volumeSnapshotClassName.`
              : `VolumeSnapshotClass "${named}" does not exist; create it or fix spec.volumeSnapshotClassName.`,
      };
    }
    // A claim without a class is taken to be on the named class's driver: nothing says otherwise.
    if (driver !== '' && chosen.driver !== driver) {
      return {
        problem: `VolumeSnapshotClass "${chosen.metadata.name ?? ''}" is for driver "${chosen.driver}" but volume ${claim.metadata.name ?? ''} is on "${driver}".`,
      };
    }
    byClaim.set(claim.metadata.name ?? '', chosen);
  }
  return { byClaim };
}
