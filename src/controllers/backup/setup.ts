// The Backup controller's wiring: what wakes a backup, and its reconciler. It reads the restore
// cache's by-Backup index, which the Restore controller registers.

import { labels } from '../../api/constants.js';
import { clusterUid } from '../../runtime/cluster-identity.js';
import { backupKeyOf } from '../restore/indexes.js';
import { isTerminal } from '../restore/transitions.js';
import { dependency, keyOf, labelledOwner, type SetupContext } from '../setup.js';
import { backupReconciler } from './reconciler.js';

export function setupBackupController(setup: SetupContext): void {
  const { backups, snapshots, restores, locations } = setup.informers;
  const reconcile = backupReconciler(
    {
      client: setup.client,
      cache: { backups, snapshots, restores, locations },
      config: setup.config.backup,
      namespace: setup.config.namespace,
      clusterUid: clusterUid(setup.client),
      now: setup.now,
    },
    setup.recorder,
    setup.logger.child({ controller: 'backup' }),
  );
  setup.manager.controller({
    name: 'backup',
    reconcile,
    primary: backups,
    workers: setup.config.workers,
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
}
