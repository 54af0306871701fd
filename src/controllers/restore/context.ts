// Everything a restore step may use. Reads come from informer caches; the client is for writes
// (and for the few authoritative reads a step cannot take from a cache).

import { labels, MANAGED_BY } from '../../api/constants.js';
import type {
  Backup,
  BackupLocation,
  BackupVolume,
  ReferenceGrant,
  RestorabilityMatrix,
  Restore,
  RestoreErrorCode,
  RestorePhase,
  VolumeRestoreStatus,
} from '../../api/generated/types.js';
import type {
  Event,
  Labels,
  PersistentVolumeClaim,
  Pod,
  StatefulSet,
  StorageClass,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../../api/kubernetes.js';
import type { DataServiceAdapter, VolumePlan } from '../../dataservices/adapter.js';
import { toldOnlyByEvents, whyNotReady } from '../../dataservices/diagnosis.js';
import { adapterFor } from '../../dataservices/index.js';
import type { Manifest } from '../../dataservices/manifest.js';
import type { ObjectClient } from '../../runtime/client.js';
import type { Cache } from '../../runtime/cache.js';
import { resources } from '../../runtime/resources.js';
import type { MoverConfig } from '../../storage/data-mover.js';
import { provisioningVerdict, type ProvisioningVerdict } from '../../storage/provisioning.js';
import {
  bindsOnFirstConsumer,
  SELECTED_NODE_ANNOTATION,
  storageClassOf,
} from '../../storage/storage-classes.js';
import { missingGrant, referencePermitted } from './grants.js';
import { backupKeyOf, byAttempt, eventsByInvolvedObject } from './indexes.js';
import type { StatusUpdate, StepOutcome } from './outcome.js';
import { phaseEnteredAt } from './status.js';
import type { ConcurrencySlots } from './slots.js';

export interface RestoreConfig {
  /** Restores allowed in the active phases at once. */
  maxConcurrentRestores: number;
  /** One namespace's share of them. */
  maxConcurrentRestoresPerNamespace: number;
  /** Refuse data services the RestorabilityMatrix does not list. */
  strictRestorability: boolean;
  /** How long a volume may keep failing to provision (the provisioner retries) before it fails. */
  provisioningFailureGraceSeconds: number;
  /** How long each non-terminal phase may take before the restore fails with PhaseTimeout. */
  phaseTimeoutSeconds: Record<Exclude<RestorePhase, 'Successful' | 'Failed'>, number>;
}

export interface RestoreCaches {
  restores: Cache<Restore>;
  backups: Cache<Backup>;
  matrices: Cache<RestorabilityMatrix>;
  claims: Cache<PersistentVolumeClaim>;
  /** The pods of restored deployments (their template carries the attempt's labels). */
  pods: Cache<Pod>;
  statefulSets: Cache<StatefulSet>;
  snapshots: Cache<VolumeSnapshot>;
  contents: Cache<VolumeSnapshotContent>;
  events: Cache<Event>;
  locations: Cache<BackupLocation>;
  storageClasses: Cache<StorageClass>;
  referenceGrants: Cache<ReferenceGrant>;
  /** Data mover pods in the operator's namespace (a restore's fill its volumes from the bucket). */
  movers: Cache<Pod>;
}

export interface RestoreContext {
  client: ObjectClient;
  cache: RestoreCaches;
  config: RestoreConfig;
  slots: ConcurrencySlots;
  /** The operator's namespace, where backup locations' credentials are read and data movers run. */
  namespace: string;
  mover: MoverConfig;
  now(): Date;
}

/** The labels every object of a restore attempt carries: cleanup and listing select on them. */
export function attemptLabels(restore: Restore, backup: Backup, deploymentName: string): Labels {
  const project = restore.metadata.labels?.[labels.project] ?? backup.metadata.labels?.[labels.project];
  return {
    [labels.restore]: restore.metadata.name ?? '',
    [labels.restoreAttempt]: restore.status?.customResourceName ?? '',
    [labels.backup]: backup.metadata.name ?? '',
    [labels.deployment]: deploymentName,
    ...(project === undefined ? {} : { [labels.project]: project }),
  };
}

/** Scaffolding (snapshots, contents) is Snapback's own; the deployment and PVCs become the user's. */
export function scaffoldingLabels(restore: Restore, backup: Backup, deploymentName: string): Labels {
  return { ...attemptLabels(restore, backup, deploymentName), [labels.managedBy]: MANAGED_BY };
}

export interface PlannedVolume extends VolumePlan {
  index: number;
  source: BackupVolume;
}

/**
 * What RestoringCloudSnap found of a volume: its status, when to look again if no event comes
 * first (a grace period ending, a volume moving between claims) and whether the storage or the
 * mover retries after an error; or why it cannot be restored; or its claim's name taken, which
 * fails the restore as a conflict.
 */
export type VolumeProgress =
  | (VolumeRestoreStatus & { recheckAt?: number; retrying?: true })
  | { problem: string }
  | { conflict: StepOutcome };

/** What the current attempt restores, recomputed from the Backup the attempt resolved. */
export interface RestorePlan {
  backup: Backup;
  adapter: DataServiceAdapter;
  manifest: Manifest;
  deploymentName: string;
  volumes: PlannedVolume[];
}

/** Why there can be no plan: one error code per cause, whatever the phase that finds it. */
export interface PlanProblem {
  problem: string;
  errorCode: RestoreErrorCode;
}

/** Until the data is in the restore's volumes, a withdrawn grant stops the restore. */
const GRANT_NEEDED_IN: readonly (RestorePhase | undefined)[] = [
  'Initializing',
  'Pending',
  'RestoringCloudSnap',
];

/** Either the plan, or why there can be none (for a Failed outcome). */
export function planRestore(ctx: RestoreContext, restore: Restore): RestorePlan | PlanProblem {
  const requested = backupKeyOf(restore);
  if (
    GRANT_NEEDED_IN.includes(restore.status?.phase) &&
    !referencePermitted(ctx.cache.referenceGrants, restore, requested)
  ) {
    return { errorCode: 'ReferenceNotGranted', problem: missingGrant(restore, requested) };
  }
  const ref = restore.status?.backup ?? requested;
  const backup = ctx.cache.backups.get(`${ref.namespace ?? ''}/${ref.name ?? ''}`);
  if (backup === undefined) {
    return {
      errorCode: 'BackupNotFound',
      problem: `Backup ${ref.namespace ?? ''}/${ref.name ?? ''} no longer exists`,
    };
  }
  const status = backup.status ?? {};
  const manifest = status.manifest as Manifest | undefined;
  if (manifest === undefined) {
    return {
      errorCode: 'IncompatibleBackup',
      problem: `Backup ${backup.metadata.name ?? ''} records no deployment manifest`,
    };
  }
  const adapter = adapterFor(manifest.kind);
  if (adapter === undefined) {
    return {
      errorCode: 'IncompatibleBackup',
      problem: `deployments of kind ${manifest.kind ?? '(none)'} cannot be restored by this operator`,
    };
  }
  const deploymentName =
    restore.spec.destination?.deploymentName ??
    status.dataServiceDeploymentMetaData?.name ??
    manifest.metadata.name ??
    '';
  const wanted = restore.spec.source.cloudSnapId;
  const sources = (status.volumes ?? []).filter(
    (volume) => wanted === undefined || volume.cloudSnapId === wanted,
  );
  const plans = adapter.planVolumes(
    manifest,
    sources.map((volume) => volume.pvcName),
    deploymentName,
  );
  const volumes = plans.flatMap((plan, index) => {
    const source = sources.find((volume) => volume.pvcName === plan.sourcePvcName);
    return source === undefined ? [] : [{ ...plan, index, source }];
  });
  return { backup, adapter, manifest, deploymentName, volumes };
}

/**
 * How long a deployment may be unhealthy before the restore looks at its pods for the reason, and
 * a pod or claim silent before its Events are read.
 */
const DIAGNOSE_AFTER_MS = 20_000;
/** While it is, how often the reason is looked at again: pods do not wake the restore. */
const DIAGNOSE_EVERY_MS = 15_000;
/** The diagnosis names one cause: Events are read for this many of the objects only they explain. */
const MAX_EVENT_READS = 3;

/**
 * Why the restored deployment is not healthy, in the words of its own objects (a pod that cannot be
 * scheduled, an image that cannot be pulled, a crashing container, a claim's last Warning), once it
 * has been unhealthy for a while. Pods and claims come from the caches; Events are read only for
 * the objects whose status says nothing (toldOnlyByEvents), by uid, so a deployment whose pods'
 * status explains it costs the API server nothing.
 */
export async function whyUnhealthy(
  ctx: RestoreContext,
  restore: Restore,
  health: string,
): Promise<{ message: string; requeueAfterMs?: number }> {
  const entered = Date.parse(phaseEnteredAt(restore.status ?? {}) ?? '');
  const unhealthyFor = Number.isNaN(entered) ? 0 : ctx.now().getTime() - entered;
  // Pods do not wake the restore: it comes back by itself when the look is due.
  if (unhealthyFor < DIAGNOSE_AFTER_MS)
    return { message: health, requeueAfterMs: DIAGNOSE_AFTER_MS - unhealthyFor };
  const attempt = restore.status?.customResourceName ?? '';
  const pods = ctx.cache.pods.byIndex(byAttempt, attempt);
  const claims = ctx.cache.claims.byIndex(byAttempt, attempt);
  // A claim left for its first consumer is Pending by design until a pod on a node wants it.
  const dueToBind = claims.filter((claim) => {
    const storageClass = storageClassOf(claim, ctx.cache.storageClasses);
    return (
      storageClass === undefined ||
      !bindsOnFirstConsumer(storageClass) ||
      claim.metadata.annotations?.[SELECTED_NODE_ANNOTATION] !== undefined
    );
  });
  const silent = toldOnlyByEvents({
    pods,
    claims: dueToBind,
    quietSince: new Date(ctx.now().getTime() - DIAGNOSE_AFTER_MS),
  }).slice(0, MAX_EVENT_READS);
  const namespace = restore.metadata.namespace ?? '';
  const lists = await Promise.all(
    silent.map((object) =>
      ctx.client.list(resources.events, {
        namespace,
        fieldSelector: `involvedObject.uid=${object.metadata.uid ?? ''},type=Warning`,
      }),
    ),
  );
  const cause = whyNotReady({ pods, claims, events: lists.flatMap((list) => list.items) });
  return {
    message: cause === undefined ? health : `${health}; ${cause}`,
    requeueAfterMs: DIAGNOSE_EVERY_MS,
  };
}

/** How provisioning of a restored claim goes, from the provisioner's events about it. */
export function claimProvisioning(ctx: RestoreContext, claim: PersistentVolumeClaim): ProvisioningVerdict {
  const { namespace = '', name = '', uid = '' } = claim.metadata;
  return provisioningVerdict(
    ctx.cache.events.byIndex(eventsByInvolvedObject, `${namespace}/${name}`),
    uid,
    ctx.now(),
    ctx.config.provisioningFailureGraceSeconds * 1000,
  );
}

export const notRestoredFrom = (volume: { pvcName: string; cloudSnapId?: string }): string =>
  `volume ${volume.pvcName} could not be restored from snapshot ${volume.cloudSnapId ?? ''}`;

/**
 * Why a volume left WaitingForFirstConsumer will not bind: its provisioning, begun once the restored
 * pod was scheduled, failed for good. Undefined while every such volume binds or may still.
 */
export function deferredProvisioningFailure(ctx: RestoreContext, restore: Restore): string | undefined {
  const namespace = restore.metadata.namespace ?? '';
  for (const volume of restore.status?.volumes ?? []) {
    if (volume.phase !== 'WaitingForFirstConsumer') continue;
    const claim = ctx.cache.claims.get(`${namespace}/${volume.pvcName}`);
    if (claim === undefined || claim.status?.phase === 'Bound') continue;
    const verdict = claimProvisioning(ctx, claim);
    if (verdict.kind === 'failed') return `${notRestoredFrom(volume)}: ${verdict.message}`;
  }
  return undefined;
}

/**
 * status.volumes with the volumes RestoringCloudSnap left WaitingForFirstConsumer whose claims have
 * bound since (the restored pods were scheduled), for the step that saw it to write; undefined when
 * none has.
 */
export function volumesBoundSince(ctx: RestoreContext, restore: Restore): StatusUpdate | undefined {
  const bound = new Set(
    ctx.cache.claims
      .byIndex(byAttempt, restore.status?.customResourceName ?? '')
      .filter((claim) => claim.status?.phase === 'Bound')
      .map((claim) => claim.metadata.name),
  );
  const nowBound = (volume: VolumeRestoreStatus): boolean =>
    volume.phase === 'WaitingForFirstConsumer' && bound.has(volume.pvcName);
  const volumes = restore.status?.volumes ?? [];
  if (!volumes.some(nowBound)) return undefined;
  return {
    volumes: volumes.map((volume) => {
      if (!nowBound(volume)) return volume;
      // A Bound volume has no reason, as RestoringCloudSnap writes it.
      const { reason: _waitingFor, ...rest } = volume;
      return { ...rest, phase: 'Bound' };
    }),
  };
}

/**
 * The restored deployment as the cache has it. The cache is fed by another watch than the
 * restore's own, so right after the step that created the deployment it may not hold it yet:
 * a miss is settled with one authoritative GET. 'notCachedYet' means it exists (the one this
 * attempt made) and its watch event is on the way; undefined means it is gone or was replaced.
 */
export async function restoredDeployment(
  ctx: RestoreContext,
  restore: Restore,
  plan: RestorePlan,
): Promise<StatefulSet | 'notCachedYet' | undefined> {
  const namespace = restore.metadata.namespace ?? '';
  const made = restore.status?.destination?.deploymentUid;
  const cached = ctx.cache.statefulSets.get(`${namespace}/${plan.deploymentName}`);
  // A StatefulSet of that name with another uid replaced the one this attempt made.
  if (cached !== undefined) return made === undefined || cached.metadata.uid === made ? cached : undefined;
  const live = await ctx.client.get(plan.adapter.resource, plan.deploymentName, namespace);
  return live !== undefined && live.metadata.uid === made ? 'notCachedYet' : undefined;
}

/** Switches the restored deployment to normal mode: one merge patch, the same however often sent. */
export async function switchToNormalMode(
  ctx: RestoreContext,
  restore: Restore,
  plan: RestorePlan,
): Promise<void> {
  await ctx.client.mergePatch(
    plan.adapter.resource,
    plan.deploymentName,
    plan.adapter.normalModePatch(plan.manifest),
    { namespace: restore.metadata.namespace ?? '' },
  );
}
