import { labels } from '../../api/constants.js';
import type {
  Backup,
  BackupErrorCode,
  BackupLocation,
  BackupStatus,
  Restore,
} from '../../api/generated/types.js';
import type { Labels, VolumeSnapshot } from '../../api/kubernetes.js';
import type { ObjectClient } from '../../runtime/client.js';
import { setCondition } from '../shared/conditions.js';
import type { Cache } from '../../runtime/cache.js';

export interface BackupConfig {
  /** Recorded in each backup's metadata as targetClusterName. */
  clusterName: string;
  /** How long snapshots may take before the backup fails with PhaseTimeout. */
  timeoutSeconds: number;
}

export interface BackupContext {
  client: ObjectClient;
  cache: {
    backups: Cache<Backup>;
    snapshots: Cache<VolumeSnapshot>;
    restores: Cache<Restore>;
    locations: Cache<BackupLocation>;
  };
  config: BackupConfig;
  /** The operator's namespace, where backup locations' credentials are read. */
  namespace: string;
  now(): Date;
}

/** The labels of everything a backup creates. */
export function backupLabels(backup: Backup): Labels {
  const project = backup.metadata.labels?.[labels.project];
  return {
    [labels.backup]: backup.metadata.name ?? '',
    [labels.deployment]: backup.spec.deployment.name,
    [labels.managedBy]: 'snapback',
    ...(project === undefined ? {} : { [labels.project]: project }),
  };
}

/** The status with conditions that match its phase. */
export function withConditions(
  status: BackupStatus,
  reason: string,
  message: string,
  now: string,
): BackupStatus {
  const phase = status.phase;
  let conditions = setCondition(
    status.conditions,
    { type: 'Ready', status: phase === 'Completed' ? 'True' : 'False', reason, message },
    now,
  );
  conditions = setCondition(
    conditions,
    {
      type: 'Failed',
      status: phase === 'Failed' ? 'True' : 'False',
      reason: phase === 'Failed' ? reason : 'NoFailure',
      message: phase === 'Failed' ? message : '',
    },
    now,
  );
  return { ...status, conditions };
}

export function failed(
  status: BackupStatus,
  errorCode: BackupErrorCode,
  message: string,
  now: string,
): BackupStatus {
  return withConditions(
    { ...status, phase: 'Failed', errorCode, errorMessage: message, completionTime: now },
    errorCode,
    message,
    now,
  );
}
