// The Backup controller's wiring: what wakes a backup, and its reconciler. It reads the restore
// cache's by-Backup index, which the Restore controller registers.

import { labels } from '../../api/constants.js';
import { clusterUid } from '../../runtime/cluster-identity.js';
import { backupKeyOf } from '../restore/indexes.js';
import { isTerminal } from '../restore/transitions.js';
import { dependency, keyOf, labelledOwner, type SetupContext } from '../setup.js';
import { moversByBackup } from './copy.js';
import { backupReconciler } from './reconciler.js';

export function setupBackupController(setup: SetupContext): void {
  const { backups, snapshots, restores, locations, movers } = setup.informers;
  movers.addIndex(moversByBackup);
  const reconcile = backupReconciler(
    {
      client: setup.client,
      cache: { backups, snapshots, restores, locations, movers },
      config: setup.config.backup,
      mover: setup.config.mover,
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
      // A mover that starts or ends moves its backup on.
      dependency(movers, (pod) => moversByBackup.values(pod)),
      // A restore that ends may unblock the deletion of the backup it read.
      dependency(restores, (restore) => {
        const ref = backupKeyOf(restore);
        return isTerminal(restore.status?.phase) ? [keyOf(ref.namespace, ref.name)] : [];
      }),
    ],
  });
}
