// Builders for the objects restore tests put into a FakeClient, and the RestoreContext the real
// wiring (src/controllers/restore/setup.ts, src/operator.ts) builds: the same caches, selected
// and indexed as the informers are, over the fake, with a clock the test moves.
//
// The defaults describe one world: Backup demo/pg-backup of StatefulSet pg (3 replicas, claim
// template "data"), restored by Restore demo/pg-restore into StatefulSet pg-restored, whose
// claims are data-pg-restored-<ordinal>.

import { API_VERSION, finalizers, GROUP, labels, MANAGED_BY } from '../../src/api/constants.js';
import type {
  Backup,
  BackupLocation,
  ReferenceGrant,
  PhaseTransition,
  BackupStatus,
  BackupVolume,
  Restore,
  RestorePhase,
  RestoreSpec,
  RestoreStatus,
  VolumeRestoreStatus,
} from '../../src/api/generated/types.js';
import type {
  Event,
  KubeObject,
  Labels,
  ObjectMeta,
  PersistentVolumeClaim,
  Pod,
  Secret,
  StatefulSet,
  StorageClass,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../../src/api/kubernetes.js';
import type {
  RestoreCaches,
  RestoreConfig,
  RestoreContext,
  RestorePlan,
} from '../../src/controllers/restore/context.js';
import { defaultConfig } from '../../src/config.js';
import { planRestore } from '../../src/controllers/restore/context.js';
import { grantsByNamespace } from '../../src/controllers/restore/grants.js';
import {
  backupKeyOf,
  byAttempt,
  eventsByInvolvedObject,
  restoresByBackup,
  restoresByPhase,
} from '../../src/controllers/restore/indexes.js';
import type { StepOutcome } from '../../src/controllers/restore/outcome.js';
import { ConcurrencySlots, waitingForSlotByNamespace } from '../../src/controllers/restore/slots.js';
import { keyOf } from '../../src/controllers/setup.js';
import { HAPPY_PATH } from '../../src/controllers/restore/transitions.js';
import type { Manifest } from '../../src/dataservices/manifest.js';
import { customResourceName } from '../../src/naming.js';
import { SELECTED_NODE_ANNOTATION } from '../../src/storage/storage-classes.js';
import type { MoverConfig } from '../../src/storage/data-mover.js';
import type { Cache } from '../../src/runtime/cache.js';
import { resources, type ResourceType } from '../../src/runtime/resources.js';
import { FakeClient, type FakeCache } from './fake-client.js';

// --- the world's names ------------------------------------------------------------------------

export const NAMESPACE = 'demo';
export const OPERATOR_NAMESPACE = 'snapback-system';
export const BACKUP_NAME = 'pg-backup';
export const SOURCE_DEPLOYMENT = 'pg';
export const RESTORE_NAME = 'pg-restore';
export const RESTORE_UID = '0b7c8a0e-1111-4111-8111-111111111111';
export const DESTINATION = 'pg-restored';
export const CLAIM_TEMPLATE = 'data';
export const DRIVER = 'csi.example.com';
export const SNAPSHOT_CLASS = 'csi-snapclass';

/** The claim the restored deployment mounts for `ordinal`: data-pg-restored-0, ... */
export const destinationClaim = (ordinal = 0, deployment = DESTINATION): string =>
  `${CLAIM_TEMPLATE}-${deployment}-${ordinal}`;

/** The claim the backed-up deployment had for `ordinal`: data-pg-0, ... */
export const sourceClaim = (ordinal = 0, deployment = SOURCE_DEPLOYMENT): string =>
  `${CLAIM_TEMPLATE}-${deployment}-${ordinal}`;

export const handleOf = (ordinal: number): string => `snap-handle-${ordinal}`;

// --- time ---------------------------------------------------------------------------------------

export const T0 = new Date('2030-03-01T12:00:00.000Z');

/** A clock the test moves; `now` is what the context, the fake and the slots read. */
export interface TestClock {
  now: () => Date;
  set: (at: Date | string) => void;
  advance: (seconds: number) => void;
  /** The time `seconds` from now (negative: ago), as an RFC 3339 string. */
  at: (seconds: number) => string;
}

export function testClock(start: Date = T0): TestClock {
  let time = start.getTime();
  return {
    now: () => new Date(time),
    set: (at) => {
      time = new Date(at).getTime();
    },
    advance: (seconds) => {
      time += seconds * 1000;
    },
    at: (seconds) => new Date(time + seconds * 1000).toISOString(),
  };
}

// --- the context ---------------------------------------------------------------------------------

/** The operator's defaults, with a limit of 5 restores at once. */
export const TEST_CONFIG: RestoreConfig = { ...defaultConfig({}).restore, maxConcurrentRestores: 5 };

/** The caches as FakeCaches, so a test can freeze one (a watch that has not delivered yet). */
export type TestCaches = {
  [K in keyof RestoreCaches]: RestoreCaches[K] extends Cache<infer T extends KubeObject>
    ? FakeCache<T>
    : never;
};

export interface TestRestoreContext extends RestoreContext {
  cache: TestCaches;
}

export interface RestoreContextOverrides {
  now?: () => Date;
  config?: Partial<Omit<RestoreConfig, 'phaseTimeoutSeconds'>> & {
    phaseTimeoutSeconds?: Partial<RestoreConfig['phaseTimeoutSeconds']>;
  };
  namespace?: string;
  slots?: ConcurrencySlots;
  mover?: Partial<MoverConfig>;
}

/** The data mover's settings a test operator runs with. */
export const TEST_MOVER: MoverConfig = {
  image: 'snapback:test',
  imagePullPolicy: 'IfNotPresent',
  nodeSelector: {},
  tolerations: [],
  resources: {},
  workers: 0,
};

/**
 * A RestoreContext over `fake` with the caches src/operator.ts selects and the indexes
 * src/controllers/restore/setup.ts adds. The caches are live: they show every write at once.
 */
export function restoreContext(
  fake: FakeClient,
  overrides: RestoreContextOverrides = {},
): TestRestoreContext {
  const now = overrides.now ?? ((): Date => new Date());
  const config: RestoreConfig = {
    ...TEST_CONFIG,
    ...overrides.config,
    phaseTimeoutSeconds: { ...TEST_CONFIG.phaseTimeoutSeconds, ...overrides.config?.phaseTimeoutSeconds },
  };
  const cache: TestCaches = {
    restores: fake.cache(resources.restores, {
      indexes: [restoresByPhase, restoresByBackup, waitingForSlotByNamespace],
    }),
    backups: fake.cache(resources.backups),
    matrices: fake.cache(resources.restorabilityMatrices),
    locations: fake.cache(resources.backupLocations),
    claims: fake.cache(resources.persistentVolumeClaims, {
      labelSelector: labels.restore,
      indexes: [byAttempt],
    }),
    statefulSets: fake.cache(resources.statefulSets, {
      labelSelector: labels.restore,
      indexes: [byAttempt],
    }),
    pods: fake.cache(resources.pods, { labelSelector: labels.restore, indexes: [byAttempt] }),
    snapshots: fake.cache(resources.volumeSnapshots, {
      labelSelector: labels.backup,
      indexes: [byAttempt],
    }),
    contents: fake.cache(resources.volumeSnapshotContents, {
      labelSelector: labels.restore,
      indexes: [byAttempt],
    }),
    events: fake.cache(resources.events, {
      fieldSelector: 'involvedObject.kind=PersistentVolumeClaim,type=Warning,reason=ProvisioningFailed',
      indexes: [eventsByInvolvedObject],
    }),
    storageClasses: fake.cache(resources.storageClasses),
    referenceGrants: fake.cache(resources.referenceGrants, { indexes: [grantsByNamespace] }),
    movers: fake.cache(resources.pods, { labelSelector: labels.moverFor }),
  };
  const slots =
    overrides.slots ??
    new ConcurrencySlots(
      cache.restores,
      () => ({ total: config.maxConcurrentRestores, perNamespace: config.maxConcurrentRestoresPerNamespace }),
      () => now().getTime(),
    );
  return {
    client: fake,
    cache,
    config,
    slots,
    namespace: overrides.namespace ?? OPERATOR_NAMESPACE,
    mover: { ...TEST_MOVER, ...overrides.mover },
    now,
  };
}

/** A fake API server and a context over it, on one test clock. */
export function restoreWorld(overrides: Omit<RestoreContextOverrides, 'now'> = {}): {
  fake: FakeClient;
  clock: TestClock;
  ctx: TestRestoreContext;
} {
  const clock = testClock();
  const fake = new FakeClient({ now: clock.now });
  return { fake, clock, ctx: restoreContext(fake, { ...overrides, now: clock.now }) };
}

/** The plan the reconciler would compute; throws on a plan problem. */
export function planOf(ctx: RestoreContext, restore: Restore): RestorePlan {
  const plan = planRestore(ctx, restore);
  if ('problem' in plan) throw new Error(`no plan: ${plan.errorCode}: ${plan.problem}`);
  return plan;
}

// --- Backups -------------------------------------------------------------------------------------

export interface ManifestOptions {
  name?: string;
  replicas?: number;
  template?: string;
  storage?: string;
  storageClassName?: string;
  image?: string;
}

/** A StatefulSet as a Backup records it (sanitized): one volumeClaimTemplate. */
export function statefulSetManifest(options: ManifestOptions = {}): Manifest {
  const name = options.name ?? SOURCE_DEPLOYMENT;
  const podLabels = { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': name };
  const sts: StatefulSet = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, namespace: NAMESPACE, labels: podLabels },
    spec: {
      replicas: options.replicas ?? 3,
      serviceName: name,
      selector: { matchLabels: podLabels },
      template: {
        metadata: { labels: podLabels },
        spec: { containers: [{ name: 'postgres', image: options.image ?? 'postgres:16.4' }] },
      },
      volumeClaimTemplates: [
        {
          metadata: { name: options.template ?? CLAIM_TEMPLATE },
          spec: {
            accessModes: ['ReadWriteOnce'],
            storageClassName: options.storageClassName ?? 'fast',
            resources: { requests: { storage: options.storage ?? '10Gi' } },
          },
        },
      ],
    },
  };
  return sts as unknown as Manifest;
}

/** The record of the snapshot of claim `ordinal` of the backed-up deployment. */
export function backupVolume(ordinal = 0, overrides: Partial<BackupVolume> = {}): BackupVolume {
  return {
    pvcName: sourceClaim(ordinal),
    volumeSnapshotName: `${BACKUP_NAME}-snap-${ordinal}`,
    cloudSnapId: handleOf(ordinal),
    sizeBytes: 10 * 2 ** 30,
    driver: DRIVER,
    volumeSnapshotClassName: SNAPSHOT_CLASS,
    ...overrides,
  };
}

export interface BackupOptions {
  name?: string;
  namespace?: string;
  /** Volumes recorded: this many, ordinals 0..n-1. Default 1. */
  volumeCount?: number;
  volumes?: BackupVolume[];
  manifest?: Manifest | null;
  status?: Partial<BackupStatus>;
  spec?: Partial<Backup['spec']>;
  metadata?: Partial<ObjectMeta>;
}

/** A Completed Backup of StatefulSet pg with its manifest and volumes. */
export function completedBackup(options: BackupOptions = {}): Backup {
  const volumes =
    options.volumes ??
    Array.from({ length: options.volumeCount ?? 1 }, (_, ordinal) => backupVolume(ordinal));
  const manifest = options.manifest === undefined ? statefulSetManifest() : options.manifest;
  const status: BackupStatus = {
    phase: 'Completed',
    volumes,
    cloudSnapId: volumes[0]?.cloudSnapId,
    startTime: '2030-02-28T00:00:00Z',
    completionTime: '2030-02-28T00:05:00Z',
    backupCapability: { backup: 'v1' },
    dataServiceDeploymentMetaData: {
      name: SOURCE_DEPLOYMENT,
      customResourceName: SOURCE_DEPLOYMENT,
      namespaceName: options.namespace ?? NAMESPACE,
      dataServiceName: 'postgresql',
      image: 'postgres:16.4',
      replicas: 3,
      imageCapabilities: { pds_restore: 'v1' },
    },
    ...(manifest === null ? {} : { manifest }),
    ...options.status,
  };
  return {
    apiVersion: API_VERSION,
    kind: 'Backup',
    metadata: {
      name: options.name ?? BACKUP_NAME,
      namespace: options.namespace ?? NAMESPACE,
      labels: { [labels.deployment]: SOURCE_DEPLOYMENT },
      ...options.metadata,
    },
    spec: { deployment: { name: SOURCE_DEPLOYMENT }, ...options.spec },
    status,
  };
}

/** A Backup imported by backup sync from another cluster's record in `location`. */
export function syncedBackup(location = 'shared-store', options: BackupOptions = {}): Backup {
  return completedBackup({
    ...options,
    spec: {
      backupLocation: location,
      syncedFrom: { cluster: 'east', namespace: 'prod', name: BACKUP_NAME },
      ...options.spec,
    },
  });
}

export function backupLocation(
  name = 'shared-store',
  spec: Partial<BackupLocation['spec']> = {},
): BackupLocation {
  return {
    apiVersion: API_VERSION,
    kind: 'BackupLocation',
    metadata: { name },
    spec: { s3: { bucket: 'backups' }, credentialsSecretName: 'store-credentials', ...spec },
  };
}

/** A ReferenceGrant in `namespace` letting Restores of `from` read Backup `backup` (every Backup when absent). */
export function referenceGrant(namespace: string, from: string, backup?: string): ReferenceGrant {
  return {
    apiVersion: API_VERSION,
    kind: 'ReferenceGrant',
    metadata: { name: `to-${from}`, namespace },
    spec: {
      from: [{ group: GROUP, kind: 'Restore', namespace: from }],
      to: [{ group: GROUP, kind: 'Backup', ...(backup === undefined ? {} : { name: backup }) }],
    },
  };
}

export function secret(name: string, namespace: string, data: Record<string, string>): Secret {
  return { metadata: { name, namespace }, type: 'Opaque', data };
}

// --- Restores ------------------------------------------------------------------------------------

export interface RestoreOptions {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  backupName?: string;
  backupRef?: { namespace: string; name: string };
  /** spec.destination.deploymentName; null: none (the backed-up name is used). */
  deploymentName?: string | null;
  cloudSnapId?: string;
  volumesFrom?: RestoreSpec['source']['volumesFrom'];
  recreateToken?: string;
  podSchedulingConfig?: RestoreSpec['podSchedulingConfig'];
  /** Holds the restore finalizer (as every Restore past its first reconcile does). Default true. */
  finalizer?: boolean;
  deletionTimestamp?: string;
  status?: RestoreStatus;
}

/** A Restore of Backup pg-backup into pg-restored; no status unless given. */
export function restore(options: RestoreOptions = {}): Restore {
  const deploymentName = options.deploymentName === undefined ? DESTINATION : options.deploymentName;
  const source: RestoreSpec['source'] =
    options.backupRef === undefined
      ? { backupName: options.backupName ?? BACKUP_NAME }
      : { backupRef: options.backupRef };
  if (options.cloudSnapId !== undefined) source.cloudSnapId = options.cloudSnapId;
  if (options.volumesFrom !== undefined) source.volumesFrom = options.volumesFrom;
  return {
    apiVersion: API_VERSION,
    kind: 'Restore',
    metadata: {
      name: options.name ?? RESTORE_NAME,
      namespace: options.namespace ?? NAMESPACE,
      uid: options.uid ?? RESTORE_UID,
      generation: options.generation ?? 1,
      ...(options.finalizer === false ? {} : { finalizers: [finalizers.restore] }),
      ...(options.deletionTimestamp === undefined ? {} : { deletionTimestamp: options.deletionTimestamp }),
    },
    spec: {
      source,
      ...(deploymentName === null ? {} : { destination: { deploymentName } }),
      ...(options.podSchedulingConfig === undefined
        ? {}
        : { podSchedulingConfig: options.podSchedulingConfig }),
      ...(options.recreateToken === undefined ? {} : { recreateToken: options.recreateToken }),
    },
    ...(options.status === undefined ? {} : { status: options.status }),
  };
}

export interface RestoreInOptions extends Omit<RestoreOptions, 'status'> {
  /** When the phase was entered. Default: T0. */
  enteredAt?: string;
  /** When the attempt started (and earlier phases were entered). Default: enteredAt. */
  startedAt?: string;
  attempt?: number;
  /** The Backup the attempt resolved (its uid is recorded). */
  backup?: Backup;
  /** Volumes restored, ordinals 0..n-1. Default 1. */
  volumeCount?: number;
  /** Set once the deployment was created (phases after RestoringDataServiceDeploymentCR). */
  deploymentUid?: string;
  /** Fields of the status to replace. */
  status?: Partial<RestoreStatus>;
}

/** A Restore whose status is what the reconciler writes on entering `phase` of attempt 1. */
export function restoreIn(phase: RestorePhase, options: RestoreInOptions = {}): Restore {
  const base = restore(options);
  const enteredAt = options.enteredAt ?? T0.toISOString();
  const startedAt = options.startedAt ?? enteredAt;
  const attempt = options.attempt ?? 1;
  const reached: RestorePhase[] =
    phase === 'Failed' ? ['Initializing'] : HAPPY_PATH.slice(0, HAPPY_PATH.indexOf(phase) + 1);
  const after = (earlier: RestorePhase): boolean => reached.includes(earlier) && earlier !== phase;
  const history: PhaseTransition[] = reached.map((entered) => ({
    phase: entered,
    enteredAt: entered === phase ? enteredAt : startedAt,
  }));
  if (phase === 'Failed') history.push({ phase: 'Failed', enteredAt });
  const deploymentName = base.spec.destination?.deploymentName ?? SOURCE_DEPLOYMENT;
  const ref = backupKeyOf(base);
  const volumes: VolumeRestoreStatus[] = Array.from({ length: options.volumeCount ?? 1 }, (_, ordinal) => ({
    pvcName: destinationClaim(ordinal, deploymentName),
    cloudSnapId: handleOf(ordinal),
    phase: after('RestoringCloudSnap') ? 'Bound' : 'Pending',
  }));
  const status: RestoreStatus = {
    phase,
    attempt,
    customResourceName: customResourceName(base.metadata.name ?? '', base.metadata.uid ?? '', attempt),
    startedAt,
    observedGeneration: base.metadata.generation,
    ...(options.recreateToken === undefined ? {} : { observedRecreateToken: options.recreateToken }),
    phaseHistory: history,
    ...(phase === 'Initializing'
      ? {}
      : {
          backup: { namespace: ref.namespace, name: ref.name, uid: options.backup?.metadata.uid ?? '' },
          destination: {
            kind: 'StatefulSet',
            deploymentName,
            ...(options.deploymentUid === undefined ? {} : { deploymentUid: options.deploymentUid }),
          },
          volumes,
        }),
    ...(phase === 'Successful' ? { completedAt: enteredAt } : {}),
    ...options.status,
  };
  return { ...base, status };
}

/** A volume as RestoringCloudSnap leaves it under a WaitForFirstConsumer class named "fast". */
export const firstConsumerVolume = (ordinal = 0): VolumeRestoreStatus => ({
  pvcName: destinationClaim(ordinal),
  cloudSnapId: handleOf(ordinal),
  phase: 'WaitingForFirstConsumer',
  reason: 'binds when the restored pod is scheduled (StorageClass fast uses WaitForFirstConsumer)',
});

/** The labels the restore's attempt puts on what it creates (cleanup and the caches select on them). */
export function attemptLabelsOf(
  restoreObject: Restore,
  options: { backup?: string; deployment?: string } = {},
): Labels {
  return {
    [labels.restore]: restoreObject.metadata.name ?? '',
    [labels.restoreAttempt]: restoreObject.status?.customResourceName ?? '',
    [labels.backup]: options.backup ?? BACKUP_NAME,
    [labels.deployment]: options.deployment ?? DESTINATION,
  };
}

export const scaffoldingLabelsOf = (restoreObject: Restore): Labels => ({
  ...attemptLabelsOf(restoreObject),
  [labels.managedBy]: MANAGED_BY,
});

export const keyOfRestore = (restoreObject: Restore): string =>
  keyOf(restoreObject.metadata.namespace, restoreObject.metadata.name);

// --- what a restore creates, and what the cluster does with it ------------------------------------

export interface ClaimOptions {
  namespace?: string;
  uid?: string;
  labels?: Labels;
  phase?: 'Pending' | 'Bound' | 'Lost';
  storage?: string;
  snapshotName?: string;
  /** spec.storageClassName; undefined: none named (the cluster's default class applies). */
  storageClassName?: string;
  /** The node the scheduler selected for a WaitForFirstConsumer claim (its annotation). */
  selectedNode?: string;
}

export function claim(name: string, options: ClaimOptions = {}): PersistentVolumeClaim {
  return {
    metadata: {
      name,
      namespace: options.namespace ?? NAMESPACE,
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      ...(options.labels === undefined ? {} : { labels: options.labels }),
      ...(options.selectedNode === undefined
        ? {}
        : { annotations: { [SELECTED_NODE_ANNOTATION]: options.selectedNode } }),
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      ...(options.storageClassName === undefined ? {} : { storageClassName: options.storageClassName }),
      resources: { requests: { storage: options.storage ?? '10Gi' } },
      ...(options.snapshotName === undefined
        ? {}
        : {
            dataSource: {
              apiGroup: 'snapshot.storage.k8s.io',
              kind: 'VolumeSnapshot',
              name: options.snapshotName,
            },
          }),
    },
    ...(options.phase === undefined ? {} : { status: { phase: options.phase } }),
  };
}

export interface StorageClassOptions {
  volumeBindingMode?: 'Immediate' | 'WaitForFirstConsumer';
  /** Marked as the cluster's default class. */
  isDefault?: boolean;
  creationTimestamp?: string;
}

/** A StorageClass of the CSI driver; Immediate binding unless told otherwise. */
export function storageClass(name: string, options: StorageClassOptions = {}): StorageClass {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: {
      name,
      ...(options.creationTimestamp === undefined ? {} : { creationTimestamp: options.creationTimestamp }),
      ...(options.isDefault === true
        ? { annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } }
        : {}),
    },
    provisioner: DRIVER,
    volumeBindingMode: options.volumeBindingMode ?? 'Immediate',
  };
}

export interface StatefulSetOptions {
  namespace?: string;
  uid?: string;
  labels?: Labels;
  /** The snapback.dev/mode annotation; undefined: none. */
  mode?: 'restore' | 'normal';
  replicas?: number;
  readyReplicas?: number;
  /** Default: as many as replicas. */
  updatedReplicas?: number;
  generation?: number;
  /** Default: generation (the controller has seen the latest spec). */
  observedGeneration?: number;
  matchLabels?: Labels;
}

/** A StatefulSet with a status: healthy unless readyReplicas or observedGeneration say otherwise. */
export function statefulSet(name: string, options: StatefulSetOptions = {}): StatefulSet {
  const replicas = options.replicas ?? 1;
  const ready = options.readyReplicas ?? replicas;
  const generation = options.generation ?? 1;
  const matchLabels = options.matchLabels ?? { 'app.kubernetes.io/instance': name };
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: {
      name,
      namespace: options.namespace ?? NAMESPACE,
      generation,
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      ...(options.labels === undefined ? {} : { labels: options.labels }),
      ...(options.mode === undefined ? {} : { annotations: { 'snapback.dev/mode': options.mode } }),
    },
    spec: {
      replicas,
      serviceName: name,
      selector: { matchLabels },
      template: {
        metadata: { labels: matchLabels },
        spec: { containers: [{ name: 'postgres', image: 'postgres:16.4' }] },
      },
    },
    status: {
      observedGeneration: options.observedGeneration ?? generation,
      replicas,
      readyReplicas: ready,
      currentReplicas: replicas,
      updatedReplicas: options.updatedReplicas ?? replicas,
      availableReplicas: ready,
    },
  };
}

/** The restored StatefulSet of `restoreObject`'s attempt, labelled as the attempt labels it. */
export function restoredStatefulSet(
  restoreObject: Restore,
  options: Omit<StatefulSetOptions, 'labels'> = {},
): StatefulSet {
  return statefulSet(restoreObject.spec.destination?.deploymentName ?? DESTINATION, {
    mode: 'restore',
    ...options,
    labels: attemptLabelsOf(restoreObject),
  });
}

/** The uid of the StatefulSet a restore's attempt made, as its status records it. */
export const DEPLOYMENT_UID = '7d0c9e55-3333-4333-8333-333333333333';

/**
 * A restore in `phase`, after its StatefulSet was created (none with `deployment: null`), and `run`
 * for the step of that phase: the ground of the two phases that watch the restored deployment.
 */
export function deploymentPhaseWorld(
  phase: RestorePhase,
  step: (ctx: RestoreContext, restore: Restore, plan: RestorePlan) => Promise<StepOutcome>,
  options: { restore?: RestoreInOptions; deployment?: Omit<StatefulSetOptions, 'labels'> | null } = {},
) {
  const world = restoreWorld();
  const backup = world.fake.seed(resources.backups, completedBackup());
  const restoreObject: Restore = world.fake.seed(
    resources.restores,
    restoreIn(phase, { backup, deploymentUid: DEPLOYMENT_UID, ...options.restore }),
  );
  if (options.deployment !== null)
    world.fake.seed(
      resources.statefulSets,
      restoredStatefulSet(restoreObject, { uid: DEPLOYMENT_UID, ...options.deployment }),
    );
  const run = (): Promise<StepOutcome> => step(world.ctx, restoreObject, planOf(world.ctx, restoreObject));
  return { ...world, backup, restore: restoreObject, run };
}

export interface EventOptions {
  name?: string;
  type?: Event['type'];
  reason?: string;
  /** involvedObject.uid; default: the claim's uid. */
  uid?: string;
  firstTimestamp?: string;
  lastTimestamp?: string;
  count?: number;
  component?: string;
}

let eventSerial = 0;

/** A Warning ProvisioningFailed Event on `claimObject`, as the external-provisioner records it. */
export function provisioningFailed(
  claimObject: PersistentVolumeClaim,
  message: string,
  options: EventOptions = {},
): Event {
  eventSerial += 1;
  const name = claimObject.metadata.name ?? '';
  const first = options.firstTimestamp ?? T0.toISOString();
  return {
    metadata: {
      name: options.name ?? `${name}.${String(eventSerial).padStart(6, '0')}`,
      namespace: claimObject.metadata.namespace ?? NAMESPACE,
    },
    involvedObject: {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      name,
      namespace: claimObject.metadata.namespace ?? NAMESPACE,
      uid: options.uid ?? claimObject.metadata.uid ?? '',
    },
    type: options.type ?? 'Warning',
    reason: options.reason ?? 'ProvisioningFailed',
    message,
    source: { component: options.component ?? `${DRIVER}_csi-provisioner` },
    firstTimestamp: first,
    lastTimestamp: options.lastTimestamp ?? first,
    count: options.count ?? 1,
  };
}

export interface SnapshotOptions {
  namespace?: string;
  labels?: Labels;
  readyToUse?: boolean;
  error?: string;
  contentName?: string;
  restoreSize?: string;
}

export function volumeSnapshot(name: string, options: SnapshotOptions = {}): VolumeSnapshot {
  const status: NonNullable<VolumeSnapshot['status']> = {};
  if (options.readyToUse !== undefined) status.readyToUse = options.readyToUse;
  if (options.error !== undefined) status.error = { message: options.error, time: T0.toISOString() };
  if (options.contentName !== undefined) status.boundVolumeSnapshotContentName = options.contentName;
  if (options.restoreSize !== undefined) status.restoreSize = options.restoreSize;
  return {
    metadata: {
      name,
      namespace: options.namespace ?? NAMESPACE,
      ...(options.labels === undefined ? {} : { labels: options.labels }),
    },
    spec: { source: { volumeSnapshotContentName: options.contentName ?? name } },
    ...(Object.keys(status).length === 0 ? {} : { status }),
  };
}

export function volumeSnapshotContent(
  name: string,
  options: { labels?: Labels; handle?: string; snapshotNamespace?: string } = {},
): VolumeSnapshotContent {
  return {
    metadata: { name, ...(options.labels === undefined ? {} : { labels: options.labels }) },
    spec: {
      deletionPolicy: 'Retain',
      driver: DRIVER,
      source: { snapshotHandle: options.handle ?? handleOf(0) },
      volumeSnapshotRef: { name, namespace: options.snapshotNamespace ?? NAMESPACE },
    },
  };
}

/** A pod of the restored deployment that the scheduler cannot place. */
/** A pod of the deployment `restoreObject` restored (its template's labels), that cannot be scheduled. */
export function unschedulablePod(restoreObject: Restore, name: string, message: string): Pod {
  return {
    metadata: {
      name,
      namespace: NAMESPACE,
      labels: { ...attemptLabelsOf(restoreObject), 'app.kubernetes.io/instance': 'pg-restored' },
    },
    spec: { containers: [{ name: 'postgres', image: 'postgres:16.4' }] },
    status: {
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message }],
    },
  };
}

// --- changing the world --------------------------------------------------------------------------

/**
 * Sets an object's status as its controller would (a new resourceVersion, nothing recorded in
 * `fake.calls`). Returns the stored object.
 */
export function setStatus<T extends KubeObject & { status?: unknown }>(
  fake: FakeClient,
  rt: ResourceType<T>,
  name: string,
  namespace: string | undefined,
  status: T['status'],
): T {
  const stored = fake.peek(rt, name, namespace);
  if (stored === undefined)
    throw new Error(`setStatus: ${rt.kind} ${namespace ?? ''}/${name} does not exist`);
  const { resourceVersion: _old, ...metadata } = stored.metadata;
  return fake.seed(rt, { ...stored, metadata, status });
}

/** What the kubelet writes on a data mover's pod as it ends: its phase, its result as termination message. */
export async function moverPodEnded(
  fake: FakeClient,
  namespace: string,
  pod: string,
  phase: 'Succeeded' | 'Failed',
  result: unknown,
  finishedAt: string,
): Promise<void> {
  const terminated = { exitCode: phase === 'Succeeded' ? 0 : 1, message: JSON.stringify(result), finishedAt };
  await fake.mergePatch(
    resources.pods,
    pod,
    { status: { phase, containerStatuses: [{ name: 'mover', state: { terminated } }] } },
    { namespace, subresource: 'status' },
  );
}
