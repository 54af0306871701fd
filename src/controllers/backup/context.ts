import { labels, MANAGED_BY } from '../../api/constants.js';
import type {
  Backup,
  BackupErrorCode,
  BackupLocation,
  BackupPhase,
  BackupStatus,
  Restore,
} from '../../api/generated/types.js';
import type { Labels, Pod, VolumeSnapshot } from '../../api/kubernetes.js';
import type { MoverConfig } from '../../storage/data-mover.js';
import type { ObjectClient } from '../../runtime/client.js';
import { failedCondition, setCondition } from '../shared/conditions.js';
import type { Outcome } from '../shared/outcome.js';
import type { Cache } from '../../runtime/cache.js';

export interface BackupConfig {
  /** Recorded in each backup's metadata as targetClusterName. */
  clusterName: string;
  /** How long a backup may take (snapshots, then the copy of its volumes) before it fails with PhaseTimeout. */
  timeoutSeconds: number;
}

export interface BackupContext {
  client: ObjectClient;
  cache: {
    backups: Cache<Backup>;
    snapshots: Cache<VolumeSnapshot>;
    restores: Cache<Restore>;
    locations: Cache<BackupLocation>;
    /** Data mover pods in the operator's namespace, indexed by moversByBackup. */
    movers: Cache<Pod>;
  };
  config: BackupConfig;
  mover: MoverConfig;
  /** The operator's namespace, where backup locations' credentials are read and data movers run. */
  namespace: string;
  /** This cluster's identity (the kube-system namespace's UID), which records carry. */
  clusterUid(): Promise<string>;
  now(): Date;
}

/** The labels of everything a backup creates. */
export function backupLabels(backup: Backup): Labels {
  const project = backup.metadata.labels?.[labels.project];
  return {
    [labels.backup]: backup.metadata.name ?? '',
    [labels.deployment]: backup.spec.deployment.name,
    [labels.managedBy]: MANAGED_BY,
    ...(project === undefined ? {} : { [labels.project]: project }),
  };
}

/** The labels of a backup's data movers and what they mount, in the operator's namespace. */
export function moverLabels(backup: Backup): Labels {
  return {
    [labels.managedBy]: MANAGED_BY,
    [labels.moverFor]: backup.metadata.uid ?? '',
    [labels.backup]: backup.metadata.name ?? '',
    [labels.backupNamespace]: backup.metadata.namespace ?? '',
  };
}

/** A backup step's outcome: the shared advance / wait / fail over the Backup's phases and codes. */
export type BackupOutcome = Outcome<
  BackupPhase,
  BackupErrorCode,
  Partial<Omit<BackupStatus, 'phase' | 'conditions'>>
>;

/** The status with conditions that match its phase. */
function withConditions(status: BackupStatus, reason: string, message: string, now: string): BackupStatus {
  const phase = status.phase;
  let conditions = setCondition(
    status.conditions,
    { type: 'Ready', status: phase === 'Completed' ? 'True' : 'False', reason, message },
    now,
  );
  conditions = setCondition(conditions, failedCondition(phase === 'Failed', reason, message), now);
  return { ...status, conditions };
}

/**
 * The status after a step's outcome, pure like the Restore's applyOutcome: the outcome's fields
 * over the current ones, the phase it names (kept by a wait), and conditions that say why.
 */
export function applyBackupOutcome(current: BackupStatus, outcome: BackupOutcome, now: string): BackupStatus {
  const next: BackupStatus = { ...current, ...outcome.status };
  switch (outcome.type) {
    case 'advance': {
      const phase = outcome.to;
      const ended = phase === 'Completed' && next.completionTime === undefined ? { completionTime: now } : {};
      return withConditions({ ...next, ...ended, phase }, outcome.reason ?? phase, outcome.message, now);
    }
    case 'wait':
      return withConditions(next, outcome.reason, outcome.message, now);
    case 'fail':
      return withConditions(
        {
          ...next,
          phase: 'Failed',
          errorCode: outcome.errorCode,
          errorMessage: outcome.message,
          completionTime: now,
        },
        outcome.errorCode,
        outcome.message,
        now,
      );
  }
}
