// Which of a schedule's Backups retention keeps: the newest keepLast, the newest per day and per
// ISO week in the schedule's time zone, Failed Backups only while newer than the newest Completed
// one, and never a Backup still running or already being deleted.

import { describe, expect, it } from '@jest/globals';
import type { Backup, BackupPhase } from '../../../src/api/generated/types.js';
import {
  isoWeek,
  retentionOf,
  snapshotsToRelease,
  toPrune,
} from '../../../src/controllers/backupschedule/retention.js';

function backup(name: string, created: string, phase?: BackupPhase, deleting = false): Backup {
  return {
    metadata: {
      name,
      namespace: 'prod',
      creationTimestamp: created,
      ...(deleting ? { deletionTimestamp: '2026-02-01T00:00:00Z' } : {}),
    },
    spec: { deployment: { name: 'pg' } },
    ...(phase === undefined ? {} : { status: { phase } }),
  };
}

const names = (backups: readonly Backup[]): string[] => backups.map((b) => b.metadata.name ?? '');

/** One Completed Backup per hour, from `start`, named h0, h1, ... */
function hourly(start: string, count: number): Backup[] {
  return Array.from({ length: count }, (_, i) =>
    backup(`h${i}`, new Date(Date.parse(start) + i * 3_600_000).toISOString(), 'Completed'),
  );
}

describe('retentionOf', () => {
  it('keeps the newest 7 when nothing is said', () => {
    expect(retentionOf(undefined)).toEqual({ keepLast: 7, keepDaily: 0, keepWeekly: 0 });
    expect(retentionOf({ keepDaily: 3 })).toEqual({ keepLast: 7, keepDaily: 3, keepWeekly: 0 });
  });
});

describe('toPrune', () => {
  it('deletes all but the newest keepLast, newest first', () => {
    const backups = hourly('2026-01-05T00:00:00Z', 5);
    expect(names(toPrune(backups, { keepLast: 2, keepDaily: 0, keepWeekly: 0 }, 'UTC'))).toEqual([
      'h2',
      'h1',
      'h0',
    ]);
  });

  it('orders Backups created in the same second by name (the run stamp)', () => {
    const backups = [
      backup('s-20260105000002', '2026-01-05T00:00:02Z', 'Completed'),
      backup('s-20260105000000', '2026-01-05T00:00:02Z', 'Completed'),
    ];
    expect(names(toPrune(backups, { keepLast: 1, keepDaily: 0, keepWeekly: 0 }, 'UTC'))).toEqual([
      's-20260105000000',
    ]);
  });

  it('keeps the newest Backup of each of the keepDaily most recent days that have one, in the time zone', () => {
    // Every 6 hours for three UTC days. In America/New_York (UTC-5) the days start at 05:00 UTC.
    const backups = Array.from({ length: 12 }, (_, i) =>
      backup(
        `b${i}`,
        new Date(Date.parse('2026-01-05T00:00:00Z') + i * 6 * 3_600_000).toISOString(),
        'Completed',
      ),
    );
    const utc = toPrune(backups, { keepLast: 1, keepDaily: 3, keepWeekly: 0 }, 'UTC');
    // UTC days: Jan 5 (b0-b3), Jan 6 (b4-b7), Jan 7 (b8-b11): newest of each is b3, b7, b11.
    expect(names(backups.filter((b) => !utc.includes(b)))).toEqual(['b3', 'b7', 'b11']);
    const newYork = toPrune(backups, { keepLast: 1, keepDaily: 3, keepWeekly: 0 }, 'America/New_York');
    // Local days: Jan 4 (b0 at 19:00), Jan 5 (b1-b4), Jan 6 (b5-b8), Jan 7 (b9-b11).
    expect(names(backups.filter((b) => !newYork.includes(b)))).toEqual(['b4', 'b8', 'b11']);
  });

  it('counts days that have a Backup, so a gap in the runs does not delete the older ones', () => {
    const backups = [
      backup('jan01', '2026-01-01T02:00:00Z', 'Completed'),
      backup('jan02', '2026-01-02T02:00:00Z', 'Completed'),
      backup('jan20', '2026-01-20T02:00:00Z', 'Completed'),
    ];
    expect(toPrune(backups, { keepLast: 1, keepDaily: 3, keepWeekly: 0 }, 'UTC')).toEqual([]);
  });

  it('keeps the newest Backup of each of the keepWeekly most recent ISO weeks, weeks starting on Monday', () => {
    const backups = [
      backup('sun-jan04', '2026-01-04T12:00:00Z', 'Completed'), // week 1 of 2026
      backup('mon-jan05', '2026-01-05T12:00:00Z', 'Completed'), // week 2
      backup('wed-jan07', '2026-01-07T12:00:00Z', 'Completed'), // week 2
      backup('mon-jan12', '2026-01-12T12:00:00Z', 'Completed'), // week 3
      backup('tue-jan13', '2026-01-13T12:00:00Z', 'Completed'), // week 3
    ];
    expect(names(toPrune(backups, { keepLast: 1, keepDaily: 0, keepWeekly: 3 }, 'UTC'))).toEqual([
      'mon-jan12',
      'mon-jan05',
    ]);
  });

  it('keeps the union of the rules', () => {
    const backups = hourly('2026-01-05T20:00:00Z', 8); // h0-h3 on Jan 5, h4-h7 on Jan 6 (UTC)
    const kept = (rules: { keepLast: number; keepDaily: number; keepWeekly: number }): string[] => {
      const pruned = toPrune(backups, rules, 'UTC');
      return names(backups.filter((b) => !pruned.includes(b)));
    };
    expect(kept({ keepLast: 2, keepDaily: 2, keepWeekly: 0 })).toEqual(['h3', 'h6', 'h7']);
    expect(kept({ keepLast: 1, keepDaily: 0, keepWeekly: 1 })).toEqual(['h7']);
  });

  it('keeps Failed Backups newer than the newest Completed one, at most keepLast, and deletes older ones', () => {
    const backups = [
      backup('f0', '2026-01-05T00:00:00Z', 'Failed'),
      backup('c1', '2026-01-05T01:00:00Z', 'Completed'),
      backup('f2', '2026-01-05T02:00:00Z', 'Failed'),
      backup('f3', '2026-01-05T03:00:00Z', 'Failed'),
      backup('f4', '2026-01-05T04:00:00Z', 'Failed'),
    ];
    expect(names(toPrune(backups, { keepLast: 2, keepDaily: 0, keepWeekly: 0 }, 'UTC'))).toEqual([
      'f2',
      'f0',
    ]);
  });

  it('keeps the newest keepLast Failed Backups when none ever completed', () => {
    const backups = [
      backup('f0', '2026-01-05T00:00:00Z', 'Failed'),
      backup('f1', '2026-01-05T01:00:00Z', 'Failed'),
      backup('f2', '2026-01-05T02:00:00Z', 'Failed'),
    ];
    expect(names(toPrune(backups, { keepLast: 1, keepDaily: 0, keepWeekly: 0 }, 'UTC'))).toEqual([
      'f1',
      'f0',
    ]);
  });

  it('never deletes a Backup that is running, has no phase yet, or is being deleted, nor counts it', () => {
    const backups = [
      backup('old', '2026-01-05T00:00:00Z', 'Completed'),
      backup('gone', '2026-01-05T00:30:00Z', 'Completed', true),
      backup('deleting', '2026-01-05T00:40:00Z', 'Deleting', true),
      backup('new', '2026-01-05T01:00:00Z'),
      backup('running', '2026-01-05T02:00:00Z', 'InProgress'),
    ];
    expect(toPrune(backups, { keepLast: 1, keepDaily: 0, keepWeekly: 0 }, 'UTC')).toEqual([]);
  });
});

describe('snapshotsToRelease (keepLocalSnapshots)', () => {
  /** A Completed Backup whose one volume is copied into a bucket, or not. */
  const completed = (name: string, created: string, copied: boolean): Backup => ({
    ...backup(name, created, 'Completed'),
    status: {
      phase: 'Completed',
      volumes: [
        {
          pvcName: 'data-pg-0',
          volumeSnapshotName: `${name}-snap`,
          ...(copied ? { dataCopy: { manifest: `m/${name}`, phase: 'Completed' as const } } : {}),
        },
      ],
    },
  });
  const kept = [
    completed('d4', '2026-01-04T00:00:00Z', true),
    completed('d3', '2026-01-03T00:00:00Z', true),
    completed('d2', '2026-01-02T00:00:00Z', false),
    completed('d1', '2026-01-01T00:00:00Z', true),
    backup('running', '2026-01-05T00:00:00Z', 'InProgress'),
  ];

  it('lets the snapshots of copied Backups past the newest keepLocalSnapshots go, never of one with no copy', () => {
    const retention = { keepLast: 7, keepDaily: 0, keepWeekly: 0, keepLocalSnapshots: 1 };
    expect(names(snapshotsToRelease(kept, retention))).toEqual(['d3', 'd1']);
    expect(names(snapshotsToRelease(kept, { ...retention, keepLocalSnapshots: 0 }))).toEqual([
      'd4',
      'd3',
      'd1',
    ]);
  });

  it('keeps every snapshot when keepLocalSnapshots is not set', () => {
    expect(snapshotsToRelease(kept, retentionOf({ keepLast: 7 }))).toEqual([]);
  });
});

describe('isoWeek', () => {
  it.each([
    [2026, 1, 1, '2026-W01'], // Thursday
    [2025, 12, 29, '2026-W01'], // Monday of 2026's first week
    [2027, 1, 1, '2026-W53'], // Friday: 2026 has 53 weeks
    [2027, 1, 4, '2027-W01'],
    [2024, 12, 30, '2025-W01'],
  ])('%i-%i-%i is in %s', (year, month, day, week) => {
    expect(isoWeek(year, month, day)).toBe(week);
  });
});
