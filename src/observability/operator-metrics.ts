// Domain metrics: restores and backups by phase, backup locations' availability and sync,
// schedules' last success, the data movers' transfers under way (read from the caches at scrape time, so they are never out of step with
// what the operator sees), and how long each restore phase takes.

import { Gauge, Histogram, type Registry } from 'prom-client';
import type {
  Backup,
  BackupLocation,
  BackupSchedule,
  Restore,
  RestorePhase,
} from '../api/generated/types.js';
import type { Cache } from '../runtime/cache.js';

/** What the Restore reconciler reports as phases end. */
export interface RestoreObserver {
  /** A phase ended after `seconds` (the phase duration histogram). */
  phaseFinished(phase: RestorePhase, seconds: number): void;
}

const PHASE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

function countByPhase(items: { status?: { phase?: string } }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) {
    const phase = item.status?.phase ?? 'New';
    counts.set(phase, (counts.get(phase) ?? 0) + 1);
  }
  return counts;
}

export function registerOperatorMetrics(
  registry: Registry,
  caches: {
    restores: Cache<Restore>;
    backups: Cache<Backup>;
    locations: Cache<BackupLocation>;
    schedules: Cache<BackupSchedule>;
  },
): RestoreObserver {
  const registers = [registry];
  const phaseDuration = new Histogram({
    name: 'snapback_restore_phase_duration_seconds',
    help: 'How long restores spent in each phase.',
    labelNames: ['phase'] as const,
    buckets: PHASE_BUCKETS,
    registers,
  });
  const gaugeOf = (name: string, help: string, items: () => { status?: { phase?: string } }[]) =>
    new Gauge({
      name,
      help,
      labelNames: ['phase'] as const,
      registers,
      collect() {
        this.reset();
        for (const [phase, count] of countByPhase(items())) this.set({ phase }, count);
      },
    });
  gaugeOf('snapback_restores', 'Restores by phase (New: not yet seen by the operator).', () =>
    caches.restores.list(),
  );
  gaugeOf('snapback_backups', 'Backups by phase (New: not yet seen by the operator).', () =>
    caches.backups.list(),
  );
  const perLocation = (name: string, help: string, value: (location: BackupLocation) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['location'] as const,
      registers,
      collect() {
        this.reset();
        for (const location of caches.locations.list()) {
          const measured = value(location);
          if (measured !== undefined) this.set({ location: location.metadata.name ?? '' }, measured);
        }
      },
    });
  perLocation(
    'snapback_backup_location_available',
    'Whether the last check of the location found it Available (1) or not (0).',
    (location) =>
      location.status?.phase === undefined ? undefined : Number(location.status.phase === 'Available'),
  );
  perLocation(
    'snapback_backup_location_synced_backups',
    "Backups imported from the location's records and present after the last sync.",
    (location) => location.status?.syncedBackups,
  );
  perLocation(
    'snapback_backup_location_refused_records',
    'Records the last sync refused (damaged, misplaced, clashing).',
    (location) =>
      location.status?.lastSyncTime === undefined ? undefined : (location.status.corruptRecords ?? []).length,
  );
  new Gauge({
    name: 'snapback_backup_schedule_last_success_timestamp_seconds',
    help: 'When the newest Completed Backup of each schedule completed (Unix time).',
    labelNames: ['namespace', 'schedule'] as const,
    registers,
    collect() {
      this.reset();
      for (const schedule of caches.schedules.list()) {
        const time = Date.parse(schedule.status?.lastSuccessfulTime ?? '');
        if (Number.isNaN(time)) continue;
        const labels = {
          namespace: schedule.metadata.namespace ?? '',
          schedule: schedule.metadata.name ?? '',
        };
        this.set(labels, time / 1000);
      }
    },
  });
  // One series per transfer under way (a Backup's copy, a Restore's rebuild, a verification); a
  // transfer that ended leaves the gauges, so they stay as few as the movers running.
  const perTransfer = (name: string, help: string, value: (run: TransferRun) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['operation', 'namespace', 'name', 'volume'] as const,
      registers,
      collect() {
        this.reset();
        for (const { operation, owner, volume, run } of transfersUnderWay(caches)) {
          const measured = value(run);
          if (measured === undefined) continue;
          const labels = {
            operation,
            namespace: owner.metadata.namespace ?? '',
            name: owner.metadata.name ?? '',
            volume,
          };
          this.set(labels, measured);
        }
      },
    });
  perTransfer(
    'snapback_mover_bytes_total',
    "Bytes of the volume's files a running data mover moves.",
    (run) => run.bytesTotal,
  );
  perTransfer(
    'snapback_mover_bytes_done',
    'Bytes a running data mover has moved so far.',
    (run) => run.bytesDone,
  );
  perTransfer('snapback_mover_bytes_per_second', "A running data mover's rate.", (run) => run.bytesPerSecond);
  perTransfer(
    'snapback_mover_attempts',
    'Mover pods started for a transfer under way.',
    (run) => run.attempts,
  );
  return {
    phaseFinished(phase: RestorePhase, seconds: number) {
      phaseDuration.observe({ phase }, seconds);
    },
  };
}

interface TransferRun {
  phase?: string;
  attempts?: number;
  bytesTotal?: number;
  bytesDone?: number;
  bytesPerSecond?: number;
}

/** The transfers whose movers have not ended: copies into the bucket, rebuilds, verifications. */
function* transfersUnderWay(caches: { restores: Cache<Restore>; backups: Cache<Backup> }): Generator<{
  operation: 'backup' | 'restore' | 'verify';
  owner: Backup | Restore;
  volume: string;
  run: TransferRun;
}> {
  const underWay = (run: TransferRun | undefined): run is TransferRun =>
    run !== undefined && run.phase !== 'Completed';
  for (const backup of caches.backups.list()) {
    for (const volume of backup.status?.volumes ?? []) {
      if (underWay(volume.dataCopy) && backup.status?.phase === 'InProgress')
        yield { operation: 'backup', owner: backup, volume: volume.pvcName, run: volume.dataCopy };
    }
    if (backup.status?.verification?.phase !== 'Running') continue;
    for (const volume of backup.status.verification.volumes ?? []) {
      if (underWay(volume)) yield { operation: 'verify', owner: backup, volume: volume.pvcName, run: volume };
    }
  }
  for (const restore of caches.restores.list()) {
    if (restore.status?.phase !== 'RestoringCloudSnap') continue;
    for (const volume of restore.status.volumes ?? []) {
      if (underWay(volume.dataRestore))
        yield { operation: 'restore', owner: restore, volume: volume.pvcName, run: volume.dataRestore };
    }
  }
}
