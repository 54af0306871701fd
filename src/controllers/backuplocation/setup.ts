// The BackupLocation controller's wiring. Locations are woken by their own changes and by the
// requeues their checks and syncs ask for.

import type { SetupContext } from '../setup.js';
import { backupLocationReconciler } from './reconciler.js';

export function setupBackupLocationController(setup: SetupContext): void {
  const { locations, backups } = setup.informers;
  const config = setup.config;
  const reconcile = backupLocationReconciler(
    {
      client: setup.client,
      cache: { locations, backups },
      namespace: config.namespace,
      clusterName: config.clusterName,
      // Imported Backups must be in the namespace the operator watches.
      syncNamespace: config.watchNamespace === '' ? config.namespace : config.watchNamespace,
      now: setup.now,
    },
    setup.recorder,
    setup.logger.child({ controller: 'backuplocation' }),
  );
  setup.manager.controller({
    name: 'backuplocation',
    reconcile,
    primary: locations,
    workers: config.workers,
  });
}
