// Which of a schedule's Backups its retention keeps. Completed Backups: the union of the newest
// keepLast, the newest of each of the keepDaily most recent days that have one, and the newest of
// each of the keepWeekly most recent ISO weeks that have one, days and weeks in the schedule's time
// zone (so "daily" means the user's days, not UTC's). Failed Backups never count as backups to
// keep; the newest of those newer than the newest Completed one are kept (at most keepLast) so a
// failure can be looked into, the rest go. A Backup still running or being deleted is never chosen.
// Of the Backups kept and copied into a bucket, all but the newest keepLocalSnapshots let their CSI
// snapshots go: the bucket holds their data.

import type { Backup, BackupRetention } from '../../api/generated/types.js';

export const DEFAULT_KEEP_LAST = 7;

export interface Retention {
  keepLast: number;
  keepDaily: number;
  keepWeekly: number;
  /** How many of the newest Backups copied into a bucket keep their CSI snapshots; undefined: all. */
  keepLocalSnapshots?: number;
}

export function retentionOf(spec: BackupRetention | undefined): Retention {
  return {
    keepLast: spec?.keepLast ?? DEFAULT_KEEP_LAST,
    keepDaily: spec?.keepDaily ?? 0,
    keepWeekly: spec?.keepWeekly ?? 0,
    ...(spec?.keepLocalSnapshots === undefined ? {} : { keepLocalSnapshots: spec.keepLocalSnapshots }),
  };
}

/** Newest first: by creation (when the data was captured), then by name, whose stamp orders runs. */
export function newestFirst(backups: readonly Backup[]): Backup[] {
  const created = (backup: Backup): number => Date.parse(backup.metadata.creationTimestamp ?? '') || 0;
  return [...backups].sort(
    (a, b) => created(b) - created(a) || (b.metadata.name ?? '').localeCompare(a.metadata.name ?? '', 'en'),
  );
}

/** The calendar date of `time` in `timeZone`. */
function localDate(format: Intl.DateTimeFormat, time: Date): { year: number; month: number; day: number } {
  const parts = Object.fromEntries(format.formatToParts(time).map((part) => [part.type, part.value]));
  return { year: Number(parts.year), month: Number(parts.month), day: Number(parts.day) };
}

/** "YYYY-Www": the ISO 8601 week (Monday to Sunday; a week belongs to the year of its Thursday). */
export function isoWeek(year: number, month: number, day: number): string {
  const date = new Date(Date.UTC(year, month - 1, day));
  const mondayBased = (date.getUTCDay() + 6) % 7;
  date.setUTCDate(date.getUTCDate() - mondayBased + 3);
  const weekYear = date.getUTCFullYear();
  const week = 1 + Math.floor((date.getTime() - Date.UTC(weekYear, 0, 1)) / (7 * 86_400_000));
  return `${weekYear}-W${String(week).padStart(2, '0')}`;
}

/** From newest-first `backups`, the newest of each of the `count` most recent periods that have one. */
function newestPerPeriod(
  backups: readonly Backup[],
  count: number,
  periodOf: (time: Date) => string,
): Backup[] {
  const seen = new Set<string>();
  const kept: Backup[] = [];
  for (const backup of backups) {
    if (seen.size >= count) break;
    const period = periodOf(new Date(backup.metadata.creationTimestamp ?? 0));
    if (seen.has(period)) continue;
    seen.add(period);
    kept.push(backup);
  }
  return kept;
}

const settled = (backup: Backup, phase: 'Completed' | 'Failed'): boolean =>
  backup.status?.phase === phase && backup.metadata.deletionTimestamp === undefined;

/** The Backups of a schedule that `retention` does not keep, newest first. */
export function toPrune(backups: readonly Backup[], retention: Retention, timeZone: string): Backup[] {
  const format = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  });
  const dayOf = (time: Date): string => {
    const { year, month, day } = localDate(format, time);
    return `${year}-${month}-${day}`;
  };
  const weekOf = (time: Date): string => {
    const { year, month, day } = localDate(format, time);
    return isoWeek(year, month, day);
  };
  const completed = newestFirst(backups.filter((backup) => settled(backup, 'Completed')));
  const failed = newestFirst(backups.filter((backup) => settled(backup, 'Failed')));
  const newestCompleted = completed[0];
  const failedSinceSuccess =
    newestCompleted === undefined
      ? failed
      : failed.filter((backup) => newestFirst([backup, newestCompleted])[0] === backup);
  const kept = new Set<Backup>([
    ...completed.slice(0, retention.keepLast),
    ...newestPerPeriod(completed, retention.keepDaily, dayOf),
    ...newestPerPeriod(completed, retention.keepWeekly, weekOf),
    ...failedSinceSuccess.slice(0, retention.keepLast),
  ]);
  return newestFirst([...completed, ...failed].filter((backup) => !kept.has(backup)));
}

/** Whether every volume of a Backup is copied into a bucket, so that it restores without its snapshots. */
const copiedToBucket = (backup: Backup): boolean => {
  const volumes = backup.status?.volumes ?? [];
  return volumes.length > 0 && volumes.every((volume) => volume.dataCopy?.phase === 'Completed');
};

/**
 * The Backups kept whose CSI snapshots retention lets go (keepLocalSnapshots): the Completed ones
 * copied into a bucket, but the newest keepLocalSnapshots of them, newest first.
 */
export function snapshotsToRelease(kept: readonly Backup[], retention: Retention): Backup[] {
  if (retention.keepLocalSnapshots === undefined) return [];
  const copied = newestFirst(kept.filter((backup) => settled(backup, 'Completed') && copiedToBucket(backup)));
  return copied.slice(retention.keepLocalSnapshots);
}
