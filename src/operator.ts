// Wires the operator together: the informers (what it watches), the controllers (what wakes
// whom), and the manager that runs them under leader election.

import type { Logger } from 'winston';
import { labels } from './api/constants.js';
import type { Restore } from './api/generated/types.js';
import type { KubeObject } from './api/kubernetes.js';
import type { OperatorConfig } from './config.js';
import { BackupReconciler } from './controllers/backup/reconciler.js';
import { BackupLocationReconciler } from './controllers/backuplocation/reconciler.js';
import { BACKUPS_BY_SCHEDULE, BackupScheduleReconciler } from './controllers/backupschedule/reconciler.js';
import { backupKeyOf, indexes, phaseOf } from './controllers/restore/context.js';
import { RestoreReconciler } from './controllers/restore/reconciler.js';
import { ConcurrencySlots } from './controllers/restore/slots.js';
import { isTerminal } from './controllers/restore/transitions.js';
import { EventRecorder } from './observability/events.js';
import type { Metrics } from './observability/metrics.js';
import { registerOperatorMetrics } from './observability/operator-metrics.js';
import type { KubeClient } from './runtime/kube-client.js';
import type { DependencyWatch } from './runtime/controller.js';
import type { Informer } from './runtime/informer.js';
import { Manager } from './runtime/manager.js';
import { resources } from './runtime/resources.js';
import { errorMessage } from './runtime/async.js';

const keyOf = (namespace: string | undefined, name: string | undefined): string =>
  `${namespace ?? ''}/${name ?? ''}`;

/** The owner a labelled object wakes: `label` names it, in the object's own namespace. */
const labelledOwner =
  (label: string) =>
  (object: KubeObject): string[] => {
    const owner = object.metadata.labels?.[label];
    return owner === undefined ? [] : [keyOf(object.metadata.namespace, owner)];
  };

/** A watch whose toKeys is typed by its informer: it only ever hands toKeys its own objects. */
function dependency<T extends KubeObject>(
  informer: Informer<T>,
  toKeys: (object: T) => string[],
): DependencyWatch {
  return { informer, toKeys };
}

export function buildOperator(options: {
  client: KubeClient;
  config: OperatorConfig;
  logger: Logger;
  metrics: Metrics;
}): Manager {
  const { client, config, logger, metrics } = options;
  const manager = new Manager({
    client,
    logger,
    metrics,
    ...(config.leaderElection.enabled
      ? {
          leaderElection: {
            namespace: config.leaderElection.namespace,
            name: config.leaderElection.leaseName,
            identity: config.leaderElection.identity,
            leaseDurationMs: config.leaderElection.leaseDurationSeconds * 1000,
            renewDeadlineMs: config.leaderElection.renewDeadlineSeconds * 1000,
            retryPeriodMs: config.leaderElection.retryPeriodSeconds * 1000,
            releaseOnCancel: true,
          },
        }
      : {}),
  });
  const scope = config.watchNamespace === '' ? {} : { namespace: config.watchNamespace };

  // Users' objects, all of them; Snapback's own objects, selected by their labels, so the
  // caches stay small on a busy cluster.
  const restores = manager.informer(resources.restores, scope);
  const backups = manager.informer(resources.backups, scope);
  const matrices = manager.informer(resources.restorabilityMatrices);
  const locations = manager.informer(resources.backupLocations);
  const schedules = manager.informer(resources.backupSchedules, scope);
  const claims = manager.informer(resources.persistentVolumeClaims, {
    ...scope,
    labelSelector: labels.restore,
  });
  const statefulSets = manager.informer(resources.statefulSets, { ...scope, labelSelector: labels.restore });
  const snapshots = manager.informer(resources.volumeSnapshots, { ...scope, labelSelector: labels.backup });
  const contents = manager.informer(resources.volumeSnapshotContents, { labelSelector: labels.restore });
  const events = manager.informer(resources.events, {
    ...scope,
    fieldSelector: 'involvedObject.kind=PersistentVolumeClaim,type=Warning,reason=ProvisioningFailed',
  });

  // A scan of every restore per event would make the first sync of a large cache quadratic
  // (`make bench`: 4 minutes for 100k objects, the lease lost meanwhile); the index makes it linear.
  restores.addIndex(indexes.phase, phaseOf);
  restores.addIndex(indexes.backup, (restore: Restore) => {
    const ref = backupKeyOf(restore);
    return [keyOf(ref.namespace, ref.name)];
  });
  for (const informer of [claims, statefulSets, snapshots, contents] as const) {
    informer.addIndex(indexes.attempt, (object: KubeObject) => {
      const attempt = object.metadata.labels?.[labels.restoreAttempt];
      return attempt === undefined ? [] : [attempt];
    });
  }
  events.addIndex(indexes.involvedObject, (event) => [
    keyOf(event.involvedObject.namespace, event.involvedObject.name),
  ]);

  const observer = registerOperatorMetrics(metrics.registry, { restores, backups, locations, schedules });
  const now = () => new Date();
  const recorder = new EventRecorder(client, 'snapback', config.leaderElection.identity, (err) => {
    logger.warn('could not record an event', { error: errorMessage(err) });
  });

  const restoreCtx = {
    client,
    cache: { restores, backups, matrices, claims, statefulSets, snapshots, contents, events, locations },
    config: config.restore,
    slots: new ConcurrencySlots(restores, () => config.restore.maxConcurrentRestores),
    namespace: config.namespace,
    now,
  };
  const restoreReconciler = new RestoreReconciler(
    restoreCtx,
    recorder,
    logger.child({ controller: 'restore' }),
    observer,
  );
  const pendingRestores = (): string[] =>
    restores
      .byIndex(indexes.phase, 'Pending')
      .map((restore) => keyOf(restore.metadata.namespace, restore.metadata.name));

  manager.controller({
    name: 'restore',
    reconcile: (key) => restoreReconciler.reconcile(key),
    primary: restores,
    workers: config.workers,
    watches: [
      dependency(claims, labelledOwner(labels.restore)),
      dependency(statefulSets, labelledOwner(labels.restore)),
      dependency(snapshots, labelledOwner(labels.restore)),
      dependency(contents, (content) => {
        const owner = content.metadata.labels?.[labels.restore];
        return owner === undefined ? [] : [keyOf(content.spec.volumeSnapshotRef.namespace, owner)];
      }),
      dependency(events, (event) => {
        const claim = claims.get(keyOf(event.involvedObject.namespace, event.involvedObject.name));
        return claim === undefined ? [] : labelledOwner(labels.restore)(claim);
      }),
      dependency(backups, (backup) =>
        restores
          .byIndex(indexes.backup, keyOf(backup.metadata.namespace, backup.metadata.name))
          .map((restore) => keyOf(restore.metadata.namespace, restore.metadata.name)),
      ),
      // A restore that ends frees a concurrency slot: wake the ones waiting for it.
      dependency(restores, (restore) =>
        isTerminal(restore.status?.phase) || restore.metadata.deletionTimestamp !== undefined
          ? pendingRestores()
          : [],
      ),
    ],
  });

  const backupReconciler = new BackupReconciler(
    {
      client,
      cache: { backups, snapshots, restores, locations },
      config: config.backup,
      namespace: config.namespace,
      now,
    },
    recorder,
    logger.child({ controller: 'backup' }),
  );
  manager.controller({
    name: 'backup',
    reconcile: (key) => backupReconciler.reconcile(key),
    primary: backups,
    workers: config.workers,
    watches: [
      dependency(snapshots, (snapshot) =>
        snapshot.metadata.labels?.[labels.restore] === undefined
          ? labelledOwner(labels.backup)(snapshot)
          : [],
      ),
      // A restore that ends may unblock the deletion of the backup it read.
      dependency(restores, (restore) => {
        const ref = backupKeyOf(restore);
        return isTerminal(restore.status?.phase) ? [keyOf(ref.namespace, ref.name)] : [];
      }),
    ],
  });

  const locationReconciler = new BackupLocationReconciler(
    {
      client,
      cache: { locations, backups },
      namespace: config.namespace,
      clusterName: config.clusterName,
      // Imported Backups must be in the namespace the operator watches.
      syncNamespace: config.watchNamespace === '' ? config.namespace : config.watchNamespace,
      now,
    },
    recorder,
    logger.child({ controller: 'backuplocation' }),
  );
  manager.controller({
    name: 'backuplocation',
    reconcile: (key) => locationReconciler.reconcile(key),
    primary: locations,
    workers: config.workers,
  });

  // BackupSchedules: a Backup of a schedule that changes (created, completed, deleted) wakes it.
  backups.addIndex(BACKUPS_BY_SCHEDULE, labelledOwner(labels.schedule));
  const scheduleReconciler = new BackupScheduleReconciler(
    { client, cache: { schedules, backups }, now },
    recorder,
    logger.child({ controller: 'backupschedule' }),
  );
  manager.controller({
    name: 'backupschedule',
    reconcile: (key) => scheduleReconciler.reconcile(key),
    primary: schedules,
    workers: config.workers,
    watches: [dependency(backups, labelledOwner(labels.schedule))],
  });
  return manager;
}
