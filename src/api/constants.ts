// Names that form part of Snapback's public contract: users select on these labels, set these
// annotations, and see these finalizers. Changing one is an API change.

export const GROUP = 'snapback.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export const labels = {
  /** The Backup a created object belongs to (snapshots, restored PVCs and deployments, Restores). */
  backup: 'snapback.dev/backup',
  /** The data service deployment a Backup or Restore is about. */
  deployment: 'snapback.dev/deployment',
  /** The Restore that created an object. */
  restore: 'snapback.dev/restore',
  /** The restore attempt (its customResourceName) that created an object; cleanup selects on it. */
  restoreAttempt: 'snapback.dev/restore-attempt',
  /** Copied from the source object so ListRestores/ListBackups by project works with -l. */
  project: 'snapback.dev/project',
  managedBy: 'app.kubernetes.io/managed-by',
  /** The data service name the RestorabilityMatrix is keyed by. */
  dataServiceName: 'app.kubernetes.io/name',
  /** On a Backup imported by backup sync: the BackupLocation its record is in. */
  syncedFromLocation: 'snapback.dev/synced-from-location',
  /** On a Backup imported by backup sync: the cluster it was taken on. */
  syncedFromCluster: 'snapback.dev/synced-from-cluster',
  /** On a Backup a BackupSchedule created: the schedule; its retention prunes what carries it. */
  schedule: 'snapback.dev/schedule',
  /** On a data mover's pod and what it mounts (operator's namespace): the UID of the Backup or Restore it serves. */
  moverFor: 'snapback.dev/mover-for',
  /** With snapback.dev/backup on a data mover's objects: the Backup's namespace. */
  backupNamespace: 'snapback.dev/backup-namespace',
  /** With snapback.dev/restore on a data mover's objects: the Restore's namespace. */
  restoreNamespace: 'snapback.dev/restore-namespace',
} as const;

export const MANAGED_BY = 'snapback';

export const annotations = {
  /**
   * On a Backup: a token; a value its status.verification does not answer yet asks for its data in
   * the bucket to be read back and authenticated in full.
   */
  verify: 'snapback.dev/verify',
  /**
   * On a PersistentVolume a restore's mover filled: its reclaim policy, set to Retain while the
   * volume moves from the mover's claim to the restore's, and put back once it is bound there.
   */
  reclaimPolicy: 'snapback.dev/reclaim-policy',
  /** On a Backup: delete it without deleting its snapshots (PDS DeleteBackup force). */
  forceDelete: 'snapback.dev/force-delete',
  /** On a deployment: the restore-related capabilities of its image, e.g. "pds_restore=v1". */
  imageCapabilities: 'snapback.dev/image-capabilities',
  /** On a restored deployment and its pod template: "restore" while restoring, then "normal". */
  mode: 'snapback.dev/mode',
  /** On a deployment: "true" when the data service serves TLS (recorded in backup metadata). */
  tlsEnabled: 'snapback.dev/tls-enabled',
} as const;

export const finalizers = {
  backup: 'snapback.dev/backup-protection',
  restore: 'snapback.dev/restore-cleanup',
} as const;

/** The format this operator writes backups in; a RestorabilityMatrix condition can require it. */
export const BACKUP_FORMAT_CAPABILITIES: Readonly<Record<string, string>> = { backup: 'v1' };

export const DEFAULT_MATRIX_NAME = 'default';
