// When a BackupSchedule's runs fall: its cron expression read in its time zone, which run (if any)
// is due now, and the name of the Backup a run creates. Pure: the clock is an argument.

import { CronExpressionParser, type CronExpressionOptions } from 'cron-parser';
import { boundedName, MAX_LABEL_LENGTH, shortHash } from '../../naming.js';

export const DEFAULT_TIME_ZONE = 'UTC';

/** The runs of a valid schedule, each on a whole second. */
export interface Cron {
  /** The first run strictly after `time`; undefined when the expression has no more. */
  after(time: Date): Date | undefined;
  /** The last run at or before `time`; undefined when there was none. */
  atOrBefore(time: Date): Date | undefined;
}

const FIELDS_HELP =
  'write 5 fields (minute hour day-of-month month day-of-week) or 6 with a leading seconds field, e.g. "0 2 * * *" for 02:00 every day';

/** Why `timeZone` is not one, or undefined when it is an IANA time zone this runtime knows. */
export function timeZoneProblem(timeZone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en', { timeZone });
    return undefined;
  } catch {
    return `spec.timeZone "${timeZone}" is not an IANA time zone; use a tz database name such as "UTC" or "Europe/Berlin"`;
  }
}

/**
 * The schedule's runs, or what is wrong with it in words its author can act on. `seed` fixes
 * what H ("hashed") fields resolve to, so every reconcile of one schedule agrees on its runs.
 */
export function parseCron(schedule: string, timeZone: string, seed: string): Cron | { problem: string } {
  const zone = timeZoneProblem(timeZone);
  if (zone !== undefined) return { problem: zone };
  const expression = schedule.trim();
  const fields = expression.split(/\s+/).length;
  if (!expression.startsWith('@') && fields !== 5 && fields !== 6) {
    return { problem: `spec.schedule "${schedule}" has ${fields} fields; ${FIELDS_HELP}` };
  }
  const options: CronExpressionOptions = { tz: timeZone, hashSeed: seed };
  try {
    CronExpressionParser.parse(expression, options);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return {
      problem: `spec.schedule "${schedule}" is not a valid cron expression (${reason}); ${FIELDS_HELP}`,
    };
  }
  // cron-parser's iterators are stateful: each question gets an expression of its own.
  const step = (from: Date, direction: 'next' | 'prev'): Date | undefined => {
    try {
      const runs = CronExpressionParser.parse(expression, { ...options, currentDate: from });
      return (direction === 'next' ? runs.next() : runs.prev()).toDate();
    } catch {
      // The expression has no run in that direction (e.g. within cron-parser's search limit).
      return undefined;
    }
  };
  return {
    after: (time) => step(time, 'next'),
    // prev() is strictly before its start; runs are on whole seconds, so 1 ms later includes `time`.
    atOrBefore: (time) => step(new Date(time.getTime() + 1), 'prev'),
  };
}

export type DueRun =
  | { kind: 'none' }
  /** Start the run of `time` now. */
  | { kind: 'due'; time: Date }
  /** The run of `time` was missed and is too late to start: more than the starting deadline. */
  | { kind: 'missed'; time: Date; lateSeconds: number };

/**
 * The run to act on now: the most recent run after `since` (the last run handled, or the
 * schedule's creation) and not after `now`. However many runs were missed (downtime, suspend),
 * only that one is considered, and it starts only within `startingDeadlineSeconds` of its time.
 */
export function dueRun(cron: Cron, since: Date, now: Date, startingDeadlineSeconds?: number): DueRun {
  const time = cron.atOrBefore(now);
  if (time === undefined || time.getTime() <= since.getTime()) return { kind: 'none' };
  const lateSeconds = Math.floor((now.getTime() - time.getTime()) / 1000);
  if (startingDeadlineSeconds !== undefined && lateSeconds > startingDeadlineSeconds) {
    return { kind: 'missed', time, lateSeconds };
  }
  return { kind: 'due', time };
}

/** "YYYYMMDDHHmmss" in UTC: unique per run, also across a daylight saving change. */
const STAMP_LENGTH = 14;
const stampOf = (time: Date): string => time.toISOString().replace(/\D/g, '').slice(0, STAMP_LENGTH);

/**
 * The Backup the schedule's run of `time` creates: `<schedule>-<UTC stamp>`. Deterministic, so a
 * restart that repeats a run finds its Backup instead of creating a second. A schedule name too
 * long for that is cut and a digest of the whole name keeps cut names apart.
 */
export function runBackupName(schedule: string, time: Date): string {
  const stamp = stampOf(time);
  if (schedule.length + 1 + STAMP_LENGTH <= MAX_LABEL_LENGTH) return `${schedule}-${stamp}`;
  return boundedName(schedule, '', `${shortHash([schedule], 5)}-${stamp}`);
}
