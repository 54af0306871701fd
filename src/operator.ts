// Wires the operator together: the informers (what it watches), the controllers (each wires its
// own watches and indexes), and the manager that runs them under leader election.

import type { Logger } from 'winston';
import { labels } from './api/constants.js';
import type { OperatorConfig } from './config.js';
import { setupBackupController } from './controllers/backup/setup.js';
import { setupBackupLocationController } from './controllers/backuplocation/setup.js';
import { setupBackupScheduleController } from './controllers/backupschedule/setup.js';
import { setupRestoreController } from './controllers/restore/setup.js';
import type { Informers, SetupContext } from './controllers/setup.js';
import { EventRecorder } from './observability/events.js';
import type { Metrics } from './observability/metrics.js';
import { registerOperatorMetrics } from './observability/operator-metrics.js';
import { errorMessage } from './runtime/errors.js';
import type { KubeClient } from './runtime/kube-client.js';
import { Manager } from './runtime/manager.js';
import { resources } from './runtime/resources.js';

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
  const informers: Informers = {
    restores: manager.informer(resources.restores, scope),
    backups: manager.informer(resources.backups, scope),
    matrices: manager.informer(resources.restorabilityMatrices),
    locations: manager.informer(resources.backupLocations),
    schedules: manager.informer(resources.backupSchedules, scope),
    claims: manager.informer(resources.persistentVolumeClaims, { ...scope, labelSelector: labels.restore }),
    statefulSets: manager.informer(resources.statefulSets, { ...scope, labelSelector: labels.restore }),
    pods: manager.informer(resources.pods, { ...scope, labelSelector: labels.restore }),
    movers: manager.informer(resources.pods, { namespace: config.namespace, labelSelector: labels.moverFor }),
    snapshots: manager.informer(resources.volumeSnapshots, { ...scope, labelSelector: labels.backup }),
    contents: manager.informer(resources.volumeSnapshotContents, { labelSelector: labels.restore }),
    events: manager.informer(resources.events, {
      ...scope,
      fieldSelector: 'involvedObject.kind=PersistentVolumeClaim,type=Warning,reason=ProvisioningFailed',
    }),
    storageClasses: manager.informer(resources.storageClasses),
    referenceGrants: manager.informer(resources.referenceGrants, scope),
  };
  const { restores, backups, locations, schedules } = informers;
  const observer = registerOperatorMetrics(metrics.registry, { restores, backups, locations, schedules });
  const recorder = new EventRecorder(client, 'snapback', config.leaderElection.identity, (err) => {
    logger.warn('could not record an event', { error: errorMessage(err) });
  });
  const setup: SetupContext = { manager, informers, client, config, recorder, logger, now: () => new Date() };
  setupRestoreController(setup, observer);
  setupBackupController(setup);
  setupBackupLocationController(setup);
  setupBackupScheduleController(setup);
  return manager;
}
