// The domain gauges, read from the caches at scrape time: restores and backups by phase, each
// backup location's availability and sync figures, each schedule's last success.

import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import type { Backup, BackupLocation, BackupSchedule, Restore } from '../../../src/api/generated/types.js';
import type { Cache } from '../../../src/runtime/cache.js';
import { registerOperatorMetrics } from '../../../src/observability/operator-metrics.js';

const cacheOf = <T>(items: T[]): Cache<T> => ({
  get: () => undefined,
  list: () => items,
  byIndex: () => [],
  indexValues: () => [],
});

const location = (name: string, status?: BackupLocation['status']): BackupLocation => ({
  metadata: { name },
  spec: { s3: { bucket: 'b' }, credentialsSecretName: 's' },
  ...(status === undefined ? {} : { status }),
});

async function scrape(
  locations: BackupLocation[],
  schedules: BackupSchedule[],
  objects: { backups?: Backup[]; restores?: Restore[] } = {},
): Promise<string> {
  const registry = new Registry();
  registerOperatorMetrics(registry, {
    restores: cacheOf<Restore>(objects.restores ?? []),
    backups: cacheOf<Backup>(objects.backups ?? []),
    locations: cacheOf(locations),
    schedules: cacheOf(schedules),
  });
  return registry.metrics();
}

describe('backup location gauges', () => {
  it('say available or not, and what the last sync imported and refused', async () => {
    const text = await scrape(
      [
        location('up', {
          phase: 'Available',
          lastSyncTime: '2026-11-23T10:00:00Z',
          syncedBackups: 3,
          corruptRecords: [{ key: 'k', message: 'm' }],
        }),
        location('down', { phase: 'Unavailable' }),
        location('new'),
      ],
      [],
    );
    expect(text).toContain('snapback_backup_location_available{location="up"} 1');
    expect(text).toContain('snapback_backup_location_available{location="down"} 0');
    expect(text).toContain('snapback_backup_location_synced_backups{location="up"} 3');
    expect(text).toContain('snapback_backup_location_refused_records{location="up"} 1');
    // Nothing is reported for what was never checked or synced.
    expect(text).not.toContain('location="new"');
    expect(text).not.toContain('snapback_backup_location_refused_records{location="down"}');
  });
});

describe('schedule gauge', () => {
  it("is the newest success's time in Unix seconds, for schedules that had one", async () => {
    const schedule = (name: string, lastSuccessfulTime?: string): BackupSchedule => ({
      metadata: { name, namespace: 'db' },
      spec: { schedule: '@daily', template: { deployment: { name: 'pg' } } },
      ...(lastSuccessfulTime === undefined ? {} : { status: { lastSuccessfulTime } }),
    });
    const text = await scrape([], [schedule('nightly', '2026-11-23T02:30:00Z'), schedule('fresh')]);
    expect(text).toContain(
      `snapback_backup_schedule_last_success_timestamp_seconds{namespace="db",schedule="nightly"} ${Date.parse('2026-11-23T02:30:00Z') / 1000}`,
    );
    expect(text).not.toContain('schedule="fresh"');
  });
});

describe('data mover gauges', () => {
  it('show each transfer under way, and none once it ended', async () => {
    const copying: Backup = {
      metadata: { name: 'nightly', namespace: 'db' },
      spec: { deployment: { name: 'pg' } },
      status: {
        phase: 'InProgress',
        volumes: [
          {
            pvcName: 'data-pg-0',
            volumeSnapshotName: 's0',
            dataCopy: {
              manifest: 'm0',
              phase: 'Running',
              attempts: 2,
              bytesTotal: 900,
              bytesDone: 300,
              bytesPerSecond: 150,
            },
          },
          {
            pvcName: 'data-pg-1',
            volumeSnapshotName: 's1',
            dataCopy: { manifest: 'm1', phase: 'Completed', bytesTotal: 5 },
          },
        ],
      },
    };
    const rebuilding: Restore = {
      metadata: { name: 'again', namespace: 'db' },
      spec: { source: { backupName: 'nightly' } },
      status: {
        phase: 'RestoringCloudSnap',
        volumes: [
          { pvcName: 'data-pg-again-0', dataRestore: { manifest: 'm0', phase: 'Pending', attempts: 1 } },
        ],
      },
    };
    const text = await scrape([], [], { backups: [copying], restores: [rebuilding] });
    const copy = 'operation="backup",namespace="db",name="nightly",volume="data-pg-0"';
    expect(text).toContain(`snapback_mover_bytes_done{${copy}} 300`);
    expect(text).toContain(`snapback_mover_bytes_total{${copy}} 900`);
    expect(text).toContain(`snapback_mover_bytes_per_second{${copy}} 150`);
    expect(text).toContain(`snapback_mover_attempts{${copy}} 2`);
    expect(text).toContain(
      'snapback_mover_attempts{operation="restore",namespace="db",name="again",volume="data-pg-again-0"} 1',
    );
    expect(text).not.toContain('volume="data-pg-1"');
  });
});
