// Backup sync's decisions, without a store or a cluster: which records become Backups, which
// Backups go, what an imported Backup looks like, when a sync is due and what status it leaves.

import { describe, expect, it } from '@jest/globals';
import { finalizers, labels } from '../../../src/api/constants.js';
import type { Backup, BackupLocation } from '../../../src/api/generated/types.js';
import { statusAfterSync, untilSync } from '../../../src/controllers/backuplocation/reconciler.js';
import { planSync, syncedBackup } from '../../../src/controllers/backuplocation/sync.js';
import { MAX_LABEL_LENGTH, syncedBackupName } from '../../../src/naming.js';
import { recordKey, recordOf } from '../../../src/storage/backup-record.js';

const imported = (cluster: string, namespace: string, name: string, deleting = false): Backup => ({
  metadata: {
    name: syncedBackupName({ cluster, namespace, name }),
    namespace: 'snapback-system',
    ...(deleting ? { deletionTimestamp: '2026-11-23T10:00:00Z' } : {}),
  },
  spec: { deployment: { name: 'pg' }, backupLocation: 'shared', syncedFrom: { cluster, namespace, name } },
});

describe('planSync', () => {
  const keys = [
    recordKey('east', 'shop', 'pg-1'),
    recordKey('east', 'shop', 'pg-2'),
    recordKey('west', 'shop', 'pg-9'),
    'backups/stray.json',
  ];

  it("imports other clusters' new records, never this cluster's own, and lists stray keys", () => {
    const plan = planSync(keys, [imported('east', 'shop', 'pg-1')], 'west');
    expect(plan.imports).toEqual([
      {
        key: recordKey('east', 'shop', 'pg-2'),
        source: { cluster: 'east', namespace: 'shop', name: 'pg-2' },
        name: syncedBackupName({ cluster: 'east', namespace: 'shop', name: 'pg-2' }),
      },
    ]);
    expect(plan.kept).toBe(1);
    expect(plan.removals).toEqual([]);
    expect(plan.strayKeys).toEqual(['backups/stray.json']);
  });

  it('removes Backups whose record is gone, unless they are being deleted already', () => {
    const gone = imported('east', 'shop', 'pg-0');
    const going = imported('east', 'shop', 'pg-00', true);
    const plan = planSync(keys, [gone, going, imported('east', 'shop', 'pg-1')], 'west');
    expect(plan.removals).toEqual([gone]);
    expect(plan.kept).toBe(1);
  });
});

describe('syncedBackupName', () => {
  it('is a DNS label, distinct per source even when the readable part is cut', () => {
    const long = 'n'.repeat(60);
    const a = syncedBackupName({ cluster: 'east', namespace: long, name: 'pg-1' });
    const b = syncedBackupName({ cluster: 'east', namespace: long, name: 'pg-2' });
    expect(a).not.toBe(b);
    for (const name of [a, b]) {
      expect(name.length).toBeLessThanOrEqual(MAX_LABEL_LENGTH);
      expect(name).toMatch(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/);
    }
    expect(syncedBackupName({ cluster: 'east', namespace: 'shop', name: 'pg-1' })).toMatch(
      /^east-shop-pg-1-/,
    );
  });
});

describe('syncedBackup', () => {
  const source: Backup = {
    metadata: { name: 'pg-1', namespace: 'shop', uid: 'u1', labels: { [labels.project]: 'p1' } },
    spec: { deployment: { name: 'pg' }, backupLocation: 'their-name', volumeSnapshotClassName: 'fast' },
  };
  const record = recordOf(source, { phase: 'Completed' }, { name: 'east', uid: 'uid-east' });

  it("names this cluster's location, the source, and keeps the project label for listing", () => {
    const backup = syncedBackup('shared', 'snapback-system', 'east-shop-pg-1-abcdef', record);
    expect(backup.spec).toEqual({
      deployment: { name: 'pg' },
      volumeSnapshotClassName: 'fast',
      backupLocation: 'shared',
      syncedFrom: { cluster: 'east', namespace: 'shop', name: 'pg-1' },
    });
    expect(backup.metadata.labels).toMatchObject({
      [labels.syncedFromLocation]: 'shared',
      [labels.syncedFromCluster]: 'east',
      [labels.project]: 'p1',
    });
    // Created with the finalizer that keeps it while a restore reads it: no patch to add it.
    expect(backup.metadata.finalizers).toEqual([finalizers.backup]);
  });
});

describe('untilSync', () => {
  const now = new Date('2026-11-23T10:00:00Z');
  const location = (status: BackupLocation['status'], syncPeriodSeconds?: number): BackupLocation => ({
    metadata: { name: 'shared', generation: 1 },
    spec: {
      s3: { bucket: 'b' },
      credentialsSecretName: 's',
      ...(syncPeriodSeconds === undefined ? {} : { syncPeriodSeconds }),
    },
    ...(status === undefined ? {} : { status }),
  });
  const ready = (since: string) => [
    { type: 'Ready', status: 'True' as const, reason: 'Available', message: '', lastTransitionTime: since },
  ];

  it('is never for an unavailable location or with sync off', () => {
    expect(untilSync(location({ phase: 'Unavailable' }), now)).toBe(Infinity);
    expect(untilSync(location({ phase: 'Available' }, 0), now)).toBe(Infinity);
  });

  it('is now for a location never synced, or available again since the last sync', () => {
    expect(untilSync(location({ phase: 'Available', conditions: ready('2026-11-23T09:00:00Z') }), now)).toBe(
      0,
    );
    const resumed = location({
      phase: 'Available',
      lastSyncTime: '2026-11-23T09:59:50Z',
      conditions: ready('2026-11-23T09:59:55Z'),
    });
    expect(untilSync(resumed, now)).toBe(0);
  });

  it('is a period after the last sync otherwise', () => {
    const synced = location(
      { phase: 'Available', lastSyncTime: '2026-11-23T09:59:50Z', conditions: ready('2026-11-23T09:00:00Z') },
      30,
    );
    expect(untilSync(synced, now)).toBe(20_000);
  });
});

describe('statusAfterSync', () => {
  const base: BackupLocation = {
    metadata: { name: 'shared' },
    spec: { s3: { bucket: 'b' }, credentialsSecretName: 's' },
    status: {
      phase: 'Available',
      lastSyncTime: '2026-11-23T09:00:00Z',
      syncedBackups: 3,
      corruptRecords: [{ key: 'backups/old.json', message: 'old' }],
    },
  };
  const now = '2026-11-23T10:00:00Z';

  it('records the count, the refused records and a Synced condition', () => {
    const status = statusAfterSync(
      base,
      {
        synced: 2,
        imported: 1,
        removed: 0,
        refused: [{ key: 'k', message: 'checksum' }],
        message: '2 Backup(s)',
      },
      now,
    );
    expect(status).toMatchObject({ phase: 'Available', lastSyncTime: now, syncedBackups: 2 });
    expect(status.corruptRecords).toEqual([{ key: 'k', message: 'checksum' }]);
    expect(status.conditions?.find((c) => c.type === 'Synced')).toMatchObject({
      status: 'False',
      reason: 'RecordsRefused',
    });
  });

  it('drops the refused list once every record is imported', () => {
    const status = statusAfterSync(
      base,
      { synced: 4, imported: 0, removed: 0, refused: [], message: '4 Backup(s)' },
      now,
    );
    expect(status.corruptRecords).toBeUndefined();
    expect(status.conditions?.find((c) => c.type === 'Synced')).toMatchObject({
      status: 'True',
      reason: 'Synced',
    });
  });

  it('keeps the last figures when the store could not be listed', () => {
    const status = statusAfterSync(base, { problem: 'Unreachable' }, now);
    expect(status).toMatchObject({ lastSyncTime: '2026-11-23T09:00:00Z', syncedBackups: 3 });
    expect(status.conditions?.find((c) => c.type === 'Synced')).toMatchObject({
      status: 'False',
      reason: 'SyncFailed',
      message: 'Unreachable',
    });
  });
});
