// The one source of truth for Snapback's API. crds/*.yaml, the chart's CRDs and
// src/api/generated/types.ts are generated from these definitions (npm run generate), and
// test/unit/api/drift.test.ts fails when any of them no longer matches.

import { GROUP, VERSION } from './constants.js';
import {
  array,
  boolean,
  conditions,
  dateTime,
  dnsLabel,
  dnsSubdomain,
  enumeration,
  freeform,
  integer,
  object,
  string,
  stringMap,
  type JSONSchemaProps,
} from './schema.js';

export const RESTORE_PHASES = [
  'Initializing',
  'Pending',
  'RestoringCloudSnap',
  'RestoringDataServiceDeploymentCR',
  'RestoringDataServiceDeployment',
  'DataServiceDeploymentEnteringNormalMode',
  'Successful',
  'Failed',
] as const;

export const RESTORE_ERROR_CODES = [
  'DataServiceDeploymentNameAlreadyExist',
  'FailedBackupCredentialSync',
  'RestoreInternalError',
  'BackupNotFound',
  'BackupNotCompleted',
  'IncompatibleBackup',
  'CloudSnapNotFound',
  'ReferenceNotGranted',
  'CloudSnapRestoreFailed',
  'DataServiceDeploymentRestoreFailed',
  'PhaseTimeout',
] as const;

export const BACKUP_PHASES = ['InProgress', 'Completed', 'Failed', 'Deleting'] as const;

export const BACKUP_ERROR_CODES = [
  'DeploymentNotFound',
  'DeploymentHasNoVolumes',
  'VolumeSnapshotClassNotFound',
  'SnapshotFailed',
  'PhaseTimeout',
  'RecordNotFound',
  'RecordCorrupt',
  'RecordUnauthenticated',
  'ClusterNameConflict',
  'VolumeDataCopyFailed',
  'BackupInternalError',
] as const;

/** Where the copy of a volume's data into the backup location is. */
export const VOLUME_DATA_COPY_PHASES = ['Pending', 'Running', 'Completed'] as const;

/** Where a verification of a backup's data in the bucket is. */
export const VERIFICATION_PHASES = ['Running', 'Verified', 'Failed'] as const;

/** Where a restored volume's data comes from. */
export const VOLUME_DATA_SOURCES = ['Snapshot', 'BackupLocation'] as const;

/** What a Restore may restore its volumes from (`Auto`: the fastest it can reach). */
export const RESTORE_VOLUME_SOURCES = ['Auto', ...VOLUME_DATA_SOURCES] as const;

/** What a data mover's run reports, for a copy into the bucket and a rebuild from it alike. */
function moverRunFields(what: 'copy' | 'download' | 'verification'): Record<string, JSONSchemaProps> {
  return {
    manifest: string("The volume's manifest in the location's repository (repository/manifests/<manifest>)."),
    phase: enumeration(`Where the ${what} is.`, VOLUME_DATA_COPY_PHASES, { title: 'VolumeDataCopyPhase' }),
    moverPod: string("The data mover's pod, in the operator's namespace."),
    attempts: integer(
      `Mover pods started for this ${what}; a failure the store may recover from is retried.`,
      { minimum: 0 },
    ),
    message: string(`What the ${what} is doing or waiting for.`),
    bytesTotal: integer("Bytes of the volume's files."),
    bytesDone: integer(
      `Bytes of them ${{ copy: 'copied', download: 'written', verification: 'checked' }[what]}.`,
    ),
    files: integer('Files, directories and links in the manifest.'),
    bytesPerSecond: integer(
      "While the mover runs: its rate over the last few seconds (from its log's progress lines).",
    ),
    secondsLeft: integer('While the mover runs: the time left at that rate.'),
    completionTime: dateTime(
      {
        copy: 'When the manifest was stored and read back.',
        download: 'When every file was written.',
        verification: 'When every chunk was read and authenticated.',
      }[what],
    ),
  };
}

export const BACKUP_LOCATION_PHASES = ['Available', 'Unavailable'] as const;

/** Why a backup location is unavailable, from the check of its object store. */
export const BACKUP_LOCATION_REASONS = [
  'Available',
  'CredentialsNotFound',
  'Unreachable',
  'InvalidCredentials',
  'AccessDenied',
  'BucketNotFound',
  'StoreError',
] as const;

export const VOLUME_RESTORE_PHASES = [
  'Pending',
  'Restoring',
  'WaitingForFirstConsumer',
  'Bound',
  'Failed',
] as const;

export const SUPPORTED_DEPLOYMENT_KINDS = ['StatefulSet'] as const;

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'date' | 'boolean' | 'number';
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface CustomResourceDefinitionSource {
  kind: string;
  plural: string;
  singular: string;
  shortNames: readonly string[];
  scope: 'Namespaced' | 'Cluster';
  description: string;
  printerColumns: readonly PrinterColumn[];
  selectableFields: readonly string[];
  /** The whole object's schema: spec, status and object-level rules. */
  schema: JSONSchemaProps;
}

export const CATEGORY = 'snapback';

const phaseAndAge = (phaseDescription: string): PrinterColumn[] => [
  { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: phaseDescription },
  { name: 'Error', type: 'string', jsonPath: '.status.errorCode', description: 'Error code of a failure' },
];

const age: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

const immutable = (what: string) => [{ rule: 'self == oldSelf', message: `${what} is immutable` }] as const;

// The name is copied into label values (snapback.dev/backup, snapback.dev/restore), which hold at most 63.
const labelSafeName = [
  { rule: 'size(self.metadata.name) <= 63', message: 'metadata.name must be at most 63 characters' },
] as const;

const capabilities = (description: string): JSONSchemaProps =>
  stringMap(description, { maxProperties: 32, title: 'Capabilities' });

// --- Restore -------------------------------------------------------------------------------------

const podSchedulingConfig = object(
  "Where the restored deployment's pods may run. Absent: the backed-up deployment's scheduling is kept. Each field that is set replaces the backed-up one.",
  {
    nodeSelector: stringMap('Node labels the pods must match.'),
    tolerations: array(
      'Taints the pods tolerate.',
      object(
        'A toleration, as in a pod spec.',
        {
          key: string('Taint key; empty with operator Exists matches every taint.'),
          operator: enumeration('How key and value are compared.', ['Exists', 'Equal']),
          value: string('Taint value, with operator Equal.'),
          effect: enumeration('Taint effect to match; empty matches all.', [
            '',
            'NoSchedule',
            'PreferNoSchedule',
            'NoExecute',
          ]),
          tolerationSeconds: integer('How long a NoExecute taint is tolerated.'),
        },
        { title: 'Toleration' },
      ),
      { maxItems: 64 },
    ),
    affinity: freeform(
      'Node, pod and pod anti-affinity, as in a pod spec (validated by the API server when the deployment is created).',
    ),
    topologySpreadConstraints: array(
      'Topology spread constraints, as in a pod spec.',
      freeform('A topology spread constraint.'),
      { maxItems: 16 },
    ),
  },
  { title: 'PodSchedulingConfig' },
);

const restoreSource = object(
  'The backup to restore from. Immutable.',
  {
    backupName: dnsSubdomain("Name of a Backup in the Restore's namespace."),
    backupRef: object(
      'A Backup in another namespace.',
      {
        namespace: dnsLabel('Namespace of the Backup.'),
        name: dnsSubdomain('Name of the Backup.'),
      },
      { required: ['namespace', 'name'], title: 'BackupReference' },
    ),
    cloudSnapId: string(
      "Restore only the volume whose snapshot has this handle (one of the Backup's status.volumes[].cloudSnapId). Absent: every volume is restored.",
      { minLength: 1, maxLength: 1024 },
    ),
    backupLocation: dnsSubdomain('Name of the backup location the Backup is stored in.'),
    volumesFrom: enumeration(
      "Where the volumes' data is restored from. Auto: the Backup's CSI snapshot when it was taken on this cluster and is still ready, otherwise its copy in the backup location when it has one, otherwise the snapshot. Snapshot: the CSI snapshot only. BackupLocation: the copy in the backup location only (the restore fails if the Backup has none), as after the loss of the cluster or storage it was taken on.",
      RESTORE_VOLUME_SOURCES,
      { title: 'RestoreVolumeSource', default: 'Auto' },
    ),
  },
  {
    title: 'RestoreSource',
    'x-kubernetes-validations': [
      {
        rule: 'has(self.backupName) != has(self.backupRef)',
        message: 'exactly one of backupName or backupRef must be set',
      },
      ...immutable('source'),
    ],
  },
);

const restoreDestination = object(
  'Where the restored deployment goes. Immutable.',
  {
    deploymentName: dnsLabel(
      "Name of the new data service deployment. Defaults to the backed-up deployment's name; a name that is taken fails the restore with DataServiceDeploymentNameAlreadyExist, nothing is overwritten. At most 52 characters, because StatefulSet pods carry a controller-revision-hash label built from it.",
      52,
    ),
  },
  { title: 'RestoreDestination', 'x-kubernetes-validations': immutable('destination') },
);

const restoreSpec = object(
  'What to restore and where.',
  {
    source: restoreSource,
    destination: restoreDestination,
    podSchedulingConfig,
    recreateToken: string(
      "Changing this on a Failed restore starts a new attempt (PDS RecreateRestore): the failed attempt's objects are removed first and status.attempt counts up. Ignored while a restore is in progress or after it succeeded.",
      { maxLength: 253 },
    ),
  },
  {
    required: ['source'],
    title: 'RestoreSpec',
    'x-kubernetes-validations': [
      {
        rule: 'has(self.destination) || !has(oldSelf.destination)',
        message: 'destination cannot be removed once set',
      },
    ],
  },
);

const restoreStatus = object(
  'What the operator observed. Written only by the operator.',
  {
    phase: enumeration('Where the restore is (PDS Restore.Status.Phase).', RESTORE_PHASES, {
      title: 'RestorePhase',
    }),
    errorCode: enumeration('Why the restore failed (PDS Restore.Status.ErrorCode).', RESTORE_ERROR_CODES, {
      title: 'RestoreErrorCode',
    }),
    errorMessage: string('What went wrong and what to do about it.'),
    startedAt: dateTime('When the current attempt started.'),
    queuedAt: dateTime(
      'When the current attempt began to wait for a concurrency slot (Progressing reason WaitingForSlot); the wait does not count against the Pending timeout.',
    ),
    completedAt: dateTime('When the current attempt reached Successful or Failed.'),
    customResourceName: string(
      '"restore-" + name + "-" + short id; names the objects this attempt creates for itself.',
    ),
    attempt: integer('Attempts so far, counting the current one.', { minimum: 1 }),
    observedGeneration: integer('The metadata.generation the status was written for.'),
    observedRecreateToken: string('The spec.recreateToken the current attempt was started for.'),
    backup: object(
      'The Backup the restore resolved.',
      {
        namespace: string('Namespace of the Backup.'),
        name: string('Name of the Backup.'),
        uid: string('UID of the Backup.'),
      },
      { title: 'ResolvedBackup' },
    ),
    destination: object(
      'The deployment the restore creates.',
      {
        kind: string('Kind of the deployment.'),
        deploymentName: string('Name of the deployment.'),
        deploymentUid: string('UID of the deployment, once created.'),
      },
      { title: 'RestoreDestinationStatus' },
    ),
    volumes: array(
      'Each volume being restored.',
      object(
        'A restored volume (per-resource status, as Huawei CSBS reports it).',
        {
          pvcName: string('The PVC created for the volume.'),
          cloudSnapId: string('The snapshot handle it is restored from.'),
          phase: enumeration(
            'How far the volume is. WaitingForFirstConsumer: its StorageClass binds it once the restored pod using it is scheduled.',
            VOLUME_RESTORE_PHASES,
            {
              title: 'VolumeRestorePhase',
            },
          ),
          reason: string('Why the volume is not Bound yet, or why it failed.'),
          restoredFrom: enumeration(
            "Where the volume's data comes from: the Backup's CSI snapshot, or its copy in the backup location.",
            VOLUME_DATA_SOURCES,
            { title: 'VolumeDataSource' },
          ),
          dataRestore: object(
            "The data mover's rebuilding of the volume from the backup location, in a claim of the operator's namespace whose volume is then bound to pvcName.",
            {
              ...moverRunFields('download'),
              bytesDownloaded: integer('Bytes read from the store (compressed and encrypted).'),
              volumeName: string('The PersistentVolume the mover filled, bound to pvcName once filled.'),
            },
            { required: ['manifest'], title: 'VolumeDataRestore' },
          ),
        },
        { required: ['pvcName'], title: 'VolumeRestoreStatus' },
      ),
      { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['pvcName'] },
    ),
    phaseHistory: array(
      'The phases of the current attempt with when each was entered.',
      object(
        'A phase and when it was entered.',
        {
          phase: enumeration('The phase.', RESTORE_PHASES, { title: 'RestorePhase' }),
          enteredAt: dateTime('When it was entered.'),
        },
        { required: ['phase', 'enteredAt'], title: 'PhaseTransition' },
      ),
      { 'x-kubernetes-list-type': 'atomic' },
    ),
    conditions: conditions('Ready, Progressing and Failed, per the Kubernetes API conventions.'),
  },
  { title: 'RestoreStatus' },
);

export const restoreCrd: CustomResourceDefinitionSource = {
  kind: 'Restore',
  plural: 'restores',
  singular: 'restore',
  shortNames: ['rst'],
  scope: 'Namespaced',
  description:
    "Restore recreates a backed-up data service deployment under a new name from a Backup's snapshots. It lives in the destination namespace.",
  printerColumns: [
    ...phaseAndAge('Phase of the restore'),
    {
      name: 'Backup',
      type: 'string',
      jsonPath: '.status.backup.name',
      description: 'The Backup restored from',
    },
    {
      name: 'Destination',
      type: 'string',
      jsonPath: '.status.destination.deploymentName',
      description: 'The deployment the restore creates',
    },
    { name: 'Attempt', type: 'integer', jsonPath: '.status.attempt', priority: 1 },
    { name: 'Message', type: 'string', jsonPath: '.status.errorMessage', priority: 1 },
    age,
  ],
  selectableFields: ['.spec.source.backupName', '.spec.destination.deploymentName', '.status.phase'],
  schema: object(
    'Restore',
    {
      apiVersion: string('APIVersion of the object.'),
      kind: string('Kind of the object.'),
      metadata: { type: 'object' },
      spec: restoreSpec,
      status: restoreStatus,
    },
    {
      required: ['spec'],
      'x-kubernetes-validations': labelSafeName,
    },
  ),
};

// --- Backup --------------------------------------------------------------------------------------

const backupSpec = object(
  'What to back up. Immutable.',
  {
    deployment: object(
      "The data service deployment to back up, in the Backup's namespace.",
      {
        apiVersion: string('API version of the deployment.', { default: 'apps/v1', enum: ['apps/v1'] }),
        kind: enumeration('Kind of the deployment.', SUPPORTED_DEPLOYMENT_KINDS, { default: 'StatefulSet' }),
        name: dnsSubdomain('Name of the deployment.'),
      },
      { required: ['name'], title: 'DeploymentReference' },
    ),
    volumeSnapshotClassName: dnsSubdomain(
      "The VolumeSnapshotClass to snapshot with. Absent: the default class of each volume's CSI driver.",
    ),
    backupLocation: dnsSubdomain(
      "Name of the BackupLocation to store the backup's record in, so that other clusters can restore it. Absent: the backup lives in this cluster only.",
    ),
    syncedFrom: object(
      'Set by the operator on a Backup it imported from a record in spec.backupLocation (backup sync). Such a Backup is read-only: nothing is snapshotted for it, and deleting it leaves the record alone.',
      {
        cluster: string('The cluster the backup was taken on.', { minLength: 1 }),
        namespace: string('Its namespace there.', { minLength: 1 }),
        name: string('Its name there.', { minLength: 1 }),
      },
      { required: ['cluster', 'namespace', 'name'], title: 'BackupSyncSource' },
    ),
  },
  {
    required: ['deployment'],
    title: 'BackupSpec',
    'x-kubernetes-validations': [
      ...immutable('spec'),
      {
        rule: '!has(self.syncedFrom) || has(self.backupLocation)',
        message: 'a synced Backup names the backupLocation its record is in',
      },
    ],
  },
);

const backupStatus = object(
  'What the operator observed. Written only by the operator.',
  {
    phase: enumeration('Where the backup is (PDS Backup.Status.Phase).', BACKUP_PHASES, {
      title: 'BackupPhase',
    }),
    errorCode: enumeration('Why the backup failed.', BACKUP_ERROR_CODES, { title: 'BackupErrorCode' }),
    errorMessage: string('What went wrong and what to do about it.'),
    cloudSnapId: string("Snapshot handle of the first volume (the primary replica's)."),
    volumes: array(
      'One entry per backed-up volume.',
      object(
        'A backed-up volume.',
        {
          pvcName: string('The PVC that was snapshotted.'),
          volumeSnapshotName: string("The VolumeSnapshot holding it, in the Backup's namespace."),
          cloudSnapId: string('The snapshot handle in the storage system.'),
          sizeBytes: integer('Size a restored volume needs, in bytes.'),
          driver: string('The CSI driver that holds the snapshot.'),
          volumeSnapshotClassName: string('The VolumeSnapshotClass the snapshot was taken with.'),
          dataCopy: object(
            "The copy of the volume's files in the backup location (the data mover's), which a restore on any cluster with the location and its key can rebuild the volume from.",
            {
              ...moverRunFields('copy'),
              bytesUploaded: integer(
                'Bytes sent to the store (compressed and encrypted): only chunks the location did not hold already.',
              ),
              chunksNew: integer('Chunks uploaded.'),
              chunksReused: integer('Chunks the location held already (unchanged data is never sent twice).'),
            },
            { required: ['manifest'], title: 'VolumeDataCopy' },
          ),
        },
        { required: ['pvcName', 'volumeSnapshotName'], title: 'BackupVolume' },
      ),
      { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['pvcName'] },
    ),
    fileSize: integer('Total size of the backup in bytes.'),
    startTime: dateTime('When the backup started.'),
    completionTime: dateTime('When the backup completed or failed.'),
    backupCapability: capabilities(
      "What the backup offers a restore: the backup format's capabilities and the image capabilities of the deployment at backup time.",
    ),
    dataServiceDeploymentMetaData: object(
      'The backed-up deployment, as a restore needs to know it.',
      {
        name: string('Name of the deployment.'),
        customResourceName: string("Name of the deployment's Kubernetes object."),
        targetClusterName: string('Cluster the backup was taken on.'),
        namespaceName: string('Namespace of the deployment.'),
        tlsEnabled: boolean('Whether the data service serves TLS.'),
        dataServiceName: string(
          'The data service (app.kubernetes.io/name), which keys the RestorabilityMatrix.',
        ),
        image: string("Image of the data service's main container."),
        replicas: integer('Replicas of the deployment at backup time.'),
        imageCapabilities: capabilities(
          "The image's restore capabilities (annotation snapback.dev/image-capabilities).",
        ),
      },
      { title: 'DataServiceDeploymentMetaData' },
    ),
    manifest: {
      ...freeform(
        "The deployment's manifest, sanitized (no status, uid, resourceVersion, managedFields), to restore from.",
      ),
      'x-kubernetes-embedded-resource': true,
    },
    record: object(
      "Where the backup's record was stored and verified (read back, checksum matched).",
      {
        location: string('The BackupLocation.'),
        key: string("The object key, under the location's prefix."),
        checksum: string('sha256 of the record, as stored in it.'),
        storedAt: dateTime('When it was stored (for a synced Backup: when it was imported).'),
      },
      { title: 'BackupRecordReference' },
    ),
    verification: object(
      "The last read-back of the backup's data in the bucket, asked for with the annotation snapback.dev/verify: every chunk of every volume read, decrypted and authenticated, nothing restored.",
      {
        token: string('The snapback.dev/verify value this verification answers.'),
        phase: enumeration('Where the verification is.', VERIFICATION_PHASES, { title: 'VerificationPhase' }),
        startTime: dateTime('When it started.'),
        completionTime: dateTime('When it ended.'),
        bytesChecked: integer("Bytes of the volumes' files read back and authenticated."),
        message: string('What it found, or what it is doing.'),
        volumes: array(
          'Each volume verified.',
          object(
            "One volume's verification.",
            {
              pvcName: string('The volume.'),
              ...moverRunFields('verification'),
            },
            { required: ['pvcName', 'manifest'], title: 'VolumeVerification' },
          ),
          { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['pvcName'] },
        ),
      },
      { required: ['token'], title: 'BackupVerification' },
    ),
    observedGeneration: integer('The metadata.generation the status was written for.'),
    conditions: conditions('Ready, Failed and (once verified) Verified, per the Kubernetes API conventions.'),
  },
  { title: 'BackupStatus' },
);

export const backupCrd: CustomResourceDefinitionSource = {
  kind: 'Backup',
  plural: 'backups',
  singular: 'backup',
  shortNames: ['bkp'],
  scope: 'Namespaced',
  description:
    'Backup snapshots the volumes of a data service deployment (CSI VolumeSnapshots, "cloudsnaps") and records what a restore needs. It lives next to the deployment.',
  printerColumns: [
    ...phaseAndAge('Phase of the backup'),
    { name: 'Deployment', type: 'string', jsonPath: '.spec.deployment.name' },
    {
      name: 'Status',
      type: 'string',
      jsonPath: '.status.conditions[?(@.type=="Ready")].message',
      description: 'What the backup is doing or waiting for (the Ready condition)',
      priority: 1,
    },
    { name: 'Size', type: 'integer', jsonPath: '.status.fileSize', description: 'Bytes', priority: 1 },
    { name: 'CloudSnap', type: 'string', jsonPath: '.status.cloudSnapId', priority: 1 },
    age,
  ],
  selectableFields: ['.spec.deployment.name', '.status.phase'],
  schema: object(
    'Backup',
    {
      apiVersion: string('APIVersion of the object.'),
      kind: string('Kind of the object.'),
      metadata: { type: 'object' },
      spec: backupSpec,
      status: backupStatus,
    },
    { required: ['spec'], 'x-kubernetes-validations': labelSafeName },
  ),
};

// --- RestorabilityMatrix -------------------------------------------------------------------------

export const restorabilityMatrixCrd: CustomResourceDefinitionSource = {
  kind: 'RestorabilityMatrix',
  plural: 'restorabilitymatrices',
  singular: 'restorabilitymatrix',
  shortNames: ['rmatrix'],
  scope: 'Cluster',
  description:
    'RestorabilityMatrix says which backups can be restored into which images, per data service (PDS GetRestorabilityMatrix). The operator reads the one named "default".',
  printerColumns: [age],
  selectableFields: [],
  schema: object(
    'RestorabilityMatrix',
    {
      apiVersion: string('APIVersion of the object.'),
      kind: string('Kind of the object.'),
      metadata: { type: 'object' },
      spec: object(
        'The matrix.',
        {
          dataServices: array(
            'Per data service, the conditions under which a backup is restorable.',
            object(
              'The restorability conditions of one data service.',
              {
                name: string("The data service name (the deployment's app.kubernetes.io/name label).", {
                  minLength: 1,
                  maxLength: 63,
                }),
                conditions: array(
                  'A backup is restorable when it satisfies at least one condition.',
                  object(
                    'Capabilities that must all match.',
                    {
                      backupCapabilities: capabilities(
                        'Required capabilities of the backup, e.g. {"backup": "v1"}.',
                      ),
                      imageCapabilities: capabilities(
                        'Required capabilities of the target image, e.g. {"pds_restore": "v1"}.',
                      ),
                    },
                    { title: 'RestorabilityCondition' },
                  ),
                  { maxItems: 64 },
                ),
              },
              { required: ['name', 'conditions'], title: 'DataServiceRestorability' },
            ),
            { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'], maxItems: 256 },
          ),
        },
        { title: 'RestorabilityMatrixSpec' },
      ),
    },
    {
      'x-kubernetes-validations': [
        {
          rule: "self.metadata.name == 'default'",
          message: 'the operator reads only the RestorabilityMatrix named "default"',
        },
      ],
    },
  ),
};

// --- BackupLocation ------------------------------------------------------------------------------

const S3_BUCKET = '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$';

const backupLocationSpec = object(
  'An S3-compatible object store that holds backup records.',
  {
    s3: object(
      'The bucket and how to reach it.',
      {
        endpoint: string(
          'URL of the S3 API, e.g. https://s3.eu-west-1.amazonaws.com or http://minio.storage:9000. Absent: AWS S3 of the region.',
          { pattern: '^https?://[^\\s/]+(/.*)?$', maxLength: 2048 },
        ),
        bucket: string('Name of the bucket; it must exist.', { pattern: S3_BUCKET }),
        prefix: string(
          'Key prefix under which records are stored, without leading or trailing slash. Absent: the bucket root.',
          { pattern: '^[^/](.*[^/])?$', maxLength: 512 },
        ),
        region: string('Region the request signatures are made for.', { default: 'us-east-1', minLength: 1 }),
        forcePathStyle: boolean(
          'Address the bucket as endpoint/bucket rather than bucket.endpoint (most S3-compatible stores need this).',
        ),
      },
      { required: ['bucket'], title: 'S3Location' },
    ),
    credentialsSecretName: dnsSubdomain(
      "A Secret in the operator's namespace with keys accessKeyId and secretAccessKey (and optionally sessionToken).",
    ),
    validationFrequencySeconds: integer(
      'How often the operator checks that the store is reachable and writable.',
      { minimum: 1, maximum: 86400, default: 60 },
    ),
    volumeSnapshotClassName: dnsSubdomain(
      "The VolumeSnapshotClass for backups stored here that name none themselves, and for importing this location's snapshots into this cluster. Absent: each volume's CSI driver's default class (and, on import, the class the snapshot was taken with).",
    ),
    syncPeriodSeconds: integer(
      'How often the records other clusters stored here are imported as Backups (backup sync). 0: never.',
      { minimum: 0, maximum: 86400, default: 60 },
    ),
    copyVolumeData: boolean(
      "Whether backups stored here also copy their volumes' files into the bucket (a data mover pod per volume, in the operator's namespace), so that they survive the loss of the cluster and its storage. false: the bucket holds the records only, and restores need the CSI snapshots.",
      { default: true },
    ),
  },
  { required: ['s3', 'credentialsSecretName'], title: 'BackupLocationSpec' },
);

const backupLocationStatus = object(
  'What the operator observed. Written only by the operator.',
  {
    phase: enumeration(
      'Whether backups can be stored in and read from the location.',
      BACKUP_LOCATION_PHASES,
      {
        title: 'BackupLocationPhase',
      },
    ),
    reason: enumeration('Why the location is (un)available.', BACKUP_LOCATION_REASONS, {
      title: 'BackupLocationReason',
    }),
    message: string('What the last check found and what to do about it.'),
    lastValidationTime: dateTime('When the store was last checked.'),
    observedGeneration: integer('The metadata.generation the last check was made for.'),
    lastSyncTime: dateTime("When other clusters' records were last imported."),
    syncedBackups: integer(
      'Backups imported from the location and present in this cluster after the last sync.',
    ),
    corruptRecords: array(
      'Records the last sync refused (unreadable, altered, of another format, or clashing with a Backup of this cluster), not imported.',
      object(
        'A refused record.',
        {
          key: string("The record's key, under the prefix."),
          message: string('Why it was refused.'),
        },
        { required: ['key', 'message'], title: 'RefusedRecord' },
      ),
      { maxItems: 100, 'x-kubernetes-list-type': 'atomic' },
    ),
    conditions: conditions(
      'Ready (the store can be used) and Synced (the last sync), per the Kubernetes API conventions.',
    ),
  },
  { title: 'BackupLocationStatus' },
);

export const backupLocationCrd: CustomResourceDefinitionSource = {
  kind: 'BackupLocation',
  plural: 'backuplocations',
  singular: 'backuplocation',
  shortNames: ['bsl'],
  scope: 'Cluster',
  description:
    'BackupLocation is an S3-compatible bucket that backup records are written to and read from, by this cluster and by others pointed at the same bucket.',
  printerColumns: [
    {
      name: 'Phase',
      type: 'string',
      jsonPath: '.status.phase',
      description: 'Whether the store can be used',
    },
    { name: 'Reason', type: 'string', jsonPath: '.status.reason', description: 'Why' },
    { name: 'Bucket', type: 'string', jsonPath: '.spec.s3.bucket' },
    { name: 'Endpoint', type: 'string', jsonPath: '.spec.s3.endpoint', priority: 1 },
    { name: 'Message', type: 'string', jsonPath: '.status.message', priority: 1 },
    { name: 'Validated', type: 'date', jsonPath: '.status.lastValidationTime' },
    { name: 'Synced', type: 'integer', jsonPath: '.status.syncedBackups', description: 'Imported Backups' },
    { name: 'Last Sync', type: 'date', jsonPath: '.status.lastSyncTime', priority: 1 },
    age,
  ],
  selectableFields: ['.status.phase'],
  schema: object(
    'BackupLocation',
    {
      apiVersion: string('APIVersion of the object.'),
      kind: string('Kind of the object.'),
      metadata: { type: 'object' },
      spec: backupLocationSpec,
      status: backupLocationStatus,
    },
    { required: ['spec'], 'x-kubernetes-validations': labelSafeName },
  ),
};

// --- BackupSchedule ------------------------------------------------------------------------------

/** A cron field: numbers, names (MON, JAN), and * / , - ? L W # H. */
const CRON_FIELD = '[0-9A-Za-z*/,?#-]+';

/** The named properties of a schema, each required to exist, so that a rename fails at load. */
function propertiesOf(schema: JSONSchemaProps, names: readonly string[]): Record<string, JSONSchemaProps> {
  return Object.fromEntries(
    names.map((name) => {
      const property = schema.properties?.[name];
      if (property === undefined) throw new Error(`schema ${schema.title ?? ''} has no property ${name}`);
      return [name, property];
    }),
  );
}

// The BackupSpec fields a user sets, by reference: not the spec itself, whose immutability rule
// would freeze the template and whose operator-set fields (syncedFrom) a schedule must not set.
const backupTemplate = object(
  'The spec of every Backup the schedule creates (a BackupSpec).',
  propertiesOf(backupSpec, ['deployment', 'volumeSnapshotClassName', 'backupLocation']),
  { required: ['deployment'], title: 'BackupTemplate' },
);

const backupRetention = object(
  "Which of the schedule's Completed Backups are kept: the union of the newest keepLast, the newest of each of the keepDaily most recent days that have one, and the newest of each of the keepWeekly most recent ISO weeks that have one (days and weeks in spec.timeZone). The others are deleted, with their snapshots. Failed Backups newer than the newest Completed one are kept, at most keepLast of them; the other Failed Backups are deleted. A Backup still running is never deleted.",
  {
    keepLast: integer('How many of the newest Completed Backups are kept.', {
      minimum: 1,
      maximum: 1000,
      default: 7,
    }),
    keepDaily: integer(
      'For how many days (the most recent that have one) the newest Backup of the day is kept.',
      { minimum: 0, maximum: 1000 },
    ),
    keepWeekly: integer(
      'For how many ISO weeks (the most recent that have one) the newest Backup of the week is kept.',
      { minimum: 0, maximum: 520 },
    ),
    keepLocalSnapshots: integer(
      "Of the Backups kept whose every volume is copied into a bucket, how many of the newest keep their CSI snapshots too; the older ones' snapshots are deleted (they restore from the bucket). Absent: every kept Backup keeps its snapshots. A Backup with no copy in a bucket always keeps them: they are its only data.",
      { minimum: 0, maximum: 1000 },
    ),
  },
  { title: 'BackupRetention' },
);

const backupScheduleSpec = object(
  'When to back up what, and how many backups to keep.',
  {
    schedule: string(
      'A cron expression: 5 fields (minute hour day-of-month month day-of-week), 6 with a leading seconds field, or @hourly, @daily, @weekly, @monthly, @yearly.',
      {
        pattern: `^(@(yearly|annually|monthly|weekly|daily|hourly)|${CRON_FIELD}( +${CRON_FIELD}){4,5})$`,
        maxLength: 256,
      },
    ),
    timeZone: string(
      'The IANA time zone the schedule and the retention days and weeks are in, e.g. Europe/Berlin.',
      {
        default: 'UTC',
        pattern: '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$',
        maxLength: 64,
      },
    ),
    suspend: {
      ...boolean(
        'True: no Backup is created (retention still applies). Runs missed meanwhile are caught up as after downtime: at most one.',
      ),
      default: false,
    },
    startingDeadlineSeconds: integer(
      'How late a run may still start, after downtime or a resume. Absent: a missed run starts however late; either way only the most recent missed run starts, never one per missed run.',
      { minimum: 1 },
    ),
    template: backupTemplate,
    retention: { ...backupRetention, default: {} },
    verifyBackups: boolean(
      "True: every Backup the schedule creates is verified once it completes: its data in the bucket read back and authenticated in full (the annotation snapback.dev/verify, set by the schedule; the result in the Backup's status.verification).",
      { default: false },
    ),
  },
  { required: ['schedule', 'template'], title: 'BackupScheduleSpec' },
);

const backupScheduleStatus = object(
  'What the operator observed. Written only by the operator.',
  {
    lastScheduleTime: dateTime('The scheduled time of the last run that created a Backup.'),
    lastSkippedTime: dateTime(
      'The scheduled time of the last run skipped because a Backup of the schedule was still running.',
    ),
    lastSuccessfulTime: dateTime('When the newest Completed Backup of the schedule completed.'),
    nextScheduleTime: dateTime('When the next run is due; absent while suspended or invalid.'),
    lastBackup: string('The Backup the last run created.'),
    active: string('The Backup of the schedule that is still running, if any.'),
    message: string('What the schedule is doing, and what to do about a problem.'),
    observedGeneration: integer('The metadata.generation the status was written for.'),
    conditions: conditions(
      'Ready: True (Scheduled) when runs create Backups as scheduled; False when Suspended, InvalidSchedule, SkippedOverlap or BackupNameTaken.',
    ),
  },
  { title: 'BackupScheduleStatus' },
);

export const backupScheduleCrd: CustomResourceDefinitionSource = {
  kind: 'BackupSchedule',
  plural: 'backupschedules',
  singular: 'backupschedule',
  shortNames: ['bsched'],
  scope: 'Namespaced',
  description:
    'BackupSchedule creates Backups of a data service deployment on a cron schedule, labelled snapback.dev/schedule, one at a time, and deletes those its retention does not keep. It lives next to the deployment; deleting it keeps its Backups.',
  printerColumns: [
    { name: 'Schedule', type: 'string', jsonPath: '.spec.schedule' },
    { name: 'Time Zone', type: 'string', jsonPath: '.spec.timeZone', priority: 1 },
    { name: 'Suspend', type: 'boolean', jsonPath: '.spec.suspend' },
    { name: 'Deployment', type: 'string', jsonPath: '.spec.template.deployment.name' },
    { name: 'Active', type: 'string', jsonPath: '.status.active', description: 'The running Backup' },
    { name: 'Last Backup', type: 'date', jsonPath: '.status.lastScheduleTime' },
    { name: 'Last Success', type: 'date', jsonPath: '.status.lastSuccessfulTime', priority: 1 },
    // A string, not a date: kubectl shows future dates as <invalid>.
    { name: 'Next', type: 'string', jsonPath: '.status.nextScheduleTime' },
    { name: 'Message', type: 'string', jsonPath: '.status.message', priority: 1 },
    age,
  ],
  selectableFields: ['.spec.template.deployment.name', '.spec.suspend'],
  schema: object(
    'BackupSchedule',
    {
      apiVersion: string('APIVersion of the object.'),
      kind: string('Kind of the object.'),
      metadata: { type: 'object' },
      spec: backupScheduleSpec,
      status: backupScheduleStatus,
    },
    { required: ['spec'], 'x-kubernetes-validations': labelSafeName },
  ),
};

// --- ReferenceGrant ------------------------------------------------------------------------------

// The shape of Gateway API's ReferenceGrant (gateway.networking.k8s.io/v1beta1), which the
// cross-namespace volume data sources of KEP-3294 use too, in Snapback's own group: it works where
// Gateway API is not installed, and it reads as the grant users already know. Only what Snapback
// honours is accepted, so a grant that would grant nothing is refused when it is applied.
export const referenceGrantCrd: CustomResourceDefinitionSource = {
  kind: 'ReferenceGrant',
  plural: 'referencegrants',
  singular: 'referencegrant',
  shortNames: ['sbrefgrant'],
  scope: 'Namespaced',
  description:
    "ReferenceGrant lets Restores of other namespaces read Backups of its own namespace (the shape of Gateway API's ReferenceGrant). Without one, a Restore naming another namespace's Backup fails with ReferenceNotGranted and creates nothing.",
  printerColumns: [age],
  selectableFields: [],
  schema: object(
    'ReferenceGrant',
    {
      apiVersion: string('APIVersion of the object.'),
      kind: string('Kind of the object.'),
      metadata: { type: 'object' },
      spec: object(
        'Who may refer to what in this namespace.',
        {
          from: array(
            'The namespaces whose Restores may refer to the objects in `to`.',
            object(
              'Restores of one namespace.',
              {
                group: enumeration('The group of the referring kind.', [GROUP]),
                kind: enumeration('The referring kind.', ['Restore']),
                namespace: dnsLabel('The namespace of the referring Restores.'),
              },
              { required: ['group', 'kind', 'namespace'], title: 'ReferenceGrantFrom' },
            ),
            { minItems: 1, maxItems: 16 },
          ),
          to: array(
            'The objects of this namespace they may refer to.',
            object(
              'Backups of this namespace: one by name, or all of them.',
              {
                group: enumeration('The group of the referent.', [GROUP]),
                kind: enumeration('The referent kind.', ['Backup']),
                name: dnsSubdomain('The one Backup granted; absent grants every Backup of this namespace.'),
              },
              { required: ['group', 'kind'], title: 'ReferenceGrantTo' },
            ),
            { minItems: 1, maxItems: 16 },
          ),
        },
        { required: ['from', 'to'], title: 'ReferenceGrantSpec' },
      ),
    },
    { required: ['spec'] },
  ),
};

export const CRDS: readonly CustomResourceDefinitionSource[] = [
  backupCrd,
  restoreCrd,
  restorabilityMatrixCrd,
  backupLocationCrd,
  backupScheduleCrd,
  referenceGrantCrd,
];

export const crdName = (crd: CustomResourceDefinitionSource): string => `${crd.plural}.${GROUP}`;
export { GROUP, VERSION };
