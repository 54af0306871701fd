// BackupSchedules on the real cluster, with a cron of a seconds field so runs come every 2 s. A
// schedule creates Backups named by their run, labelled with it (kubectl get backups -l
// snapback.dev/schedule=NAME), that complete; retention deletes all but the newest keepLast, and
// deleting the schedule keeps its Backups. Suspended, it creates nothing; resumed, it goes on with
// at most one run for the suspended time. After downtime only the most recent missed run starts.
// While a Backup of the schedule is InProgress (its snapshot held by the storage simulator) no
// other starts: the runs due meanwhile are skipped, and status and Events say so. A time zone or a
// cron expression the schema cannot refuse is InvalidSchedule, creating nothing, until fixed; what
// the schema can refuse, the API server refuses.

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { labels } from '../../src/api/constants.js';
import type { Backup, BackupSchedule, BackupScheduleSpec } from '../../src/api/generated/types.js';
import type { Condition } from '../../src/api/kubernetes.js';
import { runBackupName } from '../../src/controllers/backupschedule/schedule.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { ApiError } from '../../src/runtime/errors.js';
import { resources } from '../../src/runtime/resources.js';
import { SIM } from '../cluster/storage-simulator/constants.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  testClient,
  uniqueName,
  waitFor,
} from './support/cluster.js';
import { startOperator, type RunningOperator } from './support/operator.js';
import { createSimSnapshotClass, deploySampleDataService, installCrds } from './support/snapback.js';

const EVERY_2_SECONDS = '*/2 * * * * *';

let client: KubeClient;
let namespace: string;
let operator: RunningOperator;
const snapshotClasses: string[] = [];

const startScheduleOperator = (name: string): Promise<RunningOperator> =>
  startOperator(name, { watchNamespace: namespace, namespace, backup: { timeoutSeconds: 300 } });

beforeAll(async () => {
  client = await testClient();
  await installCrds(client);
  namespace = await createTestNamespace(client, 'schedules');
  operator = await startScheduleOperator(`schedules-${namespace}`);
  await deploySampleDataService(client, namespace, 'pg', 1);
});

afterAll(async () => {
  // With the operator still up, so that the Backups' finalizers run.
  const { items: schedules } = await client.list(resources.backupSchedules, { namespace });
  for (const schedule of schedules)
    await client.delete(resources.backupSchedules, schedule.metadata.name ?? '', { namespace });
  for (const backup of (await client.list(resources.backups, { namespace })).items)
    await client.delete(resources.backups, backup.metadata.name ?? '', { namespace });
  await waitFor(
    'the Backups to go',
    async () => (await client.list(resources.backups, { namespace })).items.length === 0,
  );
  await operator.stop();
  await deleteTestNamespace(client, namespace);
  for (const name of snapshotClasses) await client.delete(resources.volumeSnapshotClasses, name);
  await client.close();
});

async function createSchedule(name: string, spec: Partial<BackupScheduleSpec>): Promise<void> {
  await client.create(resources.backupSchedules, {
    metadata: { name, namespace },
    spec: { schedule: EVERY_2_SECONDS, template: { deployment: { name: 'pg' } }, ...spec },
  });
}

/** The schedule's Backups, as `kubectl get backups -l snapback.dev/schedule=NAME` lists them. */
async function backupsOf(schedule: string): Promise<Backup[]> {
  const { items } = await client.list(resources.backups, {
    namespace,
    labelSelector: `${labels.schedule}=${schedule}`,
  });
  return items;
}

const names = (backups: readonly Backup[]): string[] => backups.map((b) => b.metadata.name ?? '').sort();

/** The run time in a scheduled Backup's name (`<schedule>-YYYYMMDDHHmmss`, UTC). */
function runTimeOf(backup: string): number {
  const stamp = /(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(backup);
  if (stamp === null) throw new Error(`${backup} does not end in a run stamp`);
  const [, year, month, day, hour, minute, second] = stamp.map(Number);
  return Date.UTC(year ?? 0, (month ?? 1) - 1, day, hour, minute, second);
}

const ready = (schedule: BackupSchedule | undefined): Condition | undefined =>
  schedule?.status?.conditions?.find((condition) => condition.type === 'Ready');

async function waitForSchedule(
  name: string,
  what: string,
  test: (schedule: BackupSchedule) => boolean,
  timeoutMs = 60_000,
): Promise<BackupSchedule> {
  return waitFor(
    `BackupSchedule ${name}: ${what}`,
    async () => {
      const schedule = await client.get(resources.backupSchedules, name, namespace);
      return schedule !== undefined && test(schedule) ? schedule : undefined;
    },
    timeoutMs,
  );
}

async function eventReasons(schedule: string): Promise<string[]> {
  const { items } = await client.list(resources.events, {
    namespace,
    fieldSelector: `involvedObject.kind=BackupSchedule,involvedObject.name=${schedule}`,
  });
  return items.map((event) => `${event.type} ${event.reason}`);
}

const setSuspend = (name: string, suspend: boolean): Promise<BackupSchedule> =>
  client.mergePatch(resources.backupSchedules, name, { spec: { suspend } }, { namespace });

interface Observation<T> {
  result: T;
  /** Every name the schedule's Backups had, Backups pruned meanwhile included. */
  seen: Set<string>;
  /** The most of the schedule's Backups that were running at once. */
  mostRunning: number;
}

/** Polls the schedule's Backups while `until` runs. */
async function observeWhile<T>(schedule: string, until: () => Promise<T>): Promise<Observation<T>> {
  const seen = new Set<string>();
  let mostRunning = 0;
  const stop = new AbortController();
  const observe = async (): Promise<void> => {
    const backups = await backupsOf(schedule);
    for (const name of names(backups)) seen.add(name);
    const running = backups.filter(
      (backup) => backup.status?.phase === undefined || backup.status.phase === 'InProgress',
    );
    mostRunning = Math.max(mostRunning, running.length);
  };
  const poll = (async () => {
    while (!stop.signal.aborted) {
      await observe();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  try {
    const result = await until();
    // What `until` waited for may have come after the poll's last look.
    await observe();
    return { result, seen, mostRunning };
  } finally {
    stop.abort();
    await poll;
  }
}

describe('a BackupSchedule', () => {
  it('creates Backups of its runs, labelled with it, that complete; retention keeps the newest keepLast; deleting it keeps them', async () => {
    const name = 'every-2s';
    const {
      seen,
      mostRunning,
      result: settled,
    } = await observeWhile(name, async () => {
      await createSchedule(name, { retention: { keepLast: 2 } });
      await waitFor('four runs, and a pruning', async () => {
        const reasons = await eventReasons(name);
        return (
          reasons.filter((reason) => reason === 'Normal BackupCreated').length >= 4 &&
          reasons.includes('Normal Pruned')
        );
      });
      const schedule = await waitForSchedule(
        name,
        'a success',
        (s) => s.status?.lastSuccessfulTime !== undefined,
      );
      expect(ready(schedule)).toMatchObject({ status: 'True', reason: 'Scheduled' });
      expect(schedule.status?.observedGeneration).toBe(1);
      expect(schedule.status?.lastBackup).toBe(
        runBackupName(name, new Date(schedule.status?.lastScheduleTime ?? '')),
      );
      expect(Date.parse(schedule.status?.nextScheduleTime ?? '')).toBeGreaterThan(
        Date.parse(schedule.status?.lastScheduleTime ?? ''),
      );
      // Suspended, the schedule settles: its running Backup ends, and retention leaves the newest two.
      await setSuspend(name, true);
      return waitFor('the two newest Completed Backups, and nothing else', async () => {
        const current = await backupsOf(name);
        const done = current.every(
          (backup) => backup.status?.phase === 'Completed' && backup.metadata.deletionTimestamp === undefined,
        );
        return done && current.length === 2 ? current : undefined;
      });
    });
    expect(seen.size).toBeGreaterThanOrEqual(4);
    expect(mostRunning).toBe(1);
    expect(names(settled)).toEqual([...seen].sort().slice(-2));
    for (const backup of settled) {
      expect(backup.metadata.name).toMatch(/^every-2s-\d{14}$/);
      expect(backup.metadata.labels).toMatchObject({
        [labels.schedule]: name,
        [labels.deployment]: 'pg',
        [labels.managedBy]: 'snapback',
      });
      expect(backup.metadata.ownerReferences).toBeUndefined();
      expect(backup.spec).toEqual({ deployment: { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'pg' } });
    }

    await client.delete(resources.backupSchedules, name, { namespace });
    await waitFor(
      'the schedule to go',
      async () => (await client.get(resources.backupSchedules, name, namespace)) === undefined,
    );
    const kept = await backupsOf(name);
    expect(names(kept)).toEqual(names(settled));
    expect(kept.every((backup) => backup.metadata.deletionTimestamp === undefined)).toBe(true);
  });

  it('creates nothing while suspended, and once resumed goes on with at most one run for the suspended time', async () => {
    const name = 'pausable';
    await createSchedule(name, { retention: { keepLast: 50 } });
    await waitFor('a first Backup', async () => (await backupsOf(name)).length > 0);

    await setSuspend(name, true);
    const suspended = await waitForSchedule(name, 'Suspended', (s) => ready(s)?.reason === 'Suspended');
    const suspendedAt = Date.now();
    expect(ready(suspended)?.status).toBe('False');
    expect(suspended.status?.nextScheduleTime).toBeUndefined();
    const before = names(await backupsOf(name));
    // Three runs' worth of time: each would have created a Backup.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect(names(await backupsOf(name))).toEqual(before);

    const resumedAt = Date.now();
    await setSuspend(name, false);
    await waitFor('runs after the resume', async () =>
      (await backupsOf(name)).some((backup) => runTimeOf(backup.metadata.name ?? '') > resumedAt + 2_000),
    );
    const duringSuspend = (await backupsOf(name)).filter((backup) => {
      const run = runTimeOf(backup.metadata.name ?? '');
      return run > suspendedAt && run <= resumedAt;
    });
    expect(duringSuspend.length).toBeLessThanOrEqual(1);
    expect(ready(await client.get(resources.backupSchedules, name, namespace))?.status).toBe('True');
    await client.delete(resources.backupSchedules, name, { namespace });
  });

  it('after the operator was down, starts only the most recent run it missed', async () => {
    // Two runs, 4 s and 6 s from now (then each minute); the operator is down for both.
    const base = Math.floor(Date.now() / 1000) * 1000;
    const [earlier, later] = [new Date(base + 4_000), new Date(base + 6_000)];
    const name = 'catch-up';
    await createSchedule(name, {
      schedule: `${earlier.getUTCSeconds()},${later.getUTCSeconds()} * * * * *`,
      retention: { keepLast: 50 },
    });
    await operator.kill();
    await new Promise((resolve) => setTimeout(resolve, later.getTime() + 1_000 - Date.now()));
    operator = await startScheduleOperator(`schedules-restarted-${namespace}`);

    const schedule = await waitForSchedule(name, 'a run', (s) => s.status?.lastScheduleTime !== undefined);
    expect(schedule.status?.lastScheduleTime).toBe(later.toISOString());
    expect(names(await backupsOf(name))).toEqual([runBackupName(name, later)]);
    expect(Date.parse(schedule.status?.nextScheduleTime ?? '')).toBe(earlier.getTime() + 60_000);
    await client.delete(resources.backupSchedules, name, { namespace });
  });

  it('never runs two Backups at once: runs due while one is InProgress are skipped, in status and Events', async () => {
    const held = await createSimSnapshotClass(client, uniqueName('held'), { [SIM.never]: 'true' });
    snapshotClasses.push(held);
    const name = 'one-at-a-time';
    const { seen, mostRunning } = await observeWhile(name, async () => {
      await createSchedule(name, { template: { deployment: { name: 'pg' }, volumeSnapshotClassName: held } });
      const first = await waitForSchedule(
        name,
        'a skipped run',
        (s) => ready(s)?.reason === 'SkippedOverlap',
      );
      const firstSkip = Date.parse(first.status?.lastSkippedTime ?? '');
      const skipping = await waitForSchedule(
        name,
        'another skipped run',
        (s) => Date.parse(s.status?.lastSkippedTime ?? '') > firstSkip,
      );
      const only = await backupsOf(name);
      expect(only).toHaveLength(1);
      const active = only[0]?.metadata.name ?? '';
      expect(only[0]?.status?.phase).toBe('InProgress');
      expect(skipping.status?.active).toBe(active);
      expect(ready(skipping)?.status).toBe('False');
      expect(skipping.status?.message).toContain(
        `was skipped: Backup ${active} is still InProgress, and a schedule runs one Backup at a time`,
      );
      await waitFor(
        'a Warning Event per skipped run',
        async () =>
          (await eventReasons(name)).filter((reason) => reason === 'Warning SkippedOverlap').length >= 2,
      );

      // Released, the held Backup completes and the runs go on.
      await client.mergePatch(resources.volumeSnapshotClasses, held, {
        metadata: { annotations: { [SIM.never]: null } },
      });
      await waitFor('a second Backup', async () => (await backupsOf(name)).length >= 2);
      return waitForSchedule(name, 'Scheduled again', (s) => ready(s)?.reason === 'Scheduled');
    });
    expect(seen.size).toBeGreaterThanOrEqual(2);
    expect(mostRunning).toBe(1);
    await client.delete(resources.backupSchedules, name, { namespace });
  });
});

describe('a BackupSchedule it cannot run', () => {
  it('is InvalidSchedule for a time zone that does not exist, creating nothing, until the zone is fixed', async () => {
    const name = 'bad-zone';
    await createSchedule(name, { timeZone: 'Mars/Olympus_Mons' });
    const invalid = await waitForSchedule(
      name,
      'InvalidSchedule',
      (s) => ready(s)?.reason === 'InvalidSchedule',
    );
    expect(ready(invalid)?.status).toBe('False');
    expect(invalid.status?.message).toMatch(/spec\.timeZone "Mars\/Olympus_Mons" is not an IANA time zone/);
    expect(invalid.status?.nextScheduleTime).toBeUndefined();
    await waitFor('a Warning Event', async () =>
      (await eventReasons(name)).includes('Warning InvalidSchedule'),
    );
    expect(await backupsOf(name)).toEqual([]);

    await client.mergePatch(
      resources.backupSchedules,
      name,
      { spec: { timeZone: 'Europe/Berlin', schedule: '0 3 * * *' } },
      { namespace },
    );
    const fixed = await waitForSchedule(name, 'Scheduled', (s) => ready(s)?.reason === 'Scheduled');
    expect(fixed.status?.observedGeneration).toBe(2);
    // 03:00 in Berlin is 01:00 or 02:00 UTC.
    expect(new Date(fixed.status?.nextScheduleTime ?? '').getUTCHours()).toBeLessThanOrEqual(2);
  });

  it('is InvalidSchedule for a cron expression the schema lets through', async () => {
    const name = 'bad-cron';
    await createSchedule(name, { schedule: '0 0 31 4 *' });
    const invalid = await waitForSchedule(
      name,
      'InvalidSchedule',
      (s) => ready(s)?.reason === 'InvalidSchedule',
    );
    expect(invalid.status?.message).toMatch(/spec\.schedule "0 0 31 4 \*" is not a valid cron expression/);
    expect(await backupsOf(name)).toEqual([]);
  });

  it.each([
    ['a schedule of 4 fields', { schedule: '0 2 * *' }, /spec\.schedule/],
    ['keepLast 0', { retention: { keepLast: 0 } }, /spec\.retention\.keepLast/],
    ['a template without a deployment', { template: {} }, /spec\.template\.deployment/],
  ])('is refused by the API server with %s', async (_, spec, field) => {
    const err = await client
      .create(resources.backupSchedules, {
        metadata: { name: uniqueName('refused'), namespace },
        spec: { schedule: EVERY_2_SECONDS, template: { deployment: { name: 'pg' } }, ...spec },
      } as BackupSchedule)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).statusCode).toBe(422);
    expect((err as ApiError).message).toMatch(field);
  });

  it('left the operator running throughout', () => {
    expect(operator.running()).toBe(true);
  });
});
