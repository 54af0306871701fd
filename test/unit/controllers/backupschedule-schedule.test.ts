// When a BackupSchedule's runs fall: cron expressions in a time zone (daylight saving changes
// included), invalid expressions and zones told in words, which run is due after downtime, and
// the names of the Backups runs create.

import { describe, expect, it } from '@jest/globals';
import {
  dueRun,
  parseCron,
  runBackupName,
  type Cron,
} from '../../../src/controllers/backupschedule/schedule.js';

const at = (iso: string): Date => new Date(iso);

function cron(schedule: string, timeZone = 'UTC'): Cron {
  const parsed = parseCron(schedule, timeZone, 'ns/name');
  if ('problem' in parsed) throw new Error(parsed.problem);
  return parsed;
}

/** The first `count` runs after `from`. */
function runs(schedule: Cron, from: string, count: number): string[] {
  const out: string[] = [];
  let time = at(from);
  for (let i = 0; i < count; i++) {
    const next = schedule.after(time);
    if (next === undefined) break;
    out.push(next.toISOString());
    time = next;
  }
  return out;
}

describe('parseCron', () => {
  it('reads 5 fields in the time zone', () => {
    expect(runs(cron('0 2 * * *', 'Europe/Berlin'), '2026-01-10T12:00:00Z', 2)).toEqual([
      '2026-01-11T01:00:00.000Z',
      '2026-01-12T01:00:00.000Z',
    ]);
    expect(runs(cron('30 9 * * MON-FRI', 'America/New_York'), '2026-01-09T00:00:00Z', 2)).toEqual([
      '2026-01-09T14:30:00.000Z', // Friday
      '2026-01-12T14:30:00.000Z', // Monday
    ]);
  });

  it('reads a leading seconds field, so a schedule can run every 2 seconds', () => {
    expect(runs(cron('*/2 * * * * *'), '2026-01-01T00:00:00.500Z', 3)).toEqual([
      '2026-01-01T00:00:02.000Z',
      '2026-01-01T00:00:04.000Z',
      '2026-01-01T00:00:06.000Z',
    ]);
  });

  it('reads the @daily family', () => {
    expect(runs(cron('@daily', 'Asia/Tokyo'), '2026-01-01T00:00:00Z', 1)).toEqual([
      '2026-01-01T15:00:00.000Z',
    ]);
  });

  it('runs a time that daylight saving skips once, an hour later, and a time it repeats once', () => {
    // Europe/Berlin: 2026-03-29 02:00 -> 03:00; 2026-10-25 03:00 -> 02:00.
    expect(runs(cron('30 2 * * *', 'Europe/Berlin'), '2026-03-28T12:00:00Z', 2)).toEqual([
      '2026-03-29T01:30:00.000Z', // 03:30 CEST: 02:30 does not exist that day
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
    ]);
    expect(runs(cron('30 2 * * *', 'Europe/Berlin'), '2026-10-24T12:00:00Z', 2)).toEqual([
      '2026-10-25T00:30:00.000Z', // 02:30 CEST, the first of the two 02:30s
      '2026-10-26T01:30:00.000Z', // 02:30 CET
    ]);
  });

  it('runs hourly schedules every real hour across the autumn change', () => {
    expect(runs(cron('0 * * * *', 'Europe/Berlin'), '2026-10-24T23:30:00Z', 4)).toEqual([
      '2026-10-25T00:00:00.000Z',
      '2026-10-25T01:00:00.000Z',
      '2026-10-25T02:00:00.000Z',
      '2026-10-25T03:00:00.000Z',
    ]);
  });

  it('finds the last run at or before a time', () => {
    const everyTwo = cron('*/2 * * * * *');
    expect(everyTwo.atOrBefore(at('2026-01-01T00:00:04.000Z'))?.toISOString()).toBe(
      '2026-01-01T00:00:04.000Z',
    );
    expect(everyTwo.atOrBefore(at('2026-01-01T00:00:05.999Z'))?.toISOString()).toBe(
      '2026-01-01T00:00:04.000Z',
    );
    expect(cron('0 2 * * *', 'Europe/Berlin').atOrBefore(at('2026-01-11T00:59:59Z'))?.toISOString()).toBe(
      '2026-01-10T01:00:00.000Z',
    );
  });

  it('resolves H fields the same way every time for one seed', () => {
    const first = parseCron('H 2 * * *', 'UTC', 'prod/nightly');
    const again = parseCron('H 2 * * *', 'UTC', 'prod/nightly');
    if ('problem' in first || 'problem' in again) throw new Error('H is valid');
    const from = at('2026-01-01T00:00:00Z');
    expect(first.after(from)).toEqual(again.after(from));
  });

  it.each([
    ['* * * *', 'UTC', /has 4 fields; write 5 fields .* or 6 with a leading seconds field/],
    ['0 0 * * * * *', 'UTC', /has 7 fields/],
    ['61 * * * *', 'UTC', /is not a valid cron expression \(.*61.*\)/],
    ['0 0 31 4 *', 'UTC', /"0 0 31 4 \*" is not a valid cron expression/],
    ['0 2 * * FUNDAY', 'UTC', /is not a valid cron expression/],
    [
      '0 2 * * *',
      'Mars/Olympus_Mons',
      /spec\.timeZone "Mars\/Olympus_Mons" is not an IANA time zone; use .*"Europe\/Berlin"/,
    ],
  ])('refuses %j in %s, saying what to write', (schedule, timeZone, problem) => {
    const parsed = parseCron(schedule, timeZone, 'ns/name');
    expect('problem' in parsed ? parsed.problem : 'valid').toMatch(problem);
  });
});

describe('dueRun', () => {
  const everyTwo = cron('*/2 * * * * *');
  const nightly = cron('0 2 * * *', 'Europe/Berlin');

  it('has nothing due before the first run after the schedule was created', () => {
    expect(dueRun(everyTwo, at('2026-01-01T00:00:02Z'), at('2026-01-01T00:00:03.900Z'))).toEqual({
      kind: 'none',
    });
  });

  it('is due at the run time and stays due until it is handled', () => {
    const since = at('2026-01-01T00:00:02Z');
    expect(dueRun(everyTwo, since, at('2026-01-01T00:00:04.000Z'))).toEqual({
      kind: 'due',
      time: at('2026-01-01T00:00:04Z'),
    });
    expect(dueRun(everyTwo, since, at('2026-01-01T00:00:05.500Z'))).toEqual({
      kind: 'due',
      time: at('2026-01-01T00:00:04Z'),
    });
    expect(dueRun(everyTwo, at('2026-01-01T00:00:04Z'), at('2026-01-01T00:00:05.500Z'))).toEqual({
      kind: 'none',
    });
  });

  it('after downtime, offers only the most recent missed run, not one per missed run', () => {
    // Down from before the 10th's run until after the 13th's: four runs missed.
    const since = at('2026-01-09T01:00:00Z');
    expect(dueRun(nightly, since, at('2026-01-13T09:15:00Z'))).toEqual({
      kind: 'due',
      time: at('2026-01-13T01:00:00Z'),
    });
  });

  it('does not start a missed run later than startingDeadlineSeconds, and says how late it was', () => {
    const since = at('2026-01-09T01:00:00Z');
    expect(dueRun(nightly, since, at('2026-01-13T01:10:00Z'), 600)).toEqual({
      kind: 'due',
      time: at('2026-01-13T01:00:00Z'),
    });
    expect(dueRun(nightly, since, at('2026-01-13T01:10:01Z'), 600)).toEqual({
      kind: 'missed',
      time: at('2026-01-13T01:00:00Z'),
      lateSeconds: 601,
    });
  });
});

describe('runBackupName', () => {
  it('is the schedule name and the run time in UTC', () => {
    expect(runBackupName('pg-nightly', at('2026-03-29T01:30:00Z'))).toBe('pg-nightly-20260329013000');
    expect(runBackupName('pg.nightly', at('2026-03-29T01:30:07.250Z'))).toBe('pg.nightly-20260329013007');
  });

  it('is at most 63 characters, and tells apart long names that share their beginning', () => {
    const time = at('2026-03-29T01:30:00Z');
    const a = runBackupName(`${'a'.repeat(50)}-one`, time);
    const b = runBackupName(`${'a'.repeat(50)}-two`, time);
    expect(a.length).toBeLessThanOrEqual(63);
    expect(b.length).toBeLessThanOrEqual(63);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^a+-[a-z2-7]{5}-20260329013000$/);
    expect(runBackupName('x'.repeat(48), time)).toBe(`${'x'.repeat(48)}-20260329013000`);
  });

  it('differs for the two 02:30s of the night daylight saving ends', () => {
    expect(runBackupName('s', at('2026-10-25T00:30:00Z'))).not.toBe(
      runBackupName('s', at('2026-10-25T01:30:00Z')),
    );
  });
});
