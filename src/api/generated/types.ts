// Generated from src/api/crds.ts by `npm run generate`. Do not edit.

import type { Condition, KubeObject, ObjectMeta } from '../kubernetes.js';

/** Backup snapshots the volumes of a data service deployment (CSI VolumeSnapshots, "cloudsnaps") and records what a restore needs. It lives next to the deployment. */
export interface Backup extends KubeObject {
  apiVersion?: 'snapback.dev/v1alpha1';
  kind?: 'Backup';
  metadata: ObjectMeta;
  spec: BackupSpec;
  status?: BackupStatus;
}

/** Restore recreates a backed-up data service deployment under a new name from a Backup's snapshots. It lives in the destination namespace. */
export interface Restore extends KubeObject {
  apiVersion?: 'snapback.dev/v1alpha1';
  kind?: 'Restore';
  metadata: ObjectMeta;
  spec: RestoreSpec;
  status?: RestoreStatus;
}

/** RestorabilityMatrix says which backups can be restored into which images, per data service (PDS GetRestorabilityMatrix). The operator reads the one named "default". */
export interface RestorabilityMatrix extends KubeObject {
  apiVersion?: 'snapback.dev/v1alpha1';
  kind?: 'RestorabilityMatrix';
  metadata: ObjectMeta;
  spec?: RestorabilityMatrixSpec;
}

/** BackupLocation is an S3-compatible bucket that backup records are written to and read from, by this cluster and by others pointed at the same bucket. */
export interface BackupLocation extends KubeObject {
  apiVersion?: 'snapback.dev/v1alpha1';
  kind?: 'BackupLocation';
  metadata: ObjectMeta;
  spec: BackupLocationSpec;
  status?: BackupLocationStatus;
}

/** BackupSchedule creates Backups of a data service deployment on a cron schedule, labelled snapback.dev/schedule, one at a time, and deletes those its retention does not keep. It lives next to the deployment; deleting it keeps its Backups. */
export interface BackupSchedule extends KubeObject {
  apiVersion?: 'snapback.dev/v1alpha1';
  kind?: 'BackupSchedule';
  metadata: ObjectMeta;
  spec: BackupScheduleSpec;
  status?: BackupScheduleStatus;
}

/** ReferenceGrant lets Restores of other namespaces read Backups of its own namespace (the shape of Gateway API's ReferenceGrant). Without one, a Restore naming another namespace's Backup fails with ReferenceNotGranted and creates nothing. */
export interface ReferenceGrant extends KubeObject {
  apiVersion?: 'snapback.dev/v1alpha1';
  kind?: 'ReferenceGrant';
  metadata: ObjectMeta;
  spec: ReferenceGrantSpec;
}

/** The data service deployment to back up, in the Backup's namespace. */
export interface DeploymentReference {
  /** API version of the deployment. */
  apiVersion?: 'apps/v1';
  /** Kind of the deployment. */
  kind?: 'StatefulSet';
  /** Name of the deployment. */
  name: string;
}

/** Set by the operator on a Backup it imported from a record in spec.backupLocation (backup sync). Such a Backup is read-only: nothing is snapshotted for it, and deleting it leaves the record alone. */
export interface BackupSyncSource {
  /** The cluster the backup was taken on. */
  cluster: string;
  /** Its namespace there. */
  namespace: string;
  /** Its name there. */
  name: string;
}

/** What to back up. Immutable. */
export interface BackupSpec {
  /** The data service deployment to back up, in the Backup's namespace. */
  deployment: DeploymentReference;
  /** The VolumeSnapshotClass to snapshot with. Absent: the default class of each volume's CSI driver. */
  volumeSnapshotClassName?: string;
  /** Name of the BackupLocation to store the backup's record in, so that other clusters can restore it. Absent: the backup lives in this cluster only. */
  backupLocation?: string;
  /** Set by the operator on a Backup it imported from a record in spec.backupLocation (backup sync). Such a Backup is read-only: nothing is snapshotted for it, and deleting it leaves the record alone. */
  syncedFrom?: BackupSyncSource;
}

/** Where the backup is (PDS Backup.Status.Phase). */
export type BackupPhase = 'InProgress' | 'Completed' | 'Failed' | 'Deleting';

/** Why the backup failed. */
export type BackupErrorCode =
  | 'DeploymentNotFound'
  | 'DeploymentHasNoVolumes'
  | 'VolumeSnapshotClassNotFound'
  | 'SnapshotFailed'
  | 'PhaseTimeout'
  | 'RecordNotFound'
  | 'RecordCorrupt'
  | 'RecordUnauthenticated'
  | 'ClusterNameConflict'
  | 'VolumeDataCopyFailed'
  | 'BackupInternalError';

/** Where the copy is. */
export type VolumeDataCopyPhase = 'Pending' | 'Running' | 'Completed';

/** The copy of the volume's files in the backup location (the data mover's), which a restore on any cluster with the location and its key can rebuild the volume from. */
export interface VolumeDataCopy {
  /** The volume's manifest in the location's repository (repository/manifests/<manifest>). */
  manifest: string;
  /** Where the copy is. */
  phase?: VolumeDataCopyPhase;
  /** The data mover's pod, in the operator's namespace. */
  moverPod?: string;
  /** Mover pods started for this copy; a failure the store may recover from is retried. */
  attempts?: number;
  /** What the copy is doing or waiting for. */
  message?: string;
  /** Bytes of the volume's files. */
  bytesTotal?: number;
  /** Bytes of them copied. */
  bytesDone?: number;
  /** Files, directories and links in the manifest. */
  files?: number;
  /** While the mover runs: its rate over the last few seconds (from its log's progress lines). */
  bytesPerSecond?: number;
  /** While the mover runs: the time left at that rate. */
  secondsLeft?: number;
  /** When the manifest was stored and read back. */
  completionTime?: string;
  /** Bytes sent to the store (compressed and encrypted): only chunks the location did not hold already. */
  bytesUploaded?: number;
  /** Chunks uploaded. */
  chunksNew?: number;
  /** Chunks the location held already (unchanged data is never sent twice). */
  chunksReused?: number;
}

/** A backed-up volume. */
export interface BackupVolume {
  /** The PVC that was snapshotted. */
  pvcName: string;
  /** The VolumeSnapshot holding it, in the Backup's namespace. */
  volumeSnapshotName: string;
  /** The snapshot handle in the storage system. */
  cloudSnapId?: string;
  /** Size a restored volume needs, in bytes. */
  sizeBytes?: number;
  /** The CSI driver that holds the snapshot. */
  driver?: string;
  /** The VolumeSnapshotClass the snapshot was taken with. */
  volumeSnapshotClassName?: string;
  /** The copy of the volume's files in the backup location (the data mover's), which a restore on any cluster with the location and its key can rebuild the volume from. */
  dataCopy?: VolumeDataCopy;
}

/** What the backup offers a restore: the backup format's capabilities and the image capabilities of the deployment at backup time. */
export type Capabilities = Record<string, string>;

/** The backed-up deployment, as a restore needs to know it. */
export interface DataServiceDeploymentMetaData {
  /** Name of the deployment. */
  name?: string;
  /** Name of the deployment's Kubernetes object. */
  customResourceName?: string;
  /** Cluster the backup was taken on. */
  targetClusterName?: string;
  /** Namespace of the deployment. */
  namespaceName?: string;
  /** Whether the data service serves TLS. */
  tlsEnabled?: boolean;
  /** The data service (app.kubernetes.io/name), which keys the RestorabilityMatrix. */
  dataServiceName?: string;
  /** Image of the data service's main container. */
  image?: string;
  /** Replicas of the deployment at backup time. */
  replicas?: number;
  /** The image's restore capabilities (annotation snapback.dev/image-capabilities). */
  imageCapabilities?: Capabilities;
}

/** Where the backup's record was stored and verified (read back, checksum matched). */
export interface BackupRecordReference {
  /** The BackupLocation. */
  location?: string;
  /** The object key, under the location's prefix. */
  key?: string;
  /** sha256 of the record, as stored in it. */
  checksum?: string;
  /** When it was stored (for a synced Backup: when it was imported). */
  storedAt?: string;
}

/** Where the verification is. */
export type VerificationPhase = 'Running' | 'Verified' | 'Failed';

/** One volume's verification. */
export interface VolumeVerification {
  /** The volume. */
  pvcName: string;
  /** The volume's manifest in the location's repository (repository/manifests/<manifest>). */
  manifest: string;
  /** Where the verification is. */
  phase?: VolumeDataCopyPhase;
  /** The data mover's pod, in the operator's namespace. */
  moverPod?: string;
  /** Mover pods started for this verification; a failure the store may recover from is retried. */
  attempts?: number;
  /** What the verification is doing or waiting for. */
  message?: string;
  /** Bytes of the volume's files. */
  bytesTotal?: number;
  /** Bytes of them checked. */
  bytesDone?: number;
  /** Files, directories and links in the manifest. */
  files?: number;
  /** While the mover runs: its rate over the last few seconds (from its log's progress lines). */
  bytesPerSecond?: number;
  /** While the mover runs: the time left at that rate. */
  secondsLeft?: number;
  /** When every chunk was read and authenticated. */
  completionTime?: string;
}

/** The last read-back of the backup's data in the bucket, asked for with the annotation snapback.dev/verify: every chunk of every volume read, decrypted and authenticated, nothing restored. */
export interface BackupVerification {
  /** The snapback.dev/verify value this verification answers. */
  token: string;
  /** Where the verification is. */
  phase?: VerificationPhase;
  /** When it started. */
  startTime?: string;
  /** When it ended. */
  completionTime?: string;
  /** Bytes of the volumes' files read back and authenticated. */
  bytesChecked?: number;
  /** What it found, or what it is doing. */
  message?: string;
  /** Each volume verified. */
  volumes?: VolumeVerification[];
}

/** What the operator observed. Written only by the operator. */
export interface BackupStatus {
  /** Where the backup is (PDS Backup.Status.Phase). */
  phase?: BackupPhase;
  /** Why the backup failed. */
  errorCode?: BackupErrorCode;
  /** What went wrong and what to do about it. */
  errorMessage?: string;
  /** Snapshot handle of the first volume (the primary replica's). */
  cloudSnapId?: string;
  /** One entry per backed-up volume. */
  volumes?: BackupVolume[];
  /** Total size of the backup in bytes. */
  fileSize?: number;
  /** When the backup started. */
  startTime?: string;
  /** When the backup completed or failed. */
  completionTime?: string;
  /** What the backup offers a restore: the backup format's capabilities and the image capabilities of the deployment at backup time. */
  backupCapability?: Capabilities;
  /** The backed-up deployment, as a restore needs to know it. */
  dataServiceDeploymentMetaData?: DataServiceDeploymentMetaData;
  /** The deployment's manifest, sanitized (no status, uid, resourceVersion, managedFields), to restore from. */
  manifest?: Record<string, unknown>;
  /** Where the backup's record was stored and verified (read back, checksum matched). */
  record?: BackupRecordReference;
  /** The last read-back of the backup's data in the bucket, asked for with the annotation snapback.dev/verify: every chunk of every volume read, decrypted and authenticated, nothing restored. */
  verification?: BackupVerification;
  /** The metadata.generation the status was written for. */
  observedGeneration?: number;
  /** Ready, Failed and (once verified) Verified, per the Kubernetes API conventions. */
  conditions?: Condition[];
}

/** A Backup in another namespace. */
export interface BackupReference {
  /** Namespace of the Backup. */
  namespace: string;
  /** Name of the Backup. */
  name: string;
}

/** Where the volumes' data is restored from. Auto: the Backup's CSI snapshot when it was taken on this cluster and is still ready, otherwise its copy in the backup location when it has one, otherwise the snapshot. Snapshot: the CSI snapshot only. BackupLocation: the copy in the backup location only (the restore fails if the Backup has none), as after the loss of the cluster or storage it was taken on. */
export type RestoreVolumeSource = 'Auto' | 'Snapshot' | 'BackupLocation';

/** The backup to restore from. Immutable. */
export interface RestoreSource {
  /** Name of a Backup in the Restore's namespace. */
  backupName?: string;
  /** A Backup in another namespace. */
  backupRef?: BackupReference;
  /** Restore only the volume whose snapshot has this handle (one of the Backup's status.volumes[].cloudSnapId). Absent: every volume is restored. */
  cloudSnapId?: string;
  /** Name of the backup location the Backup is stored in. */
  backupLocation?: string;
  /** Where the volumes' data is restored from. Auto: the Backup's CSI snapshot when it was taken on this cluster and is still ready, otherwise its copy in the backup location when it has one, otherwise the snapshot. Snapshot: the CSI snapshot only. BackupLocation: the copy in the backup location only (the restore fails if the Backup has none), as after the loss of the cluster or storage it was taken on. */
  volumesFrom?: RestoreVolumeSource;
}

/** Where the restored deployment goes. Immutable. */
export interface RestoreDestination {
  /** Name of the new data service deployment. Defaults to the backed-up deployment's name; a name that is taken fails the restore with DataServiceDeploymentNameAlreadyExist, nothing is overwritten. At most 52 characters, because StatefulSet pods carry a controller-revision-hash label built from it. */
  deploymentName?: string;
}

/** A toleration, as in a pod spec. */
export interface Toleration {
  /** Taint key; empty with operator Exists matches every taint. */
  key?: string;
  /** How key and value are compared. */
  operator?: 'Exists' | 'Equal';
  /** Taint value, with operator Equal. */
  value?: string;
  /** Taint effect to match; empty matches all. */
  effect?: '' | 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  /** How long a NoExecute taint is tolerated. */
  tolerationSeconds?: number;
}

/** Where the restored deployment's pods may run. Absent: the backed-up deployment's scheduling is kept. Each field that is set replaces the backed-up one. */
export interface PodSchedulingConfig {
  /** Node labels the pods must match. */
  nodeSelector?: Record<string, string>;
  /** Taints the pods tolerate. */
  tolerations?: Toleration[];
  /** Node, pod and pod anti-affinity, as in a pod spec (validated by the API server when the deployment is created). */
  affinity?: Record<string, unknown>;
  /** Topology spread constraints, as in a pod spec. */
  topologySpreadConstraints?: Record<string, unknown>[];
}

/** What to restore and where. */
export interface RestoreSpec {
  /** The backup to restore from. Immutable. */
  source: RestoreSource;
  /** Where the restored deployment goes. Immutable. */
  destination?: RestoreDestination;
  /** Where the restored deployment's pods may run. Absent: the backed-up deployment's scheduling is kept. Each field that is set replaces the backed-up one. */
  podSchedulingConfig?: PodSchedulingConfig;
  /** Changing this on a Failed restore starts a new attempt (PDS RecreateRestore): the failed attempt's objects are removed first and status.attempt counts up. Ignored while a restore is in progress or after it succeeded. */
  recreateToken?: string;
}

/** Where the restore is (PDS Restore.Status.Phase). */
export type RestorePhase =
  | 'Initializing'
  | 'Pending'
  | 'RestoringCloudSnap'
  | 'RestoringDataServiceDeploymentCR'
  | 'RestoringDataServiceDeployment'
  | 'DataServiceDeploymentEnteringNormalMode'
  | 'Successful'
  | 'Failed';

/** Why the restore failed (PDS Restore.Status.ErrorCode). */
export type RestoreErrorCode =
  | 'DataServiceDeploymentNameAlreadyExist'
  | 'FailedBackupCredentialSync'
  | 'RestoreInternalError'
  | 'BackupNotFound'
  | 'BackupNotCompleted'
  | 'IncompatibleBackup'
  | 'CloudSnapNotFound'
  | 'ReferenceNotGranted'
  | 'CloudSnapRestoreFailed'
  | 'DataServiceDeploymentRestoreFailed'
  | 'PhaseTimeout';

/** The Backup the restore resolved. */
export interface ResolvedBackup {
  /** Namespace of the Backup. */
  namespace?: string;
  /** Name of the Backup. */
  name?: string;
  /** UID of the Backup. */
  uid?: string;
}

/** The deployment the restore creates. */
export interface RestoreDestinationStatus {
  /** Kind of the deployment. */
  kind?: string;
  /** Name of the deployment. */
  deploymentName?: string;
  /** UID of the deployment, once created. */
  deploymentUid?: string;
}

/** How far the volume is. WaitingForFirstConsumer: its StorageClass binds it once the restored pod using it is scheduled. */
export type VolumeRestorePhase = 'Pending' | 'Restoring' | 'WaitingForFirstConsumer' | 'Bound' | 'Failed';

/** Where the volume's data comes from: the Backup's CSI snapshot, or its copy in the backup location. */
export type VolumeDataSource = 'Snapshot' | 'BackupLocation';

/** The data mover's rebuilding of the volume from the backup location, in a claim of the operator's namespace whose volume is then bound to pvcName. */
export interface VolumeDataRestore {
  /** The volume's manifest in the location's repository (repository/manifests/<manifest>). */
  manifest: string;
  /** Where the download is. */
  phase?: VolumeDataCopyPhase;
  /** The data mover's pod, in the operator's namespace. */
  moverPod?: string;
  /** Mover pods started for this download; a failure the store may recover from is retried. */
  attempts?: number;
  /** What the download is doing or waiting for. */
  message?: string;
  /** Bytes of the volume's files. */
  bytesTotal?: number;
  /** Bytes of them written. */
  bytesDone?: number;
  /** Files, directories and links in the manifest. */
  files?: number;
  /** While the mover runs: its rate over the last few seconds (from its log's progress lines). */
  bytesPerSecond?: number;
  /** While the mover runs: the time left at that rate. */
  secondsLeft?: number;
  /** When every file was written. */
  completionTime?: string;
  /** Bytes read from the store (compressed and encrypted). */
  bytesDownloaded?: number;
  /** The PersistentVolume the mover filled, bound to pvcName once filled. */
  volumeName?: string;
}

/** A restored volume (per-resource status, as Huawei CSBS reports it). */
export interface VolumeRestoreStatus {
  /** The PVC created for the volume. */
  pvcName: string;
  /** The snapshot handle it is restored from. */
  cloudSnapId?: string;
  /** How far the volume is. WaitingForFirstConsumer: its StorageClass binds it once the restored pod using it is scheduled. */
  phase?: VolumeRestorePhase;
  /** Why the volume is not Bound yet, or why it failed. */
  reason?: string;
  /** Where the volume's data comes from: the Backup's CSI snapshot, or its copy in the backup location. */
  restoredFrom?: VolumeDataSource;
  /** The data mover's rebuilding of the volume from the backup location, in a claim of the operator's namespace whose volume is then bound to pvcName. */
  dataRestore?: VolumeDataRestore;
}

/** A phase and when it was entered. */
export interface PhaseTransition {
  /** The phase. */
  phase: RestorePhase;
  /** When it was entered. */
  enteredAt: string;
}

/** What the operator observed. Written only by the operator. */
export interface RestoreStatus {
  /** Where the restore is (PDS Restore.Status.Phase). */
  phase?: RestorePhase;
  /** Why the restore failed (PDS Restore.Status.ErrorCode). */
  errorCode?: RestoreErrorCode;
  /** What went wrong and what to do about it. */
  errorMessage?: string;
  /** When the current attempt started. */
  startedAt?: string;
  /** When the current attempt began to wait for a concurrency slot (Progressing reason WaitingForSlot); the wait does not count against the Pending timeout. */
  queuedAt?: string;
  /** When the current attempt reached Successful or Failed. */
  completedAt?: string;
  /** "restore-" + name + "-" + short id; names the objects this attempt creates for itself. */
  customResourceName?: string;
  /** Attempts so far, counting the current one. */
  attempt?: number;
  /** The metadata.generation the status was written for. */
  observedGeneration?: number;
  /** The spec.recreateToken the current attempt was started for. */
  observedRecreateToken?: string;
  /** The Backup the restore resolved. */
  backup?: ResolvedBackup;
  /** The deployment the restore creates. */
  destination?: RestoreDestinationStatus;
  /** Each volume being restored. */
  volumes?: VolumeRestoreStatus[];
  /** The phases of the current attempt with when each was entered. */
  phaseHistory?: PhaseTransition[];
  /** Ready, Progressing and Failed, per the Kubernetes API conventions. */
  conditions?: Condition[];
}

/** Capabilities that must all match. */
export interface RestorabilityCondition {
  /** Required capabilities of the backup, e.g. {"backup": "v1"}. */
  backupCapabilities?: Capabilities;
  /** Required capabilities of the target image, e.g. {"pds_restore": "v1"}. */
  imageCapabilities?: Capabilities;
}

/** The restorability conditions of one data service. */
export interface DataServiceRestorability {
  /** The data service name (the deployment's app.kubernetes.io/name label). */
  name: string;
  /** A backup is restorable when it satisfies at least one condition. */
  conditions: RestorabilityCondition[];
}

/** The matrix. */
export interface RestorabilityMatrixSpec {
  /** Per data service, the conditions under which a backup is restorable. */
  dataServices?: DataServiceRestorability[];
}

/** The bucket and how to reach it. */
export interface S3Location {
  /** URL of the S3 API, e.g. https://s3.eu-west-1.amazonaws.com or http://minio.storage:9000. Absent: AWS S3 of the region. */
  endpoint?: string;
  /** Name of the bucket; it must exist. */
  bucket: string;
  /** Key prefix under which records are stored, without leading or trailing slash. Absent: the bucket root. */
  prefix?: string;
  /** Region the request signatures are made for. */
  region?: string;
  /** Address the bucket as endpoint/bucket rather than bucket.endpoint (most S3-compatible stores need this). */
  forcePathStyle?: boolean;
}

/** An S3-compatible object store that holds backup records. */
export interface BackupLocationSpec {
  /** The bucket and how to reach it. */
  s3: S3Location;
  /** A Secret in the operator's namespace with keys accessKeyId and secretAccessKey (and optionally sessionToken). */
  credentialsSecretName: string;
  /** How often the operator checks that the store is reachable and writable. */
  validationFrequencySeconds?: number;
  /** The VolumeSnapshotClass for backups stored here that name none themselves, and for importing this location's snapshots into this cluster. Absent: each volume's CSI driver's default class (and, on import, the class the snapshot was taken with). */
  volumeSnapshotClassName?: string;
  /** How often the records other clusters stored here are imported as Backups (backup sync). 0: never. */
  syncPeriodSeconds?: number;
  /** Whether backups stored here also copy their volumes' files into the bucket (a data mover pod per volume, in the operator's namespace), so that they survive the loss of the cluster and its storage. false: the bucket holds the records only, and restores need the CSI snapshots. */
  copyVolumeData?: boolean;
}

/** Whether backups can be stored in and read from the location. */
export type BackupLocationPhase = 'Available' | 'Unavailable';

/** Why the location is (un)available. */
export type BackupLocationReason =
  | 'Available'
  | 'CredentialsNotFound'
  | 'Unreachable'
  | 'InvalidCredentials'
  | 'AccessDenied'
  | 'BucketNotFound'
  | 'StoreError';

/** A refused record. */
export interface RefusedRecord {
  /** The record's key, under the prefix. */
  key: string;
  /** Why it was refused. */
  message: string;
}

/** What the operator observed. Written only by the operator. */
export interface BackupLocationStatus {
  /** Whether backups can be stored in and read from the location. */
  phase?: BackupLocationPhase;
  /** Why the location is (un)available. */
  reason?: BackupLocationReason;
  /** What the last check found and what to do about it. */
  message?: string;
  /** When the store was last checked. */
  lastValidationTime?: string;
  /** The metadata.generation the last check was made for. */
  observedGeneration?: number;
  /** When other clusters' records were last imported. */
  lastSyncTime?: string;
  /** Backups imported from the location and present in this cluster after the last sync. */
  syncedBackups?: number;
  /** Records the last sync refused (unreadable, altered, of another format, or clashing with a Backup of this cluster), not imported. */
  corruptRecords?: RefusedRecord[];
  /** Ready (the store can be used) and Synced (the last sync), per the Kubernetes API conventions. */
  conditions?: Condition[];
}

/** The spec of every Backup the schedule creates (a BackupSpec). */
export interface BackupTemplate {
  /** The data service deployment to back up, in the Backup's namespace. */
  deployment: DeploymentReference;
  /** The VolumeSnapshotClass to snapshot with. Absent: the default class of each volume's CSI driver. */
  volumeSnapshotClassName?: string;
  /** Name of the BackupLocation to store the backup's record in, so that other clusters can restore it. Absent: the backup lives in this cluster only. */
  backupLocation?: string;
}

/** Which of the schedule's Completed Backups are kept: the union of the newest keepLast, the newest of each of the keepDaily most recent days that have one, and the newest of each of the keepWeekly most recent ISO weeks that have one (days and weeks in spec.timeZone). The others are deleted, with their snapshots. Failed Backups newer than the newest Completed one are kept, at most keepLast of them; the other Failed Backups are deleted. A Backup still running is never deleted. */
export interface BackupRetention {
  /** How many of the newest Completed Backups are kept. */
  keepLast?: number;
  /** For how many days (the most recent that have one) the newest Backup of the day is kept. */
  keepDaily?: number;
  /** For how many ISO weeks (the most recent that have one) the newest Backup of the week is kept. */
  keepWeekly?: number;
  /** Of the Backups kept whose every volume is copied into a bucket, how many of the newest keep their CSI snapshots too; the older ones' snapshots are deleted (they restore from the bucket). Absent: every kept Backup keeps its snapshots. A Backup with no copy in a bucket always keeps them: they are its only data. */
  keepLocalSnapshots?: number;
}

/** When to back up what, and how many backups to keep. */
export interface BackupScheduleSpec {
  /** A cron expression: 5 fields (minute hour day-of-month month day-of-week), 6 with a leading seconds field, or @hourly, @daily, @weekly, @monthly, @yearly. */
  schedule: string;
  /** The IANA time zone the schedule and the retention days and weeks are in, e.g. Europe/Berlin. */
  timeZone?: string;
  /** True: no Backup is created (retention still applies). Runs missed meanwhile are caught up as after downtime: at most one. */
  suspend?: boolean;
  /** How late a run may still start, after downtime or a resume. Absent: a missed run starts however late; either way only the most recent missed run starts, never one per missed run. */
  startingDeadlineSeconds?: number;
  /** The spec of every Backup the schedule creates (a BackupSpec). */
  template: BackupTemplate;
  /** Which of the schedule's Completed Backups are kept: the union of the newest keepLast, the newest of each of the keepDaily most recent days that have one, and the newest of each of the keepWeekly most recent ISO weeks that have one (days and weeks in spec.timeZone). The others are deleted, with their snapshots. Failed Backups newer than the newest Completed one are kept, at most keepLast of them; the other Failed Backups are deleted. A Backup still running is never deleted. */
  retention?: BackupRetention;
  /** True: every Backup the schedule creates is verified once it completes: its data in the bucket read back and authenticated in full (the annotation snapback.dev/verify, set by the schedule; the result in the Backup's status.verification). */
  verifyBackups?: boolean;
}

/** What the operator observed. Written only by the operator. */
export interface BackupScheduleStatus {
  /** The scheduled time of the last run that created a Backup. */
  lastScheduleTime?: string;
  /** The scheduled time of the last run skipped because a Backup of the schedule was still running. */
  lastSkippedTime?: string;
  /** When the newest Completed Backup of the schedule completed. */
  lastSuccessfulTime?: string;
  /** When the next run is due; absent while suspended or invalid. */
  nextScheduleTime?: string;
  /** The Backup the last run created. */
  lastBackup?: string;
  /** The Backup of the schedule that is still running, if any. */
  active?: string;
  /** What the schedule is doing, and what to do about a problem. */
  message?: string;
  /** The metadata.generation the status was written for. */
  observedGeneration?: number;
  /** Ready: True (Scheduled) when runs create Backups as scheduled; False when Suspended, InvalidSchedule, SkippedOverlap or BackupNameTaken. */
  conditions?: Condition[];
}

/** Restores of one namespace. */
export interface ReferenceGrantFrom {
  /** The group of the referring kind. */
  group: 'snapback.dev';
  /** The referring kind. */
  kind: 'Restore';
  /** The namespace of the referring Restores. */
  namespace: string;
}

/** Backups of this namespace: one by name, or all of them. */
export interface ReferenceGrantTo {
  /** The group of the referent. */
  group: 'snapback.dev';
  /** The referent kind. */
  kind: 'Backup';
  /** The one Backup granted; absent grants every Backup of this namespace. */
  name?: string;
}

/** Who may refer to what in this namespace. */
export interface ReferenceGrantSpec {
  /** The namespaces whose Restores may refer to the objects in `to`. */
  from: ReferenceGrantFrom[];
  /** The objects of this namespace they may refer to. */
  to: ReferenceGrantTo[];
}
