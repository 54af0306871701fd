// The BackupSchedule controller's wiring: a Backup of a schedule that changes (created, completed,
// deleted) wakes it, found through the by-schedule index registered here.

import { labels } from '../../api/constants.js';
import { dependency, labelledOwner, type SetupContext } from '../setup.js';
import { backupsBySchedule, backupScheduleReconciler } from './reconciler.js';

export function setupBackupScheduleController(setup: SetupContext): void {
  const { schedules, backups, snapshots } = setup.informers;
  backups.addIndex(backupsBySchedule);
  const reconcile = backupScheduleReconciler(
    { client: setup.client, cache: { schedules, backups, snapshots }, now: setup.now },
    setup.recorder,
    setup.logger.child({ controller: 'backupschedule' }),
  );
  setup.manager.controller({
    name: 'backupschedule',
    reconcile,
    primary: schedules,
    workers: setup.config.workers,
    watches: [dependency(backups, labelledOwner(labels.schedule))],
  });
}
